//! TLS for client connections (`--cacert`, `--cert`, `--key`, `https://` endpoints), as
//! etcdctl 3.4 decides it. The flags make a TLS configuration when a TLS file is given or
//! `--insecure-transport=false`; clientv3 then dials by the scheme of the first endpoint of
//! the client: `http://` in plain text whatever the flags, `https://` over TLS (the flags'
//! configuration, or a default one that verifies), no scheme by the flags. Every endpoint of
//! the client is dialled the same way.
//!
//! `--insecure-skip-tls-verify` only changes the flags' configuration (etcdctl sets Go's
//! `InsecureSkipVerify` on it), so an `https://` endpoint alone is still verified. Skipping,
//! the server's certificate is accepted whoever signed it and whatever names it holds, but
//! the handshake is still TLS with the client certificate sent and the server's handshake
//! signatures checked, as Go's client does. tonic's own TLS cannot take a verifier, so those
//! connections are dialled by a rustls connector of our own.

use std::sync::Arc;

use etcd_server::tls::connector::TlsDialer;
use etcd_server::tls::verify::Signatures;
use http::uri::Scheme;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Uri};

use super::error::CtlError;
use super::global::GlobalFlags;

/// The TLS configuration every connection of one run uses.
#[derive(Debug, Clone)]
pub enum TlsSettings {
    /// tonic's TLS, verifying the server against `--cacert` (or nothing).
    Verified(ClientTlsConfig),
    /// `--insecure-skip-tls-verify`: our connector with [`AcceptAnyServerCert`], or why the
    /// client certificate cannot be used (told for each endpoint, as tonic's errors are).
    Unverified(Result<Arc<ClientConfig>, String>),
}

/// clientv3's own configuration for an `https://` endpoint when the flags make none.
impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings::Verified(ClientTlsConfig::new())
    }
}

impl TlsSettings {
    /// The configuration the flags make (Go's `cfg.TLS`), if they make one.
    pub fn from_flags(flags: &GlobalFlags) -> Result<Option<TlsSettings>, CtlError> {
        let configured = !flags.cacert.is_empty()
            || !flags.cert.is_empty()
            || !flags.key.is_empty()
            || !flags.insecure_transport;
        if !configured {
            return Ok(None);
        }
        // In the order etcd's TLSInfo checks them: the key pair first, then the CA (read,
        // and so required to exist, even when it is not used to verify).
        let key_pair = match (flags.cert.is_empty(), flags.key.is_empty()) {
            (false, false) => {
                let (cert, key) = (read(&flags.cert)?, read(&flags.key)?);
                check_key_pair(&cert, &key).map_err(CtlError::BadArgs)?;
                Some((cert, key))
            }
            (true, true) => None,
            _ => {
                return Err(CtlError::BadArgs(format!(
                    "KeyFile and CertFile must both be present[key: {}, cert: {}]",
                    flags.key, flags.cert
                )))
            }
        };
        let ca = match flags.cacert.is_empty() {
            true => None,
            false => Some(read(&flags.cacert)?),
        };
        if flags.insecure_skip_tls_verify {
            let config = unverified_config(key_pair).map_err(|e| e.to_string());
            return Ok(Some(TlsSettings::Unverified(config.map(Arc::new))));
        }
        let mut config = ClientTlsConfig::new();
        if let Some((cert, key)) = key_pair {
            config = config.identity(Identity::from_pem(cert, key));
        }
        if let Some(ca) = ca {
            config = config.ca_certificate(Certificate::from_pem(ca));
        }
        Ok(Some(TlsSettings::Verified(config)))
    }

    /// What a client for `endpoints` dials with, given the flags' configuration: by the
    /// scheme of the first endpoint, as clientv3 decides (`None`: plain text).
    pub fn for_endpoints(
        configured: Option<&TlsSettings>,
        endpoints: &[String],
    ) -> Option<TlsSettings> {
        let first = endpoints.first().map_or("", String::as_str);
        if first.starts_with("http://") {
            None
        } else if first.starts_with("https://") {
            Some(configured.cloned().unwrap_or_default())
        } else {
            configured.cloned()
        }
    }

    /// `endpoint` (for `--endpoints` entry `name`, with an `https://` URL) with this TLS
    /// configuration.
    pub fn apply(&self, endpoint: Endpoint, name: &str) -> Result<Endpoint, CtlError> {
        let bad_tls =
            |cause: String| CtlError::BadArgs(format!("bad TLS configuration for {name}: {cause}"));
        match self {
            TlsSettings::Verified(config) => endpoint.tls_config(config.clone()).map_err(|e| {
                // tonic's own text is only "transport error"; the cause says what is wrong.
                bad_tls(std::error::Error::source(&e).map_or(e.to_string(), |c| c.to_string()))
            }),
            TlsSettings::Unverified(Err(cause)) => Err(bad_tls(cause.clone())),
            // tonic is given `http://` so that its TLS stays out of the way of our
            // connector; requests still name the `https://` origin.
            TlsSettings::Unverified(Ok(_)) => {
                let origin = endpoint.uri().clone();
                let mut parts = origin.clone().into_parts();
                parts.scheme = Some(Scheme::HTTP);
                let plain = Uri::from_parts(parts).expect("a valid URI with another scheme");
                Ok(Endpoint::from(plain).origin(origin))
            }
        }
    }

    /// The connector for endpoints made by [`TlsSettings::endpoint`], when tonic's own does
    /// not do.
    fn dialer(&self) -> Option<TlsDialer> {
        match self {
            TlsSettings::Unverified(Ok(config)) => Some(TlsDialer::new(config.clone())),
            _ => None,
        }
    }
}

/// Connects to `endpoint`, made with `tls` (if any).
pub async fn connect(
    endpoint: &Endpoint,
    tls: Option<&TlsSettings>,
) -> Result<Channel, tonic::transport::Error> {
    match tls.and_then(TlsSettings::dialer) {
        Some(dialer) => endpoint.connect_with_connector(dialer).await,
        None => endpoint.connect().await,
    }
}

/// The rustls configuration of `--insecure-skip-tls-verify`, with the provider tonic's TLS
/// uses, speaking HTTP/2 and showing the client certificate if there is one.
fn unverified_config(key_pair: Option<(Vec<u8>, Vec<u8>)>) -> Result<ClientConfig, rustls::Error> {
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert(Signatures(provider))));
    let mut config = match key_pair {
        Some((cert, key)) => {
            // tonic's words for PEM it cannot parse.
            let chain = CertificateDer::pem_slice_iter(&cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| rustls::Error::General("Error parsing TLS certificate.".into()))?;
            let key = PrivateKeyDer::from_pem_slice(&key).map_err(|_| {
                rustls::Error::General(
                    "Error parsing TLS private key - no RSA or PKCS8-encoded keys found.".into(),
                )
            })?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Go's `InsecureSkipVerify`: any certificate chain for any name is accepted, but the
/// server must still prove, by the handshake signatures, that it holds the certificate's key.
#[derive(Debug)]
struct AcceptAnyServerCert(Signatures);

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.schemes()
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

/// The verifier of `--insecure-skip-tls-verify`, in handshakes with a rustls server held in
/// memory: any certificate is taken, a server without the certificate's key is not.
#[cfg(test)]
mod skip_verify_tests {
    use rustls::server::{ClientHello, ResolvesServerCert};
    use rustls::sign::CertifiedKey;
    use rustls::version::{TLS12, TLS13};
    use rustls::{Connection, ServerConfig, SupportedProtocolVersion};

    use super::*;

    /// A server showing `cert` and signing its handshakes with `key`, which need not be the
    /// certificate's.
    #[derive(Debug)]
    struct Shows(Arc<CertifiedKey>);

    impl ResolvesServerCert for Shows {
        fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
            Some(self.0.clone())
        }
    }

    /// A self-signed certificate (so from a CA nobody trusts) for a name nobody dials.
    fn stranger() -> (rcgen::Certificate, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().expect("key");
        let params =
            rcgen::CertificateParams::new(vec!["elsewhere.invalid".to_string()]).expect("params");
        (params.self_signed(&key).expect("certificate"), key)
    }

    fn signing_key(key: &rcgen::KeyPair) -> Arc<dyn rustls::sign::SigningKey> {
        let der = PrivateKeyDer::try_from(key.serialize_der()).expect("key DER");
        rustls::crypto::ring::sign::any_supported_type(&der).expect("signing key")
    }

    /// Runs the handshake between our unverified client and a server showing `cert` and
    /// signing with `key`, over `version`, until it completes or either side fails.
    fn handshake(
        version: &'static SupportedProtocolVersion,
        cert: &rcgen::Certificate,
        key: &rcgen::KeyPair,
    ) -> Result<(), rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certified = CertifiedKey::new(vec![cert.der().clone()], signing_key(key));
        let server = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Shows(Arc::new(certified))));
        let client = Arc::new(unverified_config(None)?);
        let name = ServerName::try_from("127.0.0.1").expect("name");
        let mut client = Connection::from(rustls::ClientConnection::new(client, name)?);
        let mut server = Connection::from(rustls::ServerConnection::new(Arc::new(server))?);
        while client.is_handshaking() || server.is_handshaking() {
            let moved = pass(&mut client, &mut server)? + pass(&mut server, &mut client)?;
            assert!(moved > 0, "the handshake stalled");
        }
        Ok(())
    }

    /// Moves what `from` has to send to `to`; the bytes moved.
    fn pass(from: &mut Connection, to: &mut Connection) -> Result<usize, rustls::Error> {
        let mut wire = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut wire).expect("write to memory");
        }
        let mut rest = &wire[..];
        while !rest.is_empty() {
            to.read_tls(&mut rest).expect("read from memory");
            to.process_new_packets()?;
        }
        Ok(wire.len())
    }

    #[test]
    fn any_certificate_for_any_name_is_accepted() {
        for version in [&TLS13, &TLS12] {
            let (cert, key) = stranger();
            assert_eq!(handshake(version, &cert, &key), Ok(()), "{version:?}");
        }
    }

    #[test]
    fn handshake_signatures_are_still_verified() {
        for version in [&TLS13, &TLS12] {
            let (cert, _) = stranger();
            let (_, other_key) = stranger();
            let refused = handshake(version, &cert, &other_key).unwrap_err();
            assert!(
                matches!(
                    refused,
                    rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature)
                ),
                "{version:?}: {refused:?}"
            );
        }
    }

    #[test]
    fn the_client_certificate_is_offered_over_http2() {
        let (cert, key) = stranger();
        let pem = |cert: &rcgen::Certificate, key: &rcgen::KeyPair| {
            Some((cert.pem().into_bytes(), key.serialize_pem().into_bytes()))
        };
        let config = unverified_config(pem(&cert, &key)).expect("client configuration");
        assert!(config.client_auth_cert_resolver.has_certs());
        assert_eq!(config.alpn_protocols, vec![b"h2".to_vec()]);
        // In tonic's words, as without the flag.
        let (_, other_key) = stranger();
        let mismatched = unverified_config(pem(&cert, &other_key)).unwrap_err();
        assert_eq!(
            mismatched.to_string(),
            "keys may not be consistent: KeyMismatch"
        );
    }
}
