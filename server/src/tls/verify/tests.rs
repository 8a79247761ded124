use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, RevokedCertParams, SerialNumber,
};
use rustls::pki_types::{CertificateDer, UnixTime};

use super::*;

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    Ca {
        issuer: Issuer::new(params, key),
        pem,
    }
}

/// A client certificate with CN `cn`, valid for `names`, with serial `serial`.
fn leaf(ca: &Ca, cn: &str, names: &[&str], serial: u8) -> CertificateDer<'static> {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::ServerAuth,
    ];
    params.serial_number = Some(SerialNumber::from_slice(&[serial]));
    let key = KeyPair::generate().unwrap();
    params.signed_by(&key, &ca.issuer).unwrap().der().clone()
}

fn crl(ca: &Ca, revoked: &[u8]) -> String {
    CertificateRevocationListParams {
        this_update: date_time_ymd(2024, 1, 1),
        next_update: date_time_ymd(2099, 1, 1),
        crl_number: SerialNumber::from_slice(&[1]),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from_slice(&[*s]),
                revocation_time: date_time_ymd(2024, 1, 1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&ca.issuer)
    .unwrap()
    .pem()
    .unwrap()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A verifier for `info` with the CA (and CRL, when given) written to `dir`.
fn client_verifier(
    dir: &std::path::Path,
    ca: &Ca,
    crl_pem: Option<&str>,
    info: TlsInfo,
) -> ClientVerifier {
    let ca_file = dir.join("ca.crt");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let mut info = TlsInfo {
        trusted_ca_file: ca_file.display().to_string(),
        client_cert_auth: true,
        ..info
    };
    if let Some(pem) = crl_pem {
        let crl_file = dir.join("ca.crl");
        std::fs::write(&crl_file, pem).unwrap();
        info.crl_file = crl_file.display().to_string();
    }
    ClientVerifier::new(&info, provider()).unwrap()
}

fn accepts(v: &ClientVerifier, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
    v.verify_client_cert(cert, &[], UnixTime::now()).map(|_| ())
}

#[test]
fn the_trusted_ca_is_required_and_revoked_certificates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (ours, other) = (ca("ca"), ca("other"));
    let v = client_verifier(
        dir.path(),
        &ours,
        Some(&crl(&ours, &[2])),
        TlsInfo::default(),
    );
    accepts(&v, &leaf(&ours, "good", &[], 1)).unwrap();
    let revoked = accepts(&v, &leaf(&ours, "revoked", &[], 2)).unwrap_err();
    assert_eq!(
        revoked,
        rustls::Error::InvalidCertificate(CertificateError::Revoked)
    );
    assert!(accepts(&v, &leaf(&other, "stranger", &[], 1)).is_err());
}

#[test]
fn a_rewritten_crl_applies_to_the_next_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let ours = ca("ca");
    let v = client_verifier(
        dir.path(),
        &ours,
        Some(&crl(&ours, &[])),
        TlsInfo::default(),
    );
    let cert = leaf(&ours, "soon-revoked", &[], 7);
    accepts(&v, &cert).unwrap();
    std::fs::write(dir.path().join("ca.crl"), crl(&ours, &[7, 8])).unwrap();
    assert!(accepts(&v, &cert).is_err());
}

#[test]
fn allowed_cn_and_hostname_are_checked_after_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let ours = ca("ca");
    let by_cn = TlsInfo {
        allowed_cn: "member".into(),
        ..TlsInfo::default()
    };
    let v = client_verifier(dir.path(), &ours, None, by_cn);
    accepts(&v, &leaf(&ours, "member", &[], 1)).unwrap();
    assert!(accepts(&v, &leaf(&ours, "intruder", &[], 2)).is_err());

    let allowed = Allowed {
        cn: String::new(),
        hostname: "m1.example.com".into(),
    };
    allowed
        .check(&leaf(&ours, "x", &["m1.example.com", "127.0.0.1"], 3))
        .unwrap();
    assert_eq!(
        allowed.check(&leaf(&ours, "m1.example.com", &["m2.example.com"], 4)),
        Err(AllowedError::Hostname)
    );
    let by_cn = Allowed {
        cn: "member".into(),
        hostname: String::new(),
    };
    assert_eq!(
        by_cn.check(&leaf(&ours, "Member", &[], 5)),
        Err(AllowedError::CommonName)
    );
}

#[test]
fn a_dialed_member_is_verified_unless_auto_tls_made_our_pair() {
    let dir = tempfile::tempdir().unwrap();
    let (ours, other) = (ca("ca"), ca("other"));
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, &ours.pem).unwrap();
    let info = TlsInfo {
        trusted_ca_file: ca_file.display().to_string(),
        ..TlsInfo::default()
    };
    let v = PeerServerVerifier::new(&info, provider()).unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let check = |v: &PeerServerVerifier, cert| {
        v.verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
            .map(|_| ())
    };
    check(&v, leaf(&ours, "m", &["127.0.0.1"], 1)).unwrap();
    assert!(check(&v, leaf(&ours, "m", &["127.0.0.2"], 2)).is_err());
    assert!(check(&v, leaf(&other, "m", &["127.0.0.1"], 3)).is_err());
    let auto = TlsInfo {
        self_signed: true,
        ..TlsInfo::default()
    };
    let v = PeerServerVerifier::new(&auto, provider()).unwrap();
    check(&v, leaf(&other, "m", &["127.0.0.2"], 4)).unwrap();
}
