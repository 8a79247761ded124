//! Our etcdctl over TLS: Debian's etcd serves clients on `https://` and requires client
//! certificates (`--client-cert-auth`); Debian's etcdctl and ours run the same commands with
//! `--cacert --cert --key` and must print the same. A CA that did not sign the server's
//! certificate, a missing CA file and a broken key pair fail the same way in both.

use std::path::{Path, PathBuf};

use etcd_e2e::{
    etcdctl_with, normalise, our_binary, raw_transcript, Flavor, Member, DEBIAN_ETCDCTL,
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

/// PEM files of a CA, a server certificate for 127.0.0.1 and localhost, a client
/// certificate, and a second CA that signed neither.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki { dir };
        let ca = pki.ca("ca");
        pki.ca("other-ca");
        pki.leaf(
            &ca,
            "server",
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        pki.leaf(&ca, "client", &[], ExtendedKeyUsagePurpose::ClientAuth);
        pki
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn write(&self, name: &str, pem: String) {
        std::fs::write(self.path(name), pem).expect("write PEM");
    }

    /// A self-signed CA written as `<name>.crt`; its issuer for signing.
    fn ca(&self, name: &str) -> Issuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed CA");
        self.write(&format!("{name}.crt"), cert.pem());
        Issuer::new(params, key)
    }

    /// A certificate signed by `ca` for `names`, as `<name>.crt` and `<name>.key`.
    fn leaf(
        &self,
        ca: &Issuer<'static, KeyPair>,
        name: &str,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
    ) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages.push(usage);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, ca).expect("signed certificate");
        self.write(&format!("{name}.crt"), cert.pem());
        self.write(&format!("{name}.key"), key.serialize_pem());
    }

    /// etcd's flags for serving clients with the server certificate and requiring clients
    /// to show one the CA signed.
    fn server_flags(&self) -> Vec<String> {
        vec![
            format!("--cert-file={}", self.path("server.crt")),
            format!("--key-file={}", self.path("server.key")),
            format!("--trusted-ca-file={}", self.path("ca.crt")),
            "--client-cert-auth".to_string(),
        ]
    }

    /// etcdctl's flags trusting `ca` and showing the client certificate.
    fn ctl_flags(&self, ca: &str) -> Vec<String> {
        vec![
            format!("--cacert={}", self.path(ca)),
            format!("--cert={}", self.path("client.crt")),
            format!("--key={}", self.path("client.key")),
        ]
    }
}

/// Runs both etcdctls with `flags` then `args`; returns (Debian's, ours) transcripts, with
/// ports, timings and the certificates' directory blanked.
fn both(pki: &Pki, member: &Member, flags: &[String], args: &[&str]) -> (String, String) {
    let run = |binary: &Path| {
        let flags = flags.iter().map(String::as_str);
        let all: Vec<&str> = flags.chain(args.iter().copied()).collect();
        let out = etcdctl_with(binary, &member.endpoint(), &all, None, &[]);
        // Go's log lines of the client's retries are not part of the comparison.
        let text: String = raw_transcript(&out)
            .lines()
            .filter(|l| !l.starts_with("{\"level\""))
            .map(|l| format!("{l}\n"))
            .collect();
        let dir = pki.dir.path().display().to_string();
        normalise(&text).replace(&dir, "<pki>")
    };
    (
        run(&PathBuf::from(DEBIAN_ETCDCTL)),
        run(&our_binary("etcdctl")),
    )
}

fn same(pki: &Pki, member: &Member, flags: &[String], args: &[&str]) -> String {
    let (debian, ours) = both(pki, member, flags, args);
    assert_eq!(ours, debian, "etcdctl {args:?} (left: ours)");
    ours
}

#[test]
fn commands_over_tls_with_client_certificates() {
    let pki = Pki::new();
    let server = pki.server_flags();
    let server: Vec<&str> = server.iter().map(String::as_str).collect();
    let ctl = pki.ctl_flags("ca.crt");
    let ctl_refs: Vec<&str> = ctl.iter().map(String::as_str).collect();
    let member = Member::start_https(Flavor::Reference, &server, &ctl_refs);
    assert!(member.endpoint().starts_with("https://"));

    assert_eq!(
        same(&pki, &member, &ctl, &["put", "k", "v"]),
        "exit=0\nOK\n"
    );
    assert_eq!(same(&pki, &member, &ctl, &["get", "k"]), "exit=0\nk\nv\n");
    same(&pki, &member, &ctl, &["get", "k", "-w", "json"]);
    let health = same(&pki, &member, &ctl, &["endpoint", "health"]);
    assert!(health.contains("is healthy"), "{health}");

    // Failures: a CA that did not sign the server's certificate (the handshake fails until
    // the command times out), a CA file that is not there, a key without its certificate,
    // the key files swapped.
    let quick = "--command-timeout=2s";
    let wrong_ca = pki.ctl_flags("other-ca.crt");
    let failed = same(&pki, &member, &wrong_ca, &[quick, "get", "k"]);
    assert_eq!(failed, "exit=1\nError: context deadline exceeded\n");
    let missing_ca = pki.ctl_flags("missing.crt");
    let failed = same(&pki, &member, &missing_ca, &["get", "k"]);
    assert_eq!(
        failed,
        "exit=128\nError: open <pki>/missing.crt: no such file or directory\n"
    );
    let key_only = vec![ctl[0].clone(), ctl[2].clone()];
    let failed = same(&pki, &member, &key_only, &["get", "k"]);
    assert!(
        failed.contains("KeyFile and CertFile must both be present"),
        "{failed}"
    );
    let swapped = vec![
        ctl[0].clone(),
        format!("--cert={}", pki.path("client.key")),
        format!("--key={}", pki.path("client.crt")),
    ];
    same(&pki, &member, &swapped, &["get", "k"]);
}
