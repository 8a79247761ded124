//! DNS discovery (`--discovery-srv`): members on hosts of their own (network namespaces)
//! find each other through SRV records served by a real DNS server (dnsmasq), and
//! etcdctl finds the members the same way. Debian's etcd 3.4.23 runs the same scenarios
//! where it can.

use std::net::Ipv4Addr;
use std::process::{Command, Output};
use std::time::Duration;

use etcd_e2e::cluster::Cluster;
use etcd_e2e::dns::{Dns, Srv, Zone};
use etcd_e2e::netns::Network;
use etcd_e2e::pki::{Pki, Usage};
use etcd_e2e::{our_binary, Flavor, Member, Ports};

const DOMAIN: &str = "example.test";
const LIMIT: Duration = Duration::from_secs(30);

/// `infraN.example.test` for host N, with the given SRV services pointing at them.
fn zone(net: &Network, n: usize, server_service: &str, client_service: &str) -> Zone {
    let mut zone = Zone {
        domain: DOMAIN.into(),
        ..Zone::default()
    };
    for i in 0..n {
        let host = format!("infra{i}.{DOMAIN}");
        zone.srv.push(Srv::new(server_service, &host, 2380));
        zone.srv.push(Srv::new(client_service, &host, 2379));
        zone.hosts.push((host, net.host(i)));
    }
    zone
}

/// Members `infra0..n` on hosts `0..n`, advertising their peer URL by name.
fn spawn(
    net: &Network,
    n: usize,
    flavor: Flavor,
    peer_scheme: &'static str,
    extra: &[String],
) -> Vec<Member> {
    (0..n)
        .map(|i| {
            let ports = Ports {
                peer_scheme,
                ..Ports::on(net.host(i))
            };
            let mut flags: Vec<String> = vec![
                format!("--discovery-srv={DOMAIN}"),
                "--initial-cluster-token=srv-cluster".into(),
            ];
            flags.extend(extra.iter().map(|f| f.replace("{i}", &i.to_string())));
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            Member::spawn_discovering(
                &net.launcher(i),
                flavor,
                &format!("infra{i}"),
                ports,
                &format!("{peer_scheme}://infra{i}.{DOMAIN}:2380"),
                &flags,
            )
        })
        .collect()
}

/// `etcdctl` (ours or Debian's) run on host `i`, where names resolve through the test's DNS.
fn ctl_on(net: &Network, i: usize, ours: bool, args: &[&str]) -> Output {
    let launcher = net.launcher(i);
    let program = if ours {
        our_binary("etcdctl").display().to_string()
    } else {
        "etcdctl".to_string()
    };
    etcd_e2e::command_under(&launcher, program)
        .args(args)
        .env("ETCDCTL_API", "3")
        .output()
        .expect("run etcdctl")
}

/// `(id, name, peer URLs)` of every member, sorted by name.
fn shape(m: &Member) -> Vec<(String, String, String)> {
    let mut rows: Vec<(String, String, String)> = m
        .ctl_ok(&["member", "list"])
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(", ").collect();
            (f[0].to_string(), f[2].to_string(), f[3].to_string())
        })
        .collect();
    rows.sort_by(|a, b| a.1.cmp(&b.1));
    rows
}

#[test]
fn three_members_bootstrap_from_plain_srv_records_and_etcdctl_finds_them() {
    let net = Network::new(4).expect("network namespaces");
    let _dns = Dns::start(&net, &zone(&net, 3, "_etcd-server", "_etcd-client"));
    let cluster = Cluster::of_spawned(spawn(&net, 3, Flavor::Ours, "http", &[]));
    let rows = shape(&cluster.members[0]);
    let names: Vec<(&str, &str)> = rows.iter().map(|r| (r.1.as_str(), r.2.as_str())).collect();
    assert_eq!(
        names,
        [
            ("infra0", "http://infra0.example.test:2380"),
            ("infra1", "http://infra1.example.test:2380"),
            ("infra2", "http://infra2.example.test:2380"),
        ]
    );
    for m in &cluster.members {
        assert!(
            m.log()
                .contains("got bootstrap from DNS for etcd-server at infra"),
            "{}",
            m.log()
        );
    }

    // Clients on a fourth host find the members through _etcd-client._tcp: ours and
    // Debian's etcdctl alike.
    let srv = format!("--discovery-srv={DOMAIN}");
    let put = ctl_on(&net, 3, true, &[&srv, "put", "found", "by-srv"]);
    assert!(put.status.success(), "{put:?}");
    for ours in [true, false] {
        let get = ctl_on(&net, 3, ours, &[&srv, "get", "found"]);
        assert_eq!(
            String::from_utf8_lossy(&get.stdout),
            "found\nby-srv\n",
            "{get:?}"
        );
    }
    // Every discovered member answers. (Debian's etcdctl 3.4 reads `--endpoints` for
    // `endpoint health` and `endpoint status` even with `--discovery-srv`; ours uses the
    // discovered endpoints for every command.)
    let health = ctl_on(&net, 3, true, &[&srv, "endpoint", "health"]);
    let text = String::from_utf8_lossy(&health.stdout).into_owned()
        + &String::from_utf8_lossy(&health.stderr);
    assert_eq!(text.matches("is healthy").count(), 3, "{text}");
    // With --insecure-discovery=false both drop the http:// endpoints and fall back to
    // --endpoints (here a port nothing listens on).
    for ours in [true, false] {
        let out = ctl_on(
            &net,
            3,
            ours,
            &[
                &srv,
                "--insecure-discovery=false",
                "--endpoints=127.0.0.1:1",
                "--dial-timeout=1s",
                "get",
                "found",
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            // Debian's writes the SRV target with DNS's trailing dot (`infra0.example.test.`).
            stderr.contains(&format!(
                "ignoring discovered insecure endpoint \"http://infra0.{DOMAIN}"
            )),
            "ours={ours}: {stderr}"
        );
        assert!(!out.status.success());
    }

    // Debian's etcd 3.4.23 cannot bootstrap from these records: it gives up when the
    // _etcd-server-ssl records are missing (fixed in etcd 3.5). Ours follows the guide.
    let mut theirs = Member::spawn_discovering(
        &net.launcher(3),
        Flavor::Reference,
        "infra3",
        Ports::on(net.host(3)),
        &format!("http://{}:2380", net.host(3)),
        &[&srv],
    );
    assert_eq!(theirs.wait_exit(LIMIT), Some(1), "{}", theirs.log());
    assert!(
        theirs.log().contains(&format!(
            "couldn't resolve during SRV discovery (error querying DNS SRV records for _etcd-server-ssl lookup _etcd-server-ssl._tcp.{DOMAIN}"
        )),
        "{}",
        theirs.log()
    );
}

#[test]
fn ssl_records_bootstrap_the_same_cluster_as_etcd() {
    let mut shapes = Vec::new();
    for flavor in [Flavor::Reference, Flavor::Ours] {
        let net = Network::new(3).expect("network namespaces");
        let pki = Pki::empty();
        pki.ca("ca");
        for i in 0..3 {
            let name = format!("infra{i}.{DOMAIN}");
            let ip = net.host(i).to_string();
            pki.leaf(
                "ca",
                &format!("peer{i}"),
                &name,
                &[&name, &ip],
                Usage::Both,
                10 + i as u64,
            );
        }
        let tls = [
            format!("--peer-cert-file={}", pki.path("peer{i}.crt")),
            format!("--peer-key-file={}", pki.path("peer{i}.key")),
            format!("--peer-trusted-ca-file={}", pki.path("ca.crt")),
            "--peer-client-cert-auth".to_string(),
        ];
        let _dns = Dns::start(&net, &zone(&net, 3, "_etcd-server-ssl", "_etcd-client"));
        let cluster = Cluster::of_spawned(spawn(&net, 3, flavor, "https", &tls));
        shapes.push(shape(&cluster.members[0]));
        let put = cluster.members[1].ctl_ok(&["put", "k", "v"]);
        assert_eq!(put, "OK\n");
    }
    assert_eq!(shapes[0], shapes[1], "Debian's etcd, then ours");
    assert_eq!(shapes[1][2].2, "https://infra2.example.test:2380");
}

#[test]
fn a_member_missing_from_the_records_stops_as_etcd_does() {
    for flavor in [Flavor::Reference, Flavor::Ours] {
        let net = Network::new(1).expect("network namespaces");
        let mut zone = zone(&net, 1, "_etcd-server-ssl", "_etcd-client");
        // The record names a host that is not this one.
        zone.hosts[0].1 = Ipv4Addr::new(192, 0, 2, 1);
        let _dns = Dns::start(&net, &zone);
        let mut m = Member::spawn_discovering(
            &net.launcher(0),
            flavor,
            "infra9",
            Ports::on(net.host(0)),
            &format!("http://{}:2380", net.host(0)),
            &[&format!("--discovery-srv={DOMAIN}")],
        );
        assert_eq!(m.wait_exit(LIMIT), Some(1), "{flavor:?}: {}", m.log());
        assert!(
            m.log().contains(
                "error setting up initial cluster: cannot find local etcd member \"infra9\" in SRV records"
            ),
            "{flavor:?}: {}",
            m.log()
        );
    }
}

#[test]
fn https_targets_outside_the_domain_need_a_trusted_ca() {
    let net = Network::new(1).expect("network namespaces");
    let mut zone = Zone {
        domain: DOMAIN.into(),
        ..Zone::default()
    };
    zone.srv
        .push(Srv::new("_etcd-server-ssl", "infra0.elsewhere.test", 2380));
    zone.hosts
        .push(("infra0.elsewhere.test".into(), net.host(0)));
    let _dns = Dns::start(&net, &zone);
    let mut m = Member::spawn_discovering(
        &net.launcher(0),
        Flavor::Ours,
        "infra0",
        Ports {
            peer_scheme: "https",
            ..Ports::on(net.host(0))
        },
        "https://infra0.elsewhere.test:2380",
        &[&format!("--discovery-srv={DOMAIN}"), "--peer-auto-tls"],
    );
    assert_eq!(m.wait_exit(LIMIT), Some(1), "{}", m.log());
    assert!(
        m.log().contains(
            "SRV target infra0.elsewhere.test of _etcd-server-ssl._tcp.example.test is outside the discovery domain example.test"
        ),
        "{}",
        m.log()
    );
}

#[test]
fn discovery_srv_and_initial_cluster_are_exclusive_as_in_etcd() {
    for flavor in [Flavor::Reference, Flavor::Ours] {
        let out = Command::new(flavor.binary())
            .args([
                "--discovery-srv=example.test",
                "--initial-cluster=a=http://127.0.0.1:2380",
                "--name=a",
            ])
            .output()
            .expect("run etcd");
        assert_eq!(out.status.code(), Some(1), "{flavor:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("error verifying flags, multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", \"discovery\" or \"discovery-srv\". See 'etcd --help'."),
            "{flavor:?}: {stderr}"
        );
    }
}
