//! openraft glue: the log store, the state machine, the peer network and start-up.

// openraft's storage traits fix `StorageError` (a large type) as the error type; boxing it
// at every helper would only add conversions back at the trait boundary.
#![allow(clippy::result_large_err)]

mod append_flight;
pub mod log_store;
pub mod network;
pub mod snapshot_file;
pub mod snapshot_install;
pub mod state_machine;
pub mod types;

#[cfg(test)]
mod conformance;

use std::sync::Arc;
use std::time::Duration;

use openraft::{Config, SnapshotPolicy};

use crate::state::KvState;
use crate::storage::Backend;
use types::Raft;

/// Raft timing and log-compaction settings, from etcd's flags.
#[derive(Debug, Clone)]
pub struct RaftSettings {
    pub heartbeat: Duration,
    pub election_timeout: Duration,
    /// `--snapshot-count`: committed entries between snapshots.
    pub snapshot_count: u64,
}

/// Errors starting raft.
#[derive(Debug, thiserror::Error)]
pub enum RaftStartError {
    #[error("invalid raft configuration: {0}")]
    Config(#[from] openraft::ConfigError),
    #[error("cannot start raft: {0}")]
    Fatal(#[from] openraft::error::Fatal<u64>),
}

/// Starts the raft node of member `id` over `backend`, applying to `state`.
pub async fn start(
    id: u64,
    settings: &RaftSettings,
    wal: Arc<crate::wal::Wal>,
    backend: Backend,
    state: Arc<KvState>,
    peers: crate::peer::Peers,
) -> Result<Raft, RaftStartError> {
    let election = settings.election_timeout.as_millis() as u64;
    let config = Config {
        cluster_name: "etcd".into(),
        heartbeat_interval: settings.heartbeat.as_millis() as u64,
        // openraft's follower campaigns after its leader lease (election_timeout_max) plus
        // a random timeout in [min, max); with these bounds a lost leader is replaced after
        // 1.5 to 2 election timeouts, as etcd's randomized [et, 2et) election gives.
        election_timeout_min: election / 2,
        election_timeout_max: election,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(settings.snapshot_count.max(1)),
        // etcd keeps this many entries after a snapshot so slow followers can catch up
        // from the log instead of a snapshot.
        max_in_snapshot_log_to_keep: 5000,
        max_payload_entries: 1000,
        ..Default::default()
    }
    .validate()?;
    let log = log_store::LogStore::new(wal, backend);
    let sm = state_machine::StateMachine::new(state);
    Ok(Raft::new(
        id,
        Arc::new(config),
        network::PeerNetwork { peers },
        log,
        sm,
    )
    .await?)
}
