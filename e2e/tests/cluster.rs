//! Clusters of our members as real processes on 127.0.0.1 ports: static bootstrap with
//! etcd's IDs, replication and forwarding, leader failure under write load with no lost
//! acknowledged write, majority failure and recovery, and a full restart.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, GetOptions};
use etcd_e2e::cluster::Cluster;
use etcd_e2e::wait::until_async;
use etcd_e2e::{etcdctl, Flavor, Ports};

type Acked = Arc<Mutex<BTreeMap<String, i64>>>;

/// Writes `w/<writer>/<n>` through `endpoint` until `stop`, recording acknowledged keys.
/// Errors (the member died, no leader for a moment) are not acknowledgements; the writer
/// reconnects and goes on.
async fn writer(
    endpoint: String,
    id: usize,
    acked: Acked,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut n = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let Ok(mut client) = Client::connect([endpoint.clone()], None).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let key = format!("w/{id:02}/{n:08}");
            n += 1;
            let put =
                tokio::time::timeout(Duration::from_secs(3), client.put(key.as_str(), "v", None))
                    .await;
            match put {
                Ok(Ok(resp)) => {
                    let rev = resp.header().map(|h| h.revision()).unwrap_or_default();
                    acked.lock().unwrap().insert(key, rev);
                }
                _ => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    break;
                }
            }
        }
    }
}

/// Every acknowledged key with its revision, read from member `endpoint` alone.
async fn keys_on(endpoint: &str) -> BTreeMap<String, i64> {
    let mut client = Client::connect([endpoint], None).await.unwrap();
    let resp = client
        .get(
            "w/",
            Some(GetOptions::new().with_prefix().with_serializable()),
        )
        .await
        .unwrap();
    resp.kvs()
        .iter()
        .map(|kv| (kv.key_str().unwrap().to_string(), kv.mod_revision()))
        .collect()
}

fn assert_all_acked_on(acked: &BTreeMap<String, i64>, found: &BTreeMap<String, i64>, who: &str) {
    for (key, rev) in acked {
        assert_eq!(
            found.get(key),
            Some(rev),
            "{who}: acknowledged {key} at revision {rev} missing or changed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_killed_under_write_load_loses_nothing() {
    let mut cluster = Cluster::start(Flavor::Ours, 3, &[]);
    let leader = cluster.leader(Duration::from_secs(10));
    let acked: Acked = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Writers on every member: those on followers go through forwarding.
    let writers: Vec<_> = (0..6)
        .map(|i| {
            let endpoint = cluster.members[i % 3].endpoint();
            tokio::spawn(writer(endpoint, i, acked.clone(), stop.clone()))
        })
        .collect();
    let enough = || acked.lock().unwrap().len() > 50;
    until_async(Duration::from_secs(15), "50 writes before the kill", enough).await;
    let before_kill = acked.lock().unwrap().len();
    cluster.members[leader].kill9();
    // A new leader takes 1.5 to 2 election timeouts (1 s); writes must then resume. The
    // wait is generous: under a loaded test machine a writer may first sit out its 3 s
    // client timeout on the dead member.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while acked.lock().unwrap().len() <= before_kill + 50 && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > before_kill + 50,
        "writes did not resume after the leader died ({before_kill} -> {})",
        acked.len()
    );

    let new_leader = cluster.leader(Duration::from_secs(10));
    assert_ne!(new_leader, leader);
    cluster.members[leader].restart();
    let top = acked.values().max().copied().unwrap_or_default();
    for i in 0..3 {
        cluster.wait_revision(i, top, Duration::from_secs(20));
        let found = keys_on(&cluster.members[i].endpoint()).await;
        assert_all_acked_on(&acked, &found, &format!("member {i}"));
    }
}

#[test]
fn writes_on_any_member_are_read_on_every_member() {
    let cluster = Cluster::start(Flavor::Ours, 3, &[]);
    for (i, m) in cluster.members.iter().enumerate() {
        m.ctl_ok(&["put", &format!("from-{i}"), &format!("v{i}")]);
    }
    for m in &cluster.members {
        for consistency in ["l", "s"] {
            let got = m.ctl_ok(&[
                "get",
                "from-",
                "--prefix",
                "--print-value-only",
                &format!("--consistency={consistency}"),
            ]);
            if consistency == "l" {
                assert_eq!(got, "v0\nv1\nv2\n");
            }
        }
    }
    // Leases: granted on one member, kept alive and inspected through another.
    let granted = cluster.members[1].ctl_ok(&["lease", "grant", "60"]);
    let id = granted.split_whitespace().nth(1).unwrap().to_string();
    cluster.members[2].ctl_ok(&["put", "leased", "v", &format!("--lease={id}")]);
    let alive = cluster.members[0].ctl_ok(&["lease", "keep-alive", "--once", &id]);
    assert!(alive.contains("keepalived with TTL(60)"), "{alive}");
    let ttl = cluster.members[2].ctl_ok(&["lease", "timetolive", &id, "--keys"]);
    assert!(ttl.contains("attached keys([leased])"), "{ttl}");

    // Every member lists every member, started, with name and URLs.
    let list = cluster.members[0].ctl_ok(&["member", "list"]);
    assert_eq!(list.lines().count(), 3, "{list}");
    for m in &cluster.members {
        let line = list
            .lines()
            .find(|l| l.contains(&m.ports.peer_url()))
            .expect("member listed");
        assert!(
            line.contains(&format!("started, {}, ", m.name)) && line.contains(&m.endpoint()),
            "{line}"
        );
    }
}

#[test]
fn majority_failure_stops_writes_until_members_return() {
    let mut cluster = Cluster::start(Flavor::Ours, 3, &[]);
    cluster.members[0].ctl_ok(&["put", "before", "1"]);
    cluster.members[1].kill9();
    cluster.members[2].kill9();
    let out = cluster.members[0].etcdctl(&["put", "during", "1", "--command-timeout=10s"]);
    assert!(!out.status.success(), "a write without quorum succeeded");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("etcdserver: request timed out") || err.contains("etcdserver: no leader"),
        "unexpected error without quorum: {err}"
    );
    // Serializable reads are still served from the surviving member.
    let stale =
        cluster.members[0].ctl_ok(&["get", "before", "--consistency=s", "--print-value-only"]);
    assert_eq!(stale, "1\n");
    cluster.members[1].start_again();
    cluster.members[2].start_again();
    for m in &mut cluster.members {
        m.wait_healthy(Duration::from_secs(30));
    }
    cluster.members[0].ctl_ok(&["put", "after", "1"]);
    assert_eq!(
        cluster.members[2].ctl_ok(&["get", "after", "--print-value-only"]),
        "1\n"
    );
}

#[test]
fn full_cluster_restart_keeps_all_data() {
    let mut cluster = Cluster::start(Flavor::Ours, 3, &[]);
    for i in 0..50 {
        cluster.members[i % 3].ctl_ok(&["put", &format!("k{i:02}"), &format!("{i}")]);
    }
    let before = cluster.members[0].ctl_ok(&["get", "k", "--prefix", "-w", "json"]);
    cluster.kill9_and_restart_all();
    for m in &cluster.members {
        let all = m.ctl_ok(&["get", "k", "--prefix", "-w", "json"]);
        assert!(all.contains("\"count\":50"), "{all}");
    }
    let after = cluster.members[0].ctl_ok(&["get", "k", "--prefix", "-w", "json"]);
    let kvs = |s: &str| s.split("\"kvs\"").nth(1).unwrap_or_default().to_string();
    assert_eq!(kvs(&before), kvs(&after));
}

#[test]
fn member_and_cluster_ids_match_etcd_for_the_same_configuration() {
    let ports: Vec<Ports> = (0..3).map(|_| Ports::free()).collect();
    let initial = etcd_e2e::cluster::initial_cluster(&ports);
    let ids = |flavor: Flavor, token: &str| {
        let ports = ports.clone();
        let cluster = Cluster::start_on(
            flavor,
            ports,
            &initial,
            &[&format!("--initial-cluster-token={token}")],
        );
        let out = etcdctl(
            &cluster.endpoints(),
            &["member", "list", "-w", "json"],
            None,
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut members: Vec<u64> = json["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["ID"].as_u64().unwrap())
            .collect();
        members.sort();
        (json["header"]["cluster_id"].as_u64().unwrap(), members)
    };
    let reference = ids(Flavor::Reference, "tok-a");
    let ours = ids(Flavor::Ours, "tok-a");
    assert_eq!(
        ours, reference,
        "same configuration, same member and cluster IDs"
    );
    let other_token = ids(Flavor::Ours, "tok-b");
    assert_ne!(
        other_token.0, ours.0,
        "a different token makes a different cluster"
    );
}

#[test]
fn a_new_leader_extends_leases_and_then_expires_them() {
    let mut cluster = Cluster::start(Flavor::Ours, 3, &[]);
    let leader = cluster.leader(Duration::from_secs(10));
    let follower = (leader + 1) % 3;
    let granted = cluster.members[follower].ctl_ok(&["lease", "grant", "4"]);
    let id = granted.split_whitespace().nth(1).unwrap().to_string();
    cluster.members[follower].ctl_ok(&["put", "leased", "v", &format!("--lease={id}")]);
    let started = std::time::Instant::now();
    cluster.members[leader].kill9();
    cluster.leader(Duration::from_secs(10));
    // Past the lease's original 4 s: the election must not have let it expire, because
    // the new leader extends every lease when it takes over.
    std::thread::sleep(Duration::from_millis(4500).saturating_sub(started.elapsed()));
    let still = cluster.members[follower].ctl_ok(&["get", "leased", "--print-value-only"]);
    assert_eq!(still, "v\n", "a lease expired because of an election");
    // ... and the new leader does expire it later.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !cluster.members[follower]
        .ctl_ok(&["get", "leased"])
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the new leader never expired the lease"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The operations guide's "case 3": a member started with a different `--initial-cluster`
/// belongs to another cluster (another cluster ID). Like etcd 3.4, it is refused by the
/// running members ("cluster ID mismatch" on both sides) and never joins; the cluster goes
/// on serving with its members.
fn refuses_a_member_of_another_cluster(flavor: Flavor) {
    let ports: Vec<Ports> = (0..2).map(|_| Ports::free()).collect();
    let cluster = Cluster::start_on(
        flavor,
        ports.clone(),
        &etcd_e2e::cluster::initial_cluster(&ports),
        &[],
    );
    let stranger_ports = Ports::free();
    let mut all = ports.clone();
    all.push(stranger_ports.clone());
    let stranger_cluster = etcd_e2e::cluster::initial_cluster(&all).replace("m2=", "stranger=");
    let stranger = etcd_e2e::Member::spawn_in_cluster(
        flavor,
        "stranger",
        stranger_ports,
        &stranger_cluster,
        &[],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !(stranger.log().contains("cluster ID mismatch")
        && cluster.members[0].log().contains("cluster ID mismatch"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{flavor:?}: no cluster ID mismatch reported:\n{}\n{}",
            stranger.log(),
            cluster.members[0].log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!stranger
        .etcdctl(&["endpoint", "health", "--command-timeout=1s"])
        .status
        .success());
    let members = cluster.members[1].ctl_ok(&["member", "list"]);
    assert_eq!(members.lines().count(), 2, "{flavor:?}: {members}");
    cluster.members[1].ctl_ok(&["put", "still", "serving"]);
}

#[test]
fn a_member_of_another_cluster_is_refused_like_etcd() {
    refuses_a_member_of_another_cluster(Flavor::Reference);
    refuses_a_member_of_another_cluster(Flavor::Ours);
}
