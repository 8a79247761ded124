//! The KV service: Range, Put, DeleteRange, Txn, Compact.

use std::sync::Arc;

use etcd_proto::etcdserverpb::kv_server::Kv;
use etcd_proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};
use etcd_proto::raftrequestpb::raft_request::Request as Raft;
use etcd_proto::raftrequestpb::raft_response::Response as Applied;
use tonic::{Request, Response, Status};

use super::{propose_expecting, validate};
use crate::api::caller::Credentials;
use crate::apply::txn;
use crate::auth::check;
use crate::quota;
use crate::server::EtcdServer;

/// KV service over one member.
pub struct KvService {
    pub server: Arc<EtcdServer>,
}

impl KvService {
    /// Waits for a linearizable read point unless the client asked for a serializable read.
    async fn read_barrier(&self, serializable: bool) -> Result<(), Status> {
        if !serializable {
            self.server.linearizable_read().await?;
        }
        Ok(())
    }
}

/// Whether every range in the txn tree asked for serializable reads.
fn txn_serializable(t: &TxnRequest) -> bool {
    use etcd_proto::etcdserverpb::request_op::Request as Op;
    t.success
        .iter()
        .chain(&t.failure)
        .all(|op| match &op.request {
            Some(Op::RequestRange(r)) => r.serializable,
            Some(Op::RequestTxn(t)) => txn_serializable(t),
            _ => true,
        })
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(&self, req: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        let creds = Credentials::of_request(&req);
        let req = req.into_inner();
        validate::range(&req)?;
        self.read_barrier(req.serializable).await?;
        let ai = creds.resolve(&self.server).await?.unwrap_or_default();
        let store = self.server.state.mvcc.read();
        check::range(
            &self.server.state.auth.read(),
            &ai,
            &req.key,
            &req.range_end,
        )?;
        let mut resp = store.range(&req)?;
        resp.header = Some(self.server.header(store.current_revision()));
        Ok(Response::new(resp))
    }

    async fn put(&self, req: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let creds = Credentials::of_request(&req);
        let req = req.into_inner();
        validate::put(&req)?;
        quota::check(&self.server, quota::put_cost(&req)).await?;
        propose_expecting!(self.server, creds, Raft::Put(req), Applied::Put)
    }

    async fn delete_range(
        &self,
        req: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        let creds = Credentials::of_request(&req);
        let req = req.into_inner();
        validate::delete(&req)?;
        propose_expecting!(
            self.server,
            creds,
            Raft::DeleteRange(req),
            Applied::DeleteRange
        )
    }

    async fn txn(&self, req: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        let creds = Credentials::of_request(&req);
        let req = req.into_inner();
        validate::txn(&req, self.server.limits.max_txn_ops)?;
        quota::check(&self.server, quota::txn_cost(&req)).await?;
        if txn::is_read_only(&req) {
            self.read_barrier(txn_serializable(&req)).await?;
            let ai = creds.resolve(&self.server).await?.unwrap_or_default();
            let store = self.server.state.mvcc.read();
            check::txn(&self.server.state.auth.read(), &ai, &req)?;
            let mut resp = txn::execute_read_only(&*store, &req)?;
            resp.header = Some(self.server.header(store.current_revision()));
            return Ok(Response::new(resp));
        }
        propose_expecting!(self.server, creds, Raft::Txn(req), Applied::Txn)
    }

    async fn compact(
        &self,
        req: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        let creds = Credentials::of_request(&req);
        propose_expecting!(
            self.server,
            creds,
            Raft::Compaction(req.into_inner()),
            Applied::Compaction
        )
    }
}
