//! etcd's check of a connecting member's certificate against its address (`checkSAN` in
//! etcd's TLS listener): after the handshake on the peer URL, a client certificate naming IP
//! addresses must name the one the connection comes from, or one of its DNS names must resolve
//! to it. `--experimental-peer-skip-client-san-verification` turns it off.

use std::net::IpAddr;

use rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;

/// Why a connecting member's certificate does not fit its address (etcd's texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SanError {
    #[error("x509: certificate is valid for {valid}, not {addr}")]
    NotForIp { valid: String, addr: IpAddr },
    #[error("tls: {addr:?} does not match any of DNSNames {names:?}")]
    NoDnsMatch { addr: String, names: Vec<String> },
    #[error("x509: cannot parse the client certificate")]
    Unparsable,
}

/// The IP addresses and DNS names of a certificate's subject alternative names.
fn alt_names(cert: &CertificateDer<'_>) -> Result<(Vec<IpAddr>, Vec<String>), SanError> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(cert).map_err(|_| SanError::Unparsable)?;
    let mut ips = Vec::new();
    let mut names = Vec::new();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::IPAddress(b) if b.len() == 4 => {
                    ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default()))
                }
                GeneralName::IPAddress(b) if b.len() == 16 => {
                    ips.push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default()))
                }
                GeneralName::DNSName(n) => names.push(n.to_string()),
                _ => {}
            }
        }
    }
    Ok((ips, names))
}

/// Checks the certificate of a connection from `remote`, in etcd's order: with IP addresses
/// and no DNS names the address must be listed; with DNS names one must resolve to it.
pub async fn check(cert: &CertificateDer<'_>, remote: IpAddr) -> Result<(), SanError> {
    let (ips, names) = alt_names(cert)?;
    if ips.is_empty() && names.is_empty() {
        return Ok(());
    }
    // An IPv4 peer may arrive as an IPv4-mapped IPv6 address on a dual-stack socket.
    let remote = match remote {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(remote, IpAddr::V4),
        v4 => v4,
    };
    if !ips.is_empty() && !ips.contains(&remote) && names.is_empty() {
        let valid = ips.iter().map(IpAddr::to_string).collect::<Vec<_>>();
        return Err(SanError::NotForIp {
            valid: valid.join(", "),
            addr: remote,
        });
    }
    if names.is_empty() {
        return Ok(());
    }
    for name in &names {
        let Ok(addrs) = tokio::net::lookup_host((name.as_str(), 0)).await else {
            continue;
        };
        if addrs.map(|a| a.ip()).any(|ip| ip == remote) {
            return Ok(());
        }
    }
    Err(SanError::NoDnsMatch {
        addr: remote.to_string(),
        names,
    })
}

#[cfg(test)]
mod tests;
