//! TLS for client connections (`--cacert`, `--cert`, `--key`, `https://` endpoints), as
//! etcdctl decides it: plain HTTP/2 unless a TLS file is given, an endpoint says `https`,
//! or `--insecure-transport=false`.

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use super::error::CtlError;
use super::global::GlobalFlags;

/// The TLS configuration every connection of one run uses.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    config: ClientTlsConfig,
}

impl TlsSettings {
    /// `None` when the flags ask for plain connections.
    pub fn from_flags(flags: &GlobalFlags) -> Result<Option<TlsSettings>, CtlError> {
        let wants_tls = !flags.cacert.is_empty()
            || !flags.cert.is_empty()
            || !flags.key.is_empty()
            || !flags.insecure_transport
            || flags.endpoints.iter().any(|e| e.starts_with("https://"));
        if !wants_tls {
            return Ok(None);
        }
        if flags.insecure_skip_tls_verify {
            return Err(CtlError::BadFeature(
                "--insecure-skip-tls-verify is not supported by this etcdctl".into(),
            ));
        }
        // In the order etcd's TLSInfo checks them: the key pair first, then the CA.
        let mut config = ClientTlsConfig::new();
        match (flags.cert.is_empty(), flags.key.is_empty()) {
            (false, false) => {
                let (cert, key) = (read(&flags.cert)?, read(&flags.key)?);
                check_key_pair(&cert, &key).map_err(CtlError::BadArgs)?;
                let identity = Identity::from_pem(cert, key);
                config = config.identity(identity);
            }
            (true, true) => {}
            _ => {
                return Err(CtlError::BadArgs(format!(
                    "KeyFile and CertFile must both be present[key: {}, cert: {}]",
                    flags.key, flags.cert
                )))
            }
        }
        if !flags.cacert.is_empty() {
            config = config.ca_certificate(Certificate::from_pem(read(&flags.cacert)?));
        }
        Ok(Some(TlsSettings { config }))
    }

    /// `endpoint` with this TLS configuration.
    pub fn apply(&self, endpoint: Endpoint, name: &str) -> Result<Endpoint, CtlError> {
        endpoint.tls_config(self.config.clone()).map_err(|e| {
            // tonic's own text is only "transport error"; the cause says what is wrong.
            let cause = std::error::Error::source(&e).map_or(e.to_string(), |c| c.to_string());
            CtlError::BadArgs(format!("bad TLS configuration for {name}: {cause}"))
        })
    }
}

/// The checks Go's `tls.X509KeyPair` makes on the kinds of PEM blocks in the certificate
/// and key files, failing with its words: a certificate block must be in the one, a
/// private key block in the other.
fn check_key_pair(cert: &[u8], key: &[u8]) -> Result<(), String> {
    let found = pem_block_types(cert);
    if !found.iter().any(|t| t == "CERTIFICATE") {
        return Err(match &found[..] {
            [] => "tls: failed to find any PEM data in certificate input".into(),
            [t] if t.ends_with("PRIVATE KEY") => "tls: failed to find certificate PEM data in \
                certificate input, but did find a private key; PEM inputs may have been switched"
                .into(),
            skipped => format!(
                "tls: failed to find \"CERTIFICATE\" PEM block in certificate input after \
                 skipping PEM blocks of the following types: [{}]",
                skipped.join(" ")
            ),
        });
    }
    let found = pem_block_types(key);
    if !found
        .iter()
        .any(|t| t == "PRIVATE KEY" || t.ends_with(" PRIVATE KEY"))
    {
        return Err(match &found[..] {
            [] => "tls: failed to find any PEM data in key input".into(),
            [t] if t == "CERTIFICATE" => {
                "tls: found a certificate rather than a key in the PEM for the private key".into()
            }
            skipped => format!(
                "tls: failed to find PEM block with type ending in \"PRIVATE KEY\" in key input \
                 after skipping PEM blocks of the following types: [{}]",
                skipped.join(" ")
            ),
        });
    }
    Ok(())
}

/// The types of the PEM blocks in `pem`, in order (`-----BEGIN TYPE-----` up to a matching
/// `-----END TYPE-----`).
fn pem_block_types(pem: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(pem);
    let mut rest = &text[..];
    let mut types = Vec::new();
    while let Some(begin) = rest.find("-----BEGIN ") {
        let after = &rest[begin + "-----BEGIN ".len()..];
        let Some(kind) = after.find("-----").map(|end| &after[..end]) else {
            break;
        };
        let footer = format!("-----END {kind}-----");
        let Some(end) = after.find(&footer) else {
            break;
        };
        types.push(kind.to_string());
        rest = &after[end + footer.len()..];
    }
    types
}

/// Reads a PEM file; a missing file fails as Go's `open` does, and like every TLS setting
/// etcdctl cannot use, as a bad argument.
fn read(path: &str) -> Result<Vec<u8>, CtlError> {
    std::fs::read(path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        CtlError::BadArgs(format!("open {path}: {why}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n";

    fn check(cert: &str, key: &str) -> Result<(), String> {
        check_key_pair(cert.as_bytes(), key.as_bytes())
    }

    #[test]
    fn key_pairs_are_checked_in_gos_words() {
        assert_eq!(check(CERT, KEY), Ok(()));
        assert_eq!(
            check("junk", KEY).unwrap_err(),
            "tls: failed to find any PEM data in certificate input"
        );
        assert!(check(KEY, KEY)
            .unwrap_err()
            .ends_with("but did find a private key; PEM inputs may have been switched"));
        assert_eq!(
            check(CERT, CERT).unwrap_err(),
            "tls: found a certificate rather than a key in the PEM for the private key"
        );
        assert_eq!(
            check(CERT, "").unwrap_err(),
            "tls: failed to find any PEM data in key input"
        );
        let two = format!("{CERT}{CERT}");
        assert!(check(CERT, &two)
            .unwrap_err()
            .ends_with("following types: [CERTIFICATE CERTIFICATE]"));
    }
}
