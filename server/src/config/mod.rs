//! The member's configuration, read as etcd 3.4 reads it: command-line flags (Go syntax),
//! `ETCD_*` environment variables (a flag beats its variable), or a `--config-file` YAML
//! document (which, as in etcd, replaces both). Errors carry etcd's texts and exit status 1.

pub mod error;
pub mod flags;
pub mod sources;
pub mod values;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use url::Url;

use crate::tls::TlsInfo;

pub use error::ConfigError;
use flags::{Effect, Kind};
use sources::{CommandLine, Origin, RawValues};

/// `--initial-cluster-state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    New,
    Existing,
}

/// etcd's default backend quota (2 GiB), used when `--quota-backend-bytes` is 0.
pub const DEFAULT_QUOTA_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// What auto-compaction keeps, from `--auto-compaction-mode` and `--auto-compaction-retention`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoCompaction {
    /// Keep the history of the last period (`periodic`; a bare number means hours).
    Periodic(Duration),
    /// Keep the last N revisions (`revision`).
    Revision(i64),
}

/// The typed configuration of a member.
#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    pub data_dir: PathBuf,
    pub listen_client_urls: Vec<Url>,
    pub advertise_client_urls: Vec<Url>,
    pub listen_peer_urls: Vec<Url>,
    pub initial_advertise_peer_urls: Vec<Url>,
    pub initial_cluster: Vec<(String, Url)>,
    pub initial_cluster_state: ClusterState,
    pub initial_cluster_token: String,
    /// `--discovery-srv`: the DNS domain whose SRV records name the initial cluster (used
    /// instead of `initial_cluster` when the data dir is new).
    pub discovery_srv: String,
    /// `--discovery-srv-name`: the suffix of the SRV service names queried.
    pub discovery_srv_name: String,
    /// `--discovery`: the discovery service URL a new member registers with (also the
    /// cluster token its IDs are made from).
    pub discovery: String,
    /// `--discovery-proxy`: an HTTP proxy for the discovery service.
    pub discovery_proxy: String,
    /// `--discovery-fallback`: `exit` or `proxy` when the discovery cluster is full.
    pub discovery_fallback: String,
    pub strict_reconfig_check: bool,
    pub heartbeat_interval: Duration,
    pub election_timeout: Duration,
    pub snapshot_count: u64,
    pub max_request_bytes: u64,
    pub max_txn_ops: u64,
    /// `--max-concurrent-streams`: HTTP/2 streams one client connection may have open.
    pub max_concurrent_streams: u32,
    /// `--grpc-keepalive-min-time`: clients pinging more often are sent away.
    pub grpc_keepalive_min_time: Duration,
    /// `--grpc-keepalive-interval` and `--grpc-keepalive-timeout`: the server's pings.
    pub grpc_keepalive_interval: Duration,
    pub grpc_keepalive_timeout: Duration,
    pub watch_progress_notify_interval: Duration,
    pub debug: bool,
    /// `--quota-backend-bytes` (0 means etcd's default of 2 GiB).
    pub quota_backend_bytes: u64,
    /// `--experimental-backend-cache-bytes`: the state database's cache (ours only).
    pub backend_cache_bytes: u64,
    /// `--auto-compaction-mode` with `--auto-compaction-retention`; `None` when disabled.
    pub auto_compaction: Option<AutoCompaction>,
    /// `--force-new-cluster`: restart this member's data as a one-member cluster.
    pub force_new_cluster: bool,
    /// `--cert-file`, `--key-file`, `--trusted-ca-file`, `--client-cert-auth`, `--client-crl-file`.
    pub client_tls: TlsInfo,
    /// The `--peer-*` TLS flags.
    pub peer_tls: TlsInfo,
    /// `--auto-tls` / `--peer-auto-tls`: self-signed key pairs when no files are given.
    pub client_auto_tls: bool,
    pub peer_auto_tls: bool,
    /// `--self-signed-cert-validity`, in years.
    pub self_signed_cert_validity: u32,
    /// `--bcrypt-cost` as given (see `auth::password::cost` for an invalid one).
    pub bcrypt_cost: u64,
    /// `--auth-token`, as given (the provider is made at start-up, where a bad value
    /// stops the member as it stops etcd).
    pub auth_token: String,
    /// `--auth-token-ttl`: how long an unused simple token lives.
    pub auth_token_ttl: Duration,
    /// `--cipher-suites` (empty: rustls's defaults).
    pub cipher_suites: Vec<rustls::SupportedCipherSuite>,
    /// Things to log once logging is up (unknown env vars, accepted-only flags, ...).
    pub notices: Vec<String>,
}

/// How reading the configuration ended when it did not produce a [`Config`].
#[derive(Debug)]
pub enum Exit {
    Help,
    Version,
    Invalid(ConfigError),
}

impl Exit {
    /// Prints what the exit calls for and gives the process status.
    pub fn report(&self) -> ExitCode {
        match self {
            Exit::Help => {
                print!("{}", flags::help_text());
                ExitCode::SUCCESS
            }
            Exit::Version => {
                println!("etcd Version: {}", crate::version::API_VERSION);
                println!("etcd-rs Version: {}", crate::version::BUILD_VERSION);
                println!(
                    "OS/Arch: {}/{}",
                    std::env::consts::OS,
                    std::env::consts::ARCH
                );
                ExitCode::SUCCESS
            }
            Exit::Invalid(e) => e.report(),
        }
    }
}

impl From<ConfigError> for Exit {
    fn from(e: ConfigError) -> Self {
        Exit::Invalid(e)
    }
}

/// Reads the configuration from the process arguments and environment.
pub fn load_from(args: impl IntoIterator<Item = OsString>) -> Result<Config, Exit> {
    load(
        args,
        std::env::vars_os().map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        }),
    )
}

/// Reads the configuration from the given arguments (program name first) and environment.
pub fn load(
    args: impl IntoIterator<Item = OsString>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, Exit> {
    let (raw, mut notices) = match sources::command_line(args)? {
        CommandLine::Help => return Err(Exit::Help),
        CommandLine::Version => return Err(Exit::Version),
        CommandLine::ConfigFile(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::ConfigRead {
                path: path.clone(),
                reason: error::go_io_reason(&e),
            })?;
            let (raw, mut notices) = sources::config_file(&path, &text)?;
            notices.insert(0, format!("Loading server configuration from {path:?}. Other configuration command line flags and environment variables will be ignored if provided."));
            (raw, notices)
        }
        CommandLine::Flags(mut raw) => {
            let notices = sources::apply_env(&mut raw, env);
            (raw, notices)
        }
    };
    let cfg = Typed { raw }.build(&mut notices)?;
    Ok(Config { notices, ..cfg })
}

/// Converts raw strings into typed values, naming the value's origin in errors.
struct Typed {
    raw: RawValues,
}

impl Typed {
    fn get(&self, name: &'static str) -> (String, Origin) {
        self.raw.values.get(name).cloned().unwrap_or_else(|| {
            let default = flags::find(name).map(|f| f.default).unwrap_or_default();
            (default.to_string(), Origin::Default)
        })
    }

    fn parse<T>(
        &self,
        name: &'static str,
        parser: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let (value, origin) = self.get(name);
        parser(&value).map_err(|reason| {
            let is_bool = flags::find(name).is_some_and(|f| f.kind == Kind::Bool);
            match origin {
                Origin::Flag if is_bool => ConfigError::InvalidBool {
                    flag: name.to_string(),
                    value: value.clone(),
                },
                Origin::Flag | Origin::Default => ConfigError::InvalidValue {
                    what: format!("flag -{name}"),
                    value: value.clone(),
                    reason,
                },
                Origin::Env(var) => ConfigError::InvalidValue {
                    what: var,
                    value: value.clone(),
                    reason,
                },
                Origin::File => ConfigError::InvalidValue {
                    what: format!("{name} in the configuration file"),
                    value: value.clone(),
                    reason,
                },
            }
        })
    }

    fn string(&self, name: &'static str) -> String {
        self.get(name).0
    }

    fn millis(&self, name: &'static str) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(self.parse(name, values::uint)?))
    }

    /// etcd's reading of the retention: a bare number is hours (periodic) or revisions
    /// (revision), anything else a Go duration; 0 disables auto-compaction.
    fn auto_compaction(&self) -> Result<Option<AutoCompaction>, ConfigError> {
        let mode = self.string("auto-compaction-mode");
        let retention = self.string("auto-compaction-retention");
        let parsed = match retention.parse::<u64>() {
            Ok(n) if mode == "revision" => AutoCompaction::Revision(n as i64),
            Ok(n) => AutoCompaction::Periodic(Duration::from_secs(n.saturating_mul(3600))),
            Err(_) => {
                let d = values::duration(&retention).map_err(ConfigError::CompactionRetention)?;
                if mode == "revision" {
                    AutoCompaction::Revision(d.as_nanos() as i64)
                } else {
                    AutoCompaction::Periodic(d)
                }
            }
        };
        if mode != "periodic" && mode != "revision" {
            return Err(ConfigError::Rule(format!(
                "unknown auto-compaction-mode {mode:?}"
            )));
        }
        Ok(match parsed {
            AutoCompaction::Periodic(d) if d.is_zero() => None,
            AutoCompaction::Revision(0) => None,
            other => Some(other),
        })
    }

    /// The client and peer TLS files and checks.
    fn tls(&self) -> Result<(TlsInfo, TlsInfo), ConfigError> {
        let client = TlsInfo {
            cert_file: self.string("cert-file"),
            key_file: self.string("key-file"),
            trusted_ca_file: self.string("trusted-ca-file"),
            client_cert_auth: self.parse("client-cert-auth", values::boolean)?,
            crl_file: self.string("client-crl-file"),
            allowed_hostname: self.string("client-cert-allowed-hostname"),
            ..TlsInfo::default()
        };
        let peer = TlsInfo {
            cert_file: self.string("peer-cert-file"),
            key_file: self.string("peer-key-file"),
            trusted_ca_file: self.string("peer-trusted-ca-file"),
            client_cert_auth: self.parse("peer-client-cert-auth", values::boolean)?,
            crl_file: self.string("peer-crl-file"),
            allowed_cn: self.string("peer-cert-allowed-cn"),
            allowed_hostname: self.string("peer-cert-allowed-hostname"),
            check_client_san: !self.parse(
                "experimental-peer-skip-client-san-verification",
                values::boolean,
            )?,
            self_signed: false,
        };
        if !peer.allowed_cn.is_empty() && !peer.allowed_hostname.is_empty() {
            return Err(ConfigError::AllowedCnAndHostname {
                cn: peer.allowed_cn,
                hostname: peer.allowed_hostname,
            });
        }
        Ok((client, peer))
    }

    fn build(&self, notices: &mut Vec<String>) -> Result<Config, ConfigError> {
        // Validate every flag, including those this build only accepts.
        for f in flags::all() {
            match f.kind {
                Kind::Bool => drop(self.parse(f.name, values::boolean)?),
                Kind::Value if f.name.ends_with("-urls") && !self.string(f.name).is_empty() => {
                    drop(self.parse(f.name, values::urls)?)
                }
                Kind::Value => {}
            }
            if f.effect == Effect::AcceptedOnly
                && self.raw.is_set(f.name)
                && self.string(f.name) != f.default
            {
                notices.push(format!(
                    "--{} is accepted for compatibility but has no effect in this build yet",
                    f.name
                ));
            }
        }
        for name in ["max-snapshots", "max-wals", "quota-backend-bytes"] {
            self.parse(name, values::uint)?;
        }
        self.parse("experimental-corrupt-check-time", values::flag_duration)?;
        self.parse("initial-cluster-state", |s| match s {
            "new" | "existing" => Ok(()),
            _ => Err("invalid value".to_string()),
        })?;
        let auto_compaction = self.auto_compaction()?;
        let logger = self.string("logger");
        if logger != "capnslog" && logger != "zap" {
            return Err(ConfigError::Rule(format!(
                "unknown logger option {logger:?}"
            )));
        }
        let log_level = self.string("log-level");
        if !matches!(
            log_level.as_str(),
            "debug" | "info" | "warn" | "error" | "panic" | "fatal"
        ) {
            return Err(ConfigError::Rule(format!(
                "unknown log-level {log_level:?}"
            )));
        }

        let heartbeat_interval = self.millis("heartbeat-interval")?;
        let election_timeout = self.millis("election-timeout")?;
        let (hb, et) = (heartbeat_interval.as_millis(), election_timeout.as_millis());
        if hb == 0 {
            return Err(ConfigError::Rule(format!(
                "--heartbeat-interval must be >0 (set to {hb}ms)"
            )));
        }
        if et < 5 * hb {
            return Err(ConfigError::Rule(format!(
                "--election-timeout[{et}ms] should be at least as 5 times as --heartbeat-interval[{hb}ms]"
            )));
        }
        if et > 50000 {
            return Err(ConfigError::Rule(format!(
                "--election-timeout[{et}ms] is too long, and should be set less than 50000ms"
            )));
        }

        let listen_client_urls = self.parse("listen-client-urls", values::urls)?;
        let listen_peer_urls = self.parse("listen-peer-urls", values::urls)?;
        if self.raw.is_set("listen-client-urls") && !self.raw.is_set("advertise-client-urls") {
            return Err(ConfigError::Rule(
                "--advertise-client-urls is required when --listen-client-urls is set explicitly"
                    .into(),
            ));
        }
        for url in listen_client_urls.iter().chain(&listen_peer_urls) {
            values::check_bind_url(url).map_err(ConfigError::Rule)?;
        }

        let name = self.string("name");
        let initial_advertise_peer_urls =
            self.parse("initial-advertise-peer-urls", values::urls)?;
        // etcd: a named member without --initial-cluster is a cluster of itself.
        let initial_cluster = if self.raw.is_set("initial-cluster") {
            values::initial_cluster(&self.string("initial-cluster"))
                .map_err(ConfigError::InitialCluster)?
        } else {
            initial_advertise_peer_urls
                .iter()
                .map(|u| (name.clone(), u.clone()))
                .collect()
        };
        // etcd allows one way to name the initial members.
        let discovery_srv = self.string("discovery-srv");
        let bootstrap_flags = [
            self.raw.is_set("initial-cluster"),
            !self.string("discovery").is_empty(),
            !discovery_srv.is_empty(),
        ];
        if bootstrap_flags.iter().filter(|set| **set).count() > 1 {
            return Err(ConfigError::Rule(
                "multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", \"discovery\" or \"discovery-srv\"".into(),
            ));
        }
        let (client_tls, peer_tls) = self.tls()?;
        let data_dir = match self.string("data-dir") {
            d if d == "${name}.etcd" || d.is_empty() => PathBuf::from(format!("{name}.etcd")),
            d => PathBuf::from(d),
        };

        Ok(Config {
            data_dir,
            listen_client_urls,
            advertise_client_urls: self.parse("advertise-client-urls", values::urls)?,
            listen_peer_urls,
            initial_advertise_peer_urls,
            initial_cluster,
            initial_cluster_state: if self.string("initial-cluster-state") == "existing" {
                ClusterState::Existing
            } else {
                ClusterState::New
            },
            initial_cluster_token: self.string("initial-cluster-token"),
            discovery_srv,
            discovery_srv_name: self.string("discovery-srv-name"),
            discovery: self.string("discovery"),
            discovery_proxy: self.string("discovery-proxy"),
            discovery_fallback: self.string("discovery-fallback"),
            strict_reconfig_check: self.parse("strict-reconfig-check", values::boolean)?,
            heartbeat_interval,
            election_timeout,
            snapshot_count: self.parse("snapshot-count", values::uint)?,
            max_request_bytes: self.parse("max-request-bytes", values::uint)?,
            max_txn_ops: self.parse("max-txn-ops", values::uint)?,
            max_concurrent_streams: self.parse("max-concurrent-streams", values::uint32)?,
            grpc_keepalive_min_time: self
                .parse("grpc-keepalive-min-time", values::flag_duration)?,
            grpc_keepalive_interval: self
                .parse("grpc-keepalive-interval", values::flag_duration)?,
            grpc_keepalive_timeout: self.parse("grpc-keepalive-timeout", values::flag_duration)?,
            watch_progress_notify_interval: self.parse(
                "experimental-watch-progress-notify-interval",
                values::flag_duration,
            )?,
            debug: self.parse("debug", values::boolean)? || log_level == "debug",
            quota_backend_bytes: match self.parse("quota-backend-bytes", values::uint)? {
                0 => DEFAULT_QUOTA_BYTES,
                n => n,
            },
            backend_cache_bytes: self.parse("experimental-backend-cache-bytes", values::uint)?,
            auto_compaction,
            force_new_cluster: self.parse("force-new-cluster", values::boolean)?,
            client_tls,
            peer_tls,
            client_auto_tls: self.parse("auto-tls", values::boolean)?,
            peer_auto_tls: self.parse("peer-auto-tls", values::boolean)?,
            self_signed_cert_validity: self.parse("self-signed-cert-validity", values::uint)?
                as u32,
            bcrypt_cost: self.parse("bcrypt-cost", values::uint)?,
            auth_token: self.string("auth-token"),
            auth_token_ttl: Duration::from_secs(self.parse("auth-token-ttl", values::uint)?),
            cipher_suites: crate::tls::ciphers::parse(&self.string("cipher-suites"))?,
            name,
            notices: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests;
