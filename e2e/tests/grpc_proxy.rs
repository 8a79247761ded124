//! `etcd grpc-proxy start` in front of three members: Debian's etcdctl and the etcd-client
//! crate run the KV, watch, lease and lock flows through it, errors keep their gRPC codes,
//! and a killed member is skipped.

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use etcd_e2e::cluster::Cluster;
use etcd_e2e::{etcdctl, free_port, wait, Flavor};

const LIMIT: Duration = Duration::from_secs(20);

/// Our `etcd grpc-proxy start`, killed on drop.
struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_proxy(endpoints: &str) -> (Proxy, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let child = Command::new(Flavor::Ours.binary())
        .args([
            "grpc-proxy",
            "start",
            &format!("--endpoints={endpoints}"),
            &format!("--listen-addr={addr}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start grpc-proxy");
    let proxy = Proxy(child);
    wait::until(LIMIT, "grpc-proxy listening", || {
        std::net::TcpStream::connect(&addr).is_ok()
    });
    (proxy, addr)
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_run_kv_watch_lease_and_lock_through_the_proxy() {
    let mut cluster = Cluster::start(Flavor::Ours, 3, &[]);
    let (_proxy, addr) = start_proxy(&cluster.endpoints());

    // Debian's etcdctl.
    assert_eq!(out(&etcdctl(&addr, &["put", "k", "v1"], None)), "OK\n");
    assert_eq!(
        out(&etcdctl(&addr, &["get", "k", "--print-value-only"], None)),
        "v1\n"
    );
    let txn = etcdctl(
        &addr,
        &["txn"],
        Some("value(\"k\") = \"v1\"\n\nput k v2\n\nput k nope\n\n"),
    );
    assert_eq!(out(&txn), "SUCCESS\n\nOK\n");
    let lease = out(&etcdctl(&addr, &["lease", "grant", "60"], None));
    let id = lease
        .split_whitespace()
        .nth(1)
        .expect("lease id")
        .to_string();
    assert_eq!(
        out(&etcdctl(
            &addr,
            &["put", "leased", "x", &format!("--lease={id}")],
            None
        )),
        "OK\n"
    );
    let kept = out(&etcdctl(
        &addr,
        &["lease", "keep-alive", "--once", &id],
        None,
    ));
    assert!(kept.contains("keepalived with TTL("), "{kept}");
    let locked = out(&etcdctl(&addr, &["lock", "L", "echo", "inside"], None));
    assert_eq!(locked, "inside\n");
    // Errors keep their codes and texts.
    let missing = etcdctl(&addr, &["put", "x", "y", "--lease=123"], None);
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("etcdserver: requested lease not found")
    );
    assert!(!missing.status.success());

    // The etcd-client crate, with a watch streaming through the proxy.
    let mut client = etcd_client::Client::connect([addr.as_str()], None)
        .await
        .unwrap();
    let (_w, mut events) = client.watch("w", None).await.unwrap();
    client.put("w", "1", None).await.unwrap();
    let got = tokio::time::timeout(LIMIT, events.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.events()[0].kv().unwrap().value(), b"1");
    let grant = client.lease_grant(30, None).await.unwrap();
    let (mut keeper, mut acks) = client.lease_keep_alive(grant.id()).await.unwrap();
    keeper.keep_alive().await.unwrap();
    let ack = tokio::time::timeout(LIMIT, acks.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ack.id(), grant.id());
    let members = client.member_list().await.unwrap();
    assert_eq!(members.members().len(), 3);

    // A killed member is skipped after the call that found it gone.
    cluster.members[0].kill9();
    let failures = (0..9)
        .filter(|i| {
            !etcdctl(&addr, &["put", "after", &i.to_string()], None)
                .status
                .success()
        })
        .count();
    assert!(failures <= 1, "{failures} of 9 puts failed");
    assert_eq!(
        out(&etcdctl(
            &addr,
            &["get", "after", "--print-value-only"],
            None
        )),
        "8\n"
    );
}

#[test]
fn flags_not_built_yet_are_refused() {
    let out = Command::new(Flavor::Ours.binary())
        .args(["grpc-proxy", "start", "--namespace=/tenant/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--namespace is not built yet"));
}
