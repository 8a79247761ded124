//! Proposal batching on the leader. Client writes queue here; a driver task takes every
//! queued request (up to a size limit) and proposes them as one raft entry, so a burst of
//! writes costs each member one log append (one WAL write and one fdatasync, see
//! [`crate::wal::Wal::append`]) and one backend batch (the state machine writes the entries
//! of an apply in one) instead of one each. Each request is still applied on its own, in
//! queue order: a write takes its own revision, and a request that fails fails alone.
//!
//! A few batches may be in flight at once (raft pipelines them); when all slots are busy
//! the queue grows, and the next batch is larger. A lone request is proposed as is.
//!
//! The queue is bounded: when it is full the member is overloaded and a new request is
//! refused at once with etcd's `too many requests` rather than queued without limit. A
//! request whose client stopped waiting (it gave up or timed out) before its batch was
//! formed is dropped instead of proposed: nobody would learn its outcome.

use std::future::Future;
use std::sync::Arc;

use etcd_proto::raftrequestpb::raft_request::Request;
use etcd_proto::raftrequestpb::raft_response::Response;
use etcd_proto::raftrequestpb::{RaftRequest, RaftResponse, RequestBatch};
use prost::Message;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::error::{EtcdError, Result};
use crate::raft::types::{Proposal, Raft};

/// Batches in flight at once.
const IN_FLIGHT: usize = 4;
/// Most requests in one batch.
const MAX_REQUESTS: usize = 1024;
/// Most encoded bytes in one batch (a single larger request still goes alone).
const MAX_BYTES: usize = 4 * 1024 * 1024;
/// Requests waiting for a batch before new ones are refused. With every slot busy, about
/// `IN_FLIGHT` batches are in raft and this many wait for the next one.
pub const QUEUE: usize = 4 * MAX_REQUESTS;

type Waiter = oneshot::Sender<Result<RaftResponse>>;

/// What the batcher proposes through: raft on a running member.
pub trait Proposer: Clone + Send + Sync + 'static {
    /// Proposes one entry and answers its result once applied.
    fn propose(&self, req: RaftRequest) -> impl Future<Output = Result<RaftResponse>> + Send;

    /// Runs after each batch is answered.
    fn after_batch(&self) -> impl Future<Output = ()> + Send;
}

impl Proposer for Raft {
    async fn propose(&self, req: RaftRequest) -> Result<RaftResponse> {
        self.client_write(Proposal(req))
            .await
            .map(|r| r.data.0)
            .map_err(crate::raft_errors::from_write)
    }

    /// Sends the new commit index to followers now rather than with the next heartbeat: a
    /// follower answers a forwarded write, and serves a read index, only once it has
    /// applied the entry, which it can do only when it knows the entry is committed.
    async fn after_batch(&self) {
        let has_followers = self
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .nodes()
            .nth(1)
            .is_some();
        if has_followers {
            let _ = self.trigger().heartbeat().await;
        }
    }
}

/// Handle to the batching task. Cheap to clone.
#[derive(Clone)]
pub struct Batcher {
    queue: mpsc::Sender<(RaftRequest, Waiter)>,
}

impl Batcher {
    /// Starts the driver task proposing through `proposer`.
    pub fn start(proposer: impl Proposer) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(drive(proposer, rx));
        Batcher { queue }
    }

    /// Proposes `req` (this member must be the leader) and waits for its own response.
    pub async fn propose(&self, req: RaftRequest) -> Result<RaftResponse> {
        let answer = self.submit(req)?;
        answer.await.unwrap_or(Err(EtcdError::Stopped))
    }

    /// Queues `req` at once, or refuses it when the queue is full. Dropping the receiver
    /// before the request's batch is formed withdraws it.
    fn submit(&self, req: RaftRequest) -> Result<oneshot::Receiver<Result<RaftResponse>>> {
        let (tx, rx) = oneshot::channel();
        match self.queue.try_send((req, tx)) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(EtcdError::TooManyRequests),
            Err(TrySendError::Closed(_)) => Err(EtcdError::Stopped),
        }
    }
}

/// The next request whose client still waits, if the queue is not closed.
async fn next_waited(
    rx: &mut mpsc::Receiver<(RaftRequest, Waiter)>,
) -> Option<(RaftRequest, Waiter)> {
    loop {
        let item = rx.recv().await?;
        if !item.1.is_closed() {
            return Some(item);
        }
    }
}

async fn drive(proposer: impl Proposer, mut rx: mpsc::Receiver<(RaftRequest, Waiter)>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut carried = None;
    loop {
        let first = match carried.take() {
            Some(item) => item,
            None => match next_waited(&mut rx).await {
                Some(item) => item,
                None => return,
            },
        };
        // Wait for a slot before draining: requests arriving meanwhile join this batch.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut bytes = first.0.encoded_len();
        let mut batch = vec![first];
        while batch.len() < MAX_REQUESTS {
            let Ok(item) = rx.try_recv() else { break };
            if item.1.is_closed() {
                continue;
            }
            bytes += item.0.encoded_len();
            if bytes > MAX_BYTES {
                carried = Some(item);
                break;
            }
            batch.push(item);
        }
        // The first request's client may have gone while waiting for the slot.
        batch.retain(|(_, waiter)| !waiter.is_closed());
        if batch.is_empty() {
            continue;
        }
        let proposer = proposer.clone();
        tokio::spawn(async move {
            let _slot = slot;
            propose(&proposer, batch).await;
            proposer.after_batch().await;
        });
    }
}

/// Proposes one batch and answers every waiter.
async fn propose(proposer: &impl Proposer, mut batch: Vec<(RaftRequest, Waiter)>) {
    if batch.len() == 1 {
        let (req, waiter) = batch.pop().expect("one request");
        let _ = waiter.send(proposer.propose(req).await);
        return;
    }
    let (requests, waiters): (Vec<RaftRequest>, Vec<Waiter>) = batch.into_iter().unzip();
    let req = RaftRequest {
        request: Some(Request::Batch(RequestBatch { requests })),
        header: None,
    };
    let answers = match proposer.propose(req).await {
        Ok(resp) => match resp.response {
            Some(Response::Batch(b)) if b.responses.len() == waiters.len() => {
                b.responses.into_iter().map(Ok).collect()
            }
            other => {
                let e = EtcdError::Internal(format!("unexpected batch result {other:?}"));
                vec![Err(e); waiters.len()]
            }
        },
        Err(e) => vec![Err(e); waiters.len()],
    };
    for (waiter, answer) in waiters.into_iter().zip(answers) {
        let _ = waiter.send(answer);
    }
}

#[cfg(test)]
mod tests;
