//! Every member comes back: a three-member cluster of ours is killed with SIGKILL, all
//! members at once, right after a burst of writes (in flight or just acknowledged), then
//! all three are started again (together or one by one, and every third round crashed
//! once more while restarting).
//! Every member must become ready (serve client requests) and serve every write
//! acknowledged so far, with the revision it was acknowledged at. Eight rounds, because
//! the failure this guards against (a member that never becomes ready again) was seen in
//! about two runs of seven of a single round.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions};
use etcd_e2e::cluster::Cluster;
use etcd_e2e::{Flavor, Member};

/// Rounds of the loop; `ETCD_E2E_RESTART_ROUNDS` asks for more (or fewer).
const ROUNDS: usize = 8;
const WRITERS: usize = 16;
/// Acknowledged puts per round before the kill (the writers keep going until it).
const BURST: usize = 200;
/// How long a restarted member may take to serve clients again: an election (1 s here)
/// plus catching up on a short log, with room for a loaded machine.
const READY_WITHIN: Duration = Duration::from_secs(30);

type Acked = Arc<Mutex<BTreeMap<String, i64>>>;

/// Values in odd rounds: the leader batches concurrent puts into one raft entry, and
/// entries this large (16 writers x 16 KiB) are kept by sled in separate blob files, a
/// path of their own through the log store.
const LARGE_VALUE: usize = 16 * 1024;

/// Puts `r<round>/<writer>/<n>` through `endpoint` until a put fails (the member was
/// killed), recording each acknowledged key with its revision.
async fn write_until_killed(endpoint: String, round: usize, writer: usize, acked: Acked) {
    let Ok(mut client) = Client::connect([endpoint], None).await else {
        return;
    };
    for n in 0.. {
        let key = format!("r{round}/{writer:02}/{n:06}");
        let value = match round % 2 {
            0 => format!("v{n}"),
            _ => format!("v{n}-").repeat(LARGE_VALUE / 8),
        };
        let put = client.put(key.as_str(), value, None);
        match tokio::time::timeout(Duration::from_secs(5), put).await {
            Ok(Ok(resp)) => {
                let rev = resp.header().map(|h| h.revision()).unwrap_or_default();
                acked.lock().unwrap().insert(key, rev);
            }
            _ => return,
        }
    }
}

/// Waits until `member` answers `endpoint health` (it has published itself through raft
/// and serves linearizable reads); the time it took, or None after [`READY_WITHIN`].
fn wait_ready(member: &Member) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < READY_WITHIN {
        let out = member.etcdctl(&["endpoint", "health", "--command-timeout=2s"]);
        if out.status.success() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// The last `n` lines of a member's log.
fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Every key under `r` with its mod revision (not the values: together they pass the
/// client's 4 MiB message limit), read from `endpoint`'s member alone.
async fn keys_on(endpoint: &str) -> BTreeMap<String, i64> {
    let mut client = Client::connect([endpoint], None).await.expect("connect");
    let resp = client
        .get(
            "r",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_keys_only()
                    .with_serializable(),
            ),
        )
        .await
        .expect("serializable get");
    resp.kvs()
        .iter()
        .map(|kv| (kv.key_str().unwrap().to_string(), kv.mod_revision()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_member_comes_back_after_whole_cluster_kill9() {
    let mut cluster = Cluster::start(Flavor::Ours, 3, &[]);
    let acked: Acked = Arc::default();
    let rounds = std::env::var("ETCD_E2E_RESTART_ROUNDS").map_or(ROUNDS, |r| {
        r.parse()
            .unwrap_or_else(|_| panic!("ETCD_E2E_RESTART_ROUNDS={r:?} is not a whole number"))
    });
    for round in 0..rounds {
        let before = acked.lock().unwrap().len();
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let endpoint = cluster.members[w % 3].endpoint();
                tokio::spawn(write_until_killed(endpoint, round, w, acked.clone()))
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        while acked.lock().unwrap().len() < before + BURST {
            assert!(
                Instant::now() < deadline,
                "round {round}: fewer than {BURST} writes acknowledged in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Kill right after the burst: in even rounds with writes still in flight, in odd
        // ones once the writers have stopped (nothing in flight, the last entries just
        // committed).
        if round % 2 == 1 {
            for w in &writers {
                w.abort();
            }
        }
        for m in &mut cluster.members {
            m.kill9();
        }
        for w in writers {
            let _ = w.await;
        }
        // Started in a different order each round; in every fourth round one at a time,
        // 1.5 s apart, so the first one campaigns alone for a while and raises its term
        // (openraft 0.9 has no pre-vote) before the others come back with their logs.
        for k in 0..3 {
            cluster.members[(round + k) % 3].start_again();
            if round % 4 == 3 {
                std::thread::sleep(Duration::from_millis(1500));
            }
        }
        // Every third round, a second crash of all three during the restart (a crash at
        // any point must be recoverable), after a delay that varies by round.
        if round % 3 == 2 {
            std::thread::sleep(Duration::from_millis(150 * round as u64 % 1500));
            for m in &mut cluster.members {
                m.start_again();
            }
        }
        let ready: Vec<Option<Duration>> = std::thread::scope(|s| {
            let waits: Vec<_> = cluster
                .members
                .iter()
                .map(|m| s.spawn(move || wait_ready(m)))
                .collect();
            waits.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let stuck: Vec<String> = ready
            .iter()
            .zip(&cluster.members)
            .filter(|(r, _)| r.is_none())
            .map(|(_, m)| format!("--- {} (last 60 lines) ---\n{}", m.name, tail(&m.log(), 60)))
            .collect();
        assert!(
            stuck.is_empty(),
            "round {round}: {} member(s) not ready {READY_WITHIN:?} after restarting \
             the whole cluster:\n{}",
            stuck.len(),
            stuck.join("\n")
        );
        let acked_now = acked.lock().unwrap().clone();
        let top = acked_now.values().max().copied().unwrap_or_default();
        for (i, m) in cluster.members.iter().enumerate() {
            cluster.wait_revision(i, top, Duration::from_secs(20));
            let found = keys_on(&m.endpoint()).await;
            for (key, rev) in &acked_now {
                assert_eq!(
                    found.get(key),
                    Some(rev),
                    "round {round}: {} lacks acknowledged {key} (revision {rev})",
                    m.name
                );
            }
        }
        eprintln!(
            "round {round}: {} writes acknowledged in all, ready after {ready:?}",
            acked_now.len()
        );
    }
}
