//! Our etcdctl over TLS: Debian's etcd (and then ours) serves clients on `https://` and
//! requires client certificates (`--client-cert-auth`); Debian's etcdctl and ours run the
//! same commands with `--cacert --cert --key` and must print the same. A CA that did not sign
//! the server's certificate, a missing CA file and a broken key pair fail the same way in both.

use std::path::{Path, PathBuf};

use etcd_e2e::pki::Pki;
use etcd_e2e::{
    etcdctl_with, normalise, our_binary, raw_transcript, Flavor, Member, DEBIAN_ETCDCTL,
};

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
        let dir = pki.dir().display().to_string();
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
    commands_over_tls(Flavor::Reference);
}

/// The same against our server's TLS.
#[test]
fn commands_over_tls_with_client_certificates_on_ours() {
    commands_over_tls(Flavor::Ours);
}

fn commands_over_tls(flavor: Flavor) {
    let pki = Pki::new();
    let server = pki.server_flags();
    let server: Vec<&str> = server.iter().map(String::as_str).collect();
    let ctl = pki.ctl_flags("ca.crt");
    let ctl_refs: Vec<&str> = ctl.iter().map(String::as_str).collect();
    let member = Member::start_https(flavor, &server, &ctl_refs);
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
