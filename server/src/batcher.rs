//! Proposal batching on the leader. Client writes queue here; a driver task takes every
//! queued request (up to a size limit) and proposes them as one raft entry, so a burst of
//! writes costs each member one log append (one WAL write and one fdatasync, see
//! [`crate::wal::Wal::append`]) and one backend batch (the state machine writes the entries
//! of an apply in one) instead of one each. Each request is still applied on its own, in
//! queue order: a write takes its own revision, and a request that fails fails alone.
//!
//! A few batches may be in flight at once (raft pipelines them); when all slots are busy
//! the queue grows, and the next batch is larger. A lone request is proposed as is.

use std::sync::Arc;

use etcd_proto::raftrequestpb::raft_request::Request;
use etcd_proto::raftrequestpb::raft_response::Response;
use etcd_proto::raftrequestpb::{RaftRequest, RaftResponse, RequestBatch};
use prost::Message;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::error::{EtcdError, Result};
use crate::raft::types::{Proposal, Raft};

/// Batches in flight at once.
const IN_FLIGHT: usize = 4;
/// Most requests in one batch.
const MAX_REQUESTS: usize = 1024;
/// Most encoded bytes in one batch (a single larger request still goes alone).
const MAX_BYTES: usize = 4 * 1024 * 1024;

type Waiter = oneshot::Sender<Result<RaftResponse>>;

/// Handle to the batching task. Cheap to clone.
#[derive(Clone)]
pub struct Batcher {
    queue: mpsc::UnboundedSender<(RaftRequest, Waiter)>,
}

impl Batcher {
    /// Starts the driver task proposing through `raft`.
    pub fn start(raft: Raft) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(drive(raft, rx));
        Batcher { queue }
    }

    /// Proposes `req` (this member must be the leader) and waits for its own response.
    pub async fn propose(&self, req: RaftRequest) -> Result<RaftResponse> {
        let (tx, rx) = oneshot::channel();
        self.queue.send((req, tx)).map_err(|_| EtcdError::Stopped)?;
        rx.await.unwrap_or(Err(EtcdError::Stopped))
    }
}

async fn drive(raft: Raft, mut rx: mpsc::UnboundedReceiver<(RaftRequest, Waiter)>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut carried = None;
    loop {
        let first = match carried.take() {
            Some(item) => item,
            None => match rx.recv().await {
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
            bytes += item.0.encoded_len();
            if bytes > MAX_BYTES {
                carried = Some(item);
                break;
            }
            batch.push(item);
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            let _slot = slot;
            propose(&raft, batch).await;
            tell_followers(&raft).await;
        });
    }
}

/// Sends the new commit index to followers now rather than with the next heartbeat: a
/// follower answers a forwarded write, and serves a read index, only once it has applied
/// the entry, which it can do only when it knows the entry is committed.
async fn tell_followers(raft: &Raft) {
    let has_followers = raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .nodes()
        .nth(1)
        .is_some();
    if has_followers {
        let _ = raft.trigger().heartbeat().await;
    }
}

/// Proposes one batch and answers every waiter.
async fn propose(raft: &Raft, mut batch: Vec<(RaftRequest, Waiter)>) {
    if batch.len() == 1 {
        let (req, waiter) = batch.pop().expect("one request");
        let res = raft
            .client_write(Proposal(req))
            .await
            .map(|r| r.data.0)
            .map_err(crate::raft_errors::from_write);
        let _ = waiter.send(res);
        return;
    }
    let (requests, waiters): (Vec<RaftRequest>, Vec<Waiter>) = batch.into_iter().unzip();
    let req = RaftRequest {
        request: Some(Request::Batch(RequestBatch { requests })),
    };
    match raft.client_write(Proposal(req)).await {
        Ok(resp) => match resp.data.0.response {
            Some(Response::Batch(b)) if b.responses.len() == waiters.len() => {
                for (waiter, r) in waiters.into_iter().zip(b.responses) {
                    let _ = waiter.send(Ok(r));
                }
            }
            other => {
                let e = EtcdError::Internal(format!("unexpected batch result {other:?}"));
                waiters
                    .into_iter()
                    .for_each(|w| drop(w.send(Err(e.clone()))));
            }
        },
        Err(e) => {
            let e = crate::raft_errors::from_write(e);
            waiters
                .into_iter()
                .for_each(|w| drop(w.send(Err(e.clone()))));
        }
    }
}
