//! TLS on the client and peer URLs, with certificates made at test time (`etcd_e2e::pki`):
//! - clients: ours and Debian's etcd given the same files and flags accept Debian's etcdctl
//!   and curl with a certificate from the trusted CA, and refuse at the handshake a client
//!   without a certificate, with one from another CA and with a revoked one (CRL), with the
//!   same exit statuses and errors;
//! - peers: three of ours with peer TLS, `--peer-client-cert-auth` and
//!   `--peer-cert-allowed-cn` form a cluster and replicate writes; a fourth process with a
//!   certificate from another CA, with another CN or for another address is refused and
//!   never joins;
//! - auto-TLS: three of ours with `--auto-tls --peer-auto-tls` form a cluster and keep their
//!   generated certificates (same files, same bytes) across a restart of all members;
//! - one member listening on an `https://` and an `http://` client URL serves each, with
//!   etcd's "serving client requests" lines;
//! - peer URLs of ours and Debian's etcd refuse a certificate from another CA, with another
//!   CN or for another address alike;
//! - `--client-cert-allowed-hostname` refuses client certificates for other names;
//! - `--cipher-suites` limits the TLS 1.2 suites a member accepts, as in etcd;
//! - bad TLS flags (https URLs without a key pair, an unknown cipher suite, an allowed CN
//!   with an allowed hostname, a missing certificate file) stop start-up with etcd's line;
//! - rotation: a member's certificate files replaced by a new certificate (same CA, another
//!   serial) are served by the next connection, on ours and on Debian's etcd.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use etcd_e2e::cluster::{initial_cluster, Cluster};
use etcd_e2e::pki::{Pki, Usage};
use etcd_e2e::{
    etcdctl_with, failing_start, free_port, raw_transcript, wait, Flavor, Member, Ports,
    DEBIAN_ETCDCTL,
};

const LOCAL: [&str; 2] = ["127.0.0.1", "localhost"];

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// curl's exit status for `GET url` with `flags`, and the body.
fn curl(url: &str, flags: &[String]) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "5"])
        .args(flags)
        .arg(url)
        .output()
        .expect("run curl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// curl's TLS flags: trust the CA, show `client` (none when empty).
fn curl_flags(pki: &Pki, client: &str) -> Vec<String> {
    let mut flags = vec!["--cacert".to_string(), pki.path("ca.crt")];
    if !client.is_empty() {
        flags.extend(["--cert".to_string(), pki.path(&format!("{client}.crt"))]);
        flags.extend(["--key".to_string(), pki.path(&format!("{client}.key"))]);
    }
    flags
}

/// curl's exit status for `GET /` on a peer URL showing certificate `cert`. Over HTTP/1.1:
/// etcd's peer URL ends curl's HTTP/2 streams without an answer, ours and etcd's both answer
/// HTTP/1.1.
fn peer_curl(pki: &Pki, peer_url: &str, cert: &str) -> i32 {
    let mut flags = curl_flags(pki, cert);
    flags.push("--http1.1".into());
    curl(peer_url, &flags).0
}

/// Debian's etcdctl against `member` with `flags`: exit status and output without Go's log
/// lines of its retries.
fn ctl(member: &Member, flags: &[String], args: &[&str]) -> String {
    let all: Vec<&str> = strs(flags)
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    let out = etcdctl_with(
        &PathBuf::from(DEBIAN_ETCDCTL),
        &member.endpoint(),
        &all,
        None,
        &[],
    );
    raw_transcript(&out)
        .lines()
        .filter(|l| !l.starts_with("{\"level\"") && !l.starts_with("WARNING:"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The certificate `addr` (`host:port`) serves, as PEM, read with `openssl s_client`.
fn served_certificate(addr: &str) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", addr])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text = String::from_utf8_lossy(&out.stdout);
    let (Some(begin), Some(end)) = (
        text.find("-----BEGIN CERTIFICATE-----"),
        text.find("-----END CERTIFICATE-----"),
    ) else {
        return String::new();
    };
    text[begin..end + "-----END CERTIFICATE-----".len()].to_string()
}

/// The serial number (`openssl x509 -serial`, e.g. `serial=64`) of a PEM certificate.
fn serial(pem: &str) -> String {
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run openssl x509");
    use std::io::Write;
    let _ = child.stdin.take().expect("stdin").write_all(pem.as_bytes());
    let out = child.wait_with_output().expect("openssl x509");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What curl's exit status says happened to a request over TLS. Which of 35/55/56 a refused
/// handshake gives depends on when curl meets the server's alert (sending or reading), so
/// those are one class.
fn curl_class(status: i32) -> &'static str {
    match status {
        0 => "served",
        35 | 55 | 56 => "refused at the handshake",
        18 | 52 => "closed after the handshake",
        _ => "other failure",
    }
}

fn client_addr(m: &Member) -> String {
    format!("{}:{}", m.ports.host, m.ports.client)
}

/// Everything a client sees of one flavor serving clients with client-cert-auth and a CRL.
fn client_outcomes(flavor: Flavor) -> Vec<(&'static str, String)> {
    let pki = Pki::new();
    pki.leaf("other-ca", "stranger", "client", &[], Usage::Client, 3);
    pki.leaf("ca", "revoked", "revoked", &[], Usage::Client, 4);
    pki.crl("ca", "ca.crl", &[4]);
    let mut server = pki.server_flags();
    server.push(format!("--client-crl-file={}", pki.path("ca.crl")));
    let good = pki.ctl_flags("ca.crt");
    let member = Member::start_https(flavor, &strs(&server), &strs(&good));
    let health = format!("{}/health", member.endpoint());
    let quick = ["--dial-timeout=2s", "--command-timeout=2s"];

    let mut seen = vec![
        ("put", ctl(&member, &good, &["put", "k", "v"])),
        ("get", ctl(&member, &good, &["get", "k"])),
    ];
    let (status, body) = curl(&health, &curl_flags(&pki, "client"));
    seen.push(("curl /health", format!("exit={status} {body}")));
    for (what, client) in [
        ("no certificate", ""),
        ("another CA", "stranger"),
        ("revoked", "revoked"),
    ] {
        let (status, _) = curl(&health, &curl_flags(&pki, client));
        seen.push((what, format!("curl: {} ({status})", curl_class(status))));
        let flags = if client.is_empty() {
            vec![format!("--cacert={}", pki.path("ca.crt"))]
        } else {
            pki.ctl_flags_as("ca.crt", client)
        };
        let mut args = quick.to_vec();
        args.extend(["get", "k"]);
        seen.push((what, ctl(&member, &flags, &args)));
    }
    seen
}

#[test]
fn client_certificates_are_checked_as_etcd_checks_them() {
    let ours = client_outcomes(Flavor::Ours);
    let etcd = client_outcomes(Flavor::Reference);
    assert_eq!(ours[0].1, "exit=0\nOK\n");
    assert_eq!(ours[1].1, "exit=0\nk\nv\n");
    assert!(
        ours[2].1.starts_with("exit=0 {\"health\":\"true\""),
        "{:?}",
        ours[2]
    );
    for (what, outcome) in &ours[3..] {
        assert!(
            outcome.starts_with("curl: refused at the handshake")
                || outcome == "exit=1\nError: context deadline exceeded\n",
            "{what}: {outcome}"
        );
    }
    // The exit status within the class is not compared (see `curl_class`).
    let classes = |seen: &[(&str, String)]| -> Vec<String> {
        seen.iter()
            .map(|(what, o)| format!("{what}: {}", o.split(" (").next().unwrap_or(o)))
            .collect()
    };
    let (mut ours, mut etcd) = (classes(&ours), classes(&etcd));
    // etcd 3.4 checks the CRL only once the handshake is done, then closes the connection:
    // curl sees that as a refused handshake or as a connection closed after it, depending
    // on timing. Ours refuses the revoked certificate in the handshake.
    let revoked = |seen: &mut Vec<String>| {
        let i = seen
            .iter()
            .position(|o| o.starts_with("revoked: curl"))
            .unwrap();
        seen.remove(i)
    };
    assert_ne!(revoked(&mut etcd), "revoked: curl: served");
    assert_eq!(
        revoked(&mut ours),
        "revoked: curl: refused at the handshake"
    );
    assert_eq!(ours, etcd, "left: ours, right: Debian's etcd");
}

/// A 3-member cluster of ours with peer TLS requiring peer certificates with CN `member`.
fn peer_tls_cluster(pki: &Pki) -> Cluster {
    let ports: Vec<Ports> = (0..3)
        .map(|_| Ports {
            peer_scheme: "https",
            ..Ports::free()
        })
        .collect();
    let initial = initial_cluster(&ports);
    let members = ports
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let name = format!("m{i}");
            pki.leaf("ca", &name, "member", &LOCAL, Usage::Both, 10 + i as u64);
            let flags = peer_flags(pki, &name);
            Member::spawn_in_cluster(Flavor::Ours, &name, p, &initial, &strs(&flags))
        })
        .collect();
    Cluster::of_spawned(members)
}

fn peer_flags(pki: &Pki, cert: &str) -> Vec<String> {
    vec![
        format!("--peer-cert-file={}", pki.path(&format!("{cert}.crt"))),
        format!("--peer-key-file={}", pki.path(&format!("{cert}.key"))),
        format!("--peer-trusted-ca-file={}", pki.path("ca.crt")),
        "--peer-client-cert-auth".to_string(),
        "--peer-cert-allowed-cn=member".to_string(),
    ]
}

#[test]
fn a_peer_tls_cluster_refuses_members_without_an_allowed_certificate() {
    let pki = Pki::new();
    let cluster = peer_tls_cluster(&pki);
    let m = &cluster.members;
    assert!(m[0].log().contains("peerTLS: cert = "), "{}", m[0].log());
    m[0].ctl_ok(&["put", "k", "over-tls"]);
    let got = m[2].ctl_ok(&["get", "k", "--print-value-only"]);
    assert_eq!(got.trim(), "over-tls");

    // The peer URL answers HTTP to a member's certificate and refuses, at the handshake,
    // one from another CA (CN right) and one from the CA with another CN; and, right after
    // it, one issued for another address.
    pki.leaf("other-ca", "foreign", "member", &LOCAL, Usage::Both, 20);
    pki.leaf("ca", "intruder", "intruder", &LOCAL, Usage::Both, 21);
    // etcd's peer listener also checks a member's certificate against the address it
    // connects from: this one names only 10.0.0.1.
    pki.leaf("ca", "elsewhere", "member", &["10.0.0.1"], Usage::Both, 22);
    let peer_url = m[0].ports.peer_url();
    let status = peer_curl(&pki, &peer_url, "m1");
    assert_eq!(status, 0, "a member's certificate is refused");
    for stranger in ["foreign", "intruder", "elsewhere"] {
        let status = peer_curl(&pki, &peer_url, stranger);
        assert_ne!(status, 0, "{stranger} got through the handshake");
    }

    // A fourth member, added, started with either certificate: it cannot read the member
    // list from any peer URL, so it stops, and it never appears as started.
    let ports = Ports {
        peer_scheme: "https",
        ..Ports::free()
    };
    let peer = ports.peer_url();
    let added = m[0].ctl_ok(&["member", "add", "m3", "--learner", "--peer-urls", &peer]);
    let initial = added
        .lines()
        .find_map(|l| l.strip_prefix("ETCD_INITIAL_CLUSTER="))
        .expect("ETCD_INITIAL_CLUSTER")
        .trim_matches('"')
        .to_string();
    for stranger in ["foreign", "intruder", "elsewhere"] {
        let mut flags = peer_flags(&pki, stranger);
        flags.push("--initial-cluster-state=existing".into());
        let mut fourth =
            Member::spawn_in_cluster(Flavor::Ours, "m3", ports.clone(), &initial, &strs(&flags));
        let exit = fourth.wait_exit(Duration::from_secs(30));
        assert_eq!(exit, Some(1), "{stranger}:\n{}", fourth.log());
        assert!(
            fourth
                .log()
                .contains("cannot fetch cluster info from peer urls"),
            "{stranger}:\n{}",
            fourth.log()
        );
    }
    let rejected = m
        .iter()
        .filter(|m| m.log().contains("rejected connection from"))
        .count();
    assert!(rejected > 0, "no member logged a refused handshake");
    let list = m[1].ctl_ok(&["member", "list"]);
    let m3 = list.lines().find(|l| l.contains(&peer)).expect("m3 listed");
    assert!(m3.contains("unstarted"), "{list}");

    // The same member with a certificate of the CA and the allowed CN joins over TLS and
    // receives the data through raft.
    pki.leaf("ca", "m3", "member", &LOCAL, Usage::Both, 13);
    let mut flags = peer_flags(&pki, "m3");
    flags.push("--initial-cluster-state=existing".into());
    let mut fourth = Member::spawn_in_cluster(Flavor::Ours, "m3", ports, &initial, &strs(&flags));
    fourth.wait_healthy(Duration::from_secs(30));
    wait::until(Duration::from_secs(20), "k replicated to m3", || {
        fourth
            .etcdctl(&["get", "k", "--print-value-only", "--consistency=s"])
            .stdout
            .starts_with(b"over-tls")
    });

    // m0's peer certificate replaced on disk (same CA, another serial): its peer URL serves
    // the new one on the next connection, and the cluster keeps replicating.
    let peer_addr = format!("127.0.0.1:{}", m[0].ports.peer);
    assert_eq!(serial(&served_certificate(&peer_addr)), "serial=0A");
    pki.leaf("ca", "m0", "member", &LOCAL, Usage::Both, 30);
    wait::until(
        Duration::from_secs(10),
        "m0's new peer certificate served",
        || serial(&served_certificate(&peer_addr)) == "serial=1E",
    );
    m[1].ctl_ok(&["put", "k", "after-rotation"]);
    let got = m[0].ctl_ok(&["get", "k", "--print-value-only"]);
    assert_eq!(got.trim(), "after-rotation");
}

/// The files auto-TLS made for member `m` (client and peer), with their bytes.
fn fixtures(m: &Member) -> Vec<(PathBuf, Vec<u8>)> {
    ["client", "peer"]
        .iter()
        .flat_map(|side| {
            ["cert.pem", "key.pem"].map(|f| m.data_dir.join("fixtures").join(side).join(f))
        })
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, bytes)
        })
        .collect()
}

/// Each member's client URL serves the certificate in its client fixtures (the first file).
fn assert_serves_fixtures(members: &[Member], files: &[Vec<(PathBuf, Vec<u8>)>]) {
    for (m, files) in members.iter().zip(files) {
        let served = served_certificate(&client_addr(m));
        let made = String::from_utf8_lossy(&files[0].1);
        assert_eq!(
            served.trim(),
            made.trim(),
            "{} serves another certificate",
            m.name
        );
    }
}

#[test]
fn an_auto_tls_cluster_keeps_its_certificates_across_a_restart() {
    let ports: Vec<Ports> = (0..3)
        .map(|_| Ports {
            client_scheme: "https",
            peer_scheme: "https",
            ..Ports::free()
        })
        .collect();
    let initial = initial_cluster(&ports);
    let flags = ["--auto-tls", "--peer-auto-tls"];
    let members = ports
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let mut m =
                Member::spawn_in_cluster(Flavor::Ours, &format!("m{i}"), p, &initial, &flags);
            m.set_ctl_flags(&["--insecure-transport=false", "--insecure-skip-tls-verify"]);
            m
        })
        .collect();
    let mut cluster = Cluster::of_spawned(members);
    cluster.members[0].ctl_ok(&["put", "k", "auto"]);
    let before: Vec<_> = cluster.members.iter().map(fixtures).collect();
    assert_serves_fixtures(&cluster.members, &before);

    for m in &mut cluster.members {
        m.kill9();
    }
    for m in &mut cluster.members {
        m.start_again();
    }
    for m in &mut cluster.members {
        m.wait_healthy(Duration::from_secs(30));
    }
    let after: Vec<_> = cluster.members.iter().map(fixtures).collect();
    assert_eq!(after, before, "auto-TLS files changed across the restart");
    assert_serves_fixtures(&cluster.members, &after);
    let got = cluster.members[2].ctl_ok(&["get", "k", "--print-value-only"]);
    assert_eq!(got.trim(), "auto");
}

/// Serials served before and after the server certificate is replaced on disk.
fn rotation(flavor: Flavor) -> (String, String) {
    let pki = Pki::new();
    pki.leaf("ca", "server", "server", &LOCAL, Usage::Server, 100);
    let server = pki.server_flags();
    let good = pki.ctl_flags("ca.crt");
    let member = Member::start_https(flavor, &strs(&server), &strs(&good));
    let addr = client_addr(&member);
    let before = serial(&served_certificate(&addr));
    pki.leaf("ca", "server", "server", &LOCAL, Usage::Server, 200);
    wait::until(
        Duration::from_secs(10),
        "the new certificate served",
        || serial(&served_certificate(&addr)) == "serial=C8",
    );
    assert_eq!(ctl(&member, &good, &["put", "k", "v"]), "exit=0\nOK\n");
    (before, serial(&served_certificate(&addr)))
}

#[test]
fn a_replaced_certificate_is_served_by_the_next_connection() {
    let ours = rotation(Flavor::Ours);
    assert_eq!(ours, ("serial=64".to_string(), "serial=C8".to_string()));
    assert_eq!(ours, rotation(Flavor::Reference));
}

#[test]
fn bad_tls_flags_stop_start_up_with_etcds_error() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let client = format!("https://127.0.0.1:{}", free_port());
    let peer = format!("https://127.0.0.1:{}", free_port());
    let plain_client = format!("http://127.0.0.1:{}", free_port());
    let plain_peer = format!("http://127.0.0.1:{}", free_port());
    let urls = |client: &str, peer: &str| {
        vec![
            format!("--listen-client-urls={client}"),
            format!("--advertise-client-urls={client}"),
            format!("--listen-peer-urls={peer}"),
            format!("--initial-advertise-peer-urls={peer}"),
            format!("--initial-cluster=default={peer}"),
        ]
    };
    let with = |mut base: Vec<String>, more: &[String]| {
        base.extend(more.iter().cloned());
        base
    };
    let peer_files = [
        format!("--peer-cert-file={}", pki.path("server.crt")),
        format!("--peer-key-file={}", pki.path("server.key")),
    ];
    let cases: Vec<Vec<String>> = vec![
        urls(&client, &plain_peer),
        urls(&plain_client, &peer),
        with(
            urls(&plain_client, &plain_peer),
            &["--cipher-suites=TLS_FOO".into()],
        ),
        with(
            urls(&plain_client, &peer),
            &[
                peer_files[0].clone(),
                peer_files[1].clone(),
                "--peer-cert-allowed-cn=a".into(),
                "--peer-cert-allowed-hostname=b".into(),
            ],
        ),
        with(
            urls(&client, &plain_peer),
            &[
                "--cert-file=/nonexistent.crt".into(),
                "--key-file=/nonexistent.crt".into(),
            ],
        ),
    ];
    for (i, args) in cases.iter().enumerate() {
        let data = format!("--data-dir={}", dir.path().join(format!("d{i}")).display());
        let args: Vec<&str> = strs(args).into_iter().chain([data.as_str()]).collect();
        let ours = failing_start(Flavor::Ours, &args, &[], dir.path());
        let etcd = failing_start(Flavor::Reference, &args, &[], dir.path());
        assert_eq!(ours.0, 1, "{args:?}: {:?}", ours.1);
        assert_eq!(ours, etcd, "{args:?} (left: ours)");
    }
}

/// /health over both client URLs of a member listening on `https://` and `http://`, and
/// its "serving ... client requests" lines.
fn mixed_listener(flavor: Flavor) -> Vec<String> {
    let pki = Pki::new();
    let ports = Ports {
        client_scheme: "https",
        ..Ports::free()
    };
    let (secure, plain) = (
        ports.client_url(),
        format!("http://127.0.0.1:{}", free_port()),
    );
    let mut flags = pki.server_flags();
    flags.push(format!("--listen-client-urls={secure},{plain}"));
    let cluster = format!("m0={}", ports.peer_url());
    let mut m = Member::spawn_in_cluster(flavor, "m0", ports, &cluster, &strs(&flags));
    m.set_ctl_flags(&strs(&pki.ctl_flags("ca.crt")));
    m.wait_healthy(Duration::from_secs(30));
    let mut seen: Vec<String> = [(secure.as_str(), "client"), (plain.as_str(), "")]
        .iter()
        .map(|(url, client)| {
            let (status, body) = curl(&format!("{url}/health"), &curl_flags(&pki, client));
            format!("{url}: {} {body}", curl_class(status))
        })
        .collect();
    wait::until(Duration::from_secs(10), "serving lines logged", || {
        m.log().matches("client requests on").count() == 2
    });
    let mut lines: Vec<String> = m
        .log()
        .lines()
        .filter(|l| l.contains("client requests on"))
        // Without date, time and level: etcd logs the insecure line as a notice (N), a level
        // tracing does not have.
        .map(|l| l.splitn(5, ' ').nth(4).unwrap_or_default().to_string())
        .collect();
    lines.sort();
    seen.extend(lines);
    let (secure_port, plain_port) = (secure.rsplit(':').next(), plain.rsplit(':').next());
    seen.iter()
        .map(|l| {
            l.replace(secure_port.unwrap_or_default(), "<https>")
                .replace(plain_port.unwrap_or_default(), "<http>")
        })
        .collect()
}

#[test]
fn http_and_https_client_urls_are_served_side_by_side() {
    let ours = mixed_listener(Flavor::Ours);
    assert!(
        ours[0].starts_with("https://127.0.0.1:<https>: served {\"health\":\"true\""),
        "{ours:?}"
    );
    assert!(
        ours[1].starts_with("http://127.0.0.1:<http>: served {\"health\":\"true\""),
        "{ours:?}"
    );
    assert_eq!(ours, mixed_listener(Flavor::Reference), "left: ours");
}

/// The TLS 1.2 suite `addr` agrees on when offered only `cipher` (OpenSSL's name), or
/// `(NONE)` when the handshake fails.
fn negotiated(addr: &str, cipher: &str) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", addr, "-tls1_2", "-cipher", cipher])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Cipher    : "))
        // OpenSSL shows the suite of a failed handshake as 0000.
        .filter(|c| *c != "0000")
        .unwrap_or("(NONE)")
        .to_string()
}

fn cipher_choice(flavor: Flavor) -> Vec<String> {
    let pki = Pki::new();
    let mut flags = pki.server_flags();
    // HTTP/2 needs an AES-128-GCM suite: etcd 3.4.23 given a list without one logs that with
    // a logger it does not have under capnslog and crashes (a nil pointer in serve.go).
    flags.push("--cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into());
    let member = Member::start_https(flavor, &strs(&flags), &strs(&pki.ctl_flags("ca.crt")));
    let addr = client_addr(&member);
    [
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
    ]
    .iter()
    .map(|c| format!("{c}: {}", negotiated(&addr, c)))
    .collect()
}

#[test]
fn cipher_suites_limit_what_tls_1_2_clients_get() {
    let ours = cipher_choice(Flavor::Ours);
    assert_eq!(
        ours,
        [
            "ECDHE-ECDSA-AES256-GCM-SHA384: (NONE)",
            "ECDHE-ECDSA-AES128-GCM-SHA256: ECDHE-ECDSA-AES128-GCM-SHA256"
        ]
    );
    assert_eq!(ours, cipher_choice(Flavor::Reference), "left: ours");
}

/// etcdctl with a client certificate for `allowed.example` and one for `other.example`
/// against a member with `--client-cert-allowed-hostname=allowed.example`.
fn allowed_hostname(flavor: Flavor) -> Vec<String> {
    let pki = Pki::new();
    pki.leaf(
        "ca",
        "allowed",
        "c1",
        &["allowed.example"],
        Usage::Client,
        5,
    );
    pki.leaf("ca", "other", "c2", &["other.example"], Usage::Client, 6);
    let mut flags = pki.server_flags();
    flags.push("--client-cert-allowed-hostname=allowed.example".into());
    let good = pki.ctl_flags_as("ca.crt", "allowed");
    let member = Member::start_https(flavor, &strs(&flags), &strs(&good));
    let quick = ["--dial-timeout=2s", "--command-timeout=2s", "put", "k", "v"];
    ["allowed", "other"]
        .iter()
        .map(|c| ctl(&member, &pki.ctl_flags_as("ca.crt", c), &quick))
        .collect()
}

#[test]
fn client_cert_allowed_hostname_refuses_other_names() {
    let ours = allowed_hostname(Flavor::Ours);
    assert_eq!(
        ours,
        ["exit=0\nOK\n", "exit=1\nError: context deadline exceeded\n"]
    );
    assert_eq!(ours, allowed_hostname(Flavor::Reference), "left: ours");
}

/// What curl meets on a one-member peer-TLS cluster's peer URL with each certificate.
fn peer_url_refusals(flavor: Flavor) -> Vec<String> {
    let pki = Pki::new();
    pki.leaf("ca", "m0", "member", &LOCAL, Usage::Both, 10);
    pki.leaf("other-ca", "foreign", "member", &LOCAL, Usage::Both, 20);
    pki.leaf("ca", "intruder", "intruder", &LOCAL, Usage::Both, 21);
    pki.leaf("ca", "elsewhere", "member", &["10.0.0.1"], Usage::Both, 22);
    let ports = Ports {
        peer_scheme: "https",
        ..Ports::free()
    };
    let peer_url = ports.peer_url();
    let cluster = format!("m0={peer_url}");
    let flags = peer_flags(&pki, "m0");
    let _member = Member::start_in_cluster(flavor, "m0", ports, &cluster, &strs(&flags));
    ["m0", "foreign", "intruder", "elsewhere"]
        .iter()
        .map(|cert| {
            let status = peer_curl(&pki, &peer_url, cert);
            format!("{cert}: {}", curl_class(status))
        })
        .collect()
}

#[test]
fn peer_urls_refuse_certificates_as_etcd_does() {
    let ours = peer_url_refusals(Flavor::Ours);
    let etcd = peer_url_refusals(Flavor::Reference);
    // A foreign CA or CN is refused in the handshake; a certificate for another address
    // only after it (etcd's checkSAN), which curl may see either way depending on timing.
    assert_eq!(
        ours[..3],
        [
            "m0: served",
            "foreign: refused at the handshake",
            "intruder: refused at the handshake"
        ]
    );
    assert_eq!(ours[..3], etcd[..3], "left: ours");
    for outcome in [&ours[3], &etcd[3]] {
        assert!(!outcome.ends_with("served"), "{outcome}");
    }
}
