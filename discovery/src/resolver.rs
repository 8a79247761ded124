//! The DNS lookups discovery needs (SRV records and a host's address), over hickory's
//! resolver configured from the system, with failures worded as Go's resolver words them.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{ResolveError, TokioResolver};

use crate::SrvError;

/// One SRV record, its target without the root's trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

impl SrvRecord {
    /// `target:port`, bracketing an IPv6 target.
    pub fn host_port(&self) -> String {
        host_port(&self.target, self.port)
    }
}

/// `host:port` as Go's `net.JoinHostPort` writes it.
pub(crate) fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A resolver built from the system's configuration.
pub struct Resolver {
    inner: TokioResolver,
    /// The first name server, named in errors as Go's resolver does (`on 10.0.0.2:53`).
    server: Option<String>,
}

impl Resolver {
    /// Reads `/etc/resolv.conf` (and the hosts file) as the C library would.
    pub fn from_system() -> Result<Resolver, SrvError> {
        let builder =
            TokioResolver::builder_tokio().map_err(|e| SrvError::Config(e.to_string()))?;
        let inner = builder.build();
        let server = inner
            .config()
            .name_servers()
            .first()
            .map(|ns| ns.socket_addr.to_string());
        Ok(Resolver { inner, server })
    }

    /// Forgets cached answers, so the next lookups ask the servers again (the gateway's
    /// periodic re-resolution must see records that changed before their TTL ran out).
    pub fn clear_cache(&self) {
        self.inner.clear_cache();
    }

    /// The SRV records of `name`, lowest priority first (DNS order within a priority).
    pub async fn srv(&self, name: &str) -> Result<Vec<SrvRecord>, SrvError> {
        let lookup = self
            .inner
            .srv_lookup(name)
            .await
            .map_err(|e| self.lookup_error(name, &e))?;
        let mut records: Vec<SrvRecord> = lookup
            .iter()
            .map(|srv| SrvRecord {
                priority: srv.priority(),
                weight: srv.weight(),
                port: srv.port(),
                target: srv.target().to_utf8().trim_end_matches('.').to_string(),
            })
            .collect();
        records.sort_by_key(|r| r.priority);
        Ok(records)
    }

    /// The address `host:port` resolves to: an IP literal as it is, otherwise the first
    /// IPv4 address of the host (then the first IPv6), as Go's `ResolveTCPAddr` picks.
    pub async fn tcp_addr(&self, host: &str, port: u16) -> Result<SocketAddr, SrvError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        let ips = self
            .inner
            .lookup_ip(host)
            .await
            .map_err(|e| self.lookup_error(host, &e))?;
        let all: Vec<IpAddr> = ips.iter().collect();
        all.iter()
            .find(|ip| ip.is_ipv4())
            .or_else(|| all.first())
            .map(|ip| SocketAddr::new(*ip, port))
            .ok_or_else(|| SrvError::Lookup {
                name: host.to_string(),
                server: self.server.clone(),
                reason: "no such host".into(),
            })
    }

    fn lookup_error(&self, name: &str, e: &ResolveError) -> SrvError {
        let reason = match response_code(e) {
            Some(ResponseCode::NXDomain | ResponseCode::NoError) => "no such host".to_string(),
            Some(ResponseCode::ServFail | ResponseCode::Refused) => "server misbehaving".into(),
            Some(other) => other.to_string(),
            None => e.to_string(),
        };
        SrvError::Lookup {
            name: name.to_string(),
            server: self.server.clone(),
            reason,
        }
    }
}

/// The DNS response code of an answer without records, if that is what `e` is.
fn response_code(e: &ResolveError) -> Option<ResponseCode> {
    match e.proto()?.kind() {
        ProtoErrorKind::NoRecordsFound { response_code, .. } => Some(*response_code),
        _ => None,
    }
}
