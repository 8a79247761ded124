//! `etcd gateway start`'s flags (etcd 3.4's, with its defaults), plus ours for what
//! etcd's gateway lacks: periodic SRV re-resolution, a metrics/readiness listener and a
//! grace period at shutdown.

use std::time::Duration;

use clap::Parser;

/// Go's duration syntax for clap.
fn duration(text: &str) -> Result<Duration, String> {
    go_text::duration::parse(text)
}

/// Go's boolean flag values.
fn boolean(text: &str) -> Result<bool, String> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid boolean value {text:?}")),
    }
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "etcd gateway start",
    about = "start the gateway",
    long_about = "Start the gateway: a TCP proxy that forwards every client connection, byte \
                  for byte, to one of the cluster's members. gRPC, HTTP and TLS pass through \
                  untouched; a member that cannot be dialled is skipped for --retry-delay."
)]
pub struct Flags {
    /// listen address
    #[arg(long, default_value = "127.0.0.1:23790")]
    pub listen_addr: String,

    /// comma separated etcd cluster endpoints
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:2379")]
    pub endpoints: Vec<String>,

    /// DNS domain used to bootstrap initial cluster
    #[arg(long, default_value = "")]
    pub discovery_srv: String,

    /// service name to query when using DNS discovery
    #[arg(long, default_value = "")]
    pub discovery_srv_name: String,

    /// accept insecure SRV records
    #[arg(long, default_value = "false", num_args = 0..=1, default_missing_value = "true", value_parser = boolean)]
    pub insecure_discovery: bool,

    /// path to the client server TLS CA file for verifying the discovered endpoints when discovery-srv is provided.
    #[arg(long, default_value = "")]
    pub trusted_ca_file: String,

    /// duration of delay before retrying failed endpoints
    #[arg(long, default_value = "1m0s", value_parser = duration)]
    pub retry_delay: Duration,

    /// how often to look the SRV records up again, so members added or replaced are picked
    /// up without a restart (0 disables; not in etcd, which resolves once at start)
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub srv_refresh_interval: Duration,

    /// address for /metrics, /livez and /readyz (ready while an endpoint is active); empty
    /// disables it (not in etcd)
    #[arg(long, default_value = "")]
    pub listen_metrics_addr: String,

    /// on SIGTERM, how long to wait for open connections to finish after the listener is
    /// closed (not in etcd, which stops at once)
    #[arg(long, default_value = "5s", value_parser = duration)]
    pub shutdown_grace: Duration,
}
