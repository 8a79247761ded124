//! A network partition: three of our members, each in its own network namespace; the
//! leader is cut off from the other two with iptables while a writer keeps going through
//! the majority. The majority elects a new leader and keeps acknowledging writes; the old
//! leader steps down (as etcd's check-quorum makes it) and refuses writes; after the rules
//! are removed every member converges on the same data with every acknowledged write.
//! Needs root (namespaces, iptables); a set-up failure fails the test.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_e2e::cluster::{Cluster, Status};
use etcd_e2e::load::{assert_has_all, Load};
use etcd_e2e::netns::Network;
use etcd_e2e::{Flavor, Member};

/// Polls `check` every 100 ms until it gives a value, panicking with `what` after `limit`.
fn wait_for<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(t) = check() {
            return t;
        }
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every key-value (with its revisions) on one member alone: `etcdctl get "" --prefix`,
/// serializable, without the header that names the member.
fn everything_on(member: &Member) -> serde_json::Value {
    let out = member.ctl_ok(&["get", "", "--prefix", "--consistency=s", "-w", "json"]);
    let json: serde_json::Value = serde_json::from_str(&out).expect("etcdctl json");
    json["kvs"].clone()
}

#[test]
fn isolated_leader_steps_down_and_the_majority_goes_on() {
    let net = Network::new(3)
        .unwrap_or_else(|e| panic!("cannot build the partition test's network: {e}"));
    let cluster = Cluster::on_network(&net, 3, Flavor::Ours, &[]);
    let old = cluster.leader(Duration::from_secs(10));
    let majority: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    let old_member = &cluster.members[old];
    old_member.ctl_ok(&["put", "before", "partition"]);
    let old_term = Cluster::status(old_member)
        .expect("old leader answers")
        .raft_term;

    let endpoints = majority
        .iter()
        .map(|&i| cluster.members[i].endpoint())
        .collect::<Vec<_>>()
        .join(",");
    let load = Load::start(Arc::new(Mutex::new(endpoints)));
    wait_for(
        Duration::from_secs(10),
        "no write before the partition",
        || (load.acked() >= 10).then_some(()),
    );

    net.isolate(old, &majority)
        .unwrap_or_else(|e| panic!("cannot cut the leader off: {e}"));
    let cut = Instant::now();
    let statuses = || -> Option<Vec<Status>> {
        majority
            .iter()
            .map(|&i| Cluster::status(&cluster.members[i]))
            .collect()
    };
    wait_for(
        Duration::from_secs(10),
        "the majority elected no new leader",
        || {
            let s = statuses()?;
            let leader = s[0].leader;
            (s.iter()
                .all(|s| s.leader == leader && s.raft_term > old_term)
                && s.iter().any(|s| s.member_id == leader))
            .then_some(())
        },
    );
    let elected_after = cut.elapsed();

    // The old leader stops claiming leadership once it has not heard from a quorum for an
    // election timeout (etcd's check-quorum); its metrics say so.
    wait_for(
        Duration::from_secs(5),
        "the isolated leader still claims leadership",
        || {
            let metrics = old_member.http_get("/metrics")?;
            (metrics.contains("\netcd_server_is_leader 0\n")
                && metrics.contains("\netcd_server_has_leader 0\n"))
            .then_some(())
        },
    );
    let stepped_down_after = cut.elapsed();
    // ... and refuses writes within the request timeout (5 s + 2 election timeouts).
    let refused = Instant::now();
    let put = old_member.etcdctl(&["put", "isolated", "x", "--command-timeout=15s"]);
    let refused_after = refused.elapsed();
    let err = String::from_utf8_lossy(&put.stderr);
    assert!(
        !put.status.success(),
        "the isolated old leader took a write"
    );
    assert!(
        err.contains("etcdserver: request timed out") || err.contains("etcdserver: no leader"),
        "unexpected error from the isolated old leader: {err}"
    );
    assert!(
        refused_after < Duration::from_secs(10),
        "the isolated old leader took {refused_after:?} to refuse a write"
    );

    // The majority keeps acknowledging writes while partitioned.
    load.wait_acked(load.acked() + 5, Duration::from_secs(10));

    net.heal(old)
        .unwrap_or_else(|e| panic!("cannot heal the partition: {e}"));
    // ... and after the partition heals.
    load.wait_acked(load.acked() + 5, Duration::from_secs(10));
    let acked = load.finish();

    // Every member converges: one leader, the same revision, the same data.
    cluster.leader(Duration::from_secs(15));
    let top = wait_for(
        Duration::from_secs(20),
        "members did not reach the same revision",
        || {
            let revs: Vec<i64> = cluster
                .members
                .iter()
                .map(|m| Cluster::status(m).map(|s| s.revision))
                .collect::<Option<_>>()?;
            revs.windows(2).all(|w| w[0] == w[1]).then_some(revs[0])
        },
    );
    let data = everything_on(&cluster.members[0]);
    for m in &cluster.members {
        assert_eq!(everything_on(m), data, "{} differs after healing", m.name);
        assert_has_all(m, &acked);
        assert_eq!(
            m.ctl_ok(&["get", "isolated"]),
            "",
            "{}: the write the isolated leader refused was applied",
            m.name
        );
    }
    eprintln!(
        "new leader after {elected_after:?}, old leader stepped down after \
         {stepped_down_after:?}, refused a write in {refused_after:?}; {} writes \
         acknowledged, converged at revision {top}",
        acked.len()
    );
}
