//! The replicated auth state: whether auth is on, its revision, users and roles.
//!
//! Changed only by applying raft entries ([`AuthStore::apply`]), under the MVCC write lock
//! like every applied change, so a reader holding the MVCC read lock sees permissions and
//! keys of one point in time. Kept in the state tree (see `storage::keys`), so it travels
//! in snapshots and backups and is restored with the data, as etcd's auth buckets are.
//!
//! The revision counts changes of users, roles and permissions (and turning auth off):
//! a request whose token was checked at an older revision than the one it is applied at
//! is refused with `etcdserver: revision of auth store is old`, because what it was
//! allowed to do may have changed in between.

use std::collections::BTreeMap;

use etcd_proto::authpb::{Permission, Role, User, UserAddOptions};
use etcd_proto::raftrequestpb::auth_change::Change;
use etcd_proto::raftrequestpb::AuthChange;
use prost::Message;

use super::perms::{self, Access};
use super::tokens::Tokens;
use super::AuthInfo;
use crate::error::{EtcdError, Result};
use crate::storage::keys;

/// The user and the role that may do everything.
pub const ROOT: &str = "root";

/// Users, roles and the switch, as applied on this member.
#[derive(Debug)]
pub struct AuthStore {
    enabled: bool,
    revision: u64,
    users: BTreeMap<String, User>,
    roles: BTreeMap<String, Role>,
    tokens: Tokens,
}

/// What applying an auth change answers: the token of a login.
pub type Issued = Option<String>;

impl AuthStore {
    /// Loads the auth state kept in `tree`.
    pub fn open(tree: &sled::Tree, tokens: Tokens) -> Result<Self> {
        let mut store = AuthStore {
            enabled: false,
            revision: 0,
            users: BTreeMap::new(),
            roles: BTreeMap::new(),
            tokens,
        };
        store.reload(tree)?;
        Ok(store)
    }

    /// Reads the auth state again from `tree` (after a raft snapshot replaced it), keeping
    /// the tokens issued so far unless auth is off now.
    pub fn reload(&mut self, tree: &sled::Tree) -> Result<()> {
        self.enabled = tree.get(keys::AUTH_ENABLED)?.is_some_and(|v| v[..] == [1]);
        self.revision = match tree.get(keys::AUTH_REVISION)? {
            Some(v) => u64::from_be_bytes(v[..].try_into().map_err(|_| corrupt("revision"))?),
            // etcd starts a new auth store at revision 1.
            None => 1,
        };
        self.users.clear();
        for item in tree.scan_prefix([keys::AUTH_USER_PREFIX]) {
            let (_, v) = item?;
            let user = User::decode(&v[..]).map_err(|_| corrupt("user"))?;
            self.users
                .insert(String::from_utf8_lossy(&user.name).into_owned(), user);
        }
        self.roles.clear();
        for item in tree.scan_prefix([keys::AUTH_ROLE_PREFIX]) {
            let (_, v) = item?;
            let role = Role::decode(&v[..]).map_err(|_| corrupt("role"))?;
            self.roles
                .insert(String::from_utf8_lossy(&role.name).into_owned(), role);
        }
        if !self.enabled {
            self.tokens.disable();
        }
        Ok(())
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The stored password hash of `name` and the revision it was read at, for a login:
    /// the hash is checked outside the store's lock (bcrypt is slow on purpose).
    pub fn password_hash(&self, name: &str) -> Result<(Vec<u8>, u64)> {
        if !self.enabled {
            return Err(EtcdError::AuthNotEnabled);
        }
        match self.users.get(name) {
            Some(u) if !no_password(u) => Ok((u.password.clone(), self.revision)),
            _ => Err(EtcdError::AuthFailed),
        }
    }

    /// Whether `user` has been granted `role`.
    pub fn has_role(&self, user: &str, role: &str) -> bool {
        self.users
            .get(user)
            .is_some_and(|u| u.roles.iter().any(|r| r == role))
    }

    /// etcd's IsAdminPermitted: anything goes while auth is off; otherwise the user must
    /// exist and hold the root role.
    pub fn check_admin(&self, ai: &AuthInfo) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        if ai.username.is_empty() {
            return Err(EtcdError::UserEmpty);
        }
        match self.users.get(&ai.username) {
            None => Err(EtcdError::UserNotFound),
            Some(u) if is_root(u) => Ok(()),
            Some(_) => Err(EtcdError::PermissionDenied),
        }
    }

    /// etcd's isOpPermitted: whether `ai` may `access` the key or range.
    pub fn check(&self, ai: &AuthInfo, access: Access, key: &[u8], range_end: &[u8]) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        // Revision 0 is an anonymous request: no token, no certificate.
        if ai.revision == 0 {
            return Err(EtcdError::UserEmpty);
        }
        if ai.revision < self.revision {
            return Err(EtcdError::AuthOldRevision);
        }
        let Some(user) = self.users.get(&ai.username) else {
            return Err(EtcdError::PermissionDenied);
        };
        if is_root(user) {
            return Ok(());
        }
        let granted = user
            .roles
            .iter()
            .filter_map(|r| self.roles.get(r))
            .flat_map(|r| &r.key_permission);
        match perms::covers(granted, access, key, range_end) {
            true => Ok(()),
            false => Err(EtcdError::PermissionDenied),
        }
    }

    /// Every user's name, in order.
    pub fn user_names(&self) -> Vec<String> {
        self.users.keys().cloned().collect()
    }

    /// The roles of user `name`.
    pub fn user_roles(&self, name: &str) -> Result<Vec<String>> {
        let user = self.users.get(name).ok_or(EtcdError::UserNotFound)?;
        Ok(user.roles.clone())
    }

    /// Every role's name, in order.
    pub fn role_names(&self) -> Vec<String> {
        self.roles.keys().cloned().collect()
    }

    /// The permissions of role `name`.
    pub fn role_permissions(&self, name: &str) -> Result<Vec<Permission>> {
        let role = self.roles.get(name).ok_or(EtcdError::RoleNotFound)?;
        Ok(role.key_permission.clone())
    }

    /// Applies `change`, proposed by `ai`, from the entry at raft index `index`; queues
    /// the backend changes in `batch`. Every check runs before the first change.
    pub fn apply(
        &mut self,
        change: AuthChange,
        ai: &AuthInfo,
        index: u64,
        batch: &mut sled::Batch,
    ) -> Result<Issued> {
        let Some(change) = change.change else {
            return Ok(None);
        };
        if !matches!(change, Change::Authenticate(_)) {
            self.check_admin(ai)?;
        }
        match change {
            Change::Enable(_) => self.enable(batch)?,
            Change::Disable(_) => self.disable(batch),
            Change::Authenticate(a) => return self.authenticate(&a, index).map(Some),
            Change::UserAdd(u) => {
                if u.name.is_empty() {
                    return Err(EtcdError::UserEmpty);
                }
                if self.users.contains_key(&u.name) {
                    return Err(EtcdError::UserAlreadyExist);
                }
                let user = User {
                    name: u.name.clone().into_bytes(),
                    password: u.password_hash,
                    roles: Vec::new(),
                    options: u.options.filter(|o| *o != UserAddOptions::default()),
                };
                self.put_user(user, batch);
            }
            Change::UserDelete(d) => {
                if self.enabled && d.name == ROOT {
                    return Err(EtcdError::InvalidAuthMgmt);
                }
                if self.users.remove(&d.name).is_none() {
                    return Err(EtcdError::UserNotFound);
                }
                batch.remove(keys::auth_user(&d.name));
                self.tokens.invalidate_user(&d.name);
            }
            Change::UserChangePassword(c) => {
                let mut user = self
                    .users
                    .get(&c.name)
                    .ok_or(EtcdError::UserNotFound)?
                    .clone();
                user.password = c.password_hash;
                self.put_user(user, batch);
                self.tokens.invalidate_user(&c.name);
            }
            Change::UserGrantRole(g) => {
                let mut user = self
                    .users
                    .get(&g.user)
                    .ok_or(EtcdError::UserNotFound)?
                    .clone();
                if g.role != ROOT && !self.roles.contains_key(&g.role) {
                    return Err(EtcdError::RoleNotFound);
                }
                if let Err(at) = user.roles.binary_search(&g.role) {
                    user.roles.insert(at, g.role);
                    self.put_user(user, batch);
                } else {
                    // Granting a role twice changes nothing, not even the revision.
                    return Ok(None);
                }
            }
            Change::UserRevokeRole(r) => {
                if self.enabled && r.name == ROOT && r.role == ROOT {
                    return Err(EtcdError::InvalidAuthMgmt);
                }
                let mut user = self
                    .users
                    .get(&r.name)
                    .ok_or(EtcdError::UserNotFound)?
                    .clone();
                let before = user.roles.len();
                user.roles.retain(|role| *role != r.role);
                if user.roles.len() == before {
                    return Err(EtcdError::RoleNotGranted);
                }
                self.put_user(user, batch);
            }
            Change::RoleAdd(r) => {
                if r.name.is_empty() {
                    return Err(EtcdError::RoleEmpty);
                }
                if self.roles.contains_key(&r.name) {
                    return Err(EtcdError::RoleAlreadyExist);
                }
                let role = Role {
                    name: r.name.into_bytes(),
                    key_permission: Vec::new(),
                };
                self.put_role(role, batch);
            }
            Change::RoleDelete(d) => {
                if self.enabled && d.role == ROOT {
                    return Err(EtcdError::InvalidAuthMgmt);
                }
                if self.roles.remove(&d.role).is_none() {
                    return Err(EtcdError::RoleNotFound);
                }
                batch.remove(keys::auth_role(&d.role));
                // Users lose the deleted role, so a new role of the same name is not
                // granted to them by surprise.
                let holders: Vec<User> = self
                    .users
                    .values()
                    .filter(|u| u.roles.contains(&d.role))
                    .cloned()
                    .collect();
                for mut user in holders {
                    user.roles.retain(|r| *r != d.role);
                    self.put_user(user, batch);
                }
            }
            Change::RoleGrantPermission(g) => {
                let mut role = self
                    .roles
                    .get(&g.name)
                    .ok_or(EtcdError::RoleNotFound)?
                    .clone();
                let perm = g.perm.unwrap_or_default();
                grant(&mut role.key_permission, perm);
                self.put_role(role, batch);
            }
            Change::RoleRevokePermission(r) => {
                let mut role = self
                    .roles
                    .get(&r.role)
                    .ok_or(EtcdError::RoleNotFound)?
                    .clone();
                let before = role.key_permission.len();
                role.key_permission
                    .retain(|p| p.key != r.key || p.range_end != r.range_end);
                if role.key_permission.len() == before {
                    return Err(EtcdError::PermissionNotGranted);
                }
                self.put_role(role, batch);
            }
        }
        Ok(None)
    }

    /// etcd's AuthEnable: needs a root user holding the root role; the revision stays.
    fn enable(&mut self, batch: &mut sled::Batch) -> Result<()> {
        if self.enabled {
            return Ok(());
        }
        let root = self.users.get(ROOT).ok_or(EtcdError::RootUserNotExist)?;
        if !is_root(root) {
            return Err(EtcdError::RootRoleNotExist);
        }
        self.enabled = true;
        batch.insert(keys::AUTH_ENABLED, &[1u8][..]);
        tracing::info!(target: "auth", "enabled authentication");
        Ok(())
    }

    fn disable(&mut self, batch: &mut sled::Batch) {
        if !self.enabled {
            return;
        }
        self.enabled = false;
        batch.insert(keys::AUTH_ENABLED, &[0u8][..]);
        self.commit_revision(batch);
        self.tokens.disable();
        tracing::info!(target: "auth", "disabled authentication");
    }

    /// Issues a token for a login whose password the proposer checked.
    fn authenticate(
        &mut self,
        a: &etcd_proto::raftrequestpb::Authenticate,
        index: u64,
    ) -> Result<String> {
        if !self.enabled {
            return Err(EtcdError::AuthNotEnabled);
        }
        match self.users.get(&a.name) {
            Some(u) if !no_password(u) => {}
            _ => return Err(EtcdError::AuthFailed),
        }
        self.tokens
            .assign(&a.simple_token_prefix, index, &a.name, self.revision)
    }

    /// Stores `user` (added or changed) and moves the revision.
    fn put_user(&mut self, user: User, batch: &mut sled::Batch) {
        let name = String::from_utf8_lossy(&user.name).into_owned();
        batch.insert(keys::auth_user(&name), user.encode_to_vec());
        self.users.insert(name, user);
        self.commit_revision(batch);
    }

    /// Stores `role` (added or changed) and moves the revision.
    fn put_role(&mut self, role: Role, batch: &mut sled::Batch) {
        let name = String::from_utf8_lossy(&role.name).into_owned();
        batch.insert(keys::auth_role(&name), role.encode_to_vec());
        self.roles.insert(name, role);
        self.commit_revision(batch);
    }

    fn commit_revision(&mut self, batch: &mut sled::Batch) {
        self.revision += 1;
        batch.insert(keys::AUTH_REVISION, &self.revision.to_be_bytes()[..]);
    }
}

/// Adds `perm` to a role's permissions kept sorted by key, or changes the type of the one
/// with its key and range end. Like etcd, only the first permission at or after the key is
/// looked at for an existing one.
fn grant(perms: &mut Vec<Permission>, perm: Permission) {
    let at = perms.partition_point(|p| p.key < perm.key);
    match perms.get_mut(at) {
        Some(p) if p.key == perm.key && p.range_end == perm.range_end => {
            p.perm_type = perm.perm_type;
        }
        _ => {
            perms.push(perm);
            perms.sort_by(|a, b| a.key.cmp(&b.key));
        }
    }
}

fn is_root(user: &User) -> bool {
    user.roles.iter().any(|r| r == ROOT)
}

fn no_password(user: &User) -> bool {
    user.options.as_ref().is_some_and(|o| o.no_password)
}

fn corrupt(what: &str) -> EtcdError {
    EtcdError::Internal(format!("auth: corrupt {what} record"))
}

#[cfg(test)]
mod tests;
