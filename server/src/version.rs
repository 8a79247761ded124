//! Versions this member reports.

/// The etcd API level we implement (a superset of 3.4): what `/version` and Status report,
/// so client version checks (Kubernetes among them) pass.
pub const API_VERSION: &str = "3.5.0";

/// The cluster version reported beside it.
pub const CLUSTER_VERSION: &str = "3.5.0";

/// Our own build version.
pub const BUILD_VERSION: &str = env!("CARGO_PKG_VERSION");
