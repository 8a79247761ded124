//! One module per etcdctl command group.

pub mod check;
pub mod compaction;
pub mod endpoint;
pub mod kv;
pub mod lease;
pub mod maintenance;
pub mod member;
pub mod mirror;
pub mod snapshot;
pub mod txn;
pub mod version;
pub mod watch;
mod words;
