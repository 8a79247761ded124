//! Catching up from a snapshot: with `--snapshot-count=100` the leader snapshots often and
//! keeps only 5000 entries behind its latest snapshot (etcd's catch-up entries), so a
//! member that was down for longer than that, or a member added afterwards, can only
//! catch up by installing the leader's snapshot.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use etcd_e2e::cluster::{add_and_start, Cluster};
use etcd_e2e::{our_binary, Flavor, Member};

/// Entries raft keeps behind its latest snapshot (`max_in_snapshot_log_to_keep`).
const KEPT_ENTRIES: u64 = 5000;
const SNAPSHOT_COUNT: u64 = 100;

/// Writes with etcd-benchmark (many concurrent clients, so this is quick, but they share
/// raft entries) until the raft index of member `leader` has passed `index`.
fn write_until_index(cluster: &Cluster, leader: usize, index: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let endpoints = cluster.endpoints();
    loop {
        let at = raft_index(&cluster.members[leader]);
        if at > index {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "raft index {index} not reached in time"
        );
        // Concurrent puts mostly get entries of their own at this rate; a little over
        // the gap, so the last round rarely falls short.
        let total = (index - at) * 11 / 10 + 50;
        let out = Command::new(our_binary("etcd-benchmark"))
            .args([
                &format!("--endpoints={endpoints}"),
                "--clients=4",
                "--conns=4",
                "put",
                &format!("--total={total}"),
                "--key-space-size=3000",
                "--sequential-keys",
            ])
            .output()
            .expect("run etcd-benchmark");
        assert!(
            out.status.success(),
            "etcd-benchmark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn raft_index(member: &Member) -> u64 {
    Cluster::status(member).map_or(0, |s| s.raft_index)
}

/// The keys member `m` has applied (serializable, so it answers from its own state).
fn keys(m: &Member) -> BTreeSet<String> {
    m.ctl_ok(&["get", "", "--prefix", "--keys-only", "--consistency=s"])
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Waits until `m` has applied the leader's revision, then compares their keys.
fn assert_caught_up(cluster: &Cluster, leader: usize, m: &Member) {
    let top = Cluster::status(&cluster.members[leader])
        .expect("leader status")
        .revision;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Cluster::status(m).map_or(0, |s| s.revision) < top {
        assert!(
            Instant::now() < deadline,
            "{} did not reach revision {top}:\n{}",
            m.name,
            m.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(keys(m), keys(&cluster.members[leader]), "{}", m.name);
    assert!(
        m.log().contains("applying snapshot at index"),
        "{} caught up without a snapshot:\n{}",
        m.name,
        m.log()
    );
}

#[test]
fn members_behind_the_kept_log_catch_up_by_snapshot() {
    let snapshot_count = format!("--snapshot-count={SNAPSHOT_COUNT}");
    let mut cluster = Cluster::start(Flavor::Ours, 3, &[&snapshot_count]);
    let leader = cluster.leader(Duration::from_secs(10));
    let lagging = (leader + 1) % 3;
    cluster.members[lagging].ctl_ok(&["put", "before", "down"]);
    let stopped_at = raft_index(&cluster.members[lagging]);
    cluster.members[lagging].kill9();

    let started = Instant::now();
    // Past the kept entries after a snapshot taken past the stopped member's position.
    write_until_index(
        &cluster,
        leader,
        stopped_at + KEPT_ENTRIES + 2 * SNAPSHOT_COUNT,
    );
    let written_in = started.elapsed();
    cluster.members[lagging].restart();
    assert_caught_up(&cluster, leader, &cluster.members[lagging]);

    // A member added now has nothing of the log the leader still keeps.
    let fresh = add_and_start(&cluster.members[leader], "fresh", &[]);
    assert_caught_up(&cluster, leader, &fresh);
    fresh.ctl_ok(&["put", "after", "catch-up"]);
    for m in cluster.members.iter().chain([&fresh]) {
        assert_eq!(
            m.ctl_ok(&["get", "after", "--print-value-only"]),
            "catch-up\n"
        );
    }
    eprintln!(
        "wrote past raft index {} in {written_in:?}",
        raft_index(&cluster.members[leader])
    );
}
