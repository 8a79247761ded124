//! Go's duration syntax for etcdctl's flags and its printed timings: the server's own
//! implementation, shared.

pub use etcd_server::go_duration::{format, parse};
