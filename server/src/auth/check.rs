//! Which permission each request needs, as etcd 3.4 decides it.
//!
//! Reads (ranges, read-only txns, watches) are checked by the API before they are served;
//! writes are checked when their raft entry is applied, against the auth state of that
//! moment, with the user and auth revision the proposer put in the entry's header.
//! - Put: write on the key; with `prev_kv`, read on it too; with a lease, write on every
//!   key already attached to that lease (whoever cannot revoke the lease must not attach
//!   more keys to it).
//! - DeleteRange: write on the range; with `prev_kv`, read on it too.
//! - Txn: read on every compared key or range, and what each op of both branches needs
//!   (nested txns included) — whichever branch runs.
//! - LeaseRevoke: write on every key attached to the lease, unless the user is root.
//! - Everything else a client proposes (lease grants, compaction, alarms) needs no
//!   permission, only a valid token.

use etcd_proto::etcdserverpb::request_op::Request as Op;
use etcd_proto::etcdserverpb::{DeleteRangeRequest, PutRequest, RequestOp, TxnRequest};
use etcd_proto::raftrequestpb::raft_request::Request;

use super::perms::Access;
use super::store::AuthStore;
use super::AuthInfo;
use crate::error::Result;
use crate::lease::Lessor;

/// Read permission on a key or range.
pub fn range(auth: &AuthStore, ai: &AuthInfo, key: &[u8], range_end: &[u8]) -> Result<()> {
    auth.check(ai, Access::Read, key, range_end)
}

/// The permissions a replicated client request needs, checked when it is applied.
pub fn proposed(auth: &AuthStore, ai: &AuthInfo, lessor: &Lessor, req: &Request) -> Result<()> {
    if !auth.enabled() {
        return Ok(());
    }
    match req {
        Request::Put(p) => put(auth, ai, lessor, p),
        Request::DeleteRange(d) => delete(auth, ai, d),
        Request::Txn(t) => txn(auth, ai, t),
        Request::LeaseRevoke(r) => lease_keys(auth, ai, lessor, r.id),
        _ => Ok(()),
    }
}

/// Every compare and op of `t`, both branches, nested txns included.
pub fn txn(auth: &AuthStore, ai: &AuthInfo, t: &TxnRequest) -> Result<()> {
    for c in &t.compare {
        range(auth, ai, &c.key, &c.range_end)?;
    }
    t.success
        .iter()
        .chain(&t.failure)
        .try_for_each(|op| txn_op(auth, ai, op))
}

fn txn_op(auth: &AuthStore, ai: &AuthInfo, op: &RequestOp) -> Result<()> {
    match &op.request {
        Some(Op::RequestRange(r)) => range(auth, ai, &r.key, &r.range_end),
        // Inside a txn etcd checks a put's write permission only, whatever its prev_kv.
        Some(Op::RequestPut(p)) => auth.check(ai, Access::Write, &p.key, b""),
        Some(Op::RequestDeleteRange(d)) => delete(auth, ai, d),
        Some(Op::RequestTxn(t)) => txn(auth, ai, t),
        None => Ok(()),
    }
}

fn put(auth: &AuthStore, ai: &AuthInfo, lessor: &Lessor, p: &PutRequest) -> Result<()> {
    auth.check(ai, Access::Write, &p.key, b"")?;
    lease_keys(auth, ai, lessor, p.lease)?;
    if p.prev_kv {
        range(auth, ai, &p.key, b"")?;
    }
    Ok(())
}

fn delete(auth: &AuthStore, ai: &AuthInfo, d: &DeleteRangeRequest) -> Result<()> {
    if d.prev_kv {
        range(auth, ai, &d.key, &d.range_end)?;
    }
    auth.check(ai, Access::Write, &d.key, &d.range_end)
}

/// Write permission on every key attached to lease `id` (none needed when the lease does
/// not exist, or for root).
fn lease_keys(auth: &AuthStore, ai: &AuthInfo, lessor: &Lessor, id: i64) -> Result<()> {
    let Some(lease) = lessor.get(id) else {
        return Ok(());
    };
    if auth.check_admin(ai).is_ok() {
        return Ok(());
    }
    lease
        .keys
        .iter()
        .try_for_each(|k| auth.check(ai, Access::Write, k, b""))
}
