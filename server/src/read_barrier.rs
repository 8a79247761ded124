//! Linearizable reads with a shared read index.
//!
//! A linearizable read must observe every write committed before it arrived. Confirming
//! leadership (openraft's `ensure_linearizable`) costs a round to a quorum, so as in etcd one
//! confirmation serves every read that was waiting when it started: readers queue up, a
//! single driver task takes the whole queue, confirms once, and releases them together.
//! Readers that arrive while a confirmation is running wait for the next one.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::error::{EtcdError, Result};
use crate::raft::types::Raft;

type Waiter = oneshot::Sender<Result<()>>;

#[derive(Default)]
struct Queue {
    waiters: Vec<Waiter>,
    driving: bool,
}

/// Coalesces linearizable read barriers.
#[derive(Clone)]
pub struct ReadBarrier {
    raft: Raft,
    queue: Arc<Mutex<Queue>>,
}

impl ReadBarrier {
    pub fn new(raft: Raft) -> Self {
        ReadBarrier {
            raft,
            queue: Arc::default(),
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
            let res = self
                .raft
                .ensure_linearizable()
                .await
                .map(|_| ())
                .map_err(crate::raft_errors::from_read);
            for w in batch {
                let _ = w.send(res.clone());
            }
        }
    }
}
