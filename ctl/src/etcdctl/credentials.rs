//! Who etcdctl logs in as: `--user` and `--password` (or `ETCDCTL_USER`/`ETCDCTL_PASSWORD`)
//! read as etcdctl 3.4 reads them, the password asked for when `--user` names only a user.

use std::sync::Arc;

use tokio::sync::OnceCell;

use super::password;

/// A name and password to authenticate with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub name: String,
    pub password: String,
}

/// The credentials of one etcdctl run, shared by all its clients so that the password is
/// asked for once, when the first client first connects (etcdctl asks while creating its
/// client, after checking the command's arguments).
#[derive(Debug)]
pub struct Credentials {
    name: String,
    /// `None`: ask on the terminal.
    password: Option<String>,
    login: OnceCell<Option<Login>>,
}

impl Credentials {
    /// `None` without `--user`. With `--password` the whole of `--user` is the name;
    /// otherwise `--user` is split at its first colon, and without one the password is
    /// asked for.
    pub fn from_flags(user: &str, password: &str) -> Option<Arc<Credentials>> {
        if user.is_empty() {
            return None;
        }
        let (name, password) = match (password, user.split_once(':')) {
            ("", Some((name, password))) => (name, Some(password)),
            ("", None) => (user, None),
            (password, _) => (user, Some(password)),
        };
        Some(Arc::new(Credentials {
            name: name.to_string(),
            password: password.map(str::to_string),
            login: OnceCell::new(),
        }))
    }

    /// The login to authenticate with, asking for the password the first time if needed.
    /// `None` when the name or the password is empty: clientv3 then sends no credentials
    /// at all (and the server answers as it does to anonymous requests).
    pub async fn login(&self) -> std::io::Result<Option<Login>> {
        let login = self
            .login
            .get_or_try_init(|| async {
                let password = match &self.password {
                    Some(p) => p.clone(),
                    None => password::ask("Password: ").await?,
                };
                let usable = !self.name.is_empty() && !password.is_empty();
                Ok::<_, std::io::Error>(usable.then(|| Login {
                    name: self.name.clone(),
                    password,
                }))
            })
            .await?;
        Ok(login.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn login(user: &str, password: &str) -> Option<Login> {
        let credentials = Credentials::from_flags(user, password)?;
        credentials.login().await.expect("no prompt")
    }

    fn named(name: &str, password: &str) -> Option<Login> {
        Some(Login {
            name: name.into(),
            password: password.into(),
        })
    }

    #[tokio::test]
    async fn flags_read_as_etcdctl_reads_them() {
        assert_eq!(login("", "").await, None);
        assert_eq!(login("", "pw").await, None);
        assert_eq!(login("root:pw", "").await, named("root", "pw"));
        assert_eq!(login("root:p:w", "").await, named("root", "p:w"));
        assert_eq!(login("root", "pw").await, named("root", "pw"));
        assert_eq!(login("root:x", "pw").await, named("root:x", "pw"));
        assert_eq!(login(":pw", "").await, None);
        assert_eq!(login("root:", "").await, None);
    }
}
