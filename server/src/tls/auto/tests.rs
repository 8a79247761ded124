use super::*;

#[test]
fn made_once_for_the_hosts_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = dir.path().join("fixtures/peer");
    let hosts = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    let info = self_cert(&fixtures, &hosts, 2).unwrap();
    assert!(info.self_signed);
    let first = std::fs::read(&info.cert_file).unwrap();
    let again = self_cert(&fixtures, &hosts, 2).unwrap();
    assert_eq!(std::fs::read(&again.cert_file).unwrap(), first);

    let pem = rustls::pki_types::pem::PemObject::from_pem_slice(&first);
    let der: rustls::pki_types::CertificateDer = pem.unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let validity = cert.validity();
    let days = (validity.not_after.timestamp() - validity.not_before.timestamp()) / 86400;
    assert_eq!(days, 730);
    let sans = cert.subject_alternative_name().unwrap().unwrap();
    assert_eq!(sans.value.general_names.len(), 2);
    // The pair loads as a server key pair.
    super::super::keys::load_key_pair(info.cert_file.as_ref(), info.key_file.as_ref()).unwrap();
}
