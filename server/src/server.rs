//! The running member: raft, the applied state and the request paths the API services use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_proto::etcdserverpb::ResponseHeader;
use etcd_proto::raftrequestpb::raft_response::Response;
use etcd_proto::raftrequestpb::{RaftRequest, RaftResponse};
use prost::Message;

use crate::error::{EtcdError, Result};
use crate::raft::types::{Proposal, Raft};
use crate::read_barrier::ReadBarrier;
use crate::state::KvState;

/// Limits on client requests, from etcd's flags.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `--max-request-bytes`.
    pub max_request_bytes: usize,
    /// `--max-txn-ops`.
    pub max_txn_ops: usize,
    /// How long a proposal may wait for commit before `request timed out`.
    pub request_timeout: Duration,
}

/// Who this member is.
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub member_id: u64,
    pub cluster_id: u64,
}

/// A member, as the API services see it.
pub struct EtcdServer {
    pub identity: Identity,
    pub raft: Raft,
    pub state: Arc<KvState>,
    pub limits: Limits,
    reads: ReadBarrier,
    term: AtomicU64,
    leader: AtomicU64,
}

impl EtcdServer {
    pub fn new(identity: Identity, raft: Raft, state: Arc<KvState>, limits: Limits) -> Arc<Self> {
        let reads = ReadBarrier::new(raft.clone());
        Arc::new(EtcdServer {
            identity,
            raft,
            state,
            limits,
            reads,
            term: AtomicU64::new(0),
            leader: AtomicU64::new(0),
        })
    }

    /// A response header at `revision`.
    pub fn header(&self, revision: i64) -> ResponseHeader {
        ResponseHeader {
            cluster_id: self.identity.cluster_id,
            member_id: self.identity.member_id,
            revision,
            raft_term: self.term.load(Ordering::Relaxed),
        }
    }

    /// A header at the current revision.
    pub fn current_header(&self) -> ResponseHeader {
        self.header(self.state.mvcc.read().current_revision())
    }

    /// Records the raft term and leader as raft reports them.
    pub fn observe_raft(&self, term: u64, leader: Option<u64>) {
        self.term.store(term, Ordering::Relaxed);
        self.leader.store(leader.unwrap_or(0), Ordering::Relaxed);
    }

    /// Current raft term.
    pub fn term(&self) -> u64 {
        self.term.load(Ordering::Relaxed)
    }

    /// Current leader's member ID (0 when there is none).
    pub fn leader(&self) -> u64 {
        self.leader.load(Ordering::Relaxed)
    }

    /// Waits until a read may be served linearizably from the local state.
    pub async fn linearizable_read(&self) -> Result<()> {
        match tokio::time::timeout(self.limits.request_timeout, self.reads.wait()).await {
            Ok(r) => r,
            Err(_) => Err(EtcdError::Timeout),
        }
    }

    /// Proposes `req` through raft and waits until it is applied. Errors found by the state
    /// machine come back as their etcd error.
    pub async fn propose(&self, req: RaftRequest) -> Result<(Response, i64)> {
        if req.encoded_len() > self.limits.max_request_bytes {
            return Err(EtcdError::RequestTooLarge);
        }
        let write = self.raft.client_write(Proposal(req));
        let resp = match tokio::time::timeout(self.limits.request_timeout, write).await {
            Err(_) => return Err(EtcdError::Timeout),
            Ok(r) => r.map_err(crate::raft_errors::from_write)?,
        };
        let RaftResponse { response, revision } = resp.data.0;
        match response {
            Some(Response::Error(e)) => Err(EtcdError::from_message(&e.message)),
            Some(r) => Ok((r, revision)),
            None => Err(EtcdError::Internal("empty apply result".into())),
        }
    }
}
