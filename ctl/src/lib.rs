//! Command-line tools that talk to an etcd cluster through the gRPC clients generated
//! from `proto/`.

pub mod benchmark;
pub mod endpoints;
