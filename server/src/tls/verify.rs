//! Checking the other side's certificate: clients of a listener with client-cert-auth, and
//! members we dial. The CA bundle and the revocation list are re-read when their files
//! change, as etcd reads them per connection. `--peer-cert-allowed-cn` and
//! `--peer-cert-allowed-hostname` are checked after the chain, on both sides (etcd puts them
//! in the base TLS configuration its listener and dialer share).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme,
};

use super::keys::{load_crls, load_roots};
use super::reload::Reloading;
use super::{TlsError, TlsInfo};

/// Where Debian keeps the system's CA bundle, which Go uses when no CA file is given.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why a certificate that chains to the CA is still refused (etcd's texts).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AllowedError {
    #[error("CommonName authentication failed")]
    CommonName,
    #[error("client certificate authentication failed")]
    Hostname,
}

/// The subject's first common name of `cert`, if it has one that is text.
pub fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, c) = x509_parser::parse_x509_certificate(cert).ok()?;
    let cn = c.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

/// `--peer-cert-allowed-cn` / `--peer-cert-allowed-hostname` (empty: not checked).
#[derive(Debug, Clone, Default)]
pub struct Allowed {
    pub cn: String,
    pub hostname: String,
}

impl Allowed {
    /// Checks the end-entity certificate against the allowed CN and hostname.
    pub fn check(&self, cert: &CertificateDer<'_>) -> Result<(), AllowedError> {
        if !self.cn.is_empty() && common_name(cert).as_deref() != Some(self.cn.as_str()) {
            return Err(AllowedError::CommonName);
        }
        if !self.hostname.is_empty() {
            let valid = ServerName::try_from(self.hostname.as_str())
                .ok()
                .zip(webpki::EndEntityCert::try_from(cert).ok())
                .is_some_and(|(name, cert)| cert.verify_is_valid_for_subject_name(&name).is_ok());
            if !valid {
                return Err(AllowedError::Hostname);
            }
        }
        Ok(())
    }

    fn check_rustls(&self, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        self.check(cert).map_err(|e| {
            rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
        })
    }
}

/// The handshake signature checks, with the provider's algorithms (the same for every
/// verifier, etcdctl's `--insecure-skip-tls-verify` one included; only the certificate
/// checks differ).
#[derive(Debug)]
pub struct Signatures(pub Arc<CryptoProvider>);

impl Signatures {
    pub fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    pub fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    pub fn schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn general(e: TlsError) -> rustls::Error {
    rustls::Error::General(e.to_string())
}

/// Verifies client certificates against the trusted CA and the CRL.
pub struct ClientVerifier {
    inner: Reloading<Arc<dyn ClientCertVerifier>>,
    allowed: Allowed,
    signatures: Signatures,
}

impl ClientVerifier {
    pub fn new(info: &TlsInfo, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let ca = PathBuf::from(&info.trusted_ca_file);
        let crl = (!info.crl_file.is_empty()).then(|| PathBuf::from(&info.crl_file));
        let paths = std::iter::once(ca.clone()).chain(crl.clone()).collect();
        let p = provider.clone();
        let inner = Reloading::new(paths, move || {
            let roots = Arc::new(load_roots(&ca)?);
            let mut builder = WebPkiClientVerifier::builder_with_provider(roots, p.clone());
            if let Some(crl) = &crl {
                // Only the presented certificate is looked up, and one the list does not
                // speak for passes: etcd checks the serial numbers in the list, nothing more.
                builder = builder
                    .with_crls(load_crls(crl)?)
                    .only_check_end_entity_revocation()
                    .allow_unknown_revocation_status();
            }
            let verifier: Arc<dyn ClientCertVerifier> =
                builder.build().map_err(|e| TlsError::BadCa {
                    path: ca.display().to_string(),
                    reason: e.to_string(),
                })?;
            Ok(verifier)
        })?;
        Ok(ClientVerifier {
            inner,
            allowed: info.allowed(),
            signatures: Signatures(provider),
        })
    }
}

impl std::fmt::Debug for ClientVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientVerifier")
    }
}

impl ClientCertVerifier for ClientVerifier {
    /// No CA names are sent (they would have to outlive a reload); Go's and curl's clients
    /// show their one certificate regardless.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let inner = self.inner.get().map_err(general)?;
        inner.verify_client_cert(end_entity, intermediates, now)?;
        self.allowed.check_rustls(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.schemes()
    }
}

/// Verifies the member we dial: against `--peer-trusted-ca-file` (or the system's CAs, as
/// Go does without one), or not at all when our key pair was made by auto-TLS.
pub struct PeerServerVerifier {
    inner: Option<Reloading<Arc<WebPkiServerVerifier>>>,
    allowed: Allowed,
    signatures: Signatures,
}

impl PeerServerVerifier {
    pub fn new(info: &TlsInfo, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let inner = if info.self_signed {
            None
        } else {
            let ca = match info.trusted_ca_file.as_str() {
                "" => PathBuf::from(SYSTEM_ROOTS),
                file => PathBuf::from(file),
            };
            let p = provider.clone();
            Some(Reloading::new(vec![ca.clone()], move || {
                let roots = Arc::new(load_roots(&ca)?);
                WebPkiServerVerifier::builder_with_provider(roots, p.clone())
                    .build()
                    .map_err(|e| TlsError::BadCa {
                        path: ca.display().to_string(),
                        reason: e.to_string(),
                    })
            })?)
        };
        Ok(PeerServerVerifier {
            inner,
            allowed: info.allowed(),
            signatures: Signatures(provider),
        })
    }
}

impl std::fmt::Debug for PeerServerVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerServerVerifier")
    }
}

impl ServerCertVerifier for PeerServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(inner) = &self.inner else {
            return Ok(ServerCertVerified::assertion());
        };
        let inner = inner.get().map_err(general)?;
        inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        self.allowed.check_rustls(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.schemes()
    }
}

#[cfg(test)]
mod tests;
