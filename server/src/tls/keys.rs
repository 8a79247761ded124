//! Reading PEM files: key pairs, CA bundles and revocation lists, and the resolver that
//! hands out the key pair as it is on disk at each handshake.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, SignatureScheme};

use super::reload::Reloading;
use super::TlsError;

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::read(path, &e))
}

/// The certificate chain and private key of `cert` and `key`, checked to belong together.
pub fn load_key_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let (cert_pem, key_pem) = (read(cert)?, read(key)?);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.display().to_string()));
    }
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| TlsError::NoKey(key.display().to_string()))?;
    let provider = rustls::crypto::ring::default_provider();
    let pair =
        CertifiedKey::from_der(chain, key_der, &provider).map_err(|e| TlsError::KeyMismatch {
            cert: cert.display().to_string(),
            key: key.display().to_string(),
            reason: e.to_string(),
        })?;
    Ok(pair)
}

/// The CA certificates of a bundle.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let pem = read(path)?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| TlsError::BadCa {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        roots.add(cert).map_err(|e| TlsError::BadCa {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    if roots.is_empty() {
        return Err(TlsError::BadCa {
            path: path.display().to_string(),
            reason: "no certificate found".into(),
        });
    }
    Ok(roots)
}

/// The revocation lists of a PEM (or DER) CRL file.
pub fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let data = read(path)?;
    let bad = |reason: String| TlsError::BadCrl {
        path: path.display().to_string(),
        reason,
    };
    if !data.starts_with(b"-----") {
        return Ok(vec![CertificateRevocationListDer::from(data)]);
    }
    let crls = CertificateRevocationListDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if crls.is_empty() {
        return Err(bad("no X509 CRL found".into()));
    }
    Ok(crls)
}

/// Serves (or, dialing, shows) the key pair of two files, re-read when they change.
pub struct KeyPairResolver {
    pair: Reloading<CertifiedKey>,
}

impl KeyPairResolver {
    pub fn new(cert: &str, key: &str) -> Result<Self, TlsError> {
        let (cert, key) = (PathBuf::from(cert), PathBuf::from(key));
        let paths = vec![cert.clone(), key.clone()];
        Ok(KeyPairResolver {
            pair: Reloading::new(paths, move || load_key_pair(&cert, &key))?,
        })
    }

    fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.pair.get().ok()
    }
}

impl std::fmt::Debug for KeyPairResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyPairResolver")
    }
}

impl ResolvesServerCert for KeyPairResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

impl ResolvesClientCert for KeyPairResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.current()
    }

    fn has_certs(&self) -> bool {
        true
    }
}
