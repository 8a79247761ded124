//! The backend quota (`--quota-backend-bytes`), checked before a request that could grow
//! the database is proposed, as etcd's quota servers do.
//!
//! A request that would take the database past the quota raises the NOSPACE alarm
//! (through raft, so every member turns read-and-delete-only) and fails with
//! `etcdserver: mvcc: database space exceeded`. The costs are etcd's estimates.

use etcd_proto::etcdserverpb::alarm_request::AlarmAction;
use etcd_proto::etcdserverpb::{AlarmRequest, AlarmType, PutRequest, TxnRequest};
use etcd_proto::raftrequestpb::raft_request::Request;
use etcd_proto::raftrequestpb::RaftRequest;

use crate::apply::txn;
use crate::error::{EtcdError, Result};
use crate::server::EtcdServer;

/// etcd's estimate of the bytes a key's metadata costs.
const KV_OVERHEAD: u64 = 256;
/// etcd's estimate of the bytes a lease costs.
pub const LEASE_OVERHEAD: u64 = 64;

/// Quota cost of a put.
pub fn put_cost(p: &PutRequest) -> u64 {
    KV_OVERHEAD + p.key.len() as u64 + p.value.len() as u64
}

/// Quota cost of a txn: its costlier branch's puts.
pub fn txn_cost(t: &TxnRequest) -> u64 {
    let branch = |ops: &[etcd_proto::etcdserverpb::RequestOp]| -> u64 {
        txn::puts(ops).into_iter().map(put_cost).sum()
    };
    branch(&t.success).max(branch(&t.failure))
}

/// Fails with NOSPACE, raising the alarm, if `cost` more bytes would not fit the quota.
pub async fn check(server: &EtcdServer, cost: u64) -> Result<()> {
    if server.state.backend.db_size() + cost < server.limits.quota_bytes {
        return Ok(());
    }
    let raise = RaftRequest {
        request: Some(Request::Alarm(AlarmRequest {
            action: AlarmAction::Activate as i32,
            member_id: server.identity.member_id,
            alarm: AlarmType::Nospace as i32,
        })),
        header: None,
    };
    if let Err(e) = server.propose(raise).await {
        tracing::warn!(target: "etcdserver", "failed to raise the NOSPACE alarm: {e}");
    }
    Err(EtcdError::NoSpace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etcd_proto::etcdserverpb::request_op::Request as Op;
    use etcd_proto::etcdserverpb::RequestOp;

    fn put(key: &str, value: &str) -> RequestOp {
        RequestOp {
            request: Some(Op::RequestPut(PutRequest {
                key: key.into(),
                value: value.into(),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn txn_costs_its_costlier_branch() {
        let t = TxnRequest {
            success: vec![put("a", "1234")],
            failure: vec![put("b", "1"), put("c", "1")],
            ..Default::default()
        };
        assert_eq!(txn_cost(&t), 2 * (KV_OVERHEAD + 2));
        assert_eq!(txn_cost(&TxnRequest::default()), 0);
    }
}
