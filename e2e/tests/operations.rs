//! Cluster maintenance with Debian's etcdctl: HashKV agreement between members, moving
//! the leader, and `--force-new-cluster` — each run on a cluster of ours and, where the
//! outputs are compared, on a cluster of Debian's etcd.

use std::time::Duration;

use etcd_e2e::cluster::Cluster;
use etcd_e2e::{etcdctl, normalise, transcript, Flavor};

const LIMIT: Duration = Duration::from_secs(20);

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("bad json {out:?}: {e}"))
}

/// `endpoint hashkv --cluster` hashes (with `rev`, 0 for current), one per member.
fn hashes(c: &Cluster, rev: i64) -> Vec<u64> {
    let rev = format!("--rev={rev}");
    let out = c.members[0].ctl_ok(&["endpoint", "hashkv", "--cluster", &rev, "-w", "json"]);
    json(&out)
        .as_array()
        .expect("one entry per member")
        .iter()
        .map(|e| e["HashKV"]["hash"].as_u64().expect("hash"))
        .collect()
}

fn revision(c: &Cluster, i: usize) -> i64 {
    Cluster::status(&c.members[i]).expect("status").revision
}

#[test]
fn hashkv_agrees_on_every_member_after_a_write_burst() {
    let mut c = Cluster::start(Flavor::Ours, 3, &[]);
    let eps = c.endpoints();
    for i in 0..60 {
        etcdctl(
            &eps,
            &["put", &format!("k{}", i % 25), &format!("v{i}")],
            None,
        );
        if i % 10 == 9 {
            etcdctl(&eps, &["del", &format!("k{}", i % 7)], None);
        }
    }
    let mid = revision(&c, 0);
    c.members[0].ctl_ok(&["compact", &(mid / 2).to_string()]);
    // A member that missed writes replays them and agrees again.
    let follower = (c.leader(LIMIT) + 1) % 3;
    c.members[follower].kill9();
    let eps = c.endpoints();
    for i in 0..30 {
        etcdctl(&eps, &["put", &format!("late{i}"), "x"], None);
    }
    c.members[follower].restart();
    let rev = revision(&c, (follower + 1) % 3);
    for i in 0..3 {
        c.wait_revision(i, rev, LIMIT);
    }
    let now = hashes(&c, 0);
    assert_eq!(now.len(), 3);
    assert!(now.windows(2).all(|w| w[0] == w[1]), "{now:?}");
    let at_mid = hashes(&c, mid);
    assert!(at_mid.windows(2).all(|w| w[0] == w[1]), "{at_mid:?}");
    assert_ne!(now[0], at_mid[0], "later writes change the hash");
    // Below the compaction point there is nothing to hash.
    let out = c.members[0].etcdctl(&["endpoint", "hashkv", "--rev=1"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("etcdserver: mvcc: required revision has been compacted"),
        "{out:?}"
    );
}

/// Moves leadership to another member; returns the etcdctl transcripts (normalised).
fn move_leader(flavor: Flavor) -> Vec<String> {
    let c = Cluster::start(flavor, 3, &[]);
    let leader = c.leader(LIMIT);
    let target = (leader + 1) % 3;
    let target_id = Cluster::status(&c.members[target]).unwrap().member_id;
    let eps = c.endpoints();
    let moved = etcdctl(&eps, &["move-leader", &format!("{target_id:x}")], None);
    assert!(moved.status.success(), "{flavor:?}: {moved:?}");
    assert_eq!(c.leader(LIMIT), target, "{flavor:?}");
    let put = etcdctl(&eps, &["put", "after", "move"], None);
    let bad = etcdctl(&eps, &["move-leader", "1234"], None);
    // Only the leader can transfer: a follower alone answers "not leader".
    let follower = (target + 1) % 3;
    let from_follower = c.members[follower].etcdctl(&["move-leader", &format!("{target_id:x}")]);
    [moved, put, bad, from_follower]
        .iter()
        .map(transcript)
        .collect()
}

#[test]
fn move_leader_matches_etcd() {
    let ours = move_leader(Flavor::Ours);
    let reference = move_leader(Flavor::Reference);
    assert_eq!(ours, reference, "left: ours, right: Debian etcd");
    assert!(ours[0].contains("Leadership transferred from"), "{ours:?}");
}

/// Kills a 3-member cluster and restarts one member with `--force-new-cluster`.
fn force_new_cluster(flavor: Flavor) -> Vec<String> {
    let mut c = Cluster::start(flavor, 3, &[]);
    let eps = c.endpoints();
    for i in 0..20 {
        etcdctl(&eps, &["put", &format!("k{i:02}"), &format!("v{i}")], None);
    }
    // The forced member keeps what it has: let it have everything first.
    let rev = revision(&c, c.leader(LIMIT));
    c.wait_revision(0, rev, LIMIT);
    for m in &mut c.members {
        m.kill9();
    }
    let m = &mut c.members[0];
    m.start_again_with(&["--force-new-cluster"]);
    m.wait_healthy(LIMIT);
    let members = m.ctl_ok(&["member", "list", "-w", "json"]);
    assert_eq!(json(&members)["members"].as_array().unwrap().len(), 1);
    let put = m.etcdctl(&["put", "after", "forced"]);
    let keys = m.etcdctl(&["get", "k", "--prefix", "--keys-only"]);
    // The new cluster survives a plain restart too.
    m.restart();
    let again = m.etcdctl(&["get", "after", "--print-value-only"]);
    [put, keys, again].iter().map(transcript).collect()
}

#[test]
fn force_new_cluster_keeps_the_data_as_one_member() {
    let ours = force_new_cluster(Flavor::Ours);
    let reference = force_new_cluster(Flavor::Reference);
    let keys = |t: &str| normalise(t).matches("\nk").count();
    // The put after forcing and the restart after it go the same way on both.
    assert_eq!(
        [&ours[0], &ours[2]],
        [&reference[0], &reference[2]],
        "left: ours, right: Debian etcd"
    );
    // Ours keeps every key the member had applied. etcd keeps its log only up to the
    // commit index last synced to its WAL, which a kill -9 can leave one entry behind.
    assert_eq!(keys(&ours[1]), 20, "{}", ours[1]);
    assert!((19..=20).contains(&keys(&reference[1])), "{}", reference[1]);
}
