//! Authentication across the members of a 3-member cluster, differentially (as
//! `tests/auth.rs`, see `etcd_e2e::auth`): auth set up through one member holds on the
//! others, and the auth state travels in raft snapshots to a member added after the log
//! was compacted.
//!
//! Members are named by their part, not their index: A and C are followers, B the leader
//! (which member leads is up to each cluster's first election).

use std::time::Duration;

use etcd_e2e::auth::{
    alice_calls, authenticate, differential, get, ok, small_setup, step, Call, Session, Transcript,
    Who, ALICE, ALICE_PW, ANON, BAD_TOKEN, DENIED, OK, ROOT,
};
use etcd_e2e::cluster::add_and_start;
use etcd_e2e::grpc::requests::{put, range};
use etcd_e2e::grpc::within;
use etcd_e2e::Flavor;
use etcd_proto::etcdserverpb::auth_client::AuthClient;
use etcd_proto::etcdserverpb::lease_client::LeaseClient;
use etcd_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use etcd_proto::etcdserverpb::{
    AuthRoleListRequest, AuthUserListRequest, LeaseGrantRequest, RangeRequest, StatusRequest,
};

/// A read of `key` served by the member's own state, without a read index.
fn serializable_get(key: &str) -> Call {
    Call::Range(RangeRequest {
        serializable: true,
        ..range(key, "")
    })
}

/// The members' indexes as (A, B, C): followers A and C, leader B.
async fn parts(session: &Session) -> (usize, usize, usize) {
    let leader = session.leader().await;
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    (followers[0], leader, followers[1])
}

/// The users and roles `member` lists to root.
async fn lists(session: &mut Session, member: usize, name: &str) -> (Vec<String>, Vec<String>) {
    session.at(member, name);
    let mut auth = AuthClient::new(session.channel());
    let users = auth.user_list(session.request(ROOT, AuthUserListRequest {}));
    let users = within("user list", users)
        .await
        .map(|r| r.into_inner().users);
    let roles = auth.role_list(session.request(ROOT, AuthRoleListRequest {}));
    let roles = within("role list", roles)
        .await
        .map(|r| r.into_inner().roles);
    (users.unwrap_or_default(), roles.unwrap_or_default())
}

/// Auth set up through follower A: tokens A handed out work on B and C (a member holds a
/// simple token until it has applied the sign-in's raft index), writes through a
/// follower are checked, a permission revoked through A is gone from linearizable and
/// serializable reads C serves, and every member lists the same users and roles.
async fn across_members(flavor: Flavor) -> Transcript {
    use Call::*;
    let mut session = Session::cluster(flavor, 3, &[]).await;
    let (a, b, c) = parts(&session).await;
    session.at(a, "A, a follower");
    session.run(&small_setup()).await;
    for (member, name) in [(b, "B, the leader"), (c, "C, a follower")] {
        session.at(member, name);
        session.run(&alice_calls(ALICE, OK, DENIED)).await;
        session
            .run(&[
                ok(ROOT, UserList),
                ok(ROOT, RoleGet("app")),
                step(ALICE, UserList, DENIED),
            ])
            .await;
    }
    session.at(a, "A");
    session
        .run(&[ok(ROOT, RoleRevokePermission("app", "foo/", "foo0"))])
        .await;
    session.at(c, "C");
    session
        .run(&[
            // Linearizable first: its read index has C apply the revoke, so the
            // serializable reads after it see it too.
            step(ALICE, get("foo/a"), DENIED),
            step(ALICE, serializable_get("foo/a"), DENIED),
            ok(ALICE, serializable_get("ro")),
            step(ALICE, Put(put("foo/b", "3")), DENIED),
        ])
        .await;
    let mut listed = Vec::new();
    for (member, name) in [(a, "A"), (b, "B"), (c, "C")] {
        listed.push(lists(&mut session, member, name).await);
    }
    let same = listed.windows(2).all(|w| w[0] == w[1]);
    session.transcript.holds(
        "A, B and C list the same users and roles",
        same && listed[0] == (vec!["alice".into(), "root".into()], vec!["app".into()]),
    );
    session.transcript
}

#[tokio::test]
async fn tokens_and_permissions_hold_on_every_member() {
    differential(across_members).await;
}

/// `--snapshot-count`: how often a member snapshots its state.
const SNAPSHOT_COUNT: u64 = 20;
/// Entries raft keeps behind a snapshot for slow followers (etcd 3.4's catch-up entries,
/// the same in ours): a member added once the log has passed this many more entries than
/// a snapshot gets the snapshot.
const KEPT_ENTRIES: u64 = 5000;

/// The raft index of the member calls go to.
async fn raft_index(session: &Session) -> u64 {
    let mut maintenance = MaintenanceClient::new(session.channel());
    let status = within("status", maintenance.status(StatusRequest {})).await;
    status.expect("status").into_inner().raft_index
}

/// Adds raft entries through the current member until its raft index has passed the
/// kept entries and a few snapshots more; how many calls failed. The entries are lease
/// grants, which move no revision: how many entries a flavour writes per call (ours
/// batches concurrent proposals, fewer the fewer wait) shows in no answer. 4 calls at a
/// time, at most 60 s.
async fn fill_log(session: &Session, who: Who) -> usize {
    const WORKERS: u64 = 4;
    const ROUND: u64 = 512;
    let target = raft_index(session).await + KEPT_ENTRIES + 3 * SNAPSHOT_COUNT + 100;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut failed = 0;
    while raft_index(session).await <= target {
        assert!(
            tokio::time::Instant::now() < deadline,
            "raft index {target} not reached within 60 s"
        );
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..WORKERS {
            let mut lease = LeaseClient::new(session.channel());
            let requests: Vec<_> = (0..ROUND / WORKERS)
                .map(|_| session.request(who, LeaseGrantRequest { ttl: 3600, id: 0 }))
                .collect();
            workers.spawn(async move {
                let mut failed = 0;
                for request in requests {
                    let grant = lease.lease_grant(request);
                    let grant = tokio::time::timeout(Duration::from_secs(10), grant);
                    failed += usize::from(!matches!(grant.await, Ok(Ok(_))));
                }
                failed
            });
        }
        failed += workers.join_all().await.into_iter().sum::<usize>();
    }
    failed
}

/// Users, roles, permissions and the enabled flag set up on a 3-member cluster that
/// snapshots every 20 entries; then enough entries that the leader compacts its log, and a
/// 4th member added: it can only catch up from a snapshot, and its auth state is the
/// others'. Simple tokens are not in a snapshot: the new member does not know alice's
/// token from before.
async fn through_a_snapshot(flavor: Flavor) -> Transcript {
    use Call::*;
    let count = format!("--snapshot-count={SNAPSHOT_COUNT}");
    let mut session = Session::cluster(flavor, 3, &[&count]).await;
    let (a, b, _) = parts(&session).await;
    session.at(a, "A, a follower");
    session.run(&small_setup()).await;
    session.at(b, "B, the leader");
    let failed = fill_log(&session, ROOT).await;
    session
        .transcript
        .holds("root's lease grants through B all succeeded", failed == 0);
    session.member.set_ctl_flags(&["--user=root:rootpw"]);
    let added = add_and_start(&session.member, "m3", &[]);
    let from_snapshot = added.log().contains("applying snapshot at index");
    session
        .transcript
        .holds("the added member D applied a snapshot", from_snapshot);
    session.join(added).await;
    session.at(3, "D, the added member");
    let alice_on_d = Who::Token("alice, signed in on D");
    session
        .run(&[
            step(ALICE, get("foo/a"), BAD_TOKEN),
            ok(
                ANON,
                authenticate("alice", ALICE_PW, "alice, signed in on D"),
            ),
        ])
        .await;
    session.run(&alice_calls(alice_on_d, OK, DENIED)).await;
    session
        .run(&[
            ok(ANON, authenticate("root", "rootpw", "root")),
            ok(ROOT, UserList),
            ok(ROOT, RoleGet("app")),
            ok(ROOT, UserGet("alice")),
        ])
        .await;
    session.at(a, "A");
    session.run(&alice_calls(alice_on_d, OK, DENIED)).await;
    session.transcript
}

#[tokio::test]
async fn auth_state_reaches_a_new_member_in_a_snapshot() {
    differential(through_a_snapshot).await;
}
