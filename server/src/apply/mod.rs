//! Turns one committed raft request into changes of the MVCC store and the lessor.
//!
//! Deterministic: every member applies the same entries to the same state and gets the same
//! result: nothing it stores or answers depends on the member's own configuration or clock
//! (the leader's lease deadlines are kept in memory only). What depends on a member is
//! decided before the request is proposed and travels in the entry (a lease grant's ID, and
//! its TTL raised to the proposer's minimum). Request-level validation that needs no state
//! happens earlier too, in the API layer.
//!
//! A request applies whole or not at all, by construction: everything that can fail runs
//! first, and nothing it does is kept unless the request succeeds.
//! - State checks that need no write (leases exist, `ignore_*` keys exist, revisions not
//!   compacted, lease not granted twice) come before the first change.
//! - Key-value changes are staged in a [`WriteTxn`]; a failing op (a txn's put whose key
//!   an earlier op of the same txn deleted, a record that cannot be read) drops the write,
//!   which takes back every change it made to the key index. Only a committed write puts
//!   records in the entry's backend batch and moves the revision.
//! - Everything else (the lessor, the alarms, other backend keys, the compaction point) is
//!   changed after every check of the request and after its write committed, by steps that
//!   cannot fail. Watch events exist only for committed writes.
//!
//! `apply/tests.rs` drives every error path and compares the whole state before and after.

pub mod txn;

use etcd_proto::etcdserverpb::{
    AlarmResponse, CompactionResponse, LeaseGrantResponse, LeaseRevokeResponse,
};
use etcd_proto::etcdserverpb::{DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse};
use etcd_proto::mvccpb::{event::EventType, Event};
use etcd_proto::raftrequestpb::raft_request::Request;
use etcd_proto::raftrequestpb::raft_response::Response;
use etcd_proto::raftrequestpb::{AuthToken, Empty, RaftRequest, RaftResponse};

use prost::Message;

use crate::alarm::Alarms;
use crate::auth::store::AuthStore;
use crate::auth::AuthInfo;
use crate::error::{EtcdError, Result};
use crate::lease::Lessor;
use crate::mvcc::{MvccStore, WriteTxn};

/// What applying one request produced.
#[derive(Debug)]
pub struct Outcome {
    pub response: RaftResponse,
    /// Changes for watchers, in revision order (none when the request failed).
    pub events: Vec<Event>,
}

/// The state one request applies to.
pub struct Target<'a> {
    pub mvcc: &'a mut MvccStore,
    pub lessor: &'a mut Lessor,
    pub alarms: &'a mut Alarms,
    pub auth: &'a mut AuthStore,
    /// The raft index of the entry being applied (simple auth tokens end with it).
    pub index: u64,
}

/// Applies `req`, queueing its backend changes in `batch`. A request that fails changes
/// nothing and answers its error.
pub fn apply(t: &mut Target<'_>, batch: &mut sled::Batch, req: RaftRequest) -> Outcome {
    let result = if t.alarms.no_space() && grows_store(&req) {
        Err(EtcdError::NoSpace)
    } else {
        permitted(t, &req).and_then(|ai| dispatch(t, batch, req, &ai))
    };
    let (response, events) = match result {
        Ok((response, events)) => {
            reattach(t.lessor, &events);
            (response, events)
        }
        Err(e) => (Response::Error((&e).into()), Vec::new()),
    };
    Outcome {
        response: RaftResponse {
            response: Some(response),
            revision: t.mvcc.current_revision(),
        },
        events,
    }
}

/// Who proposed `req`, once its permissions are checked against the auth state it
/// applies to (etcd's auth applier).
fn permitted(t: &Target<'_>, req: &RaftRequest) -> Result<AuthInfo> {
    let ai = req
        .header
        .as_ref()
        .map(|h| AuthInfo {
            username: h.username.clone(),
            revision: h.auth_revision,
        })
        .unwrap_or_default();
    if let Some(r) = &req.request {
        crate::auth::check::proposed(t.auth, &ai, t.lessor, r)?;
    }
    Ok(ai)
}

/// Moves the keys a committed write changed between leases.
fn reattach(lessor: &mut Lessor, events: &[Event]) {
    for ev in events {
        let kv = ev.kv.as_ref().expect("events carry a key-value");
        let prev = ev.prev_kv.as_ref().map_or(0, |p| p.lease);
        let now = if ev.r#type == EventType::Put as i32 {
            kv.lease
        } else {
            0
        };
        lessor.reattach(&kv.key, prev, now);
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

/// A successful request's answer and the watch events of its write.
type Applied = (Response, Vec<Event>);

fn dispatch(
    t: &mut Target<'_>,
    batch: &mut sled::Batch,
    req: RaftRequest,
    ai: &AuthInfo,
) -> Result<Applied> {
    let no_events = Vec::new;
    let Some(req) = req.request else {
        return Ok((Response::Empty(Empty {}), no_events()));
    };
    let (mvcc, lessor) = (&mut *t.mvcc, &mut *t.lessor);
    Ok(match req {
        Request::Put(p) => {
            let mut w = mvcc.write();
            check_put(lessor, &w, &p)?;
            let resp = exec_put(&mut w, &p)?;
            (Response::Put(resp), w.commit(batch))
        }
        Request::DeleteRange(d) => {
            let mut w = mvcc.write();
            let resp = exec_delete(&mut w, &d)?;
            (Response::DeleteRange(resp), w.commit(batch))
        }
        Request::Txn(req) => {
            let mut w = mvcc.write();
            let path = txn::path(&w, &req)?;
            txn::validate(lessor, &w, &req, &path)?;
            let resp = txn::execute(&mut w, &req, &path)?;
            (Response::Txn(resp), w.commit(batch))
        }
        Request::LeaseRevoke(r) => {
            let lease = lessor.get(r.id).ok_or(EtcdError::LeaseNotFound)?;
            let mut w = mvcc.write();
            for key in &lease.keys {
                w.delete_range(key, b"")?;
            }
            let events = w.commit(batch);
            lessor
                .revoke(r.id, batch)
                .expect("the lease was found above");
            let resp = LeaseRevokeResponse { header: None };
            (Response::LeaseRevoke(resp), events)
        }
        Request::Compaction(c) => {
            mvcc.compact(c.revision, batch)?;
            let resp = CompactionResponse { header: None };
            (Response::Compaction(resp), no_events())
        }
        Request::LeaseGrant(g) => {
            let ttl = lessor.grant(g.id, g.ttl, batch)?;
            let resp = LeaseGrantResponse {
                header: None,
                id: g.id,
                ttl,
                error: String::new(),
            };
            (Response::LeaseGrant(resp), no_events())
        }
        Request::LeaseCheckpoints(c) => {
            for cp in c.checkpoints {
                lessor.checkpoint(cp.id, cp.remaining_ttl, batch);
            }
            (Response::Empty(Empty {}), no_events())
        }
        Request::Batch(_) => {
            return Err(EtcdError::Internal(
                "a request batch cannot be nested".into(),
            ))
        }
        Request::Alarm(a) => {
            let alarms = t.alarms.apply(&a, batch);
            let resp = AlarmResponse {
                header: None,
                alarms,
            };
            (Response::Alarm(resp), no_events())
        }
        Request::Auth(change) => {
            let response = match t.auth.apply(change, ai, t.index, batch)? {
                Some(token) => Response::AuthToken(AuthToken { token }),
                None => Response::Empty(Empty {}),
            };
            (response, no_events())
        }
        Request::MemberAttributes(a) => {
            batch.insert(
                crate::storage::keys::member_attributes(a.id),
                a.encode_to_vec(),
            );
            (Response::Empty(Empty {}), no_events())
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

#[cfg(test)]
mod tests;
