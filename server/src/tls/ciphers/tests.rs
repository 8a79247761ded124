use super::*;

#[test]
fn go_names_map_to_rustls_suites() {
    let suites = parse(
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,TLS_AES_256_GCM_SHA384",
    )
    .unwrap();
    let names: Vec<String> = suites.iter().map(|s| format!("{:?}", s.suite())).collect();
    assert_eq!(
        names,
        [
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS13_AES_256_GCM_SHA384"
        ]
    );
    assert!(parse("").unwrap().is_empty());
}

#[test]
fn every_supported_name_is_also_known_by_its_rustls_name() {
    for (go, suite) in SUPPORTED {
        let rustls_name = format!("{:?}", suite.suite());
        assert!(
            rustls_name == *go
                || rustls_name == format!("{go}_SHA256")
                || rustls_name == go.replace("TLS_", "TLS13_"),
            "{go} maps to {rustls_name}"
        );
    }
}

#[test]
fn names_go_knows_but_rustls_lacks_and_unknown_names_are_errors() {
    assert_eq!(
        parse("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_AES_128_CBC_SHA")
            .unwrap_err()
            .to_string(),
        "TLS cipher suite \"TLS_RSA_WITH_AES_128_CBC_SHA\" is not supported by this build \
         (rustls implements only AEAD suites with forward secrecy)"
    );
    assert_eq!(
        parse("FOO").unwrap_err().to_string(),
        "unexpected TLS cipher suite \"FOO\""
    );
}
