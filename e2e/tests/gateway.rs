//! The gateway (`etcd gateway start`, `etcd-gateway`): Debian's etcdctl, the etcd-client
//! crate and curl through it while members die and return; TLS with client certificates
//! end to end; SRV records that change; and ours beside Debian's `etcd gateway start`.

use std::process::Output;
use std::time::Duration;

use etcd_e2e::cluster::Cluster;
use etcd_e2e::dns::{Dns, Srv, Zone};
use etcd_e2e::gateway::{Gateway, GatewayBinary};
use etcd_e2e::netns::Network;
use etcd_e2e::pki::Pki;
use etcd_e2e::{etcdctl, etcdctl_with, free_port, wait, Flavor, Member, Ports};

const LIMIT: Duration = Duration::from_secs(20);

fn local_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The gateway's `/metrics` line for `series`, if any.
fn metric(metrics_addr: &str, series: &str) -> Option<String> {
    let out = std::process::Command::new("curl")
        .args([
            "-sf",
            "--max-time",
            "2",
            &format!("http://{metrics_addr}/metrics"),
        ])
        .output()
        .ok()?;
    stdout(&out)
        .lines()
        .find(|l| l.starts_with(series))
        .map(|l| l[series.len()..].trim().to_string())
}

fn http_status(url: &str) -> String {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "2",
            url,
        ])
        .output()
        .expect("curl");
    stdout(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_work_through_the_gateway_while_members_die_and_return() {
    let mut cluster = Cluster::start(Flavor::Ours, 3, &[]);
    let members: Vec<String> = cluster.members.iter().map(|m| m.endpoint()).collect();
    let addr = local_addr();
    let metrics = local_addr();
    let gw = Gateway::start(
        GatewayBinary::Standalone,
        &[],
        &addr,
        &[
            &format!("--endpoints={}", members.join(",")),
            "--retry-delay=1s",
            &format!("--listen-metrics-addr={metrics}"),
        ],
    );

    // The first connection of a fresh gateway goes to the first endpoint (members take
    // turns): this watch is served by member 0.
    let mut watch_client = etcd_client::Client::connect([addr.as_str()], None)
        .await
        .expect("connect through the gateway");
    let (_watcher, mut events) = watch_client.watch("w", None).await.expect("watch");

    // Debian's etcdctl, curl and the etcd-client crate, each on connections of their own.
    assert_eq!(stdout(&etcdctl(&addr, &["put", "w", "1"], None)), "OK\n");
    let first = events.message().await.expect("watch").expect("event");
    assert_eq!(first.events()[0].kv().unwrap().value(), b"1");
    let revision = first.events()[0].kv().unwrap().mod_revision();
    let version = std::process::Command::new("curl")
        .args(["-sf", &format!("http://{addr}/version")])
        .output()
        .unwrap();
    assert!(stdout(&version).contains("\"etcdserver\""), "{version:?}");
    assert_eq!(
        stdout(
            &std::process::Command::new("curl")
                .args(["-sf", &format!("http://{addr}/health")])
                .output()
                .unwrap()
        ),
        "{\"health\":\"true\"}"
    );
    let mut client = etcd_client::Client::connect([addr.as_str()], None)
        .await
        .unwrap();
    client.put("crate", "yes", None).await.unwrap();
    assert_eq!(
        stdout(&etcdctl(
            &addr,
            &["get", "crate", "--print-value-only"],
            None
        )),
        "yes\n"
    );

    // Member 0 dies: its watch ends, and new connections go to the others.
    cluster.members[0].kill9();
    let ended = tokio::time::timeout(LIMIT, async {
        while let Ok(Some(_)) = events.message().await {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the watch through the gateway ends with its member"
    );
    for i in 0..6 {
        let put = etcdctl(&addr, &["put", "w", &format!("during-{i}")], None);
        assert_eq!(stdout(&put), "OK\n", "{put:?}\n{}", gw.log());
    }
    assert_eq!(
        metric(
            &metrics,
            &format!(
                "etcd_gateway_endpoint_active{{endpoint=\"{}\"}}",
                &members[0][7..]
            )
        )
        .as_deref(),
        Some("0"),
        "{}",
        gw.log()
    );
    assert_eq!(
        gw.log_lines("deactivated endpoint")[0]["address"],
        members[0][7..]
    );

    // A new watch through the gateway resumes from the last revision seen.
    let mut again = etcd_client::Client::connect([addr.as_str()], None)
        .await
        .unwrap();
    let (_w, mut resumed) = again
        .watch(
            "w",
            Some(etcd_client::WatchOptions::new().with_start_revision(revision + 1)),
        )
        .await
        .unwrap();
    let mut values = Vec::new();
    while values.len() < 6 {
        let resp = tokio::time::timeout(LIMIT, resumed.message())
            .await
            .expect("events")
            .unwrap()
            .unwrap();
        values.extend(
            resp.events()
                .iter()
                .map(|e| String::from_utf8_lossy(e.kv().unwrap().value()).into_owned()),
        );
    }
    assert_eq!(
        values,
        (0..6).map(|i| format!("during-{i}")).collect::<Vec<_>>()
    );

    // Back again: the gateway takes it back within a retry delay or two.
    cluster.members[0].restart();
    let series = format!(
        "etcd_gateway_endpoint_active{{endpoint=\"{}\"}}",
        &members[0][7..]
    );
    wait::until_async(LIMIT, "member 0 active again", || {
        metric(&metrics, &series).as_deref() == Some("1")
    })
    .await;
    assert!(!gw.log_lines("activated").is_empty(), "{}", gw.log());
    assert_eq!(http_status(&format!("http://{metrics}/readyz")), "200");
}

#[test]
fn with_every_member_down_it_is_not_ready_and_sigterm_ends_it_cleanly() {
    let addr = local_addr();
    let metrics = local_addr();
    let dead = format!("127.0.0.1:{}", free_port());
    let mut gw = Gateway::start(
        GatewayBinary::Etcd(Flavor::Ours),
        &[],
        &addr,
        &[
            &format!("--endpoints={dead}"),
            &format!("--listen-metrics-addr={metrics}"),
        ],
    );
    assert_eq!(http_status(&format!("http://{metrics}/readyz")), "200");
    // A client's connection is closed at once; the member is marked down.
    let out = etcdctl(
        &addr,
        &["get", "x", "--dial-timeout=1s", "--command-timeout=2s"],
        None,
    );
    assert!(!out.status.success());
    assert_eq!(http_status(&format!("http://{metrics}/readyz")), "503");
    assert_eq!(http_status(&format!("http://{metrics}/livez")), "200");
    let refused = metric(&metrics, "etcd_gateway_connections_refused_total").unwrap();
    assert!(refused.parse::<u64>().unwrap() >= 1, "{refused}");

    assert!(gw.signal(libc::SIGTERM));
    assert_eq!(
        gw.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        gw.log()
    );
    assert_eq!(
        gw.log_lines("received signal; shutting down").len(),
        1,
        "{}",
        gw.log()
    );
}

#[test]
fn tls_with_client_certificates_passes_through_untouched() {
    let pki = Pki::new();
    let server: Vec<String> = pki.server_flags();
    let server: Vec<&str> = server.iter().map(String::as_str).collect();
    let ctl: Vec<String> = pki.ctl_flags("ca.crt");
    let ctl: Vec<&str> = ctl.iter().map(String::as_str).collect();
    let m = Member::start_https(Flavor::Ours, &server, &ctl);
    let addr = local_addr();
    let _gw = Gateway::start(
        GatewayBinary::Standalone,
        &[],
        &addr,
        &[&format!("--endpoints={}", m.endpoint())],
    );
    let through = format!("https://{addr}");
    let mut args = ctl.clone();
    args.extend(["put", "secret", "v"]);
    let put = etcdctl(&through, &args, None);
    assert_eq!(stdout(&put), "OK\n", "{put:?}");
    let mut args = ctl.clone();
    args.extend(["get", "secret", "--print-value-only"]);
    assert_eq!(stdout(&etcdctl(&through, &args, None)), "v\n");
    // Without a client certificate the member refuses the handshake, through the gateway too.
    let out = etcdctl_with(
        std::path::Path::new("etcdctl"),
        &through,
        &[
            &format!("--cacert={}", pki.path("ca.crt")),
            "--dial-timeout=2s",
            "get",
            "secret",
        ],
        None,
        &[],
    );
    assert!(!out.status.success(), "{out:?}");
}

#[test]
fn new_connections_follow_srv_records_that_change() {
    // Two single-member clusters on hosts 0 and 1; gateways on host 2.
    let net = Network::new(3).expect("network namespaces");
    let domain = "example.test";
    let zone_for = |host: usize| Zone {
        domain: domain.into(),
        srv: vec![Srv::new(
            "_etcd-client",
            &format!("infra{host}.{domain}"),
            2379,
        )],
        hosts: (0..2)
            .map(|i| (format!("infra{i}.{domain}"), net.host(i)))
            .collect(),
    };
    let mut dns = Dns::start(&net, &zone_for(0));
    let members: Vec<Member> = (0..2)
        .map(|i| {
            let ports = Ports::on(net.host(i));
            let cluster = format!("m{i}={}", ports.peer_url());
            let mut m = Member::spawn_under(
                &net.launcher(i),
                Flavor::Ours,
                &format!("m{i}"),
                ports,
                &cluster,
                &[],
            );
            m.wait_healthy(LIMIT);
            m.ctl_ok(&["put", "which", &format!("cluster-{i}")]);
            m
        })
        .collect();
    let srv = format!("--discovery-srv={domain}");
    let ours_addr = format!("{}:23790", net.host(2));
    let theirs_addr = format!("{}:23791", net.host(2));
    let _ours = Gateway::start(
        GatewayBinary::Standalone,
        &net.launcher(2),
        &ours_addr,
        &[&srv, "--insecure-discovery", "--srv-refresh-interval=500ms"],
    );
    let theirs = Gateway::start(
        GatewayBinary::Etcd(Flavor::Reference),
        &net.launcher(2),
        &theirs_addr,
        &[&srv, "--insecure-discovery"],
    );
    let which = |addr: &str| {
        stdout(&etcdctl(
            addr,
            &["get", "which", "--print-value-only"],
            None,
        ))
    };
    assert_eq!(which(&ours_addr), "cluster-0\n");
    assert_eq!(which(&theirs_addr), "cluster-0\n");

    dns.update(&zone_for(1));
    wait::until(LIMIT, "our gateway follows the new records", || {
        which(&ours_addr) == "cluster-1\n"
    });
    // etcd's gateway resolves once, at start.
    assert_eq!(which(&theirs_addr), "cluster-0\n", "{}", theirs.log());
    drop(members);
}

#[test]
fn ours_and_etcds_gateway_start_alike() {
    let m = Member::start(Flavor::Ours, &[]);
    let dead = format!("127.0.0.1:{}", free_port());
    let endpoints = format!("--endpoints={},{dead}", m.endpoint());
    let mut logs = Vec::new();
    for flavor in [Flavor::Reference, Flavor::Ours] {
        let addr = local_addr();
        let gw = Gateway::start(GatewayBinary::Etcd(flavor), &[], &addr, &[&endpoints]);
        for i in 0..3 {
            let put = etcdctl(&addr, &["put", "k", &format!("{flavor:?}-{i}")], None);
            assert_eq!(stdout(&put), "OK\n", "{flavor:?}: {put:?}");
        }
        assert_eq!(
            stdout(&etcdctl(&addr, &["get", "k", "--print-value-only"], None)),
            format!("{flavor:?}-2\n")
        );
        let ready = gw.log_lines("ready to proxy client requests");
        let down = gw.log_lines("deactivated endpoint");
        logs.push((
            ready[0]["endpoints"].clone(),
            down[0]["address"].clone(),
            down[0]["level"].clone(),
        ));
    }
    assert_eq!(logs[0], logs[1], "Debian's gateway, then ours");

    // The same refusals, with the same words and status.
    for flavor in [Flavor::Reference, Flavor::Ours] {
        let mut gw = Gateway::spawn(
            GatewayBinary::Etcd(flavor),
            &[],
            &local_addr(),
            &["--endpoints=infra0"],
        );
        assert_eq!(gw.wait_exit(LIMIT), Some(1));
        assert_eq!(gw.log(), "error parsing endpoint \"infra0\"", "{flavor:?}");
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let busy_addr = busy.local_addr().unwrap().to_string();
        let mut gw = Gateway::spawn(GatewayBinary::Etcd(flavor), &[], &busy_addr, &[&endpoints]);
        assert_eq!(gw.wait_exit(LIMIT), Some(1));
        assert!(
            gw.log().contains(&format!(
                "listen tcp {busy_addr}: bind: address already in use"
            )),
            "{flavor:?}: {}",
            gw.log()
        );
    }
}
