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
        let mut config = ClientTlsConfig::new();
        if !flags.cacert.is_empty() {
            config = config.ca_certificate(Certificate::from_pem(read(&flags.cacert)?));
        }
        match (flags.cert.is_empty(), flags.key.is_empty()) {
            (false, false) => {
                let identity = Identity::from_pem(read(&flags.cert)?, read(&flags.key)?);
                config = config.identity(identity);
            }
            (true, true) => {}
            _ => {
                return Err(CtlError::Setup(
                    "both --cert and --key are needed for a client certificate".into(),
                ))
            }
        }
        Ok(Some(TlsSettings { config }))
    }

    /// `endpoint` with this TLS configuration.
    pub fn apply(&self, endpoint: Endpoint, name: &str) -> Result<Endpoint, CtlError> {
        endpoint
            .tls_config(self.config.clone())
            .map_err(|e| CtlError::BadArgs(format!("bad TLS configuration for {name}: {e}")))
    }
}

/// Reads a PEM file; a missing file fails as Go's `open` does.
fn read(path: &str) -> Result<Vec<u8>, CtlError> {
    std::fs::read(path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        CtlError::Setup(format!("open {path}: {why}"))
    })
}
