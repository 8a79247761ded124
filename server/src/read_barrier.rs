//! Linearizable reads with a shared read index.
//!
//! A linearizable read must observe every write committed before it arrived. Confirming
//! leadership (openraft's `ensure_linearizable`) costs a round to a quorum, so as in etcd one
//! confirmation serves every read that was waiting when it started: readers queue up, a
//! single driver task takes the whole queue, confirms once, and releases them together.
//! Readers that arrive while a confirmation is running wait for the next one.
//!
//! A confirmation round is bounded by the request timeout: a leader that stops answering
//! (paused, partitioned away) fails the readers of that round with `request timed out`,
//! and the next round asks whoever leads then, instead of every later read queueing
//! behind a call that never returns.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use etcd_proto::raftpeerpb::ReadIndexRequest;
use openraft::error::{CheckIsLeaderError, RaftError};

use crate::error::{EtcdError, Result};
use crate::peer::error::PeerError;
use crate::peer::Peers;
use crate::raft::types::Raft;

#[cfg(test)]
mod tests;

type Waiter = oneshot::Sender<Result<()>>;

/// One confirmation round: resolves once this member has applied everything committed
/// before the round started. The barrier decides when rounds run and how long they may
/// take; this only says how one is done.
pub trait Confirm: Send + Sync + 'static {
    fn confirm(&self) -> impl Future<Output = Result<()>> + Send;
}

/// Confirmation through raft: on the leader, a heartbeat round to a quorum; on a follower,
/// the leader's read index.
pub struct RaftConfirm {
    raft: Raft,
    peers: Peers,
}

#[derive(Default)]
struct Queue {
    waiters: Vec<Waiter>,
    driving: bool,
}

/// Coalesces linearizable read barriers.
pub struct ReadBarrier<C = RaftConfirm> {
    confirmer: Arc<C>,
    queue: Arc<Mutex<Queue>>,
    /// Longest confirmation round.
    round_limit: Duration,
}

impl<C> Clone for ReadBarrier<C> {
    fn clone(&self) -> Self {
        ReadBarrier {
            confirmer: self.confirmer.clone(),
            queue: self.queue.clone(),
            round_limit: self.round_limit,
        }
    }
}

impl ReadBarrier {
    pub fn new(raft: Raft, peers: Peers, round_limit: Duration) -> Self {
        ReadBarrier::with_confirmer(RaftConfirm { raft, peers }, round_limit)
    }
}

impl<C: Confirm> ReadBarrier<C> {
    /// A barrier whose rounds are done by `confirmer`, each bounded by `round_limit`.
    pub fn with_confirmer(confirmer: C, round_limit: Duration) -> Self {
        ReadBarrier {
            confirmer: Arc::new(confirmer),
            queue: Arc::default(),
            round_limit,
        }
    }

    /// Returns once the local state has applied everything committed before this call.
    pub async fn wait(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut q = self.queue.lock();
            q.waiters.push(tx);
            !std::mem::replace(&mut q.driving, true)
        };
        if start {
            tokio::spawn(self.clone().drive());
        }
        rx.await.unwrap_or(Err(EtcdError::Stopped))
    }

    async fn drive(self) {
        loop {
            let batch = {
                let mut q = self.queue.lock();
                if q.waiters.is_empty() {
                    q.driving = false;
                    return;
                }
                std::mem::take(&mut q.waiters)
            };
            let res = tokio::time::timeout(self.round_limit, self.confirmer.confirm())
                .await
                .unwrap_or(Err(EtcdError::Timeout));
            for w in batch {
                let _ = w.send(res.clone());
            }
        }
    }
}

/// How long a leader without a quorum waits before it asks its quorum again.
const QUORUM_RETRY: Duration = Duration::from_millis(100);

impl Confirm for RaftConfirm {
    /// Without a leader the round waits for one (bounded by the round limit, so the read
    /// ends with `request timed out`), as etcd's ReadIndex waits; only requests that ask
    /// for a leader fail fast (see `api::require_leader`).
    async fn confirm(&self) -> Result<()> {
        loop {
            match self.raft.ensure_linearizable().await {
                Ok(_) => return Ok(()),
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                    match f.leader_id {
                        // An unreachable leader: wait until another one is elected.
                        Some(leader) => match self.follower_read(leader).await {
                            Err(EtcdError::NoLeader) => self.wait_for_leader(Some(leader)).await?,
                            done => return done,
                        },
                        None => self.wait_for_leader(None).await?,
                    }
                }
                // A leader cut off from its quorum: etcd's steps down and the read waits
                // for the next leader. Ours retries until a quorum answers or another
                // member leads.
                Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => {
                    let me = self.raft.metrics().borrow().id;
                    let _ = self
                        .raft
                        .wait(Some(QUORUM_RETRY))
                        .metrics(|m| m.current_leader != Some(me), "another leader")
                        .await;
                }
                Err(e) => return Err(crate::raft_errors::from_read(e)),
            }
        }
    }
}

impl RaftConfirm {
    /// Waits until raft knows a leader other than `not`.
    async fn wait_for_leader(&self, not: Option<u64>) -> Result<()> {
        self.raft
            .wait(None)
            .metrics(
                |m| m.current_leader.is_some() && m.current_leader != not,
                "a leader",
            )
            .await
            .map(|_| ())
            .map_err(|_| EtcdError::Stopped)
    }

    /// On a follower: asks the leader for its read index and waits until this member has
    /// applied up to it (etcd's ReadIndex).
    async fn follower_read(&self, leader: u64) -> Result<()> {
        let mut client = self.peers.member(&self.raft, leader)?;
        let index = client
            .read_index(self.peers.request(ReadIndexRequest {}))
            .await
            .map_err(|s| PeerError::from_status(&s).into_etcd())?
            .into_inner()
            .index;
        self.raft
            .wait(None)
            .applied_index_at_least(Some(index), "read index applied")
            .await
            .map(|_| ())
            .map_err(|_| EtcdError::Stopped)
    }
}
