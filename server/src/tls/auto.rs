//! `--auto-tls` / `--peer-auto-tls`: a self-signed key pair under `<data-dir>/fixtures/client`
//! or `fixtures/peer` (`cert.pem`, `key.pem`), made once and reused on restart, as etcd's
//! `transport.SelfCert` does.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType,
    SerialNumber,
};

use super::{TlsError, TlsInfo};

fn auto_err(e: impl std::fmt::Display) -> TlsError {
    TlsError::AutoTls(e.to_string())
}

/// The key pair in `dir` for `hosts` (host names or IPs), made if it is not there yet.
pub fn self_cert(dir: &Path, hosts: &[String], validity_years: u32) -> Result<TlsInfo, TlsError> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if !(cert.exists() && key.exists()) {
        generate(dir, &cert, &key, hosts, validity_years)?;
    }
    Ok(TlsInfo {
        cert_file: cert.display().to_string(),
        key_file: key.display().to_string(),
        self_signed: true,
        ..TlsInfo::default()
    })
}

fn generate(
    dir: &Path,
    cert: &Path,
    key: &Path,
    hosts: &[String],
    validity_years: u32,
) -> Result<(), TlsError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| TlsError::read(dir, &e))?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "etcd");
    for host in hosts {
        let san = match host.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(host.clone().try_into().map_err(auto_err)?),
        };
        if !params.subject_alt_names.contains(&san) {
            params.subject_alt_names.push(san);
        }
    }
    let serial: [u8; 16] = rand::random();
    params.serial_number = Some(SerialNumber::from_slice(&serial[..]));
    let now = std::time::SystemTime::now();
    params.not_before = now.into();
    let days = 365 * u64::from(validity_years.max(1));
    params.not_after = (now + std::time::Duration::from_secs(days * 86400)).into();
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let pair = KeyPair::generate().map_err(auto_err)?;
    let made = params.self_signed(&pair).map_err(auto_err)?;
    // The key first, so a crash in between leaves no certificate without its key.
    write(key, &pair.serialize_pem(), 0o600)?;
    write(cert, &made.pem(), 0o644)?;
    tracing::info!(target: "embed", "generated self-signed certificate in {}", dir.display());
    Ok(())
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), TlsError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| TlsError::read(&tmp, &e))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| TlsError::read(path, &e))
}

#[cfg(test)]
mod tests;
