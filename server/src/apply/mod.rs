//! Turns one committed raft request into changes of the MVCC store and the lessor.
//!
//! Deterministic: every member applies the same entries to the same state and gets the same
//! result. Request-level validation that needs no state happens earlier, in the API layer;
//! everything that depends on state (leases exist, keys exist, revisions not compacted) is
//! checked here before the first change, so a request applies whole or not at all.

pub mod txn;

use etcd_proto::etcdserverpb::{
    AlarmResponse, CompactionResponse, LeaseGrantResponse, LeaseRevokeResponse,
};
use etcd_proto::etcdserverpb::{DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse};
use etcd_proto::mvccpb::{event::EventType, Event};
use etcd_proto::raftrequestpb::raft_request::Request;
use etcd_proto::raftrequestpb::raft_response::Response;
use etcd_proto::raftrequestpb::{Empty, RaftRequest, RaftResponse};

use prost::Message;

use crate::alarm::Alarms;
use crate::error::{EtcdError, Result};
use crate::lease::Lessor;
use crate::mvcc::{MvccStore, WriteTxn};

/// What applying one request produced.
pub struct Outcome {
    pub response: RaftResponse,
    /// Changes for watchers, in revision order.
    pub events: Vec<Event>,
}

/// The state one request applies to.
pub struct Target<'a> {
    pub mvcc: &'a mut MvccStore,
    pub lessor: &'a mut Lessor,
    pub alarms: &'a mut Alarms,
}

/// Applies `req`, queueing its backend changes in `batch`.
pub fn apply(t: &mut Target<'_>, batch: &mut sled::Batch, req: RaftRequest) -> Outcome {
    let (mvcc, lessor) = (&mut *t.mvcc, &mut *t.lessor);
    let mut events = Vec::new();
    let result = if t.alarms.no_space() && grows_store(&req) {
        Err(EtcdError::NoSpace)
    } else {
        dispatch(mvcc, lessor, t.alarms, batch, req, &mut events)
    };
    for ev in &events {
        let kv = ev.kv.as_ref().expect("events carry a key-value");
        let prev = ev.prev_kv.as_ref().map_or(0, |p| p.lease);
        let now = if ev.r#type == EventType::Put as i32 {
            kv.lease
        } else {
            0
        };
        lessor.reattach(&kv.key, prev, now);
    }
    let response = match result {
        Ok(r) => Some(r),
        Err(e) => Some(Response::Error((&e).into())),
    };
    Outcome {
        response: RaftResponse {
            response,
            revision: mvcc.current_revision(),
        },
        events,
    }
}

/// What etcd's capped applier refuses while the NOSPACE alarm is active.
fn grows_store(req: &RaftRequest) -> bool {
    match &req.request {
        Some(Request::Put(_)) | Some(Request::LeaseGrant(_)) => true,
        Some(Request::Txn(t)) => {
            !(txn::puts(&t.success).is_empty() && txn::puts(&t.failure).is_empty())
        }
        _ => false,
    }
}

fn dispatch(
    mvcc: &mut MvccStore,
    lessor: &mut Lessor,
    alarms: &mut Alarms,
    batch: &mut sled::Batch,
    req: RaftRequest,
    events: &mut Vec<Event>,
) -> Result<Response> {
    let Some(req) = req.request else {
        return Ok(Response::Empty(Empty {}));
    };
    Ok(match req {
        Request::Put(p) => {
            let mut w = mvcc.write(batch);
            check_put(lessor, &w, &p)?;
            let resp = exec_put(&mut w, &p)?;
            events.extend(w.finish());
            Response::Put(resp)
        }
        Request::DeleteRange(d) => {
            let mut w = mvcc.write(batch);
            let resp = exec_delete(&mut w, &d)?;
            events.extend(w.finish());
            Response::DeleteRange(resp)
        }
        Request::Txn(t) => {
            let mut w = mvcc.write(batch);
            let path = txn::path(&w, &t)?;
            txn::validate(lessor, &w, &t, &path)?;
            let resp = txn::execute(&mut w, &t, &path)?;
            events.extend(w.finish());
            Response::Txn(resp)
        }
        Request::Compaction(c) => {
            mvcc.compact(c.revision, batch)?;
            Response::Compaction(CompactionResponse { header: None })
        }
        Request::LeaseGrant(g) => {
            let ttl = lessor.grant(g.id, g.ttl, batch)?;
            Response::LeaseGrant(LeaseGrantResponse {
                header: None,
                id: g.id,
                ttl,
                error: String::new(),
            })
        }
        Request::LeaseRevoke(r) => {
            let keys = lessor.revoke(r.id, batch)?;
            let mut w = mvcc.write(batch);
            for key in keys {
                w.delete_range(&key, b"")?;
            }
            events.extend(w.finish());
            Response::LeaseRevoke(LeaseRevokeResponse { header: None })
        }
        Request::LeaseCheckpoints(c) => {
            for cp in c.checkpoints {
                lessor.checkpoint(cp.id, cp.remaining_ttl, batch);
            }
            Response::Empty(Empty {})
        }
        Request::Batch(_) => {
            return Err(EtcdError::Internal(
                "a request batch cannot be nested".into(),
            ))
        }
        Request::Alarm(a) => Response::Alarm(AlarmResponse {
            header: None,
            alarms: alarms.apply(&a, batch),
        }),
        Request::MemberAttributes(a) => {
            batch.insert(crate::cluster::attributes::key(a.id), a.encode_to_vec());
            Response::Empty(Empty {})
        }
    })
}

/// State checks of a put: referenced lease and, for `ignore_*`, the key must exist.
pub(crate) fn check_put(lessor: &Lessor, w: &WriteTxn<'_>, p: &PutRequest) -> Result<()> {
    if (p.ignore_value || p.ignore_lease) && w.get(&p.key)?.is_none() {
        return Err(EtcdError::KeyNotFound);
    }
    if p.lease != 0 && !lessor.contains(p.lease) {
        return Err(EtcdError::LeaseNotFound);
    }
    Ok(())
}

pub(crate) fn exec_put(w: &mut WriteTxn<'_>, p: &PutRequest) -> Result<PutResponse> {
    let (value, lease) = if p.ignore_value || p.ignore_lease {
        let prev = w.get(&p.key)?.ok_or(EtcdError::KeyNotFound)?;
        (
            if p.ignore_value {
                prev.value
            } else {
                p.value.clone()
            },
            if p.ignore_lease { prev.lease } else { p.lease },
        )
    } else {
        (p.value.clone(), p.lease)
    };
    let prev = w.put(&p.key, value, lease)?;
    Ok(PutResponse {
        header: None,
        prev_kv: if p.prev_kv { prev } else { None },
    })
}

pub(crate) fn exec_delete(
    w: &mut WriteTxn<'_>,
    d: &DeleteRangeRequest,
) -> Result<DeleteRangeResponse> {
    let deleted = w.delete_range(&d.key, &d.range_end)?;
    Ok(DeleteRangeResponse {
        header: None,
        deleted: deleted.len() as i64,
        prev_kvs: if d.prev_kv { deleted } else { Vec::new() },
    })
}
