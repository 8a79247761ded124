//! The global flags every etcdctl command takes, each also read from its `ETCDCTL_*`
//! variable (a flag given on the command line wins), with etcdctl's defaults.

use std::time::Duration;

use clap::Args;

use super::display::Format;
use super::duration;
use super::error::CtlError;
use super::strconv::go_bool;

/// etcdctl's global options.
#[derive(Debug, Clone, Args)]
pub struct GlobalFlags {
    /// gRPC endpoints
    #[arg(
        long,
        global = true,
        env = "ETCDCTL_ENDPOINTS",
        value_delimiter = ',',
        default_value = "127.0.0.1:2379"
    )]
    pub endpoints: Vec<String>,
    /// dial timeout for client connections
    #[arg(long = "dial-timeout", global = true, env = "ETCDCTL_DIAL_TIMEOUT", value_parser = duration::parse, default_value = "2s")]
    pub dial_timeout: Duration,
    /// timeout for short running command (excluding dial timeout)
    #[arg(long = "command-timeout", global = true, env = "ETCDCTL_COMMAND_TIMEOUT", value_parser = duration::parse, default_value = "5s")]
    pub command_timeout: Duration,
    /// keepalive time for client connections (accepted; HTTP/2 keepalive is not tuned)
    #[arg(long = "keepalive-time", global = true, env = "ETCDCTL_KEEPALIVE_TIME", value_parser = duration::parse, default_value = "2s")]
    pub keepalive_time: Duration,
    /// keepalive timeout for client connections (accepted; HTTP/2 keepalive is not tuned)
    #[arg(long = "keepalive-timeout", global = true, env = "ETCDCTL_KEEPALIVE_TIMEOUT", value_parser = duration::parse, default_value = "6s")]
    pub keepalive_timeout: Duration,
    /// set the output format (fields, json, protobuf, simple, table)
    #[arg(
        short = 'w',
        long = "write-out",
        global = true,
        env = "ETCDCTL_WRITE_OUT",
        default_value = "simple"
    )]
    pub write_out: String,
    /// print byte strings as hex encoded strings
    #[arg(long, global = true, env = "ETCDCTL_HEX", num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    pub hex: bool,
    /// enable client-side debug logging
    #[arg(long, global = true, env = "ETCDCTL_DEBUG", num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    pub debug: bool,
    /// disable transport security for client connections
    #[arg(long = "insecure-transport", global = true, env = "ETCDCTL_INSECURE_TRANSPORT", num_args = 0..=1, require_equals = true, default_value_t = true, default_missing_value = "true", value_parser = go_bool)]
    pub insecure_transport: bool,
    /// skip server certificate verification (CAUTION: this option should be enabled only for testing purposes)
    #[arg(long = "insecure-skip-tls-verify", global = true, env = "ETCDCTL_INSECURE_SKIP_TLS_VERIFY", num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    pub insecure_skip_tls_verify: bool,
    /// accept insecure SRV records describing cluster endpoints
    #[arg(long = "insecure-discovery", global = true, env = "ETCDCTL_INSECURE_DISCOVERY", num_args = 0..=1, require_equals = true, default_value_t = true, default_missing_value = "true", value_parser = go_bool)]
    pub insecure_discovery: bool,
    /// domain name to query for SRV records describing cluster endpoints
    #[arg(
        short = 'd',
        long = "discovery-srv",
        global = true,
        env = "ETCDCTL_DISCOVERY_SRV",
        default_value = ""
    )]
    pub discovery_srv: String,
    /// service name to query when using DNS discovery
    #[arg(
        long = "discovery-srv-name",
        global = true,
        env = "ETCDCTL_DISCOVERY_SRV_NAME",
        default_value = ""
    )]
    pub discovery_srv_name: String,
    /// verify certificates of TLS-enabled secure servers using this CA bundle
    #[arg(long, global = true, env = "ETCDCTL_CACERT", default_value = "")]
    pub cacert: String,
    /// identify secure client using this TLS certificate file
    #[arg(long, global = true, env = "ETCDCTL_CERT", default_value = "")]
    pub cert: String,
    /// identify secure client using this TLS key file
    #[arg(long, global = true, env = "ETCDCTL_KEY", default_value = "")]
    pub key: String,
    /// username[:password] for authentication (prompt if password is not supplied)
    #[arg(long, global = true, env = "ETCDCTL_USER", default_value = "")]
    pub user: String,
    /// password for authentication (if this option is used, --user option shouldn't include password)
    #[arg(long, global = true, env = "ETCDCTL_PASSWORD", default_value = "")]
    pub password: String,
}

impl GlobalFlags {
    /// The output format `--write-out` names.
    pub fn format(&self) -> Result<Format, CtlError> {
        Format::parse(&self.write_out)
    }

    /// With `--discovery-srv`, replaces the endpoints by those of the domain's
    /// `_etcd-client[-ssl]` SRV records, as etcdctl does: unless `--insecure-discovery`
    /// (on by default), `http://` ones are dropped with a note on stderr; when nothing is
    /// found, `--endpoints` stays.
    pub async fn discover_endpoints(&mut self) -> Result<(), CtlError> {
        if self.discovery_srv.is_empty() {
            return Ok(());
        }
        let failed = |e: etcd_discovery::SrvError| CtlError::Failed(e.to_string());
        let resolver = etcd_discovery::Resolver::from_system().map_err(failed)?;
        let found = etcd_discovery::client_endpoints(
            &resolver,
            &self.discovery_srv,
            &self.discovery_srv_name,
        )
        .await
        .map_err(failed)?;
        let mut endpoints = Vec::new();
        for ep in found.endpoints {
            if !self.insecure_discovery && ep.starts_with("http://") {
                eprintln!("ignoring discovered insecure endpoint {ep:?}");
                continue;
            }
            endpoints.push(ep);
        }
        if !endpoints.is_empty() {
            self.endpoints = endpoints;
        }
        Ok(())
    }
}
