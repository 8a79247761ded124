use rcgen::{CertificateParams, KeyPair};

use super::*;

fn cert(names: &[&str]) -> CertificateDer<'static> {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let params = CertificateParams::new(names).unwrap();
    let key = KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().clone()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn ip_addresses_must_name_the_connecting_address() {
    let c = cert(&["10.0.0.1", "127.0.0.1"]);
    check(&c, ip("127.0.0.1")).await.unwrap();
    check(&c, ip("::ffff:127.0.0.1")).await.unwrap();
    assert_eq!(
        check(&c, ip("127.0.0.2")).await.unwrap_err().to_string(),
        "x509: certificate is valid for 10.0.0.1, 127.0.0.1, not 127.0.0.2"
    );
}

#[tokio::test]
async fn dns_names_must_resolve_to_the_connecting_address() {
    let c = cert(&["localhost"]);
    check(&c, ip("127.0.0.1")).await.unwrap();
    assert_eq!(
        check(&c, ip("127.0.0.2")).await.unwrap_err(),
        SanError::NoDnsMatch {
            addr: "127.0.0.2".into(),
            names: vec!["localhost".into()]
        }
    );
    // As in etcd, DNS names decide when there are any, even if an IP address matched.
    let c = cert(&["127.0.0.1", "no-such-host.invalid"]);
    assert!(check(&c, ip("127.0.0.1")).await.is_err());
}

#[tokio::test]
async fn a_certificate_without_alternative_names_passes() {
    let c = cert(&[]);
    check(&c, ip("192.0.2.7")).await.unwrap();
}
