//! etcd's concurrency recipes (clientv3/concurrency: sessions, Mutex, Election) run inside
//! the member for the Lock and Election services, as etcd 3.4 runs them over its
//! in-process client (v3client).
//!
//! Every read and write goes through this member's own KV and Lease services with the
//! caller's metadata, so validation, quotas and permissions apply exactly as they would to
//! the caller's own requests. Waiting for a key's deletion listens to the watch hub and
//! checks the key in the local store, so no waiter costs a read through raft until the
//! key it waits on is gone.
//!
//! Errors: etcd's in-process client hands the KV service's errors back as plain Go errors,
//! which gRPC answers with code `Unknown` and the error's text; [`relay`] does the same.

pub mod election;
pub mod mutex;

use std::sync::Arc;

use etcd_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use etcd_proto::etcdserverpb::kv_server::Kv;
use etcd_proto::etcdserverpb::lease_server::Lease;
use etcd_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use etcd_proto::etcdserverpb::request_op::Request as Op;
use etcd_proto::etcdserverpb::{
    Compare, DeleteRangeRequest, LeaseGrantRequest, PutRequest, RangeRequest, RangeResponse,
    RequestOp, ResponseHeader, TxnRequest, TxnResponse,
};
use etcd_proto::mvccpb::KeyValue;
use tonic::metadata::MetadataMap;
use tonic::{Extensions, Request, Status};

use crate::api::require_leader::LeaderLoss;
use crate::api::v3::kv::KvService;
use crate::api::v3::lease::LeaseService;
use crate::server::EtcdServer;

/// The TTL, in seconds, of the lease a session grants when the caller named none
/// (clientv3/concurrency's default session TTL).
const SESSION_TTL: i64 = 60;

/// A KV or Lease service error as etcd's lock and election services answer it.
pub fn relay(s: Status) -> Status {
    Status::unknown(s.message())
}

/// An error of the concurrency package itself (`election: not leader`, ...): a plain Go
/// error, so `Unknown`.
pub fn plain(text: &str) -> Status {
    Status::unknown(text)
}

/// The member's own services, called on behalf of one request's caller.
#[derive(Clone)]
pub struct Local {
    server: Arc<EtcdServer>,
    leader_loss: LeaderLoss,
    metadata: MetadataMap,
    extensions: Extensions,
}

impl Local {
    /// Calls on behalf of the caller of `req`.
    pub fn of<T>(server: &Arc<EtcdServer>, leader_loss: &LeaderLoss, req: &Request<T>) -> Local {
        Local {
            server: server.clone(),
            leader_loss: leader_loss.clone(),
            metadata: req.metadata().clone(),
            extensions: req.extensions().clone(),
        }
    }

    pub fn server(&self) -> &Arc<EtcdServer> {
        &self.server
    }

    /// `body` as a request from the caller.
    fn request<T>(&self, body: T) -> Request<T> {
        Request::from_parts(self.metadata.clone(), self.extensions.clone(), body)
    }

    fn kv(&self) -> KvService {
        KvService {
            server: self.server.clone(),
        }
    }

    pub async fn txn(&self, t: TxnRequest) -> Result<TxnResponse, Status> {
        let r = self.kv().txn(self.request(t)).await.map_err(relay)?;
        Ok(r.into_inner())
    }

    pub async fn get(&self, r: RangeRequest) -> Result<RangeResponse, Status> {
        let r = self.kv().range(self.request(r)).await.map_err(relay)?;
        Ok(r.into_inner())
    }

    pub async fn delete(&self, key: Vec<u8>) -> Result<ResponseHeader, Status> {
        let req = DeleteRangeRequest {
            key,
            ..Default::default()
        };
        let r = self.kv().delete_range(self.request(req)).await;
        Ok(r.map_err(relay)?.into_inner().header.unwrap_or_default())
    }

    /// The lease a session of the caller's uses (concurrency.NewSession): the one named,
    /// or, when none is (0), a new lease of [`SESSION_TTL`] that nobody keeps alive.
    pub async fn session_lease(&self, lease: i64) -> Result<i64, Status> {
        if lease != 0 {
            return Ok(lease);
        }
        let service = LeaseService {
            server: self.server.clone(),
            leader_loss: self.leader_loss.clone(),
        };
        let req = LeaseGrantRequest {
            ttl: SESSION_TTL,
            id: 0,
        };
        let r = service
            .lease_grant(self.request(req))
            .await
            .map_err(relay)?;
        Ok(r.into_inner().id)
    }

    /// Waits until no key under `prefix` was created at or below `max_create_rev`
    /// (concurrency's waitDeletes); answers the header of the read that found none.
    pub async fn wait_deletes(
        &self,
        prefix: &[u8],
        max_create_rev: i64,
    ) -> Result<ResponseHeader, Status> {
        loop {
            let mut req = under(prefix, SortOrder::Descend);
            req.max_create_revision = max_create_rev;
            let resp = self.get(req).await?;
            let Some(last) = resp.kvs.first() else {
                return Ok(resp.header.unwrap_or_default());
            };
            self.wait_gone(&last.key, last.create_revision).await;
        }
    }

    /// Waits until the key `key` created at `create_rev` no longer exists in this member's
    /// store (deleted, or its lease revoked or expired).
    pub async fn wait_gone(&self, key: &[u8], create_rev: i64) {
        let mut published = self.server.state.hub.subscribe();
        loop {
            if self.local_key(key).map(|kv| kv.create_revision) != Some(create_rev) {
                return;
            }
            if published.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// `key` as this member's store holds it now.
    pub fn local_key(&self, key: &[u8]) -> Option<KeyValue> {
        let req = RangeRequest {
            key: key.to_vec(),
            ..Default::default()
        };
        let store = self.server.state.mvcc.read();
        store.range(&req).ok()?.kvs.into_iter().next()
    }
}

/// A range over every key under `prefix`, one key, sorted by create revision in `order`
/// (clientv3's WithFirstCreate / WithLastCreate).
pub fn under(prefix: &[u8], order: SortOrder) -> RangeRequest {
    RangeRequest {
        key: prefix.to_vec(),
        range_end: prefix_end(prefix),
        limit: 1,
        sort_order: order as i32,
        sort_target: SortTarget::Create as i32,
        ..Default::default()
    }
}

/// The end of the range of keys starting with `prefix` (clientv3's GetPrefixRangeEnd).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The key a session with `lease` holds under `prefix`: the lease ID in lower-case hex.
pub fn session_key(prefix: &[u8], lease: i64) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(format!("{lease:x}").as_bytes());
    key
}

/// A compare of `key`'s create revision with `rev`.
pub fn created_at(key: &[u8], rev: i64) -> Compare {
    Compare {
        result: CompareResult::Equal as i32,
        target: CompareTarget::Create as i32,
        key: key.to_vec(),
        target_union: Some(TargetUnion::CreateRevision(rev)),
        ..Default::default()
    }
}

/// A put of `key` attached to `lease`.
pub fn put_op(key: &[u8], value: &[u8], lease: i64) -> RequestOp {
    RequestOp {
        request: Some(Op::RequestPut(PutRequest {
            key: key.to_vec(),
            value: value.to_vec(),
            lease,
            ..Default::default()
        })),
    }
}

pub fn range_op(r: RangeRequest) -> RequestOp {
    RequestOp {
        request: Some(Op::RequestRange(r)),
    }
}

/// A range of the single key `key`.
pub fn key_only(key: &[u8]) -> RangeRequest {
    RangeRequest {
        key: key.to_vec(),
        ..Default::default()
    }
}

/// The range answer of a txn's `i`th operation (empty when it was not a range).
pub fn ranged(t: &TxnResponse, i: usize) -> Vec<KeyValue> {
    use etcd_proto::etcdserverpb::response_op::Response as R;
    match t.responses.get(i).and_then(|r| r.response.as_ref()) {
        Some(R::ResponseRange(r)) => r.kvs.clone(),
        _ => Vec::new(),
    }
}

/// Runs a cleanup (etcd's Unlock or Resign after a cancelled wait) when dropped armed: a
/// request whose client went away is dropped mid-wait, and its key must not stay behind to
/// block everyone queued after it.
pub struct Cleanup {
    local: Option<Local>,
    txn: TxnRequest,
}

impl Cleanup {
    /// Deletes `key` if it still has create revision `rev` when dropped armed.
    pub fn delete_if_created(local: &Local, key: &[u8], rev: i64) -> Cleanup {
        let txn = TxnRequest {
            compare: vec![created_at(key, rev)],
            success: vec![RequestOp {
                request: Some(Op::RequestDeleteRange(DeleteRangeRequest {
                    key: key.to_vec(),
                    ..Default::default()
                })),
            }],
            failure: vec![],
        };
        Cleanup {
            local: Some(local.clone()),
            txn,
        }
    }

    /// Runs the cleanup now, on the request's own task.
    pub async fn run(mut self) {
        if let Some(local) = self.local.take() {
            let _ = local.txn(std::mem::take(&mut self.txn)).await;
        }
    }

    /// Keeps the key.
    pub fn disarm(mut self) {
        self.local = None;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(local) = self.local.take() {
            let txn = std::mem::take(&mut self.txn);
            tokio::spawn(async move {
                let _ = local.txn(txn).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends_as_clientv3_computes_them() {
        assert_eq!(prefix_end(b"lock/"), b"lock0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn session_keys_name_the_lease_in_hex() {
        assert_eq!(
            session_key(b"l/", 0x694d7a4c1e2b3c0f),
            b"l/694d7a4c1e2b3c0f"
        );
        assert_eq!(session_key(b"l/", 10), b"l/a");
    }
}
