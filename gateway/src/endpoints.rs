//! Which members the gateway forwards to: `--endpoints`, or the `_etcd-client[-ssl]` SRV
//! records of `--discovery-srv` (checked as etcd checks them unless
//! `--insecure-discovery`), looked up again every `--srv-refresh-interval`.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::net::TcpStream;

use crate::flags::Flags;
use crate::log;
use crate::proxy::Gateway;
use crate::remote::Remote;

/// Why the gateway cannot start; printed as etcd prints it, then exit status 1.
#[derive(Debug)]
pub enum EndpointError {
    /// `error parsing endpoint "x"` (etcd prints it on stdout without a newline).
    Parse(String),
    /// The SRV lookup failed.
    Srv(etcd_discovery::SrvError),
    /// `--trusted-ca-file` could not be read.
    Ca(String),
}

/// `--endpoints`, each with any `scheme://` removed (the gateway forwards bytes, not URLs).
pub fn static_members(endpoints: &[String]) -> Result<Vec<Arc<Remote>>, EndpointError> {
    endpoints
        .iter()
        .map(|ep| {
            let hostport = match url::Url::parse(ep) {
                Ok(u) if u.has_host() && u.host_str() != Some("") => match u.port() {
                    Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
                    None => u.host_str().unwrap_or_default().to_string(),
                },
                _ => ep.clone(),
            };
            // Go's SplitHostPort: a port is required, the host may be empty.
            if hostport
                .rsplit_once(':')
                .is_none_or(|(_, port)| port.parse::<u16>().is_err())
            {
                return Err(EndpointError::Parse(hostport));
            }
            Ok(Arc::new(Remote::new(hostport, 0, 0)))
        })
        .collect()
}

/// The members named by the SRV records, checked unless `--insecure-discovery`: only
/// `https://` records are kept, and only those that can be dialled (with
/// `--trusted-ca-file`, only those whose TLS certificate the CA signed for the record's
/// name). Empty when none pass; the caller then falls back to `--endpoints`, as etcd does.
pub async fn srv_members(
    flags: &Flags,
    resolver: &etcd_discovery::Resolver,
) -> Result<Vec<Arc<Remote>>, EndpointError> {
    let found =
        etcd_discovery::client_endpoints(resolver, &flags.discovery_srv, &flags.discovery_srv_name)
            .await
            .map_err(EndpointError::Srv)?;
    log::info(
        "discovered cluster from SRV",
        json!({"discovery-srv": flags.discovery_srv, "endpoints": found.endpoints}),
    );
    let members = |keep: &dyn Fn(usize) -> bool| -> Vec<Arc<Remote>> {
        found
            .records
            .iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, r)| Arc::new(Remote::new(r.host_port(), r.priority, r.weight)))
            .collect()
    };
    if flags.insecure_discovery {
        return Ok(members(&|_| true));
    }
    let ca = if flags.trusted_ca_file.is_empty() {
        None
    } else {
        Some(tls_connector(&flags.trusted_ca_file)?)
    };
    let mut valid = vec![false; found.records.len()];
    let mut errors = Vec::new();
    for (i, (ep, record)) in found.endpoints.iter().zip(&found.records).enumerate() {
        if !ep.starts_with("https://") {
            errors.push(format!("{ep:?} is insecure"));
            continue;
        }
        match check_member(record, ca.as_ref()).await {
            Ok(()) => valid[i] = true,
            Err(e) => errors.push(format!("{ep:?} failed to dial ({e})")),
        }
    }
    let kept: Vec<&String> = found
        .endpoints
        .iter()
        .zip(&valid)
        .filter_map(|(ep, ok)| ok.then_some(ep))
        .collect();
    if errors.is_empty() {
        log::info(
            "using validated discovered SRV endpoints",
            json!({"discovery-srv": flags.discovery_srv, "endpoints": kept}),
        );
    } else {
        log::warn(
            "failed to validate discovered endpoints",
            json!({"discovery-srv": flags.discovery_srv, "endpoints": kept, "error": errors.join(",")}),
        );
    }
    Ok(members(&|i| valid[i]))
}

/// Dials a discovered member; with a CA, also completes a TLS handshake that verifies its
/// certificate for the record's target name.
async fn check_member(
    record: &etcd_discovery::SrvRecord,
    ca: Option<&tokio_rustls::TlsConnector>,
) -> Result<(), String> {
    let addr = record.host_port();
    let tcp = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&addr))
        .await
        .map_err(|_| format!("dial tcp {addr}: i/o timeout"))?
        .map_err(|e| format!("dial tcp {addr}: connect: {}", go_text::io::reason(&e)))?;
    let Some(connector) = ca else {
        return Ok(());
    };
    let name = ServerName::try_from(record.target.clone()).map_err(|e| e.to_string())?;
    tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
        .await
        .map_err(|_| "tls: handshake timeout".to_string())?
        .map(drop)
        .map_err(|e| format!("tls: {e}"))
}

fn tls_connector(ca_file: &str) -> Result<tokio_rustls::TlsConnector, EndpointError> {
    let bad = |e: String| EndpointError::Ca(format!("{ca_file}: {e}"));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| bad(e.to_string()))? {
        roots
            .add(cert.map_err(|e| bad(e.to_string()))?)
            .map_err(|e| bad(e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Looks the SRV records up every `interval` and moves new connections to the members
/// they name; a failed lookup or an empty answer keeps the members the gateway has.
pub async fn refresh(
    flags: Flags,
    resolver: etcd_discovery::Resolver,
    gateway: Arc<Gateway>,
    interval: Duration,
) {
    loop {
        tokio::time::sleep(interval).await;
        resolver.clear_cache();
        match srv_members(&flags, &resolver).await {
            Ok(members) if members.is_empty() => {}
            Ok(members) => {
                let endpoints: Vec<String> = members.iter().map(|m| m.addr.clone()).collect();
                if gateway.set_members(members) {
                    log::info(
                        "updated endpoints from SRV records",
                        json!({"discovery-srv": flags.discovery_srv, "endpoints": endpoints}),
                    );
                }
            }
            Err(e) => log::warn(
                "failed to refresh SRV records (keeping the current endpoints)",
                json!({"discovery-srv": flags.discovery_srv, "error": e.to_string()}),
            ),
        }
    }
}

impl std::fmt::Display for EndpointError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndpointError::Parse(ep) => write!(f, "error parsing endpoint {ep:?}"),
            EndpointError::Srv(e) => write!(f, "{e}"),
            EndpointError::Ca(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(eps: &[&str]) -> Result<Vec<String>, String> {
        let eps: Vec<String> = eps.iter().map(|s| s.to_string()).collect();
        static_members(&eps)
            .map(|m| m.iter().map(|r| r.addr.clone()).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn endpoints_lose_their_scheme() {
        assert_eq!(
            addrs(&[
                "http://10.0.0.1:2379",
                "https://infra1:2379",
                "127.0.0.1:2379",
                "localhost:2379"
            ]),
            Ok(vec![
                "10.0.0.1:2379".into(),
                "infra1:2379".into(),
                "127.0.0.1:2379".into(),
                "localhost:2379".into()
            ])
        );
    }

    #[test]
    fn an_endpoint_without_a_port_is_refused_as_etcd_refuses_it() {
        assert_eq!(
            addrs(&["infra0"]),
            Err("error parsing endpoint \"infra0\"".into())
        );
        assert_eq!(
            addrs(&["http://infra0"]),
            Err("error parsing endpoint \"infra0\"".into())
        );
    }
}
