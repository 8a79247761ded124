//! Raft payloads: bytes decoded as a `RaftRequest` (what a committed log entry holds), the
//! client requests among them passed through the API's stateless validation as the API
//! would, then applied with `apply::apply` to a fresh store and lessor, as the raft state
//! machine applies an entry (a batch entry request by request).
//!
//! The first byte holds flags: bit 0 applies as the leader (the lessor tracks expiry),
//! bit 1 gives every request its own backend batch (entries applied one per call) instead
//! of one for all (a batched entry). The rest is the protobuf.
//!
//! Invariants:
//! - applying never panics, whatever the request;
//! - a request advances the revision by one exactly when it produces events, and a
//!   refused request changes nothing visible (no events, same revision);
//! - every event is of the new revision;
//! - what was written to the backend is what the member holds in memory: the store, the
//!   leases and the alarms loaded back from the backend (as after a restart) equal the
//!   ones that applied the requests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use etcd_proto::etcdserverpb::RangeRequest;
use etcd_proto::raftrequestpb::raft_request::Request;
use etcd_proto::raftrequestpb::raft_response::Response;
use etcd_proto::raftrequestpb::RaftRequest;
use etcd_server::alarm::Alarms;
use etcd_server::api::v3::validate;
use etcd_server::apply::{self, Target};
use etcd_server::auth::store::AuthStore;
use etcd_server::lease::{Lessor, MAX_LEASE_TTL};
use etcd_server::mvcc::MvccStore;
use prost::Message;

/// etcd's default `--max-txn-ops`.
const MAX_TXN_OPS: usize = 128;
/// The minimum lease TTL the lessor is opened with.
const MIN_TTL: i64 = 2;

/// One database for the process; each run gets a tree of its own, dropped afterwards.
fn db() -> &'static sled::Db {
    static DB: OnceLock<(tempfile::TempDir, sled::Db)> = OnceLock::new();
    let (_, db) = DB.get_or_init(|| {
        let dir = crate::scratch::dir();
        let db = sled::Config::new()
            .path(dir.path())
            .open()
            .expect("scratch database");
        (dir, db)
    });
    db
}

pub fn check(data: &[u8]) {
    let Some((&flags, proto)) = data.split_first() else {
        return;
    };
    let Ok(req) = RaftRequest::decode(proto) else {
        return;
    };
    let requests: Vec<RaftRequest> = match req {
        RaftRequest {
            request: Some(Request::Batch(b)),
            ..
        } => b.requests,
        single => vec![single],
    };
    let requests: Vec<RaftRequest> = requests.into_iter().filter_map(admit).collect();

    static RUN: AtomicU64 = AtomicU64::new(0);
    let name = format!("run-{}", RUN.fetch_add(1, Ordering::Relaxed));
    let tree = db().open_tree(&name).expect("fresh tree");
    run(&tree, flags & 1 != 0, flags & 2 != 0, requests);
    db().drop_tree(&name).expect("tree dropped");
}

/// What the API lets through to raft, as it would send it; `None` for what it refuses.
fn admit(req: RaftRequest) -> Option<RaftRequest> {
    let ok = match &req.request {
        Some(Request::Put(p)) => validate::put(p).is_ok(),
        Some(Request::DeleteRange(d)) => validate::delete(d).is_ok(),
        Some(Request::Txn(t)) => validate::txn(t, MAX_TXN_OPS).is_ok(),
        Some(Request::LeaseGrant(g)) => g.ttl <= MAX_LEASE_TTL,
        _ => true,
    };
    if !ok {
        return None;
    }
    let mut req = req;
    if let Some(Request::LeaseGrant(g)) = &mut req.request {
        // The API picks an ID for a grant that names none.
        if g.id == 0 {
            g.id = 1;
        }
    }
    Some(req)
}

fn run(tree: &sled::Tree, leader: bool, batch_each: bool, requests: Vec<RaftRequest>) {
    let mut mvcc = MvccStore::open(tree.clone()).expect("fresh store");
    let mut lessor = Lessor::open(tree, MIN_TTL).expect("fresh lessor");
    let mut alarms = Alarms::open(tree).expect("fresh alarms");
    let mut auth = AuthStore::open(tree, Default::default()).expect("fresh auth store");
    if leader {
        lessor.promote(Duration::ZERO);
    }
    let mut batch = sled::Batch::default();
    for (index, req) in (1..).zip(requests) {
        let before = mvcc.current_revision();
        let outcome = apply::apply(
            &mut Target {
                mvcc: &mut mvcc,
                lessor: &mut lessor,
                alarms: &mut alarms,
                auth: &mut auth,
                index,
            },
            &mut batch,
            req,
        );
        let after = mvcc.current_revision();
        assert_eq!(outcome.response.revision, after);
        assert_eq!(
            after != before,
            !outcome.events.is_empty(),
            "revision {before} -> {after} with {} events",
            outcome.events.len()
        );
        assert!(
            after == before || after == before + 1,
            "{before} -> {after}"
        );
        if let Some(Response::Error(e)) = &outcome.response.response {
            assert!(
                outcome.events.is_empty(),
                "refused ({:?}) yet changed",
                e.code
            );
        }
        for ev in &outcome.events {
            let kv = ev.kv.as_ref().expect("an event's key-value");
            assert_eq!(kv.mod_revision, after, "event of another revision");
        }
        if batch_each {
            tree.apply_batch(std::mem::take(&mut batch))
                .expect("batch applied");
            mvcc.batch_applied();
        }
    }
    tree.apply_batch(batch).expect("batch applied");
    mvcc.batch_applied();
    compare_with_reloaded(tree, &mvcc, &lessor, &alarms);
}

/// Loads the state back from the backend and checks it equals the state in memory.
fn compare_with_reloaded(tree: &sled::Tree, mvcc: &MvccStore, lessor: &Lessor, alarms: &Alarms) {
    let (mvcc2, lessor2) = etcd_server::state::load(tree, MIN_TTL).expect("state reloads");
    assert_eq!(mvcc2.current_revision(), mvcc.current_revision());
    assert_eq!(mvcc2.compacted_revision(), mvcc.compacted_revision());
    let all = RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..Default::default()
    };
    assert_eq!(
        mvcc2.range(&all).expect("range").kvs,
        mvcc.range(&all).expect("range").kvs,
        "keys in memory and in the backend"
    );
    let leases = |l: &Lessor| {
        let mut ids = l.ids();
        ids.sort_unstable();
        ids.into_iter()
            .map(|id| {
                let lease = l.get(id).expect("listed lease");
                (id, lease.ttl, lease.remaining_ttl, lease.keys.clone())
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        leases(&lessor2),
        leases(lessor),
        "leases in memory and in the backend"
    );
    let alarms2 = Alarms::open(tree).expect("alarms reload");
    assert_eq!(alarms2.list(), alarms.list());
}
