//! The flag table: every flag etcd 3.4 accepts, with its default, and whether this member
//! acts on it yet. The command-line parser, the environment and `--help` are all built from
//! this one table so they cannot drift apart.

/// Whether a flag takes a value or is a Go-style boolean (`--x`, `--x=true`, `--x=false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Value,
    Bool,
}

/// Whether setting a flag changes anything here yet. Accepted-only flags are validated
/// like etcd does and a non-default value is reported at start-up, so nobody is misled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Honoured,
    AcceptedOnly,
}

/// One etcd flag.
#[derive(Debug)]
pub struct Flag {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: Kind,
    pub effect: Effect,
    pub help: &'static str,
}

const fn v(name: &'static str, default: &'static str, effect: Effect, help: &'static str) -> Flag {
    Flag {
        name,
        default,
        kind: Kind::Value,
        effect,
        help,
    }
}

const fn b(name: &'static str, default: &'static str, effect: Effect, help: &'static str) -> Flag {
    Flag {
        name,
        default,
        kind: Kind::Bool,
        effect,
        help,
    }
}

use Effect::{AcceptedOnly as A, Honoured as H};

/// Flags grouped as `etcd --help` groups them.
pub const SECTIONS: &[(&str, &[Flag])] = &[
    (
        "Member",
        &[
            v("name", "default", H, "Human-readable name for this member."),
            v("data-dir", "${name}.etcd", H, "Path to the data directory."),
            v("wal-dir", "", A, "Path to a dedicated WAL directory."),
            v("snapshot-count", "100000", H, "Number of committed transactions to trigger a snapshot to disk."),
            v("heartbeat-interval", "100", H, "Time (in milliseconds) of a heartbeat interval."),
            v("election-timeout", "1000", H, "Time (in milliseconds) for an election to timeout."),
            b("initial-election-tick-advance", "true", A, "Whether to fast-forward initial election ticks on boot."),
            v("listen-peer-urls", "http://localhost:2380", H, "List of URLs to listen on for peer traffic."),
            v("listen-client-urls", "http://localhost:2379", H, "List of URLs to listen on for client traffic."),
            v("max-snapshots", "5", A, "Maximum number of snapshot files to retain (0 is unlimited)."),
            v("max-wals", "5", A, "Maximum number of wal files to retain (0 is unlimited)."),
            v("quota-backend-bytes", "0", H, "Raise alarms when backend size exceeds the given quota (0 defaults to low space quota)."),
            v("experimental-backend-cache-bytes", "134217728", H, "Most bytes of the state database's pages kept in memory (ours: etcd's bbolt leaves caching to the OS page cache)."),
            v("backend-batch-interval", "", A, "BackendBatchInterval is the maximum time before commit the backend transaction."),
            v("backend-batch-limit", "0", A, "BackendBatchLimit is the maximum operations before commit the backend transaction."),
            v("max-txn-ops", "128", H, "Maximum number of operations permitted in a transaction."),
            v("max-request-bytes", "1572864", H, "Maximum client request size in bytes the server will accept."),
            v("max-concurrent-streams", "4294967295", H, "Maximum concurrent streams that each client can open at a time."),
            v("grpc-keepalive-min-time", "5s", H, "Minimum duration interval that a client should wait before pinging server."),
            v("grpc-keepalive-interval", "2h", H, "Frequency duration of server-to-client ping to check if a connection is alive (0 to disable)."),
            v("grpc-keepalive-timeout", "20s", H, "Additional duration of wait before closing a non-responsive connection (0 to disable)."),
        ],
    ),
    (
        "Clustering",
        &[
            v("initial-advertise-peer-urls", "http://localhost:2380", H, "List of this member's peer URLs to advertise to the rest of the cluster."),
            v("initial-cluster", "default=http://localhost:2380", H, "Initial cluster configuration for bootstrapping."),
            v("initial-cluster-state", "new", H, "Initial cluster state ('new' or 'existing')."),
            v("initial-cluster-token", "etcd-cluster", H, "Initial cluster token for the etcd cluster during bootstrap."),
            v("advertise-client-urls", "http://localhost:2379", H, "List of this member's client URLs to advertise to the public."),
            v("discovery", "", H, "Discovery URL used to bootstrap the cluster."),
            v("discovery-fallback", "proxy", H, "Expected behavior ('exit' or 'proxy') when discovery services fails."),
            v("discovery-proxy", "", H, "HTTP proxy to use for traffic to discovery service."),
            v("discovery-srv", "", H, "DNS srv domain used to bootstrap the cluster."),
            v("discovery-srv-name", "", H, "Suffix to the dns srv name queried when bootstrapping."),
            b("strict-reconfig-check", "true", H, "Reject reconfiguration requests that would cause quorum loss."),
            b("pre-vote", "false", A, "Enable to run an additional Raft election phase."),
            v("auto-compaction-retention", "0", H, "Auto compaction retention length. 0 means disable auto compaction."),
            v("auto-compaction-mode", "periodic", H, "Interpret 'auto-compaction-retention' one of: periodic|revision."),
            b("enable-v2", "false", A, "Accept etcd V2 client requests."),
        ],
    ),
    (
        "Security",
        &[
            v("cert-file", "", H, "Path to the client server TLS cert file."),
            v("key-file", "", H, "Path to the client server TLS key file."),
            b("client-cert-auth", "false", H, "Enable client cert authentication."),
            v("client-crl-file", "", H, "Path to the client certificate revocation list file."),
            v("client-cert-allowed-hostname", "", H, "Allowed TLS hostname for client cert authentication."),
            v("trusted-ca-file", "", H, "Path to the client server TLS trusted CA cert file."),
            b("auto-tls", "false", H, "Client TLS using generated certificates."),
            v("peer-cert-file", "", H, "Path to the peer server TLS cert file."),
            v("peer-key-file", "", H, "Path to the peer server TLS key file."),
            b("peer-client-cert-auth", "false", H, "Enable peer client cert authentication."),
            v("peer-trusted-ca-file", "", H, "Path to the peer server TLS trusted CA file."),
            v("peer-cert-allowed-cn", "", H, "Required CN for client certs connecting to the peer endpoint."),
            v("peer-cert-allowed-hostname", "", H, "Allowed TLS hostname for inter peer authentication."),
            b("peer-auto-tls", "false", H, "Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file are not provided."),
            v("peer-crl-file", "", H, "Path to the peer certificate revocation list file."),
            v("self-signed-cert-validity", "1", H, "The validity period of the client and peer certificates that are automatically generated by etcd when you specify ClientAutoTLS and PeerAutoTLS, the unit is year, and the default is 1 (etcd 3.5's flag)."),
            v("cipher-suites", "", H, "Comma-separated list of supported TLS cipher suites between client/server and peers (empty will be auto-populated by Go)."),
            v("cors", "*", A, "Comma-separated whitelist of origins for CORS, or cross-origin resource sharing, (empty or * means allow all)."),
            v("host-whitelist", "*", A, "Acceptable hostnames from HTTP client requests, if server is not secure (empty or * means allow all)."),
        ],
    ),
    (
        "Auth",
        &[
            v("auth-token", "simple", H, "Specify a v3 authentication token type and its options ('simple' or 'jwt')."),
            v("bcrypt-cost", "10", H, "Specify the cost / strength of the bcrypt algorithm for hashing auth passwords. Valid values are between 4 and 31."),
            v("auth-token-ttl", "300", H, "Time (in seconds) of the auth-token-ttl."),
        ],
    ),
    (
        "Profiling and Monitoring",
        &[
            b("enable-pprof", "false", A, "Enable runtime profiling data via HTTP server."),
            v("metrics", "basic", A, "Set level of detail for exported metrics, specify 'extensive' to include server side grpc histogram metrics."),
            v("listen-metrics-urls", "", A, "List of URLs to listen on for the metrics and health endpoints."),
        ],
    ),
    (
        "Logging",
        &[
            v("logger", "capnslog", H, "Specify 'zap' for structured logging or 'capnslog'. Both write capnslog-style lines here."),
            v("log-outputs", "default", A, "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd, or list of comma separated output targets."),
            v("log-level", "info", H, "Configures log level. Only supports debug, info, warn, error, panic, or fatal."),
            b("debug", "false", H, "Enable debug-level logging for etcd. Use '--log-level=debug' instead."),
            v("log-package-levels", "", A, "Specify a particular log level for each etcd package (eg: 'etcdmain=CRITICAL,etcdserver=DEBUG')."),
        ],
    ),
    (
        "v2 Proxy",
        &[
            v("proxy", "off", A, "Proxy mode setting ('off', 'readonly' or 'on')."),
            v("proxy-failure-wait", "5000", A, "Time (in milliseconds) an endpoint will be held in a failed state."),
            v("proxy-refresh-interval", "30000", A, "Time (in milliseconds) of the endpoints refresh interval."),
            v("proxy-dial-timeout", "1000", A, "Time (in milliseconds) for a dial to timeout."),
            v("proxy-write-timeout", "5000", A, "Time (in milliseconds) for a write to timeout."),
            v("proxy-read-timeout", "0", A, "Time (in milliseconds) for a read to timeout."),
        ],
    ),
    (
        "Experimental distributed tracing and features",
        &[
            b("experimental-initial-corrupt-check", "false", A, "Enable to check data corruption before serving any client/peer traffic."),
            v("experimental-corrupt-check-time", "0s", A, "Duration of time between cluster corruption check passes."),
            v("experimental-enable-v2v3", "", A, "Serve v2 requests through the v3 backend under a given prefix."),
            v("experimental-backend-bbolt-freelist-type", "array", A, "ExperimentalBackendFreelistType specifies the type of freelist that boltdb backend uses(array and map are supported types)."),
            b("experimental-enable-lease-checkpoint", "false", A, "Enable to persist lease remaining TTL to prevent indefinite auto-renewal of long lived leases."),
            v("experimental-compaction-batch-limit", "1000", A, "Sets the maximum revisions deleted in each compaction batch."),
            b("experimental-peer-skip-client-san-verification", "false", H, "Skip verification of SAN field in client certificate for peer connections."),
            v("experimental-watch-progress-notify-interval", "10m", H, "Duration of periodic watch progress notifications."),
            v("experimental-warning-apply-duration", "100ms", A, "Time duration after which a warning is generated if request takes more time."),
        ],
    ),
    (
        "Unsafe feature",
        &[b("force-new-cluster", "false", H, "Force to create a new one member cluster.")],
    ),
];

/// Every flag, in `--help` order.
pub fn all() -> impl Iterator<Item = &'static Flag> {
    SECTIONS.iter().flat_map(|(_, flags)| flags.iter())
}

/// Looks a flag up by name.
pub fn find(name: &str) -> Option<&'static Flag> {
    all().find(|f| f.name == name)
}

/// The environment variable etcd reads for a flag: `ETCD_` + upper-case name, `-` → `_`.
pub fn env_name(flag: &str) -> String {
    format!("ETCD_{}", flag.to_uppercase().replace('-', "_"))
}

/// `etcd --help`, generated from the table.
pub fn help_text() -> String {
    let mut out = String::from(
        "Usage:\n\n  etcd [flags]\n    Start an etcd server.\n\n  etcd --version\n    Show the version of etcd.\n\n  \
         etcd -h | --help\n    Show the help information about etcd.\n\n  etcd --config-file\n    \
         Path to the server configuration file. Note that if a configuration file is provided, other\n    \
         command line flags and environment variables will be ignored.\n",
    );
    for (section, flags) in SECTIONS {
        out.push_str(&format!("\n{section}:\n\n"));
        for f in *flags {
            let note = if f.effect == Effect::AcceptedOnly {
                " (accepted; no effect in this build yet)"
            } else {
                ""
            };
            out.push_str(&format!(
                "  --{} '{}'\n    {}{}\n",
                f.name, f.default, f.help, note
            ));
        }
    }
    out.push_str("\nEvery flag can also be set with its ETCD_* environment variable, e.g. ETCD_NAME for --name.\nA command-line flag takes precedence over the environment variable.\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_env_names_follow_etcd() {
        let mut names: Vec<_> = all().map(|f| f.name).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
        assert_eq!(
            env_name("initial-cluster-token"),
            "ETCD_INITIAL_CLUSTER_TOKEN"
        );
        assert_eq!(find("max-txn-ops").unwrap().default, "128");
    }

    #[test]
    fn help_lists_every_flag() {
        let help = help_text();
        for f in all() {
            assert!(
                help.contains(&format!("--{} '", f.name)),
                "{} missing",
                f.name
            );
        }
    }
}
