//! An etcd member: etcd's v3 API served from an MVCC store on sled, replicated with
//! openraft. See the workspace README for how the pieces fit together.

pub mod alarm;
pub mod api;
pub mod apply;
pub mod auth;
pub mod batcher;
pub mod cluster;
pub mod compactor;
pub mod concurrency;
pub mod config;
pub mod error;
pub mod forward;
pub use go_text::duration as go_duration;
pub mod leader_transfer;
pub mod lease;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod mvcc;
pub mod peer;
pub mod quota;
pub mod raft;
pub mod raft_errors;
pub mod read_barrier;
pub mod run;
pub mod serve;
pub mod server;
pub mod snapshot;
pub mod state;
pub mod storage;
pub mod tasks;
pub mod tls;
pub mod version;
pub mod wal;
pub mod watch;
