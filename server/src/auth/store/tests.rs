//! The auth store's changes and refusals, etcd 3.4's rules one by one; every refusal
//! leaves the store and its backend batch as they were.

use etcd_proto::authpb::permission::Type as PermType;
use etcd_proto::authpb::Permission;
use etcd_proto::etcdserverpb::{
    AuthRoleAddRequest, AuthRoleDeleteRequest, AuthRoleGrantPermissionRequest,
    AuthRoleRevokePermissionRequest, AuthUserDeleteRequest, AuthUserGrantRoleRequest,
    AuthUserRevokeRoleRequest,
};
use etcd_proto::raftrequestpb::auth_change::Change;
use etcd_proto::raftrequestpb::{AuthChange, Authenticate, Empty, UserAdd, UserChangePassword};

use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    tree: sled::Tree,
    store: AuthStore,
}

fn root() -> AuthInfo {
    AuthInfo {
        username: ROOT.into(),
        revision: u64::MAX,
    }
}

fn user_add(name: &str) -> Change {
    Change::UserAdd(UserAdd {
        name: name.into(),
        password_hash: format!("hash-of-{name}").into_bytes(),
        options: None,
    })
}

fn grant_role(user: &str, role: &str) -> Change {
    Change::UserGrantRole(AuthUserGrantRoleRequest {
        user: user.into(),
        role: role.into(),
    })
}

fn role_add(name: &str) -> Change {
    Change::RoleAdd(AuthRoleAddRequest { name: name.into() })
}

fn grant_perm(role: &str, t: PermType, key: &str, end: &str) -> Change {
    Change::RoleGrantPermission(AuthRoleGrantPermissionRequest {
        name: role.into(),
        perm: Some(Permission {
            perm_type: t as i32,
            key: key.into(),
            range_end: end.into(),
        }),
    })
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let tree = sled::open(dir.path()).unwrap().open_tree("state").unwrap();
        let store = AuthStore::open(&tree, Default::default()).unwrap();
        Fixture {
            _dir: dir,
            tree,
            store,
        }
    }

    /// Applies `change` as `ai` and stores its batch.
    fn apply_as(&mut self, ai: &AuthInfo, change: Change) -> Result<Issued> {
        let mut batch = sled::Batch::default();
        let out = self.store.apply(
            AuthChange {
                change: Some(change),
            },
            ai,
            7,
            &mut batch,
        );
        if out.is_err() {
            assert_eq!(
                format!("{batch:?}"),
                format!("{:?}", sled::Batch::default())
            );
        }
        self.tree.apply_batch(batch).unwrap();
        out
    }

    fn ok(&mut self, change: Change) -> Issued {
        self.apply_as(&root(), change).unwrap()
    }

    /// `change` fails with `expected` and changes nothing, in memory or stored.
    fn refuses(&mut self, ai: &AuthInfo, change: Change, expected: EtcdError) {
        let before = (self.observe(), self.store.revision());
        assert_eq!(self.apply_as(ai, change), Err(expected));
        assert_eq!((self.observe(), self.store.revision()), before);
        let reopened = AuthStore::open(&self.tree, Default::default()).unwrap();
        assert_eq!(reopened.revision(), self.store.revision());
    }

    fn observe(&self) -> (bool, Vec<String>, Vec<String>) {
        (
            self.store.enabled(),
            self.store.user_names(),
            self.store.role_names(),
        )
    }

    /// A root user with the root role, auth on.
    fn enabled() -> Fixture {
        let mut f = Fixture::new();
        f.ok(user_add(ROOT));
        f.ok(grant_role(ROOT, ROOT));
        f.ok(Change::Enable(Empty {}));
        f
    }
}

#[test]
fn enabling_needs_a_root_user_with_the_root_role() {
    let mut f = Fixture::new();
    let anyone = AuthInfo::default();
    f.refuses(
        &anyone,
        Change::Enable(Empty {}),
        EtcdError::RootUserNotExist,
    );
    f.ok(user_add(ROOT));
    f.refuses(
        &anyone,
        Change::Enable(Empty {}),
        EtcdError::RootRoleNotExist,
    );
    // The root role need not exist as a role to be granted.
    f.ok(grant_role(ROOT, ROOT));
    let before = f.store.revision();
    f.apply_as(&anyone, Change::Enable(Empty {})).unwrap();
    assert!(f.store.enabled());
    assert_eq!(f.store.revision(), before, "enabling keeps the revision");
    // Enabling again changes nothing; now only root may even try.
    f.ok(Change::Enable(Empty {}));
    f.refuses(&anyone, Change::Enable(Empty {}), EtcdError::UserEmpty);
}

#[test]
fn once_enabled_only_root_manages() {
    let mut f = Fixture::enabled();
    f.ok(user_add("alice"));
    let alice = AuthInfo {
        username: "alice".into(),
        revision: f.store.revision(),
    };
    let ghost = AuthInfo {
        username: "ghost".into(),
        revision: 1,
    };
    f.refuses(&alice, role_add("r"), EtcdError::PermissionDenied);
    f.refuses(&ghost, role_add("r"), EtcdError::UserNotFound);
    f.refuses(&AuthInfo::default(), role_add("r"), EtcdError::UserEmpty);
    f.refuses(
        &alice,
        Change::Disable(Empty {}),
        EtcdError::PermissionDenied,
    );
    // Root itself cannot be dismantled while auth is on.
    f.refuses(
        &root(),
        Change::UserDelete(AuthUserDeleteRequest { name: ROOT.into() }),
        EtcdError::InvalidAuthMgmt,
    );
    f.refuses(
        &root(),
        Change::UserRevokeRole(AuthUserRevokeRoleRequest {
            name: ROOT.into(),
            role: ROOT.into(),
        }),
        EtcdError::InvalidAuthMgmt,
    );
    f.refuses(
        &root(),
        Change::RoleDelete(AuthRoleDeleteRequest { role: ROOT.into() }),
        EtcdError::InvalidAuthMgmt,
    );
    let before = f.store.revision();
    f.ok(Change::Disable(Empty {}));
    assert!(!f.store.enabled());
    assert_eq!(
        f.store.revision(),
        before + 1,
        "disabling moves the revision"
    );
}

#[test]
fn users_and_roles_refuse_what_etcd_refuses() {
    let mut f = Fixture::new();
    let r = root();
    f.refuses(&r, user_add(""), EtcdError::UserEmpty);
    f.ok(user_add("alice"));
    f.refuses(&r, user_add("alice"), EtcdError::UserAlreadyExist);
    f.refuses(&r, role_add(""), EtcdError::RoleEmpty);
    f.ok(role_add("r1"));
    f.refuses(&r, role_add("r1"), EtcdError::RoleAlreadyExist);
    f.refuses(&r, grant_role("bob", "r1"), EtcdError::UserNotFound);
    f.refuses(&r, grant_role("alice", "r2"), EtcdError::RoleNotFound);
    f.ok(grant_role("alice", "r1"));
    let rev = f.store.revision();
    f.ok(grant_role("alice", "r1"));
    assert_eq!(f.store.revision(), rev, "a repeated grant changes nothing");
    f.refuses(
        &r,
        Change::UserRevokeRole(AuthUserRevokeRoleRequest {
            name: "alice".into(),
            role: "r9".into(),
        }),
        EtcdError::RoleNotGranted,
    );
    f.refuses(
        &r,
        grant_perm("r9", PermType::Read, "a", ""),
        EtcdError::RoleNotFound,
    );
    f.refuses(
        &r,
        Change::RoleRevokePermission(AuthRoleRevokePermissionRequest {
            role: "r1".into(),
            key: b"a".to_vec(),
            range_end: Vec::new(),
        }),
        EtcdError::PermissionNotGranted,
    );
    f.refuses(
        &r,
        Change::UserChangePassword(UserChangePassword {
            name: "bob".into(),
            password_hash: b"x".to_vec(),
        }),
        EtcdError::UserNotFound,
    );
    f.refuses(
        &r,
        Change::UserDelete(AuthUserDeleteRequest { name: "bob".into() }),
        EtcdError::UserNotFound,
    );
    f.refuses(
        &r,
        Change::RoleDelete(AuthRoleDeleteRequest { role: "r9".into() }),
        EtcdError::RoleNotFound,
    );
}

#[test]
fn permissions_are_kept_sorted_and_regranting_changes_the_type() {
    let mut f = Fixture::new();
    f.ok(role_add("r"));
    f.ok(grant_perm("r", PermType::Read, "m", ""));
    f.ok(grant_perm("r", PermType::Write, "c", "d"));
    f.ok(grant_perm("r", PermType::Readwrite, "m", ""));
    let perms = f.store.role_permissions("r").unwrap();
    let keys: Vec<(&[u8], i32)> = perms.iter().map(|p| (&p.key[..], p.perm_type)).collect();
    assert_eq!(
        keys,
        [
            (&b"c"[..], PermType::Write as i32),
            (&b"m"[..], PermType::Readwrite as i32)
        ]
    );
}

#[test]
fn deleting_a_role_takes_it_from_its_users() {
    let mut f = Fixture::new();
    f.ok(user_add("alice"));
    f.ok(role_add("r1"));
    f.ok(role_add("r2"));
    f.ok(grant_role("alice", "r2"));
    f.ok(grant_role("alice", "r1"));
    assert_eq!(f.store.user_roles("alice").unwrap(), ["r1", "r2"]);
    f.ok(Change::RoleDelete(AuthRoleDeleteRequest {
        role: "r1".into(),
    }));
    assert_eq!(f.store.user_roles("alice").unwrap(), ["r2"]);
    // A new role of the old name is not granted by surprise, even after a restart.
    f.ok(role_add("r1"));
    let reopened = AuthStore::open(&f.tree, Default::default()).unwrap();
    assert_eq!(reopened.user_roles("alice").unwrap(), ["r2"]);
}

#[test]
fn permission_checks_follow_the_user_its_roles_and_the_revision() {
    let mut f = Fixture::enabled();
    f.ok(user_add("alice"));
    f.ok(role_add("r"));
    f.ok(grant_perm("r", PermType::Readwrite, "foo/", "foo0"));
    f.ok(grant_role("alice", "r"));
    let alice = AuthInfo {
        username: "alice".into(),
        revision: f.store.revision(),
    };
    let s = &f.store;
    assert_eq!(s.check(&alice, Access::Write, b"foo/x", b""), Ok(()));
    assert_eq!(
        s.check(&alice, Access::Read, b"bar", b""),
        Err(EtcdError::PermissionDenied)
    );
    assert_eq!(s.check(&root(), Access::Write, b"bar", b"\0"), Ok(()));
    assert_eq!(
        s.check(&AuthInfo::default(), Access::Read, b"foo/x", b""),
        Err(EtcdError::UserEmpty)
    );
    let ghost = AuthInfo {
        username: "ghost".into(),
        revision: alice.revision,
    };
    assert_eq!(
        s.check(&ghost, Access::Read, b"foo/x", b""),
        Err(EtcdError::PermissionDenied)
    );
    // Any change after the caller's check makes its revision stale.
    f.ok(role_add("other"));
    assert_eq!(
        f.store.check(&alice, Access::Read, b"foo/x", b""),
        Err(EtcdError::AuthOldRevision)
    );
}

#[test]
fn logins_issue_tokens_that_changes_of_the_user_revoke() {
    let mut f = Fixture::new();
    f.ok(user_add(ROOT));
    f.ok(grant_role(ROOT, ROOT));
    let login = |name: &str| {
        Change::Authenticate(Authenticate {
            name: name.into(),
            simple_token_prefix: "abc".into(),
        })
    };
    f.refuses(&root(), login(ROOT), EtcdError::AuthNotEnabled);
    f.ok(Change::Enable(Empty {}));
    f.refuses(&root(), login("ghost"), EtcdError::AuthFailed);
    let token = f.ok(login(ROOT)).unwrap();
    assert_eq!(token, "abc.7");
    let info = f.store.tokens().info(&token, f.store.revision()).unwrap();
    assert_eq!(info.username, ROOT);
    f.ok(Change::UserChangePassword(UserChangePassword {
        name: ROOT.into(),
        password_hash: b"new".to_vec(),
    }));
    assert_eq!(f.store.tokens().info(&token, f.store.revision()), None);
    let token = f.ok(login(ROOT)).unwrap();
    f.ok(Change::Disable(Empty {}));
    assert_eq!(f.store.tokens().info(&token, f.store.revision()), None);
}

#[test]
fn the_state_survives_a_reopen() {
    let mut f = Fixture::enabled();
    f.ok(user_add("alice"));
    f.ok(role_add("r"));
    f.ok(grant_perm("r", PermType::Read, "a", "b"));
    f.ok(grant_role("alice", "r"));
    let reopened = AuthStore::open(&f.tree, Default::default()).unwrap();
    assert!(reopened.enabled());
    assert_eq!(reopened.revision(), f.store.revision());
    assert_eq!(reopened.user_names(), ["alice", "root"]);
    assert_eq!(reopened.user_roles("alice").unwrap(), ["r"]);
    assert_eq!(
        reopened.role_permissions("r").unwrap(),
        f.store.role_permissions("r").unwrap()
    );
    assert_eq!(
        reopened.password_hash("alice").unwrap().0,
        b"hash-of-alice".to_vec()
    );
}
