//! The running member: raft, the applied state and the request paths the API services use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_proto::etcdserverpb::{
    LeaseKeepAliveRequest, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, ResponseHeader,
};
use etcd_proto::raftrequestpb::raft_request::Request;
use etcd_proto::raftrequestpb::raft_response::Response;
use etcd_proto::raftrequestpb::{LeaseCheckpoint, LeaseCheckpoints, RaftRequest, RaftResponse};
use prost::Message;

use crate::batcher::Batcher;
use crate::error::{EtcdError, Result};
use crate::forward::Route;
use crate::peer::client::raft_client;
use crate::peer::Peers;
use crate::raft::types::{Proposal, Raft};
use crate::read_barrier::ReadBarrier;
use crate::state::KvState;
use crate::wal::Wal;

/// Limits on client requests, from etcd's flags.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `--max-request-bytes`.
    pub max_request_bytes: usize,
    /// `--max-txn-ops`.
    pub max_txn_ops: usize,
    /// How long a proposal may wait for commit before `request timed out`.
    pub request_timeout: Duration,
    /// `--strict-reconfig-check`: refuse membership changes that could lose quorum.
    pub strict_reconfig_check: bool,
    /// `--quota-backend-bytes`: the database size at which NOSPACE is raised.
    pub quota_bytes: u64,
}

/// How this member authenticates clients, from etcd's flags.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `--bcrypt-cost`, within bcrypt's bounds.
    pub bcrypt_cost: u32,
    /// `--client-cert-auth`: a verified client certificate's CN names the user of a
    /// request that carries no token.
    pub client_cert_auth: bool,
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
    pub auth_settings: AuthSettings,
    /// Connections to the other members.
    pub peers: Peers,
    /// The raft log, where the commit index is read (openraft's metrics do not carry it).
    pub wal: Arc<Wal>,
    batcher: Batcher,
    reads: ReadBarrier,
    term: AtomicU64,
    /// The leader as clients see it (0: none): raft's, except that a leader cut off from
    /// its quorum, or a follower not hearing from its leader, counts as none (see
    /// `tasks::follow_raft`).
    leader: tokio::sync::watch::Sender<u64>,
    /// The last leader whose AppendEntries this member took, and when.
    leader_contact: parking_lot::Mutex<Option<(u64, Instant)>>,
}

impl EtcdServer {
    pub fn new(
        identity: Identity,
        raft: Raft,
        state: Arc<KvState>,
        limits: Limits,
        auth_settings: AuthSettings,
        peers: Peers,
        wal: Arc<Wal>,
    ) -> Arc<Self> {
        let reads = ReadBarrier::new(raft.clone(), peers.clone(), limits.request_timeout);
        let batcher = Batcher::start(raft.clone());
        Arc::new(EtcdServer {
            identity,
            raft,
            state,
            limits,
            auth_settings,
            peers,
            wal,
            batcher,
            reads,
            term: AtomicU64::new(0),
            leader: tokio::sync::watch::Sender::new(0),
            leader_contact: parking_lot::Mutex::new(None),
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

    /// Records the raft term and the leader clients are to see.
    pub fn observe_raft(&self, term: u64, leader: Option<u64>) {
        self.term.store(term, Ordering::Relaxed);
        self.leader.send_if_modified(|l| {
            let changed = *l != leader.unwrap_or(0);
            *l = leader.unwrap_or(0);
            changed
        });
    }

    /// Records that `leader`'s AppendEntries (a heartbeat or entries) was taken.
    pub fn heard_from_leader(&self, leader: u64) {
        *self.leader_contact.lock() = Some((leader, Instant::now()));
    }

    /// When this member last took an AppendEntries from `leader`.
    pub fn last_heard_from(&self, leader: u64) -> Option<Instant> {
        match *self.leader_contact.lock() {
            Some((l, at)) if l == leader => Some(at),
            _ => None,
        }
    }

    /// Current raft term.
    pub fn term(&self) -> u64 {
        self.term.load(Ordering::Relaxed)
    }

    /// Current leader's member ID (0 when there is none).
    pub fn leader(&self) -> u64 {
        *self.leader.borrow()
    }

    /// Follows the leader as clients see it (0: none).
    pub fn subscribe_leader(&self) -> tokio::sync::watch::Receiver<u64> {
        self.leader.subscribe()
    }

    /// Waits until a read may be served linearizably from the local state.
    pub async fn linearizable_read(&self) -> Result<()> {
        match tokio::time::timeout(self.limits.request_timeout, self.reads.wait()).await {
            Ok(r) => r,
            Err(_) => Err(EtcdError::Timeout),
        }
    }

    /// Proposes `req` through raft and waits until it is applied here. A follower forwards
    /// the request to the leader and answers once it has applied the entry itself, as an
    /// etcd follower does. Errors found by the state machine come back as their etcd error.
    pub async fn propose(&self, req: RaftRequest) -> Result<(Response, i64)> {
        if req.encoded_len() > self.limits.max_request_bytes {
            return Err(EtcdError::RequestTooLarge);
        }
        self.check_apply_lag()?;
        let RaftResponse { response, revision } =
            self.within_request_timeout(self.replicate(req)).await?;
        match response {
            Some(Response::Error(e)) => Err(e.into()),
            Some(r) => Ok((r, revision)),
            None => Err(EtcdError::Internal("empty apply result".into())),
        }
    }

    /// Refuses new requests while this member applies more than 5000 entries behind its
    /// commit index, as etcd does: they would only wait in line and time out.
    fn check_apply_lag(&self) -> Result<()> {
        let applied = self.raft.metrics().borrow().last_applied.map(|l| l.index);
        match apply_lag_exceeded(Some(self.committed_index()), applied) {
            true => Err(EtcdError::TooManyRequests),
            false => Ok(()),
        }
    }

    /// Raft's commit index as this member knows it (openraft's metrics do not carry it;
    /// openraft saves it to the WAL before applying up to it, so read after the applied
    /// index it is never behind that).
    pub fn committed_index(&self) -> u64 {
        crate::raft::log_store::committed_index(&self.wal).unwrap_or(0)
    }

    /// Runs `fut` bounded by the request timeout (`etcdserver: request timed out`).
    pub async fn within_request_timeout<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        tokio::time::timeout(self.limits.request_timeout, fut)
            .await
            .unwrap_or(Err(EtcdError::Timeout))
    }

    /// The current leader, waiting for an election when there is none.
    pub async fn leader_id(&self) -> Result<u64> {
        self.leader_other_than(0).await
    }

    /// Waits until the leader is known and is not `old`.
    pub async fn leader_other_than(&self, old: u64) -> Result<u64> {
        let mut leader = self.leader.subscribe();
        let found = leader.wait_for(|l| *l != 0 && *l != old).await;
        found.map(|l| *l).map_err(|_| EtcdError::Stopped)
    }

    /// Whether `id` is this member.
    pub fn is_me(&self, id: u64) -> bool {
        id == self.identity.member_id
    }

    async fn replicate(&self, req: RaftRequest) -> Result<RaftResponse> {
        let routed = self
            .route(|ch| {
                let req = self.peers.request(req.clone());
                async move { raft_client(ch).propose(req).await }
            })
            .await?;
        let resp = match routed {
            Route::Local => return self.propose_local(req).await,
            Route::Remote(resp) => resp.into_inner(),
        };
        let mut applied = self.state.hub.subscribe();
        let _ = applied.wait_for(|rev| *rev >= resp.revision).await;
        Ok(resp)
    }

    /// Proposes on this member, which must be the leader, batched with concurrent writes.
    pub async fn propose_local(&self, req: RaftRequest) -> Result<RaftResponse> {
        self.batcher.propose(req).await
    }

    /// On the leader: confirms leadership and gives the index a linearizable read must see.
    pub async fn read_index_local(&self) -> Result<u64> {
        let read_log_id = self
            .raft
            .ensure_linearizable()
            .await
            .map_err(crate::raft_errors::from_read)?;
        Ok(read_log_id.map(|l| l.index).unwrap_or(0))
    }

    /// Renews lease `id` (a keep-alive) on the leader, which owns lease expiry; answers its
    /// TTL, 0 when the lease does not exist (as etcd answers).
    pub async fn lease_renew(&self, id: i64) -> Result<i64> {
        let routed = self.route(|ch| {
            let req = self.peers.request(LeaseKeepAliveRequest { id });
            async move { raft_client(ch).lease_keep_alive(req).await }
        });
        let routed = self.within_request_timeout(routed).await?;
        if let Route::Remote(resp) = routed {
            return Ok(resp.into_inner().ttl);
        }
        let renewed = {
            let mut lessor = self.state.lessor.lock();
            if !lessor.is_primary() {
                return Err(EtcdError::NotLeader);
            }
            lessor.renew(id)
        };
        match renewed {
            Ok((ttl, reset_checkpoint)) => {
                if reset_checkpoint {
                    self.reset_checkpoint(id);
                }
                Ok(ttl)
            }
            Err(EtcdError::LeaseNotFound) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// A keep-alive makes the lease's last checkpoint stale; record that through raft so
    /// a new leader does not resurrect the old remaining TTL.
    fn reset_checkpoint(&self, id: i64) {
        let req = RaftRequest {
            request: Some(Request::LeaseCheckpoints(LeaseCheckpoints {
                checkpoints: vec![LeaseCheckpoint {
                    id,
                    remaining_ttl: 0,
                }],
            })),
            header: None,
        };
        let raft = self.raft.clone();
        tokio::spawn(async move {
            if let Err(e) = raft.client_write(Proposal(req)).await {
                tracing::warn!(target: "lease", "failed to reset checkpoint of lease {id:x}: {e}");
            }
        });
    }

    /// A lease's remaining TTL as the leader knows it (followers ask the leader).
    pub async fn lease_time_to_live(
        &self,
        req: LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse> {
        let routed = self.route(|ch| {
            let req = self.peers.request(req);
            async move { raft_client(ch).lease_time_to_live(req).await }
        });
        let routed = self.within_request_timeout(routed).await?;
        if let Route::Remote(resp) = routed {
            return Ok(LeaseTimeToLiveResponse {
                header: Some(self.current_header()),
                ..resp.into_inner()
            });
        }
        let header = Some(self.current_header());
        let lessor = self.state.lessor.lock();
        Ok(match lessor.get(req.id) {
            None => LeaseTimeToLiveResponse {
                header,
                id: req.id,
                ttl: -1,
                ..Default::default()
            },
            Some(l) => LeaseTimeToLiveResponse {
                header,
                id: req.id,
                ttl: l.remaining_secs(Instant::now()),
                granted_ttl: l.ttl,
                keys: if req.keys {
                    l.keys.iter().cloned().collect()
                } else {
                    Vec::new()
                },
            },
        })
    }
}

/// etcd's `maxGapBetweenApplyAndCommitIndex`.
const MAX_APPLY_LAG: u64 = 5000;

/// Whether applying lags the commit index by more than [`MAX_APPLY_LAG`] entries.
fn apply_lag_exceeded(committed: Option<u64>, applied: Option<u64>) -> bool {
    committed.unwrap_or(0) > applied.unwrap_or(0) + MAX_APPLY_LAG
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_refused_beyond_5000_unapplied_entries() {
        assert!(!apply_lag_exceeded(None, None));
        assert!(!apply_lag_exceeded(Some(5000), None));
        assert!(apply_lag_exceeded(Some(5001), None));
        assert!(!apply_lag_exceeded(Some(10_000), Some(5000)));
        assert!(apply_lag_exceeded(Some(10_001), Some(5000)));
        // A follower that has applied past its own log (a snapshot) is not behind.
        assert!(!apply_lag_exceeded(Some(10), Some(20)));
    }
}
