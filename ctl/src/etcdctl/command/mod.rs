//! One module per etcdctl command group.

pub mod auth;
pub mod check;
pub mod compaction;
pub mod concurrency;
pub mod endpoint;
pub mod kv;
pub mod lease;
pub mod maintenance;
pub mod member;
pub mod mirror;
mod positional;
pub mod role;
pub mod snapshot;
pub mod txn;
pub mod user;
pub mod version;
pub mod watch;
mod words;
