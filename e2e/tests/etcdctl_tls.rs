//! Our etcdctl over TLS: Debian's etcd (and then ours) serves clients on `https://` and
//! requires client certificates (`--client-cert-auth`); Debian's etcdctl and ours run the
//! same commands with `--cacert --cert --key` and must print the same. A CA that did not sign
//! the server's certificate, a missing CA file and a broken key pair fail the same way in both.
//! Members whose certificate etcdctl cannot verify (an unknown CA, another host name) are
//! reached by both with `--insecure-skip-tls-verify` and by neither without it.

use std::path::{Path, PathBuf};

use etcd_e2e::pki::{Pki, Usage};
use etcd_e2e::{
    etcdctl_with, normalise, our_binary, raw_transcript, Flavor, Member, DEBIAN_ETCDCTL,
};

/// Runs both etcdctls on `endpoints` with the environment `env`, `flags` then `args`;
/// returns (Debian's, ours) transcripts, with ports, timings and the certificates' directory
/// blanked.
fn both_at(
    pki: &Pki,
    endpoints: &str,
    env: &[(&str, &str)],
    flags: &[String],
    args: &[&str],
) -> (String, String) {
    let run = |binary: &Path| {
        let flags = flags.iter().map(String::as_str);
        let all: Vec<&str> = flags.chain(args.iter().copied()).collect();
        let out = etcdctl_with(binary, endpoints, &all, None, env);
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

/// Both etcdctls print the same, which is returned.
fn same_at(
    pki: &Pki,
    endpoints: &str,
    env: &[(&str, &str)],
    flags: &[String],
    args: &[&str],
) -> String {
    let (debian, ours) = both_at(pki, endpoints, env, flags, args);
    assert_eq!(
        ours, debian,
        "etcdctl {flags:?} {args:?} {env:?} (left: ours)"
    );
    ours
}

fn same(pki: &Pki, member: &Member, flags: &[String], args: &[&str]) -> String {
    same_at(pki, &member.endpoint(), &[], flags, args)
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

#[test]
fn insecure_skip_tls_verify_reaches_unverifiable_members() {
    insecure_skip_tls_verify(Flavor::Reference);
}

/// The same against our server's TLS.
#[test]
fn insecure_skip_tls_verify_reaches_unverifiable_members_on_ours() {
    insecure_skip_tls_verify(Flavor::Ours);
}

/// etcd's flags serving clients with the key pair `name`, requiring client certificates
/// from `ca` or not.
fn serving_as(pki: &Pki, name: &str, client_ca: Option<&str>) -> Vec<String> {
    let mut flags = vec![
        format!("--cert-file={}", pki.path(&format!("{name}.crt"))),
        format!("--key-file={}", pki.path(&format!("{name}.key"))),
    ];
    if let Some(ca) = client_ca {
        flags.push(format!("--trusted-ca-file={}", pki.path(ca)));
        flags.push("--client-cert-auth".to_string());
    }
    flags
}

/// `flags` with `more` after them.
fn with(flags: &[String], more: &[&str]) -> Vec<String> {
    let more = more.iter().map(|f| f.to_string());
    flags.iter().cloned().chain(more).collect()
}

const SKIP: &str = "--insecure-skip-tls-verify";

/// Without verification a put, a get and a health check succeed, exactly as Debian's.
fn reached(pki: &Pki, member: &Member, flags: &[String]) {
    let put = same(pki, member, flags, &["put", "k", "v"]);
    assert_eq!(put, "exit=0\nOK\n", "{flags:?}");
    assert_eq!(same(pki, member, flags, &["get", "k"]), "exit=0\nk\nv\n");
    let health = same(pki, member, flags, &["endpoint", "health"]);
    assert!(health.contains("is healthy"), "{flags:?}: {health}");
}

/// The certificate is refused. Neither etcdctl prints why: the failed handshake is retried
/// until the command times out in both (Go's x509 words and rustls' never reach the output),
/// so no normalising beyond the usual is needed.
fn refused(pki: &Pki, member: &Member, flags: &[String]) {
    let failed = same(pki, member, flags, &["--command-timeout=2s", "get", "k"]);
    assert_eq!(
        failed, "exit=1\nError: context deadline exceeded\n",
        "{flags:?}"
    );
}

fn insecure_skip_tls_verify(flavor: Flavor) {
    let pki = Pki::new();
    let local = ["127.0.0.1", "localhost"];
    pki.leaf("other-ca", "stranger", "stranger", &local, Usage::Server, 3);
    pki.leaf(
        "ca",
        "elsewhere",
        "elsewhere",
        &["elsewhere.invalid"],
        Usage::Server,
        4,
    );
    let client = pki.ctl_flags("ca.crt");
    let cert_only = client[1..].to_vec();

    // A certificate from a CA etcdctl does not know, on a member that requires client
    // certificates: the client certificate is still sent when verification is skipped, with
    // or without the CA file, from the flag or from the environment.
    let server = serving_as(&pki, "stranger", Some("ca.crt"));
    let server: Vec<&str> = server.iter().map(String::as_str).collect();
    let skipping = with(&client, &[SKIP]);
    let ctl: Vec<&str> = skipping.iter().map(String::as_str).collect();
    let member = Member::start_https(flavor, &server, &ctl);
    refused(&pki, &member, &client);
    refused(
        &pki,
        &member,
        &with(&client, &["--insecure-skip-tls-verify=false"]),
    );
    reached(&pki, &member, &skipping);
    reached(&pki, &member, &with(&cert_only, &[SKIP]));
    let env = [("ETCDCTL_INSECURE_SKIP_TLS_VERIFY", "true")];
    let from_env = same_at(&pki, &member.endpoint(), &env, &client, &["get", "k"]);
    assert_eq!(from_env, "exit=0\nk\nv\n");
    drop(member);

    // A certificate from the CA for another host name, on a member that asks for no client
    // certificate: skipping needs only a TLS configuration of etcdctl's own, from the CA
    // file or --insecure-transport=false.
    let server = serving_as(&pki, "elsewhere", None);
    let server: Vec<&str> = server.iter().map(String::as_str).collect();
    let ca = vec![format!("--cacert={}", pki.path("ca.crt"))];
    let skipping = with(&ca, &[SKIP]);
    let ctl: Vec<&str> = skipping.iter().map(String::as_str).collect();
    let member = Member::start_https(flavor, &server, &ctl);
    refused(&pki, &member, &ca);
    reached(&pki, &member, &skipping);
    let transport = with(&[], &["--insecure-transport=false"]);
    refused(&pki, &member, &transport);
    reached(&pki, &member, &with(&transport, &[SKIP]));
    // An `https://` endpoint alone gets clientv3's own TLS configuration, which the flag
    // does not touch: still verified.
    refused(&pki, &member, &with(&[], &[SKIP]));
    // A bare host:port goes by etcdctl's configuration.
    let bare = member.endpoint().replacen("https://", "", 1);
    let got = same_at(&pki, &bare, &[], &skipping, &["get", "k"]);
    assert_eq!(got, "exit=0\nk\nv\n");
    // An `http://` endpoint is dialled in plain text whatever the TLS flags, so both fail.
    // Go retries its failed handshakes until the deadline; ours sees the connection fail
    // once made (see the README), so only the exit status is compared.
    let plain = member.endpoint().replacen("https://", "http://", 1);
    let args = ["--command-timeout=2s", "get", "k"];
    let (debian, ours) = both_at(&pki, &plain, &[], &with(&transport, &[SKIP]), &args);
    assert_eq!(debian, "exit=1\nError: context deadline exceeded\n");
    assert!(ours.starts_with("exit=1\nError: "), "{ours}");
}
