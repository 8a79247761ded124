//! Linearizable reads on a follower whose leader stops answering (SIGSTOP: its sockets
//! stay open, nothing comes back). The read index round in flight to the paused leader
//! ends with the request timeout, and once the others have elected a new leader the
//! follower's reads are served again, instead of queueing behind a call that never
//! returns.

use std::time::{Duration, Instant};

use etcd_e2e::cluster::Cluster;
use etcd_e2e::{etcdctl, wait, Flavor};

#[test]
fn a_follower_reads_again_after_its_leader_stops_answering() {
    let cluster = Cluster::start(Flavor::Ours, 3, &[]);
    let leader = cluster.leader(Duration::from_secs(10));
    let follower = (leader + 1) % 3;
    let old_leader = Cluster::status(&cluster.members[leader])
        .expect("leader status")
        .member_id;
    let on_follower = cluster.members[follower].endpoint();
    cluster.members[follower].ctl_ok(&["put", "k", "before"]);

    assert!(
        cluster.members[leader].signal(libc::SIGSTOP),
        "pause the leader"
    );
    // A read now asks the paused leader for its read index.
    let stuck = {
        let endpoint = on_follower.clone();
        std::thread::spawn(move || etcdctl(&endpoint, &["get", "k", "--command-timeout=8s"], None))
    };
    wait::until(
        Duration::from_secs(15),
        "the others elect a new leader",
        || {
            Cluster::status(&cluster.members[follower])
                .is_some_and(|s| s.leader != 0 && s.leader != old_leader)
        },
    );
    let started = Instant::now();
    let out = etcdctl(&on_follower, &["get", "k", "--command-timeout=15s"], None);
    let took = started.elapsed();
    assert!(
        cluster.members[leader].signal(libc::SIGCONT),
        "resume the leader"
    );
    assert!(
        out.status.success(),
        "read on the follower: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("before"));
    // The round to the paused leader is bounded by the request timeout (5 s).
    assert!(
        took < Duration::from_secs(7),
        "a read waited {took:?} behind the paused leader"
    );
    let first = stuck.join().expect("first read");
    if !first.status.success() {
        assert!(
            String::from_utf8_lossy(&first.stderr).contains("etcdserver: request timed out"),
            "{}",
            String::from_utf8_lossy(&first.stderr)
        );
    }
}
