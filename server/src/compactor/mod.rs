//! Auto-compaction, as etcd 3.4's `v3compactor` does it (`--auto-compaction-mode` and
//! `--auto-compaction-retention`).
//!
//! Every member runs a compactor, but it only compacts while the member leads: a follower's
//! compactor keeps its clock and samples (as etcd's paused compactor does) so that a new
//! leader picks up where the old one left off. A compaction is an ordinary raft proposal,
//! so every member compacts to the same revision. The scheduling is written against
//! [`Compactable`] rather than the server so that tests can drive it with a paused clock.

mod periodic;
mod revision;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use etcd_proto::etcdserverpb::CompactionRequest;
use etcd_proto::raftrequestpb::raft_request::Request;
use etcd_proto::raftrequestpb::RaftRequest;

use crate::config::AutoCompaction;
use crate::error::EtcdError;
use crate::go_duration;
use crate::server::EtcdServer;

/// What a compactor needs from the member it compacts.
pub trait Compactable: Send + Sync + 'static {
    /// Whether this member leads right now; a compactor does nothing on followers.
    fn is_leader(&self) -> bool;
    /// The member's current revision.
    fn revision(&self) -> i64;
    /// Compacts the key history up to `revision`, through raft like a client's Compact.
    fn compact(&self, revision: i64) -> impl Future<Output = Result<(), EtcdError>> + Send;
}

impl Compactable for EtcdServer {
    fn is_leader(&self) -> bool {
        self.is_me(self.leader())
    }

    fn revision(&self) -> i64 {
        self.state.mvcc.read().current_revision()
    }

    async fn compact(&self, revision: i64) -> Result<(), EtcdError> {
        let req = RaftRequest {
            request: Some(Request::Compaction(CompactionRequest {
                revision,
                physical: false,
            })),
            header: None,
        };
        self.propose(req).await.map(drop)
    }
}

/// Runs the compactor `mode` asks for, forever.
pub async fn run<C: Compactable>(member: Arc<C>, mode: AutoCompaction) {
    match mode {
        AutoCompaction::Periodic(period) => periodic::run(&*member, period).await,
        AutoCompaction::Revision(retention) => revision::run(&*member, retention).await,
    }
}

/// Compacts to `revision` with etcd's log lines; `retention` is how the mode describes
/// what it keeps and `retry` when it will try again after a failure. Answers whether the
/// attempt counts as done: a revision somebody else compacted already does.
async fn attempt(
    member: &impl Compactable,
    revision: i64,
    retention: &str,
    retry: Duration,
) -> bool {
    tracing::info!(target: "compactor", "Starting auto-compaction at revision {revision} (retention: {retention})");
    match member.compact(revision).await {
        Ok(()) | Err(EtcdError::Compacted) => {
            tracing::info!(target: "compactor", "Finished auto-compaction at revision {revision}");
            true
        }
        Err(e) => {
            tracing::warn!(target: "compactor", "Failed auto-compaction at revision {revision} ({e})");
            tracing::info!(target: "compactor", "Retry after {}", go_duration::format(retry));
            false
        }
    }
}
