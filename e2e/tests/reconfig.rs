//! Runtime reconfiguration one member at a time, driven by Debian's etcdctl: growing
//! 1 -> 3 -> 5 and shrinking 5 -> 3 under write load, replacing a dead member, promoting a
//! learner, etcd's strict checks, and removed members stopping with etcd's message.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_e2e::cluster::{add_and_start, member_id, Cluster};
use etcd_e2e::load::{assert_has_all, Load};
use etcd_e2e::{Flavor, Member, Ports};

#[test]
fn grow_to_five_and_shrink_to_three_under_load() {
    let first = Member::start(Flavor::Ours, &[]);
    let endpoints = Arc::new(Mutex::new(first.endpoint()));
    let load = Load::start(endpoints.clone());
    let mut members = vec![first];
    for i in 1..5 {
        let m = add_and_start(&members[0], &format!("g{i}"), &[]);
        members.push(m);
        *endpoints.lock().unwrap() = members
            .iter()
            .map(|m| m.endpoint())
            .collect::<Vec<_>>()
            .join(",");
    }
    let list = members[0].ctl_ok(&["member", "list"]);
    assert_eq!(
        list.lines().filter(|l| l.contains(", started, ")).count(),
        5,
        "{list}"
    );
    // Shrink: remove two members one at a time (the first one is the original leader).
    for _ in 0..2 {
        let mut gone = members.remove(0);
        let id = member_id(&members[0], &gone.ports.peer_url());
        *endpoints.lock().unwrap() = members
            .iter()
            .map(|m| m.endpoint())
            .collect::<Vec<_>>()
            .join(",");
        members[0].ctl_ok(&["member", "remove", &id]);
        assert!(
            gone.wait_exit(Duration::from_secs(15)).is_some(),
            "removed member {} kept running",
            gone.name
        );
        assert!(gone
            .log()
            .contains("the member has been permanently removed from the cluster"));
    }
    // Writes go on through the members left.
    load.wait_acked(load.acked() + 10, Duration::from_secs(15));
    let acked = load.finish();
    assert!(
        acked.len() > 20,
        "too few writes during reconfiguration ({})",
        acked.len()
    );
    let list = members[0].ctl_ok(&["member", "list"]);
    assert_eq!(list.lines().count(), 3, "{list}");
    for m in &members {
        assert_has_all(m, &acked);
    }
}

#[test]
fn replace_a_dead_member_with_a_fresh_one() {
    let mut cluster = Cluster::start(Flavor::Ours, 3, &[]);
    cluster.members[0].ctl_ok(&["put", "survivor", "yes"]);
    let dead = cluster.members.remove(2);
    let dead_peer = dead.ports.peer_url();
    drop(dead);
    let id = member_id(&cluster.members[0], &dead_peer);
    cluster.members[0].ctl_ok(&["member", "remove", &id]);
    let fresh = add_and_start(&cluster.members[1], "replacement", &[]);
    assert_eq!(
        fresh.ctl_ok(&["get", "survivor", "--print-value-only"]),
        "yes\n"
    );
    fresh.ctl_ok(&["put", "after", "replace"]);
    assert_eq!(
        cluster.members[0].ctl_ok(&["get", "after", "--print-value-only"]),
        "replace\n"
    );
}

#[test]
fn learner_is_promoted_and_checks_follow_etcd() {
    let cluster = Cluster::start(Flavor::Ours, 3, &[]);
    let via = &cluster.members[0];
    via.ctl_ok(&["put", "k", "v"]);
    let learner = add_and_start(via, "learner", &["--learner"]);
    let id = member_id(via, &learner.ports.peer_url());
    let list = via.ctl_ok(&["member", "list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with(&id) && l.ends_with(", true")),
        "{list}"
    );
    // A learner serves serializable reads of the replicated data.
    assert_eq!(
        learner.ctl_ok(&["get", "k", "--consistency=s", "--print-value-only"]),
        "v\n"
    );
    let promoted = via.ctl_ok(&["member", "promote", &id]);
    assert!(
        promoted.contains(&format!("Member {id:>16} promoted in cluster")),
        "{promoted}"
    );
    let list = via.ctl_ok(&["member", "list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with(&id) && l.ends_with(", false")),
        "{list}"
    );

    let again = via.etcdctl(&["member", "promote", &id]);
    assert!(String::from_utf8_lossy(&again.stderr)
        .contains("etcdserver: can only promote a learner member"));
    let unknown = via.etcdctl(&["member", "remove", "1234"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("etcdserver: member not found"));
    let dup = via.etcdctl(&[
        "member",
        "add",
        "dup",
        "--peer-urls",
        &cluster.members[1].ports.peer_url(),
    ]);
    assert!(String::from_utf8_lossy(&dup.stderr).contains("etcdserver: Peer URLs already exists"));
}

#[test]
fn strict_reconfig_check_refuses_a_second_unstarted_member() {
    let cluster = Cluster::start(Flavor::Ours, 1, &[]);
    let via = &cluster.members[0];
    via.ctl_ok(&[
        "member",
        "add",
        "a",
        "--peer-urls",
        &Ports::free().peer_url(),
    ]);
    let second = via.etcdctl(&[
        "member",
        "add",
        "b",
        "--peer-urls",
        &Ports::free().peer_url(),
    ]);
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr)
            .contains("etcdserver: re-configuration failed due to not enough started members"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
}

#[test]
fn a_removed_member_restarted_on_its_data_dir_stops_again() {
    let mut cluster = Cluster::start(Flavor::Ours, 3, &[]);
    let mut removed = cluster.members.remove(2);
    removed.kill9();
    let id = member_id(&cluster.members[0], &removed.ports.peer_url());
    cluster.members[0].ctl_ok(&["member", "remove", &id]);
    removed.start_again();
    assert!(
        removed.wait_exit(Duration::from_secs(20)).is_some(),
        "a removed member kept running:\n{}",
        removed.log()
    );
    assert!(removed
        .log()
        .contains("the member has been permanently removed from the cluster"));
}
