//! Command-line tools that talk to an etcd cluster through the gRPC clients generated
//! from `proto/`: `etcdctl` and `etcd-benchmark`.

pub mod benchmark;
pub mod endpoints;
pub mod etcdctl;
pub mod rate;
