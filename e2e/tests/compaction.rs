//! Auto-compaction (`--auto-compaction-mode=periodic --auto-compaction-retention=2s`) on
//! our etcd and on Debian's, which must behave alike: history older than about one
//! retention disappears while keys are written, each compaction is logged as etcd logs it,
//! and in a cluster only the leader compacts (once per period), the followers applying its
//! compactions through raft.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use etcd_e2e::cluster::Cluster;
use etcd_e2e::{etcdctl, Flavor, Member};

const AUTO_COMPACTION: [&str; 2] = [
    "--auto-compaction-mode=periodic",
    "--auto-compaction-retention=2s",
];
/// The retention above.
const RETENTION: Duration = Duration::from_secs(2);
const COMPACTED: &str = "etcdserver: mvcc: required revision has been compacted";
const STARTING: &str = "compactor: Starting auto-compaction at revision";
const FINISHED: &str = "compactor: Finished auto-compaction at revision";

/// Puts `k` every 100 ms while `go_on` says so; answers each revision with when its put
/// returned.
fn write_while(endpoint: &str, go_on: impl Fn() -> bool) -> Vec<(i64, Instant)> {
    let mut written = Vec::new();
    while go_on() {
        let out = etcdctl(endpoint, &["put", "k", "v", "-w", "json"], None);
        assert!(
            out.status.success(),
            "put: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("put json");
        let revision = json["header"]["revision"].as_i64().expect("revision");
        written.push((revision, Instant::now()));
        thread::sleep(Duration::from_millis(100));
    }
    written
}

/// Whether `get k --rev=revision` is served; panics on any error but compaction.
fn readable(endpoint: &str, revision: i64) -> bool {
    let out = etcdctl(endpoint, &["get", "k", &format!("--rev={revision}")], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || stderr.contains(COMPACTED),
        "get --rev={revision}: {stderr}"
    );
    out.status.success()
}

/// Waits up to `limit` until revision 1 has been compacted away.
fn wait_compacted(endpoint: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while readable(endpoint, 1) {
        assert!(
            Instant::now() < deadline,
            "revision 1 still readable after {limit:?}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// The compacted revision as reads see it: the oldest of `1..=current` still served.
fn compacted_revision(endpoint: &str, current: i64) -> i64 {
    let (mut low, mut high) = (1, current);
    while low < high {
        let middle = (low + high) / 2;
        if readable(endpoint, middle) {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    low
}

/// One member keeps about one retention of history while it is written to.
fn keeps_one_retention(flavor: Flavor) {
    let member = Member::start(flavor, &AUTO_COMPACTION);
    let endpoint = member.endpoint();
    let writing = AtomicBool::new(true);
    thread::scope(|s| {
        let writer = s.spawn(|| write_while(&endpoint, || writing.load(Ordering::Relaxed)));
        wait_compacted(&endpoint, Duration::from_secs(8));
        thread::sleep(Duration::from_secs(1));
        let probe_start = Instant::now();
        let status = Cluster::status(&member).expect("endpoint status");
        let compacted = compacted_revision(&endpoint, status.revision);
        let probe_end = Instant::now();
        writing.store(false, Ordering::Relaxed);
        let written = writer.join().expect("writer");
        let written_at = |revision: i64| {
            written
                .iter()
                .find(|(r, _)| *r == revision)
                .map(|(_, at)| *at)
                .unwrap_or_else(|| panic!("revision {revision} not written by the test"))
        };
        // The compactor compacts every retention to a revision it saw a retention (plus a
        // tenth, its sampling interval) before: the compacted revision is between one and
        // two retentions old, give or take the time etcdctl takes.
        let kept = probe_end.duration_since(written_at(compacted));
        assert!(
            kept >= RETENTION * 3 / 4,
            "{flavor:?} compacted to revision {compacted} written only {kept:?} ago"
        );
        let dropped_after = probe_start.saturating_duration_since(written_at(compacted + 1));
        assert!(
            dropped_after <= RETENTION * 11 / 4,
            "{flavor:?} still keeps revision {} written {dropped_after:?} ago",
            compacted + 1
        );
    });
    let log = member.log();
    assert!(log.contains(STARTING), "{flavor:?} log:\n{log}");
    assert!(log.contains(FINISHED), "{flavor:?} log:\n{log}");
}

#[test]
fn periodic_keeps_one_retention_of_history() {
    keeps_one_retention(Flavor::Ours);
}

#[test]
fn reference_periodic_keeps_one_retention_of_history() {
    keeps_one_retention(Flavor::Reference);
}

/// In a 3-member cluster only the leader compacts, once per retention; followers apply it.
fn only_the_leader_compacts(flavor: Flavor) {
    let started = Instant::now();
    let cluster = Cluster::start(flavor, 3, &AUTO_COMPACTION);
    let leader = cluster.leader(Duration::from_secs(10));
    let follower = (leader + 1) % cluster.members.len();
    let end = Instant::now() + Duration::from_secs(3);
    write_while(&cluster.members[leader].endpoint(), || Instant::now() < end);
    wait_compacted(
        &cluster.members[follower].endpoint(),
        Duration::from_secs(8),
    );
    assert_eq!(
        cluster.leader(Duration::from_secs(1)),
        leader,
        "{flavor:?}: the leader changed during the test"
    );
    let elapsed = started.elapsed();
    for (i, member) in cluster.members.iter().enumerate() {
        let log = member.log();
        let compactions = log.matches(STARTING).count();
        if i == leader {
            let most = (elapsed.as_secs_f64() / RETENTION.as_secs_f64()).ceil() as usize;
            assert!(
                (1..=most).contains(&compactions),
                "{flavor:?} leader started {compactions} compactions in {elapsed:?}:\n{log}"
            );
        } else {
            assert_eq!(compactions, 0, "{flavor:?} follower m{i} compacted:\n{log}");
        }
    }
}

#[test]
fn only_the_leader_compacts_in_a_cluster() {
    only_the_leader_compacts(Flavor::Ours);
}

#[test]
fn reference_only_the_leader_compacts_in_a_cluster() {
    only_the_leader_compacts(Flavor::Reference);
}
