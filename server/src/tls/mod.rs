//! TLS on the client and peer URLs, as etcd 3.4's `transport.TLSInfo` sets it up: a key pair
//! served to whoever connects, optionally client certificates required from a trusted CA
//! (with a revocation list and, for peers, an allowed CN or hostname), the same files used as
//! the client identity when dialing other members, and files re-read when they change.

pub mod auto;
pub mod ciphers;
pub mod connector;
pub mod keys;
pub mod listener;
pub mod reload;
pub mod san;
pub mod setup;
pub mod verify;

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, ServerConfig, SupportedCipherSuite};

use keys::KeyPairResolver;
use verify::{Allowed, ClientVerifier, PeerServerVerifier};

/// Why TLS could not be set up; the texts are etcd's (Go's) where etcd has one.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("open {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("tls: failed to find any PEM data in certificate input ({0})")]
    NoCertificate(String),
    #[error("tls: failed to find any PEM data in key input ({0})")]
    NoKey(String),
    #[error("tls: private key does not match public key ({cert}, {key}): {reason}")]
    KeyMismatch {
        cert: String,
        key: String,
        reason: String,
    },
    #[error("error loading certificate revocation list {path}: {reason}")]
    BadCrl { path: String, reason: String },
    #[error("error loading trusted CA file {path}: {reason}")]
    BadCa { path: String, reason: String },
    #[error("TLS key/cert (--cert-file, --key-file) must be provided for client url {0} with HTTPS scheme")]
    ClientUrlWithoutKeyPair(String),
    #[error("cannot listen on TLS for {0}: KeyFile and CertFile are not presented")]
    PeerUrlWithoutKeyPair(String),
    #[error("cannot generate cert: {0}")]
    AutoTls(String),
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
}

impl TlsError {
    /// A file that could not be read, worded as Go's `open` error.
    pub fn read(path: &Path, e: &std::io::Error) -> TlsError {
        TlsError::Read {
            path: path.display().to_string(),
            reason: crate::config::error::go_io_reason(e),
        }
    }
}

/// One side's TLS files and checks (`--cert-file ...` or `--peer-cert-file ...`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    pub cert_file: String,
    pub key_file: String,
    pub trusted_ca_file: String,
    pub client_cert_auth: bool,
    pub crl_file: String,
    /// `--peer-cert-allowed-cn`: the CN a connecting member's certificate must carry.
    pub allowed_cn: String,
    /// `--peer-cert-allowed-hostname` (`--client-cert-allowed-hostname`): a name a connecting
    /// member's (client's) certificate must be valid for.
    pub allowed_hostname: String,
    /// Check a connecting client's certificate against its address after the handshake
    /// (etcd's peer listeners, unless `--experimental-peer-skip-client-san-verification`).
    pub check_client_san: bool,
    /// The key pair was made by auto-TLS: as etcd, the other side is not verified when
    /// dialing with it (Go's `InsecureSkipVerify`).
    pub self_signed: bool,
}

impl TlsInfo {
    /// No key pair: `https://` URLs cannot be served (etcd's `TLSInfo.Empty`).
    pub fn is_empty(&self) -> bool {
        self.cert_file.is_empty() && self.key_file.is_empty()
    }

    /// etcd's start-up description (`ClientTLS: ...`, `peerTLS: ...`).
    pub fn describe(&self) -> String {
        format!(
            "cert = {}, key = {}, trusted-ca = {}, client-cert-auth = {}, crl-file = {}",
            self.cert_file,
            self.key_file,
            self.trusted_ca_file,
            self.client_cert_auth,
            self.crl_file
        )
    }

    fn allowed(&self) -> Allowed {
        Allowed {
            cn: self.allowed_cn.clone(),
            hostname: self.allowed_hostname.clone(),
        }
    }
}

/// The crypto provider with `--cipher-suites` applied (TLS 1.3 suites stay, as Go's
/// `CipherSuites` setting only governs TLS 1.2).
fn provider(suites: &[SupportedCipherSuite]) -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !suites.is_empty() {
        provider.cipher_suites.retain(|s| {
            s.version() == &rustls::version::TLS13 || suites.iter().any(|w| w.suite() == s.suite())
        });
    }
    Arc::new(provider)
}

/// HTTP/2 for gRPC and raft, HTTP/1.1 for `/health`, `/version`, `/metrics` over `curl`.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The server side of a listener: the key pair (reloaded per handshake) and, with
/// client-cert-auth, the verifier of client certificates.
pub fn server_config(
    info: &TlsInfo,
    suites: &[SupportedCipherSuite],
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider(suites);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = if info.client_cert_auth {
        builder.with_client_cert_verifier(Arc::new(ClientVerifier::new(info, provider)?))
    } else {
        builder.with_no_client_auth()
    };
    let resolver = KeyPairResolver::new(&info.cert_file, &info.key_file)?;
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The dialing side of peer connections: the peer key pair as client certificate, and the
/// other member verified against `--peer-trusted-ca-file` (not at all with auto-TLS).
pub fn client_config(
    info: &TlsInfo,
    suites: &[SupportedCipherSuite],
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider(suites);
    let verifier = PeerServerVerifier::new(info, provider.clone())?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut config = if info.is_empty() {
        builder.with_no_client_auth()
    } else {
        let resolver = KeyPairResolver::new(&info.cert_file, &info.key_file)?;
        builder.with_client_cert_resolver(Arc::new(resolver))
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}
