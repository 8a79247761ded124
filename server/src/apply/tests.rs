//! Every way applying a request can fail leaves the member's state as it was: the key
//! index, the revision, the pending records, the backend batch (checked by applying it to
//! the tree and comparing the tree's content), the lessor and the alarms. Each failing
//! request is applied into a batch that already holds earlier writes of the same raft
//! entry, as in a batched entry.

use std::collections::BTreeSet;

use etcd_proto::etcdserverpb::alarm_request::AlarmAction;
use etcd_proto::etcdserverpb::request_op::Request as Op;
use etcd_proto::etcdserverpb::{
    AlarmRequest, AlarmType, CompactionRequest, DeleteRangeRequest, LeaseGrantRequest,
    LeaseRevokeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use etcd_proto::raftrequestpb::raft_request::Request;
use etcd_proto::raftrequestpb::raft_response::Response;
use etcd_proto::raftrequestpb::{RaftRequest, RequestBatch};

use super::{apply, Outcome, Target};
use crate::alarm::Alarms;
use crate::auth::store::AuthStore;
use crate::error::EtcdError;
use crate::lease::Lessor;
use crate::mvcc::revision::Revision;
use crate::mvcc::{MemoryState, MvccStore};

const LEASE: i64 = 7;
const MEMBER: u64 = 42;

/// A member's applied state on a scratch backend, with the batch of the entry being applied.
struct Member {
    _dir: tempfile::TempDir,
    tree: sled::Tree,
    mvcc: MvccStore,
    lessor: Lessor,
    alarms: Alarms,
    auth: AuthStore,
    batch: sled::Batch,
}

/// What a failed request must not change.
#[derive(Debug, PartialEq)]
struct Observed {
    memory: MemoryState,
    /// The tree's content once the entry's batch is in.
    backend: Vec<(Vec<u8>, Vec<u8>)>,
    /// Per lease: ID, TTL, checkpointed TTL, attached keys.
    leases: Vec<(i64, i64, i64, BTreeSet<Vec<u8>>)>,
    alarms: Vec<(u64, i32)>,
}

impl Member {
    fn new() -> Member {
        let dir = tempfile::tempdir().unwrap();
        let tree = sled::open(dir.path()).unwrap().open_tree("state").unwrap();
        Member {
            mvcc: MvccStore::open(tree.clone()).unwrap(),
            lessor: Lessor::open(&tree, 1).unwrap(),
            alarms: Alarms::open(&tree).unwrap(),
            auth: AuthStore::open(&tree, Default::default()).unwrap(),
            batch: sled::Batch::default(),
            tree,
            _dir: dir,
        }
    }

    /// A member holding `a`, `b` (attached to [`LEASE`]) and `c`, with history compacted
    /// at revision 3; the last writes are still in the entry's batch.
    fn seeded() -> Member {
        let mut m = Member::new();
        m.ok(Request::LeaseGrant(LeaseGrantRequest {
            ttl: 100,
            id: LEASE,
        }));
        m.ok(put("a", "1"));
        m.ok(put("a", "2"));
        m.ok(Request::Compaction(CompactionRequest {
            revision: 3,
            physical: false,
        }));
        m.ok(Request::Put(PutRequest {
            lease: LEASE,
            ..put_req("b", "2")
        }));
        m.ok(put("c", "3"));
        m.flush();
        m.ok(put("a", "3"));
        m
    }

    fn apply(&mut self, request: Request) -> Outcome {
        let mut target = Target {
            mvcc: &mut self.mvcc,
            lessor: &mut self.lessor,
            alarms: &mut self.alarms,
            auth: &mut self.auth,
            index: 1,
        };
        apply(
            &mut target,
            &mut self.batch,
            RaftRequest {
                request: Some(request),
                header: None,
            },
        )
    }

    fn ok(&mut self, request: Request) -> Outcome {
        let out = self.apply(request);
        if let Some(Response::Error(e)) = &out.response.response {
            panic!("request failed: {e:?}");
        }
        out
    }

    /// Stores the entry's batch, as the state machine does at the end of an entry.
    fn flush(&mut self) {
        self.tree
            .apply_batch(std::mem::take(&mut self.batch))
            .unwrap();
        self.mvcc.batch_applied();
    }

    fn observe(&self) -> Observed {
        self.tree.apply_batch(self.batch.clone()).unwrap();
        let backend = self
            .tree
            .iter()
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
            .collect();
        let mut ids = self.lessor.ids();
        ids.sort();
        let leases = ids
            .into_iter()
            .map(|id| {
                let l = self.lessor.get(id).unwrap();
                (l.id, l.ttl, l.remaining_ttl, l.keys.clone())
            })
            .collect();
        Observed {
            memory: self.mvcc.memory_state(),
            backend,
            leases,
            alarms: self
                .alarms
                .list()
                .into_iter()
                .map(|a| (a.member_id, a.alarm))
                .collect(),
        }
    }

    /// Applies `request`, which must fail with `expected` and change nothing; then a put
    /// must get the next revision.
    fn refuses(&mut self, request: Request, expected: EtcdError) {
        let before = self.observe();
        let out = self.apply(request);
        assert_eq!(error_of(&out), Some(expected));
        assert!(out.events.is_empty(), "events of a failed request: {out:?}");
        assert_eq!(out.response.revision, before.memory.current);
        let after = self.observe();
        assert_eq!(after, before, "a failed request changed the state");
        let next = self.ok(put("next", "v"));
        assert_eq!(next.response.revision, before.memory.current + 1);
        assert_eq!(next.events.len(), 1);
    }

    fn raise_nospace(&mut self) {
        self.ok(Request::Alarm(AlarmRequest {
            action: AlarmAction::Activate as i32,
            member_id: MEMBER,
            alarm: AlarmType::Nospace as i32,
        }));
    }

    /// Replaces the stored record of `key`'s visible revision with bytes that do not
    /// decode, so that reading it fails mid-request.
    fn corrupt(&mut self, key: &str) {
        self.flush();
        let kv = self.mvcc.get(key.as_bytes()).unwrap().unwrap();
        let rev = Revision::new(kv.mod_revision, 0);
        self.tree.insert(rev.to_key(), &b"\xff\xff"[..]).unwrap();
    }
}

fn error_of(out: &Outcome) -> Option<EtcdError> {
    match &out.response.response {
        Some(Response::Error(e)) => Some(EtcdError::from(e.clone())),
        _ => None,
    }
}

fn put_req(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    }
}

fn put(key: &str, value: &str) -> Request {
    Request::Put(put_req(key, value))
}

fn op(request: Op) -> RequestOp {
    RequestOp {
        request: Some(request),
    }
}

fn put_op(p: PutRequest) -> RequestOp {
    op(Op::RequestPut(p))
}

fn del_op(key: &str, range_end: &str) -> RequestOp {
    op(Op::RequestDeleteRange(DeleteRangeRequest {
        key: key.into(),
        range_end: range_end.into(),
        prev_kv: true,
    }))
}

fn ignore_value(key: &str) -> PutRequest {
    PutRequest {
        key: key.into(),
        ignore_value: true,
        ..Default::default()
    }
}

fn txn(success: Vec<RequestOp>) -> TxnRequest {
    TxnRequest {
        success,
        ..Default::default()
    }
}

fn range_at(revision: i64) -> RequestOp {
    op(Op::RequestRange(RangeRequest {
        key: "a".into(),
        revision,
        ..Default::default()
    }))
}

#[test]
fn puts_on_missing_keys_or_leases_change_nothing() {
    let mut m = Member::seeded();
    m.refuses(Request::Put(ignore_value("nope")), EtcdError::KeyNotFound);
    m.refuses(
        Request::Put(PutRequest {
            ignore_lease: true,
            ..put_req("nope", "v")
        }),
        EtcdError::KeyNotFound,
    );
    m.refuses(
        Request::Put(PutRequest {
            lease: 99,
            ..put_req("a", "v")
        }),
        EtcdError::LeaseNotFound,
    );
}

#[test]
fn a_put_on_a_key_deleted_earlier_in_its_txn_changes_nothing() {
    // The txn of issue 9: the delete runs, then the put finds its key gone.
    let mut m = Member::seeded();
    for key in ["a", "b"] {
        m.refuses(
            Request::Txn(txn(vec![del_op("a", "\0"), put_op(ignore_value(key))])),
            EtcdError::KeyNotFound,
        );
        m.refuses(
            Request::Txn(txn(vec![
                del_op("a", "\0"),
                put_op(PutRequest {
                    ignore_lease: true,
                    ..put_req(key, "v")
                }),
            ])),
            EtcdError::KeyNotFound,
        );
    }
}

#[test]
fn a_nested_txn_failing_after_outer_writes_changes_nothing() {
    let mut m = Member::seeded();
    let inner = txn(vec![del_op("b", ""), put_op(ignore_value("b"))]);
    let outer = txn(vec![
        put_op(put_req("x", "1")),
        del_op("c", ""),
        op(Op::RequestTxn(inner)),
    ]);
    m.refuses(Request::Txn(outer), EtcdError::KeyNotFound);
}

#[test]
fn txn_state_checks_change_nothing() {
    let mut m = Member::seeded();
    let with_lease = PutRequest {
        lease: 99,
        ..put_req("x", "1")
    };
    m.refuses(
        Request::Txn(txn(vec![del_op("a", ""), put_op(with_lease)])),
        EtcdError::LeaseNotFound,
    );
    m.refuses(
        Request::Txn(txn(vec![del_op("a", ""), range_at(2)])),
        EtcdError::Compacted,
    );
    m.refuses(
        Request::Txn(txn(vec![del_op("a", ""), range_at(1000)])),
        EtcdError::FutureRev,
    );
    m.refuses(
        Request::Txn(txn(vec![del_op("a", ""), put_op(ignore_value("nope"))])),
        EtcdError::KeyNotFound,
    );
}

/// A member whose record of `c` (attached to [`LEASE`], like `b`) cannot be read.
fn with_unreadable_record() -> Member {
    let mut m = Member::seeded();
    m.ok(Request::Put(PutRequest {
        lease: LEASE,
        ..put_req("c", "leased")
    }));
    m.corrupt("c");
    m
}

/// Applies `request`, which must fail with an internal error and change nothing.
fn fails_internally(m: &mut Member, request: Request) {
    let before = m.observe();
    let out = m.apply(request);
    assert!(
        matches!(error_of(&out), Some(EtcdError::Internal(_))),
        "{out:?}"
    );
    assert!(out.events.is_empty());
    assert_eq!(m.observe(), before, "a failed request changed the state");
}

#[test]
fn deletes_failing_mid_way_change_nothing() {
    // By the time `c` is read, tombstones of `a` and `b` have been written.
    let mut m = with_unreadable_record();
    fails_internally(
        &mut m,
        Request::DeleteRange(DeleteRangeRequest {
            key: "a".into(),
            range_end: "\0".into(),
            prev_kv: false,
        }),
    );
    fails_internally(
        &mut m,
        Request::Txn(txn(vec![put_op(put_req("x", "1")), del_op("a", "d")])),
    );
}

#[test]
fn a_revoke_failing_mid_way_keeps_its_lease() {
    // The lease is found and `b` deleted before `c` cannot be read.
    let mut m = with_unreadable_record();
    fails_internally(
        &mut m,
        Request::LeaseRevoke(LeaseRevokeRequest { id: LEASE }),
    );
}

#[test]
fn lease_and_compaction_errors_change_nothing() {
    let mut m = Member::seeded();
    m.refuses(
        Request::LeaseGrant(LeaseGrantRequest { ttl: 5, id: LEASE }),
        EtcdError::LeaseExist,
    );
    m.refuses(
        Request::LeaseRevoke(LeaseRevokeRequest { id: 99 }),
        EtcdError::LeaseNotFound,
    );
    m.refuses(
        Request::Compaction(CompactionRequest {
            revision: 3,
            physical: false,
        }),
        EtcdError::Compacted,
    );
    m.refuses(
        Request::Compaction(CompactionRequest {
            revision: 1000,
            physical: false,
        }),
        EtcdError::FutureRev,
    );
    m.refuses(
        Request::Batch(RequestBatch {
            requests: vec![RaftRequest {
                request: Some(put("x", "1")),
                header: None,
            }],
        }),
        EtcdError::Internal("a request batch cannot be nested".into()),
    );
}

#[test]
fn nospace_refusals_change_nothing() {
    let mut m = Member::seeded();
    m.raise_nospace();
    let refused = [
        put("a", "v"),
        Request::Txn(txn(vec![del_op("b", ""), put_op(put_req("x", "1"))])),
        Request::LeaseGrant(LeaseGrantRequest { ttl: 5, id: 8 }),
    ];
    for request in refused {
        let before = m.observe();
        let out = m.apply(request);
        assert_eq!(error_of(&out), Some(EtcdError::NoSpace));
        assert!(out.events.is_empty());
        assert_eq!(m.observe(), before, "a refused request changed the state");
    }
    // Deletes still work while the alarm is raised.
    let del = m.ok(Request::DeleteRange(DeleteRangeRequest {
        key: "c".into(),
        ..Default::default()
    }));
    assert_eq!(del.events.len(), 1);
}

#[test]
fn a_failed_request_leaves_no_trace_after_a_restart() {
    // The index rebuilt from the backend must equal the one kept in memory.
    let mut m = Member::seeded();
    m.apply(Request::Txn(txn(vec![
        del_op("a", "\0"),
        put_op(ignore_value("a")),
    ])));
    m.ok(put("z", "1"));
    m.flush();
    let reopened = MvccStore::open(m.tree.clone()).unwrap();
    assert_eq!(reopened.memory_state(), m.mvcc.memory_state());
    assert_eq!(reopened.current_revision(), m.mvcc.current_revision());
}
