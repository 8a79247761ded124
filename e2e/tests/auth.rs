//! v3 authentication and RBAC, differentially: each scenario is played on a fresh single
//! member of Debian's etcd 3.4 and of ours, with raw gRPC calls (etcd's generated clients,
//! the token as metadata `token`), and the two transcripts — whole responses with headers'
//! IDs and terms normalised, error codes and texts exactly — must be the same. Each step
//! also states the outcome etcd 3.4 gives, so the tables below are etcd's rules; where a
//! rule is surprising a comment says so. See `etcd_e2e::auth` for the runner and
//! `ETCD_E2E_AUTH_FLAVOURS` (both, reference, ours).

use std::time::Duration;

use etcd_e2e::auth::{
    authenticate, connect, differential, each, get, ok, step, Call, Expect, Session, Step,
    Transcript, Who, ALICE, ALICE_PW, ANON, AUTH_FAILED, BAD_TOKEN, DENIED, GARBAGE, NOT_ENABLED,
    OK, ROOT, ROOT_PW, USER_EMPTY,
};
use etcd_e2e::grpc::requests::{compare, delete, op, put, range, txn};
use etcd_e2e::pki::{Pki, Usage};
use etcd_e2e::{our_binary, Flavor, Member, Ports, DEBIAN_ETCDCTL};
use etcd_proto::authpb::permission::Type;
use etcd_proto::etcdserverpb::compare::{CompareResult, TargetUnion};
use etcd_proto::etcdserverpb::{DeleteRangeRequest, PutRequest, WatchCreateRequest};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::Code;

// More of etcd 3.4's errors (its `rpctypes`), code and text as a client receives them.
const USER_EXISTS: Expect = Expect::Err(
    Code::FailedPrecondition,
    "etcdserver: user name already exists",
);
const USER_NOT_FOUND: Expect =
    Expect::Err(Code::FailedPrecondition, "etcdserver: user name not found");
const ROLE_EXISTS: Expect = Expect::Err(
    Code::FailedPrecondition,
    "etcdserver: role name already exists",
);
const ROLE_NOT_FOUND: Expect =
    Expect::Err(Code::FailedPrecondition, "etcdserver: role name not found");
const ROLE_EMPTY: Expect = Expect::Err(Code::InvalidArgument, "etcdserver: role name is empty");
const ROLE_NOT_GRANTED: Expect = Expect::Err(
    Code::FailedPrecondition,
    "etcdserver: role is not granted to the user",
);
const PERM_NOT_GRANTED: Expect = Expect::Err(
    Code::FailedPrecondition,
    "etcdserver: permission is not granted to the role",
);
const NO_ROOT_USER: Expect = Expect::Err(
    Code::FailedPrecondition,
    "etcdserver: root user does not exist",
);
const NO_ROOT_ROLE: Expect = Expect::Err(
    Code::FailedPrecondition,
    "etcdserver: root user does not have root role",
);
const INVALID_MGMT: Expect =
    Expect::Err(Code::InvalidArgument, "etcdserver: invalid auth management");

/// A scenario: the steps `steps` makes for a member started with `flags`.
async fn play(flavor: Flavor, flags: &[&str], steps: Vec<Step>) -> Transcript {
    let mut session = Session::start(flavor, flags).await;
    session.run(&steps).await;
    session.transcript
}

/// Users and roles managed with auth disabled (anyone may), each error the store gives,
/// then enabling: refused without a root user, and with a root user lacking the root role.
fn management() -> Vec<Step> {
    use Call::*;
    let mut steps = vec![
        ok(ANON, UserAdd("alice", ALICE_PW)),
        step(ANON, UserAdd("alice", "other"), USER_EXISTS),
        step(ANON, UserAdd("", "pw"), USER_EMPTY),
        // An empty password is accepted.
        ok(ANON, UserAdd("bob", "")),
        ok(ANON, UserGet("alice")),
        step(ANON, UserGet("nobody"), USER_NOT_FOUND),
        ok(ANON, UserList),
        ok(ANON, RoleAdd("reader")),
        step(ANON, RoleAdd("reader"), ROLE_EXISTS),
        step(ANON, RoleAdd(""), ROLE_EMPTY),
        ok(ANON, RoleAdd("writer")),
        ok(ANON, RoleGet("reader")),
        step(ANON, RoleGet("nope"), ROLE_NOT_FOUND),
        ok(ANON, RoleList),
        ok(ANON, UserGrantRole("alice", "reader")),
        // Granting a role the user already has is no error.
        ok(ANON, UserGrantRole("alice", "reader")),
        ok(ANON, UserGrantRole("alice", "writer")),
        step(ANON, UserGrantRole("nobody", "reader"), USER_NOT_FOUND),
        step(ANON, UserGrantRole("alice", "nope"), ROLE_NOT_FOUND),
        // The role `root` may be granted while no role of that name exists.
        ok(ANON, UserGrantRole("bob", "root")),
        ok(ANON, UserGet("bob")),
        ok(ANON, UserGet("alice")),
        step(ANON, UserRevokeRole("bob", "reader"), ROLE_NOT_GRANTED),
        step(ANON, UserRevokeRole("nobody", "reader"), USER_NOT_FOUND),
        ok(ANON, UserRevokeRole("alice", "writer")),
        ok(ANON, RoleGrantPermission("reader", "foo", "", Type::Read)),
        ok(
            ANON,
            RoleGrantPermission("reader", "a", "b", Type::Readwrite),
        ),
        ok(ANON, RoleGrantPermission("reader", "0", "", Type::Write)),
        // The same key and range end again: the type is replaced.
        ok(ANON, RoleGrantPermission("reader", "foo", "", Type::Write)),
        // Another range end is another permission.
        ok(
            ANON,
            RoleGrantPermission("reader", "foo", "fop", Type::Read),
        ),
        ok(ANON, RoleGet("reader")),
        step(
            ANON,
            RoleGrantPermission("nope", "foo", "", Type::Read),
            ROLE_NOT_FOUND,
        ),
        step(
            ANON,
            RoleRevokePermission("reader", "zzz", ""),
            PERM_NOT_GRANTED,
        ),
        step(
            ANON,
            RoleRevokePermission("reader", "a", "c"),
            PERM_NOT_GRANTED,
        ),
        ok(ANON, RoleRevokePermission("reader", "a", "b")),
        step(ANON, RoleRevokePermission("nope", "a", ""), ROLE_NOT_FOUND),
        ok(ANON, RoleGet("reader")),
        ok(ANON, UserChangePassword("alice", "newpw")),
        step(ANON, UserChangePassword("nobody", "x"), USER_NOT_FOUND),
        step(ANON, authenticate("alice", "newpw", "alice"), NOT_ENABLED),
        // Deleting a role takes it from its users.
        ok(ANON, RoleDelete("writer")),
        step(ANON, RoleDelete("writer"), ROLE_NOT_FOUND),
        ok(ANON, UserGet("alice")),
        ok(ANON, RoleList),
        step(ANON, AuthEnable, NO_ROOT_USER),
        ok(ANON, UserAdd("root", ROOT_PW)),
        step(ANON, AuthEnable, NO_ROOT_ROLE),
        ok(ANON, UserGrantRole("root", "root")),
        ok(ANON, AuthEnable),
        step(ANON, authenticate("root", "wrong", "root"), AUTH_FAILED),
        step(ANON, authenticate("nobody", "x", "root"), AUTH_FAILED),
        ok(ANON, authenticate("root", ROOT_PW, "root")),
        ok(ANON, authenticate("alice", "newpw", "alice")),
        // Enabling again is no error.
        ok(ROOT, AuthEnable),
        ok(ROOT, UserList),
        ok(ROOT, RoleList),
        // With auth enabled, root can be neither deleted nor stripped of its role.
        step(ROOT, UserDelete("root"), INVALID_MGMT),
        step(ROOT, UserRevokeRole("root", "root"), INVALID_MGMT),
        step(ROOT, RoleDelete("root"), INVALID_MGMT),
    ];
    // Managing users and roles is for root once auth is enabled ...
    for call in [
        UserList,
        RoleList,
        UserGet("root"),
        RoleGet("root"),
        AuthDisable,
    ] {
        steps.extend(each(
            call,
            &[(ALICE, DENIED), (ANON, USER_EMPTY), (GARBAGE, BAD_TOKEN)],
        ));
    }
    steps.extend([
        // ... except that a user may get itself and the roles it has.
        ok(ALICE, UserGet("alice")),
        ok(ALICE, RoleGet("reader")),
        step(ANON, UserGet("alice"), USER_EMPTY),
        // The root role need not exist as a role.
        step(ROOT, RoleGet("root"), ROLE_NOT_FOUND),
        ok(ROOT, AuthDisable),
        // Disabling again is no error.
        ok(ANON, AuthDisable),
        ok(ANON, UserDelete("alice")),
        step(ANON, UserDelete("alice"), USER_NOT_FOUND),
        ok(ANON, UserDelete("root")),
        ok(ANON, RoleDelete("reader")),
        step(ANON, RoleDelete("reader"), ROLE_NOT_FOUND),
        ok(ANON, UserList),
        ok(ANON, RoleList),
    ]);
    steps
}

#[tokio::test]
async fn users_and_roles_are_managed_and_auth_enabled_as_in_etcd() {
    differential(|flavor| play(flavor, &[], management())).await;
}

/// A lease with a key alice may neither read nor write.
const LEASE_SECRET: i64 = 0x77;
const LEASE_RW: i64 = 0x78;

/// The documented set-up: keys written while anyone may, root with the root role, role
/// `app` with a readwrite prefix `foo/`, a read-only key, a read-only range from a key to
/// the end, a write-only key, two adjoining read ranges, user alice with that role; then
/// auth enabled and both users signed in.
fn documented_setup() -> Vec<Step> {
    use Call::*;
    let mut steps = vec![
        ok(ANON, LeaseGrant(LEASE_SECRET, 600)),
        ok(ANON, LeaseGrant(LEASE_RW, 600)),
    ];
    for (k, v) in [
        ("foo/a", "1"),
        ("foo/b", "2"),
        ("foo0", "outside"),
        ("ro", "r"),
        ("wo", "w"),
        ("bar", "b"),
        ("zz1", "z"),
        ("u/c", "c"),
        ("u/n", "n"),
    ] {
        steps.push(ok(ANON, Put(put(k, v))));
    }
    steps.extend([
        ok(
            ANON,
            Put(PutRequest {
                lease: LEASE_SECRET,
                ..put("secret-leased", "l")
            }),
        ),
        ok(
            ANON,
            Put(PutRequest {
                lease: LEASE_RW,
                ..put("foo/leased", "l")
            }),
        ),
        ok(ANON, UserAdd("root", ROOT_PW)),
        ok(ANON, RoleAdd("root")),
        ok(ANON, UserGrantRole("root", "root")),
        ok(ANON, RoleAdd("app")),
        ok(
            ANON,
            RoleGrantPermission("app", "foo/", "foo0", Type::Readwrite),
        ),
        ok(ANON, RoleGrantPermission("app", "ro", "", Type::Read)),
        ok(ANON, RoleGrantPermission("app", "zz", "\0", Type::Read)),
        ok(ANON, RoleGrantPermission("app", "wo", "", Type::Write)),
        ok(ANON, RoleGrantPermission("app", "u/a", "u/m", Type::Read)),
        ok(ANON, RoleGrantPermission("app", "u/m", "u/z", Type::Read)),
        ok(ANON, UserAdd("alice", ALICE_PW)),
        ok(ANON, UserGrantRole("alice", "app")),
        ok(ANON, AuthEnable),
        step(ANON, authenticate("alice", "wrong", "alice"), AUTH_FAILED),
        ok(ANON, authenticate("root", ROOT_PW, "root")),
        ok(ANON, authenticate("alice", ALICE_PW, "alice")),
    ]);
    steps
}

/// The same call by alice, root, anonymously and with a garbage token, answered as
/// `expect` says, in that order.
fn by_all(call: Call, expect: [Expect; 4]) -> Vec<Step> {
    let [alice, root, anon, garbage] = expect;
    each(
        call,
        &[
            (ALICE, alice),
            (ROOT, root),
            (ANON, anon),
            (GARBAGE, garbage),
        ],
    )
}

/// A key-value call alice may make.
const KV_ALLOWED: [Expect; 4] = [OK, OK, USER_EMPTY, BAD_TOKEN];
/// A key-value call alice may not make.
const KV_DENIED: [Expect; 4] = [DENIED, OK, USER_EMPTY, BAD_TOKEN];
/// A call that needs a valid token or none, and no permission.
const ANY_USER: [Expect; 4] = [OK, OK, OK, BAD_TOKEN];
/// A call that looks at no token at all: even a garbage one is not refused.
const NO_AUTH: [Expect; 4] = [OK, OK, OK, OK];

/// A watch alice may make; without a token, or with a garbage one, the watch is refused
/// as a denied one is: a message with watch ID -1, created and canceled, the error's text
/// as Go prints a gRPC status as the reason, and the header of the current revision.
const WATCH_ALLOWED: [Expect; 4] = [
    OK,
    OK,
    Expect::Canceled("rpc error: code = InvalidArgument desc = etcdserver: user name is empty"),
    Expect::Canceled("rpc error: code = Unauthenticated desc = etcdserver: invalid auth token"),
];
/// A watch alice may not make.
const WATCH_DENIED: [Expect; 4] = [
    Expect::Canceled("rpc error: code = PermissionDenied desc = etcdserver: permission denied"),
    OK,
    WATCH_ALLOWED[2],
    WATCH_ALLOWED[3],
];

/// Hash, HashKV, Defragment and Snapshot are for root, and the refusals are the auth
/// store's own errors, not translated to etcd's gRPC statuses: code Unknown, text `auth: `.
const ADMIN_ONLY: [Expect; 4] = [
    Expect::Err(Code::Unknown, "auth: permission denied"),
    OK,
    Expect::Err(Code::Unknown, "auth: user name is empty"),
    Expect::Err(Code::Unknown, "auth: invalid auth token"),
];

/// Alarm needs no permission, but a garbage token is refused with the auth store's own
/// error (code Unknown).
const ALARM: [Expect; 4] = [OK, OK, OK, ADMIN_ONLY[3]];

fn kv_allowed(call: Call) -> Vec<Step> {
    by_all(call, KV_ALLOWED)
}

fn kv_denied(call: Call) -> Vec<Step> {
    by_all(call, KV_DENIED)
}

fn watch(key: &str, end: &str) -> Call {
    Call::Watch(WatchCreateRequest {
        key: key.into(),
        range_end: end.into(),
        ..Default::default()
    })
}

fn with_prev_kv(r: PutRequest) -> PutRequest {
    PutRequest { prev_kv: true, ..r }
}

fn delete_prev_kv(r: DeleteRangeRequest) -> DeleteRangeRequest {
    DeleteRangeRequest { prev_kv: true, ..r }
}

/// Each KV call alice makes, allowed and denied, made by root, anonymously and with a
/// garbage token too.
fn kv_calls() -> Vec<Step> {
    use Call::*;
    let value = |v: &str| TargetUnion::Value(v.into());
    let mut steps = Vec::new();
    for r in [
        range("foo/a", ""),
        range("foo/", "foo0"),
        range("foo/a", "foo/z"),
        range("ro", ""),
        range("zz1", ""),
        range("zz", "\0"),
        // Covered by no single permission, only by the union of two adjoining ones.
        range("u/b", "u/y"),
    ] {
        steps.extend(kv_allowed(Range(r)));
    }
    for r in [
        // Crosses the end of the prefix.
        range("foo/", "fop"),
        range("bar", ""),
        range("wo", ""),
        range("z", "\0"),
        range("u/b", "u/zz"),
        range("\0", "\0"),
    ] {
        steps.extend(kv_denied(Range(r)));
    }
    steps.extend(kv_allowed(Put(put("foo/c", "3"))));
    steps.extend(kv_allowed(Put(with_prev_kv(put("foo/c", "4")))));
    steps.extend(kv_allowed(Put(put("wo", "w2"))));
    for r in [
        put("ro", "x"),
        put("zz2", "x"),
        put("bar", "x"),
        put("foo0", "x"),
        // prev_kv needs read permission too.
        with_prev_kv(put("wo", "w3")),
    ] {
        steps.extend(kv_denied(Put(r)));
    }
    for r in [
        delete("ro", ""),
        delete("foo/", "fop"),
        delete("bar", ""),
        delete_prev_kv(delete("wo", "")),
    ] {
        steps.extend(kv_denied(DeleteRange(r)));
    }
    steps.extend(kv_allowed(DeleteRange(delete_prev_kv(delete("foo/c", "")))));
    steps.extend(kv_allowed(DeleteRange(delete("wo", ""))));

    let readable = compare("ro", CompareResult::Equal, value("r"));
    let unreadable = compare("bar", CompareResult::Equal, value("b"));
    let no_match = compare("foo/a", CompareResult::Equal, value("no"));
    steps.extend(kv_allowed(Txn(txn(
        vec![readable.clone()],
        vec![op(put("foo/t", "1")), op(range("foo/", "foo0"))],
        vec![op(range("ro", ""))],
    ))));
    for t in [
        // A compare of a key alice cannot read.
        txn(vec![unreadable], vec![op(put("foo/t", "2"))], vec![]),
        // The branch not taken is checked too.
        txn(
            vec![no_match.clone()],
            vec![op(put("bar", "x"))],
            vec![op(put("foo/t", "3"))],
        ),
        txn(
            vec![readable.clone()],
            vec![op(put("foo/t", "4"))],
            vec![op(delete("ro", ""))],
        ),
        txn(vec![], vec![op(range("bar", ""))], vec![]),
    ] {
        steps.extend(kv_denied(Txn(t)));
    }
    // A permitted nested txn in the branch not taken.
    steps.extend(kv_allowed(Txn(txn(
        vec![no_match],
        vec![op(txn(vec![], vec![op(put("foo/n", "n"))], vec![]))],
        vec![op(put("foo/t", "5"))],
    ))));
    steps
}

/// Txns nested in txns, where ours refuses what etcd 3.4 lets through. Played last: the
/// writes etcd makes and ours refuses move etcd's revision ahead of ours for good.
fn nested_txns() -> Vec<Step> {
    use Call::*;
    let mut steps = Vec::new();
    // Surprising: etcd 3.4 checks the compares and operations of a txn's own branches
    // only, not those of a txn nested in it, and a txn with nothing of its own to check
    // needs no user at all: alice, and even a caller without a token, write a key they
    // may only read (or not even read) through a nested txn. Only a garbage token is
    // refused. (etcd 3.5 checks nested txns.) The write happens: the range after it
    // shows it. Ours checks nested txns as etcd 3.5 does.
    for (who, expect, value, ours) in [
        (ALICE, OK, "by-alice", DENIED),
        (ANON, OK, "by-anonymous", USER_EMPTY),
        (GARBAGE, BAD_TOKEN, "by-garbage", BAD_TOKEN),
    ] {
        let nested = txn(vec![], vec![op(put("ro", value))], vec![]);
        steps.push(step(who, Txn(txn(vec![], vec![op(nested)], vec![])), expect).ours(ours));
    }
    let read_wo = Txn(txn(
        vec![],
        vec![op(txn(vec![], vec![], vec![op(range("wo", ""))]))],
        vec![],
    ));
    steps.extend(
        by_all(read_wo, ANY_USER)
            .into_iter()
            .zip(KV_DENIED)
            .map(|(s, ours)| s.ours(ours)),
    );
    // Beside an operation of the outer txn that is checked (and allowed).
    let beside = txn(
        vec![],
        vec![
            op(range("ro", "")),
            op(txn(vec![], vec![op(put("ro", "beside"))], vec![])),
        ],
        vec![],
    );
    steps.extend(
        kv_allowed(Txn(beside))
            .into_iter()
            .zip(KV_DENIED)
            .map(|(s, ours)| s.ours(ours)),
    );
    // What the nested writes left: ours refused them all.
    steps.push(ok(ROOT, Range(range("ro", ""))).ours(OK));
    steps
}

/// Watches, leases, compaction, maintenance and cluster calls.
fn other_calls() -> Vec<Step> {
    use Call::*;
    let mut steps = Vec::new();
    for w in [watch("foo/a", ""), watch("foo/", "foo0"), watch("zz", "\0")] {
        steps.extend(by_all(w, WATCH_ALLOWED));
    }
    for w in [watch("bar", ""), watch("foo/", "fop")] {
        steps.extend(by_all(w, WATCH_DENIED));
    }
    // Granting a lease needs no permission; each caller grants its own.
    for (who, id, expect) in [
        (ALICE, 0x100, OK),
        (ROOT, 0x101, OK),
        (ANON, 0x102, OK),
        (GARBAGE, 0x103, BAD_TOKEN),
    ] {
        steps.push(step(who, LeaseGrant(id, 600), expect));
    }
    // Surprising: TimeToLive and Leases look at no token (a garbage one is not refused),
    // and TimeToLive with keys lists the names of keys the caller may not read (etcd
    // 3.4.26 and 3.5.9 made it check them).
    // Ours asks for read permission on the keys it lists, as those releases do.
    let listing = |lease, ours: [Expect; 4]| {
        by_all(LeaseTimeToLive(lease, true), NO_AUTH)
            .into_iter()
            .zip(ours)
            .map(|(s, ours)| s.ours(ours))
    };
    steps.extend(listing(LEASE_RW, ANY_USER));
    steps.extend(listing(LEASE_SECRET, KV_DENIED));
    steps.extend(by_all(LeaseLeases, NO_AUTH));
    // Revoking a lease needs write permission on every key attached to it.
    steps.extend(each(
        LeaseRevoke(LEASE_SECRET),
        &[(ALICE, DENIED), (ANON, USER_EMPTY), (GARBAGE, BAD_TOKEN)],
    ));
    steps.push(ok(ALICE, LeaseRevoke(LEASE_RW)));
    steps.push(ok(ROOT, LeaseRevoke(LEASE_SECRET)));
    steps.push(ok(ALICE, LeaseRevoke(0x101)));
    // Status and MemberList look at no token.
    steps.extend(by_all(Status, NO_AUTH));
    steps.extend(by_all(MemberList, NO_AUTH));
    steps.extend(by_all(AlarmList, ALARM));
    for call in [Hash, HashKv, Defragment, Snapshot] {
        steps.extend(by_all(call, ADMIN_ONLY));
    }
    // Peer URLs are checked before the caller.
    let bad_urls = Expect::Err(
        Code::InvalidArgument,
        "etcdserver: given member URLs are invalid",
    );
    steps.extend(by_all(MemberAdd(vec!["bogus"], false), [bad_urls; 4]));
    steps.extend(each(
        MemberAdd(vec!["http://127.0.0.1:1"], true),
        &[(ALICE, DENIED), (ANON, USER_EMPTY), (GARBAGE, BAD_TOKEN)],
    ));
    steps.push(ok(ROOT, MemberAdd(vec!["http://127.0.0.1:1"], true)));
    // Compaction needs no permission (each caller compacts a little further).
    for (who, revision, expect) in [
        (ALICE, 3, OK),
        (ANON, 4, OK),
        (GARBAGE, 5, BAD_TOKEN),
        (ROOT, 5, OK),
    ] {
        steps.push(step(who, Compact(revision), expect));
    }
    steps
}

#[tokio::test]
async fn the_documented_flow_allows_and_denies_each_call_as_etcd() {
    let steps: Vec<Step> = [documented_setup(), kv_calls(), other_calls(), nested_txns()].concat();
    differential(|flavor| play(flavor, &[], steps.clone())).await;
}

/// Tokens and changes of users and roles: a new password voids the user's simple tokens
/// (the next call gets "invalid auth token"); revoking a role, a permission or deleting
/// the role takes effect on the next call, the token staying valid; deleting the user
/// voids its tokens; disabling auth lets calls without a token through and voids every
/// token, also for when auth is enabled again.
fn token_changes() -> Vec<Step> {
    use Call::*;
    let alice_2nd = Who::Token("alice-2nd");
    vec![
        ok(ALICE, get("foo/a")),
        ok(ROOT, UserChangePassword("alice", "alicepw2")),
        step(ALICE, get("foo/a"), BAD_TOKEN),
        step(ANON, authenticate("alice", ALICE_PW, "alice"), AUTH_FAILED),
        ok(ANON, authenticate("alice", "alicepw2", "alice")),
        ok(ALICE, get("foo/a")),
        // Another user's tokens are untouched.
        ok(ROOT, get("foo/a")),
        // A second token of the same user; both are valid.
        ok(ANON, authenticate("alice", "alicepw2", "alice-2nd")),
        ok(alice_2nd, get("foo/a")),
        ok(ALICE, get("foo/a")),
        ok(ROOT, UserRevokeRole("alice", "app")),
        step(ALICE, get("foo/a"), DENIED),
        ok(ALICE, UserGet("alice")),
        ok(ROOT, UserGrantRole("alice", "app")),
        ok(ALICE, get("foo/a")),
        ok(ROOT, RoleRevokePermission("app", "foo/", "foo0")),
        step(ALICE, get("foo/a"), DENIED),
        ok(ALICE, get("ro")),
        ok(ROOT, RoleDelete("app")),
        step(ALICE, get("ro"), DENIED),
        ok(ALICE, UserGet("alice")),
        ok(ROOT, UserDelete("alice")),
        step(ALICE, get("ro"), BAD_TOKEN),
        step(alice_2nd, get("ro"), BAD_TOKEN),
        step(
            ANON,
            authenticate("alice", "alicepw2", "alice"),
            AUTH_FAILED,
        ),
        // A user of the same name again: the old tokens stay void.
        ok(ROOT, UserAdd("alice", ALICE_PW)),
        step(alice_2nd, get("ro"), BAD_TOKEN),
        step(ALICE, AuthDisable, BAD_TOKEN),
        ok(ROOT, AuthDisable),
        ok(ANON, get("foo/a")),
        ok(ANON, Put(put("bar", "after-disable"))),
        // Surprising: with auth disabled a token that is sent is still looked up, and one
        // the member does not know (disabling voided root's) is refused.
        step(ROOT, get("bar"), BAD_TOKEN),
        step(GARBAGE, get("bar"), BAD_TOKEN),
        step(ANON, authenticate("root", ROOT_PW, "root"), NOT_ENABLED),
        ok(ANON, AuthEnable),
        // Disabling voided root's token.
        step(ROOT, get("bar"), BAD_TOKEN),
        step(ANON, get("bar"), USER_EMPTY),
        ok(ANON, authenticate("root", ROOT_PW, "root")),
        ok(ROOT, get("bar")),
    ]
}

#[tokio::test]
async fn password_role_and_user_changes_act_on_tokens_as_in_etcd() {
    let steps = [documented_setup(), token_changes()].concat();
    differential(|flavor| play(flavor, &[], steps.clone())).await;
}

/// `--auth-token-ttl 2`: a token used every second outlives its TTL; left unused it
/// expires (etcd checks simple tokens' deadlines every second). The token is tried after
/// idle gaps growing from half a second (each use renews it) until it fails, which must
/// be after a gap of at least the TTL and at most 8 s.
async fn token_ttl(flavor: Flavor) -> Transcript {
    const TTL: Duration = Duration::from_secs(2);
    let mut session = Session::start(flavor, &["--auth-token-ttl=2"]).await;
    session.run(&documented_setup()).await;
    let use_it = ok(ALICE, get("foo/a"));
    for _ in 0..5 {
        session.step(&use_it).await;
        tokio::time::sleep(TTL / 2).await;
    }
    let mut gap = Duration::from_millis(500);
    let expired = loop {
        tokio::time::sleep(gap).await;
        let answer = session.answer(ALICE, &use_it.call).await;
        if answer.is_err() || gap >= Duration::from_secs(8) {
            break answer;
        }
        gap *= 2;
    };
    let t = &mut session.transcript;
    t.holds("the token lasted at least its TTL unused", gap >= TTL);
    t.expect(
        "alice's token after an idle gap past its TTL",
        expired,
        BAD_TOKEN,
    );
    session
        .run(&[
            ok(ANON, authenticate("alice", ALICE_PW, "alice")),
            ok(ALICE, get("foo/a")),
        ])
        .await;
    session.transcript
}

#[tokio::test]
async fn an_unused_token_expires_after_its_ttl() {
    differential(token_ttl).await;
}

/// After a restart: simple tokens live in the member's memory only, so the tokens handed
/// out before are void; the rest is [`kept`].
///
/// Surprising: a simple token handed out after the member's last key-value write comes
/// back after a restart. etcd 3.4 keeps the index of the last applied raft entry with
/// key-value writes only, re-applies the entries after it when it starts, and each
/// Authenticate entry carries its token. The scenario writes a key after signing in, and
/// the snapshot it takes then commits that write, so the tokens are void.
fn after_restart() -> Vec<Step> {
    use Call::*;
    let void = [
        step(ALICE, get("foo/a"), BAD_TOKEN),
        step(ROOT, UserList, BAD_TOKEN),
    ];
    [void.to_vec(), kept()].concat()
}

/// Users, roles, permissions and the enabled flag are kept.
///
/// (A member restored from a snapshot is not shown the old member's tokens: etcd reads
/// the raft index a simple token ends with and holds the call until its own log has
/// applied that index, which a new member's log may not reach before the call's
/// deadline.)
fn kept() -> Vec<Step> {
    use Call::*;
    vec![
        step(ANON, get("foo/a"), USER_EMPTY),
        step(ANON, authenticate("alice", "wrong", "alice"), AUTH_FAILED),
        ok(ANON, authenticate("alice", ALICE_PW, "alice")),
        ok(ANON, authenticate("root", ROOT_PW, "root")),
        ok(ALICE, get("foo/a")),
        step(ALICE, get("bar"), DENIED),
        ok(ALICE, Range(range("u/b", "u/y"))),
        step(ALICE, Put(put("ro", "x")), DENIED),
        ok(ROOT, UserList),
        ok(ROOT, RoleList),
        ok(ROOT, UserGet("alice")),
        ok(ROOT, UserGet("root")),
        ok(ROOT, RoleGet("app")),
        ok(ROOT, get("bar")),
    ]
}

/// Restores `snapshot` with `flavor`'s etcdctl (Debian's for Debian's etcd, ours for
/// ours: each reads only its own storage engine's snapshots) into a new data dir, and
/// starts a member of `flavor` on it.
fn restore(flavor: Flavor, snapshot: &std::path::Path, dir: &std::path::Path) -> Member {
    let ports = Ports::free();
    let initial = format!("m0={}", ports.peer_url());
    let data_dir = dir.join("restored.etcd");
    let etcdctl = match flavor {
        Flavor::Reference => std::path::PathBuf::from(DEBIAN_ETCDCTL),
        Flavor::Ours => our_binary("etcdctl"),
    };
    let out = std::process::Command::new(etcdctl)
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "restore", &snapshot.display().to_string()])
        .args(["--name", "m0", "--initial-cluster", &initial])
        .args(["--initial-advertise-peer-urls", &ports.peer_url()])
        .args(["--data-dir", &data_dir.display().to_string()])
        .output()
        .expect("run etcdctl snapshot restore");
    assert!(out.status.success(), "{flavor:?}: restore: {out:?}");
    let data = format!("--data-dir={}", data_dir.display());
    let mut member = Member::spawn_in_cluster(flavor, "m0", ports, &initial, &[&data]);
    // Auth is enabled: `etcdctl endpoint health` must sign in.
    member.set_ctl_flags(&[ROOT_FLAG]);
    member.wait_healthy(Duration::from_secs(30));
    member
}

/// etcdctl's flag to sign in as root.
const ROOT_FLAG: &str = "--user=root:rootpw";

/// Auth state survives a restart of the member and is in a snapshot that root takes
/// with Maintenance.Snapshot: a member restored from it has the same users, roles,
/// permissions and enabled flag (and no tokens).
///
/// Each flavour restores its own snapshot: a snapshot is the storage engine's file
/// (bbolt's or ours), and neither etcdctl restores the other's.
async fn survives(flavor: Flavor) -> Transcript {
    let dir = tempfile::tempdir().expect("tempdir");
    let snapshot = dir.path().join("snapshot.db");
    let mut session = Session::start(flavor, &[]).await;
    session.run(&documented_setup()).await;
    session
        .run(&[ok(
            ROOT,
            Call::Put(put("foo/z", "written after signing in")),
        )])
        .await;
    if !session.save_snapshot(ROOT, &snapshot).await {
        return session.transcript;
    }
    session.member.set_ctl_flags(&[ROOT_FLAG]);
    session.member.restart();
    session.reconnect().await;
    session.transcript.note("restart", "");
    session.run(&after_restart()).await;
    let restored = restore(flavor, &snapshot, dir.path());
    let channel = connect(&restored).await;
    session.move_to(restored, channel);
    session.transcript.note("restored from the snapshot", "");
    session.run(&kept()).await;
    session.transcript
}

#[tokio::test]
async fn auth_state_survives_a_restart_and_a_snapshot_restore() {
    differential(survives).await;
}

/// The etcd-client crate signing in with `ConnectOptions::with_user` (it sends the token
/// as metadata `authorization`, which etcd takes as well as `token`).
async fn with_etcd_client(flavor: Flavor) -> Transcript {
    use etcd_client::{Client, ConnectOptions, Error};
    let mut session = Session::start(flavor, &[]).await;
    session.run(&documented_setup()).await;
    let endpoint = [session.member.endpoint()];
    let status = |e: Error| match e {
        Error::GRpcStatus(s) => (s.code(), s.message().to_string()),
        other => (Code::Unknown, format!("not a gRPC status: {other}")),
    };
    let t = &mut session.transcript;
    let wrong = ConnectOptions::new().with_user("alice", "wrong");
    let refused = Client::connect(endpoint.clone(), Some(wrong)).await;
    let refused = refused.map(|_| "connected".to_string()).map_err(status);
    t.expect(
        "connect as alice with a wrong password",
        refused,
        AUTH_FAILED,
    );
    let options = ConnectOptions::new().with_user("alice", ALICE_PW);
    let connected = Client::connect(endpoint, Some(options)).await;
    let mut client = match connected {
        Ok(client) => client,
        Err(e) => {
            t.expect("connect as alice", Err(status(e)), OK);
            return session.transcript;
        }
    };
    let put = |r: Result<etcd_client::PutResponse, Error>| {
        r.map(|r| format!("put at revision {:?}", r.header().map(|h| h.revision())))
            .map_err(status)
    };
    let got = |r: Result<etcd_client::GetResponse, Error>| {
        r.map(|r| {
            let kvs: Vec<_> = r
                .kvs()
                .iter()
                .map(|kv| (kv.key_str(), kv.value_str()))
                .collect();
            format!("{kvs:?}")
        })
        .map_err(status)
    };
    let answer = put(client.put("foo/crate", "c", None).await);
    t.expect("etcd-client: alice puts foo/crate", answer, OK);
    let answer = got(client.get("foo/crate", None).await);
    t.expect("etcd-client: alice gets foo/crate", answer, OK);
    let answer = put(client.put("ro", "x", None).await);
    t.expect("etcd-client: alice puts ro", answer, DENIED);
    let answer = got(client.get("bar", None).await);
    t.expect("etcd-client: alice gets bar", answer, DENIED);
    session.transcript
}

#[tokio::test]
async fn the_etcd_client_crate_signs_in_with_a_user() {
    differential(with_etcd_client).await;
}

/// A TLS connection to `member` showing client certificate `client` of `pki`.
async fn tls_channel(pki: &Pki, member: &Member, client: &str) -> Channel {
    let read = |name: &str| std::fs::read(pki.path(name)).expect("PEM file");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.crt")))
        .identity(Identity::from_pem(
            read(&format!("{client}.crt")),
            read(&format!("{client}.key")),
        ));
    let endpoint = Channel::from_shared(member.endpoint()).expect("client URL");
    let endpoint = endpoint.tls_config(tls).expect("TLS settings");
    endpoint.connect().await.expect("TLS connection")
}

/// With `--client-cert-auth`, a client certificate's CN is the user of a call without a
/// token; a token, when sent, takes precedence (a garbage one is refused, not replaced by
/// the CN). The steps made over a connection with each CN: alice (a user), root, and
/// nobody (no such user: refused as a user without permissions, and, for calls that
/// need root, as a user that does not exist).
fn by_common_name() -> Vec<(&'static str, Vec<Step>)> {
    use Call::*;
    let alice = vec![
        ok(ANON, get("foo/a")),
        ok(ANON, Put(put("foo/cn", "by-cn"))),
        step(ANON, get("bar"), DENIED),
        step(ANON, Put(put("ro", "x")), DENIED),
        ok(ANON, watch("foo/", "foo0")),
        step(ANON, watch("bar", ""), WATCH_DENIED[0]),
        step(ANON, UserList, DENIED),
        ok(ANON, UserGet("alice")),
        ok(ROOT, get("bar")),
        step(GARBAGE, get("foo/a"), BAD_TOKEN),
    ];
    let root = vec![
        ok(ANON, get("bar")),
        ok(ANON, UserList),
        ok(ANON, Hash),
        step(ALICE, get("bar"), DENIED),
    ];
    let nobody = vec![
        step(ANON, get("foo/a"), DENIED),
        step(ANON, UserList, USER_NOT_FOUND),
        ok(ALICE, get("foo/a")),
    ];
    vec![("alice", alice), ("root", root), ("nobody", nobody)]
}

async fn common_name(flavor: Flavor) -> Transcript {
    let pki = Pki::new();
    let cns = by_common_name();
    for (serial, (cn, _)) in (10..).zip(&cns) {
        pki.leaf("ca", cn, cn, &[], Usage::Client, serial);
    }
    let server = pki.server_flags();
    let server: Vec<&str> = server.iter().map(String::as_str).collect();
    let ctl = pki.ctl_flags("ca.crt");
    let ctl: Vec<&str> = ctl.iter().map(String::as_str).collect();
    let member = Member::start_https(flavor, &server, &ctl);
    // Set up over the certificate of CN "client", no user of that name.
    let channel = tls_channel(&pki, &member, "client").await;
    let mut session = Session::over(member, channel);
    session.run(&documented_setup()).await;
    session
        .run(&[step(ANON, get("foo/a"), DENIED), ok(ALICE, get("foo/a"))])
        .await;
    for (cn, steps) in cns {
        session.use_channel(tls_channel(&pki, &session.member, cn).await);
        session.transcript.note(format!("connected as CN={cn}"), "");
        session.run(&steps).await;
    }
    session.transcript
}

#[tokio::test]
async fn a_client_certificate_common_name_acts_as_the_user() {
    differential(common_name).await;
}
