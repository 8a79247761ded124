//! Deleting the records compaction dropped, in bounded steps between applies.
//!
//! A compaction of a large history drops many records; deleting them all in the
//! compacting apply would hold the store's write lock (and with it every reader and the
//! raft state machine) for as long as that takes. The apply deletes the first
//! [`PURGE_CHUNK`] and this task the rest, one chunk per short hold of the lock with a
//! pause between, as etcd's compaction does (`compaction-batch-limit` 1000, 10 ms
//! `compaction-sleep-interval`). Nothing is deleted while an export pins history.

use std::sync::Arc;
use std::time::Duration;

use super::KvState;
use crate::mvcc::PURGE_CHUNK;

/// Pause between two steps while records are left, so writers get the lock in between.
const STEP_PAUSE: Duration = Duration::from_millis(10);
/// How often an idle purger looks for work.
const IDLE_CHECK: Duration = Duration::from_millis(100);

impl KvState {
    /// Deletes up to `limit` doomed records in one backend batch; returns how many
    /// (0 when none are left or history is pinned). Blocks; run it off the runtime.
    pub fn purge_step(&self, limit: usize) -> crate::error::Result<usize> {
        if self.mvcc.read().doomed_count() == 0 {
            return Ok(0);
        }
        let mut mvcc = self.mvcc.write();
        let mut batch = sled::Batch::default();
        let purged = mvcc.purge_into(&mut batch, limit);
        if purged > 0 {
            self.backend
                .apply(batch)
                .map_err(|e| crate::error::EtcdError::Internal(e.to_string()))?;
        }
        Ok(purged)
    }
}

/// Runs for the life of the member.
pub async fn run(state: Arc<KvState>) {
    let mut purging = false;
    loop {
        let s = state.clone();
        let purged = tokio::task::spawn_blocking(move || s.purge_step(PURGE_CHUNK)).await;
        let pause = match purged {
            Ok(Ok(n)) if n > 0 => {
                purging = true;
                STEP_PAUSE
            }
            Ok(Ok(_)) if purging => {
                // A compaction's purge is over: what it freed goes back to the system.
                purging = false;
                let _ = tokio::task::spawn_blocking(crate::memory::release_free_memory).await;
                IDLE_CHECK
            }
            Ok(Ok(_)) => IDLE_CHECK,
            Ok(Err(e)) => {
                tracing::warn!(target: "mvcc", "failed to delete compacted records: {e}");
                IDLE_CHECK
            }
            Err(_) => return,
        };
        tokio::time::sleep(pause).await;
    }
}
