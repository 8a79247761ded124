//! Finding etcd members through DNS SRV records (`--discovery-srv`) and through a
//! discovery service (`--discovery`, the member only). The SRV part is shared by the member
//! (bootstrapping its initial cluster), the gateway (the endpoints it proxies to) and
//! etcdctl (the endpoints it dials).
//!
//! The record names, the order they are looked up in and what is built from them follow
//! etcd's `srv` package; the lookups go through hickory's resolver with the system's
//! configuration (`/etc/resolv.conf`), so a member resolves the same way in a pod, a
//! container and a network namespace.

mod error;
mod resolver;
mod service;
mod srv;

pub use error::SrvError;
pub use resolver::{Resolver, SrvRecord};
pub use service::{Discovery, ServiceError};
pub use srv::{client_endpoints, server_cluster, srv_service, ClientEndpoints, ClusterEntry};
