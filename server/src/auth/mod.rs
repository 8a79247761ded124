//! v3 authentication and role-based access control, with etcd 3.4's rules.
//!
//! - [`store`]: the replicated users, roles and switch, changed by applying raft entries.
//! - [`perms`]: how a user's permissions cover a key or a range.
//! - [`check`]: which permission each request needs (reads on the API side, writes when
//!   applied, as etcd's auth applier does).
//! - [`tokens`], [`simple_token`], [`jwt`]: what a login issues and how a request's token
//!   is read; [`token_flag`]: `--auth-token`.
//! - [`password`]: bcrypt hashes, made before proposing so every member stores the same.

pub mod check;
pub mod jwt;
pub mod password;
pub mod perms;
pub mod simple_token;
pub mod store;
pub mod token_flag;
pub mod tokens;

/// Who a request speaks for: the user its token or certificate names, and the auth
/// revision its permissions are to be judged at. The default (no name, revision 0) is an
/// anonymous request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthInfo {
    pub username: String,
    pub revision: u64,
}
