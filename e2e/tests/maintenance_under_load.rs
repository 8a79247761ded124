//! The runtime keeps breathing during whole-database maintenance: on a 3-member cluster
//! whose database has been filled (256 MiB by default, `ETCD_E2E_MAINT_DB_MIB` to change
//! it; the README records a 1 GiB run), one client puts in a loop against the leader while
//! `etcdctl snapshot save` and then `etcdctl defrag` run against the leader. The put loop
//! must keep going (p99 during each within 10x of its idle p99) and the cluster must keep
//! its leader (same leader, same term on every member).
//!
//! The same measurement against Debian's etcd is `reference_for_the_record` (ignored: it
//! only prints numbers; etcd blocks writes for the whole defrag).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, PutOptions};
use etcd_e2e::cluster::Cluster;
use etcd_e2e::{Flavor, Member};

/// Value size of the filling puts: big values reach the target size fast.
const FILL_VALUE: usize = 100 * 1024;
/// Filling puts in flight at once.
const FILL_CONCURRENCY: usize = 16;
/// How many puts of the idle loop are measured (about 5 s of a debug build's loop), and
/// how long they may take at most.
const IDLE_PUTS: usize = 1000;
const IDLE_LIMIT: Duration = Duration::from_secs(60);
/// At least this many puts in each measured phase, or the loop did not keep running.
const MIN_PUTS: usize = 20;

fn target_bytes() -> i64 {
    let mib: i64 = std::env::var("ETCD_E2E_MAINT_DB_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    mib * 1024 * 1024
}

/// The leader and term every member reports.
async fn leadership(cluster: &Cluster) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for m in &cluster.members {
        let mut c = Client::connect([m.endpoint()], None)
            .await
            .expect("connect");
        let s = c.status().await.expect("status");
        out.push((s.leader(), s.raft_term()));
    }
    out
}

/// Puts `FILL_VALUE`-byte values under distinct keys until the leader's database is at
/// least `target` bytes.
async fn fill(leader: &Member, target: i64) -> i64 {
    let client = Client::connect([leader.endpoint()], None)
        .await
        .expect("connect");
    let next = Arc::new(AtomicUsize::new(0));
    let value: Arc<Vec<u8>> = Arc::new((0..FILL_VALUE).map(|i| (i * 7 + 3) as u8).collect());
    loop {
        let mut tasks = Vec::new();
        for _ in 0..FILL_CONCURRENCY {
            let mut kv = client.kv_client();
            let next = next.clone();
            let value = value.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..16 {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    kv.put(format!("fill/{i:08}"), value.to_vec(), None)
                        .await
                        .expect("fill put");
                }
            }));
        }
        for t in tasks {
            t.await.expect("fill task");
        }
        let size = client
            .maintenance_client()
            .status()
            .await
            .expect("status")
            .db_size();
        if size >= target {
            return size;
        }
    }
}

/// Latencies of the put loop, tagged with the phase they were measured in.
#[derive(Default)]
struct Samples {
    by_phase: [Vec<Duration>; 3],
}

const IDLE_PHASE: usize = 0;
const SNAPSHOT_PHASE: usize = 1;
const DEFRAG_PHASE: usize = 2;
/// No phase is being measured (between phases).
const NO_PHASE: usize = usize::MAX;

fn p99(samples: &[Duration]) -> Duration {
    let mut s = samples.to_vec();
    s.sort();
    s[(s.len() * 99).div_ceil(100).saturating_sub(1)]
}

/// One phase's figures.
#[derive(Debug)]
struct Figures {
    puts: usize,
    p99: Duration,
    max: Duration,
    took: Duration,
}

/// What one run measured.
struct Run {
    db_size: i64,
    idle: Figures,
    snapshot: Figures,
    defrag: Figures,
    leadership_before: Vec<(u64, u64)>,
    leadership_after: Vec<(u64, u64)>,
}

/// Runs `etcdctl` against `member` on a blocking thread and returns how long it took.
async fn ctl(member: &Member, args: &[&str]) -> Duration {
    let endpoint = member.endpoint();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = etcd_e2e::etcdctl(&endpoint, &args, None);
        assert!(
            out.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        start.elapsed()
    })
    .await
    .expect("etcdctl thread")
}

async fn measure(flavor: Flavor) -> Run {
    let quota = (8u64 << 30).to_string();
    let quota_flag = format!("--quota-backend-bytes={quota}");
    let cluster = Cluster::start(flavor, 3, &[&quota_flag]);
    let leader = &cluster.members[cluster.leader(Duration::from_secs(30))];
    let db_size = fill(leader, target_bytes()).await;

    let samples = Arc::new(Mutex::new(Samples::default()));
    let phase = Arc::new(AtomicUsize::new(NO_PHASE));
    let stop = Arc::new(AtomicBool::new(false));
    let mut kv = Client::connect([leader.endpoint()], None)
        .await
        .expect("connect")
        .kv_client();
    let looping = {
        let (samples, phase, stop) = (samples.clone(), phase.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let during = phase.load(Ordering::SeqCst);
                let start = Instant::now();
                kv.put(
                    format!("loop/{}", i % 100),
                    vec![b'x'; 100],
                    None::<PutOptions>,
                )
                .await
                .expect("loop put");
                let took = start.elapsed();
                // A put counts for the phase it started in: one that a phase blocked
                // counts there with its whole wait.
                if during != NO_PHASE {
                    samples.lock().unwrap().by_phase[during].push(took);
                }
                i += 1;
            }
        })
    };
    let leadership_before = leadership(&cluster).await;

    let figures = |which: usize, took: Duration| {
        let s = samples.lock().unwrap();
        let v = &s.by_phase[which];
        Figures {
            puts: v.len(),
            // No put at all: the loop stood still for the whole phase.
            p99: if v.is_empty() { took } else { p99(v) },
            max: v.iter().max().copied().unwrap_or(took),
            took,
        }
    };

    phase.store(IDLE_PHASE, Ordering::SeqCst);
    let start = Instant::now();
    let idle_samples = samples.clone();
    etcd_e2e::wait::until_async(IDLE_LIMIT, "the idle put loop made its puts", || {
        idle_samples.lock().unwrap().by_phase[IDLE_PHASE].len() >= IDLE_PUTS
    })
    .await;
    phase.store(NO_PHASE, Ordering::SeqCst);
    let idle = figures(IDLE_PHASE, start.elapsed());
    assert!(idle.puts >= MIN_PUTS, "the idle put loop ran only {idle:?}");

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("backup.db");
    phase.store(SNAPSHOT_PHASE, Ordering::SeqCst);
    let took = ctl(
        leader,
        &["snapshot", "save", file.to_str().expect("utf-8 path")],
    )
    .await;
    phase.store(NO_PHASE, Ordering::SeqCst);
    let snapshot = figures(SNAPSHOT_PHASE, took);
    drop(dir);

    phase.store(DEFRAG_PHASE, Ordering::SeqCst);
    let took = ctl(leader, &["defrag", "--command-timeout=600s"]).await;
    phase.store(NO_PHASE, Ordering::SeqCst);
    let defrag = figures(DEFRAG_PHASE, took);
    for line in leader.log().lines().filter(|l| l.contains("defragment")) {
        eprintln!("leader: {line}");
    }

    stop.store(true, Ordering::Relaxed);
    looping.await.expect("put loop");
    let leadership_after = leadership(&cluster).await;
    let run = Run {
        db_size,
        idle,
        snapshot,
        defrag,
        leadership_before,
        leadership_after,
    };
    eprintln!(
        "{flavor:?}: db {} MiB; same leader and term: {}",
        run.db_size >> 20,
        run.leadership_before == run.leadership_after
    );
    for (what, f) in [
        ("idle", &run.idle),
        ("snapshot save", &run.snapshot),
        ("defrag", &run.defrag),
    ] {
        eprintln!(
            "  {what:14} {:5} puts in {:>9.2?}: p99 {:>9.2?}, max {:>9.2?}",
            f.puts, f.took, f.p99, f.max
        );
    }
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshot_and_defrag_keep_writes_and_the_leader() {
    let run = measure(Flavor::Ours).await;
    assert_eq!(
        run.leadership_before, run.leadership_after,
        "leader or term changed during maintenance"
    );
    for (what, f) in [("snapshot save", &run.snapshot), ("defrag", &run.defrag)] {
        assert!(
            f.puts >= MIN_PUTS,
            "the put loop ran only {} puts during {what} ({:?})",
            f.puts,
            f.took
        );
        assert!(
            f.p99 <= run.idle.p99 * 10,
            "put p99 during {what} is {:?}, over 10x the idle p99 {:?}",
            f.p99,
            run.idle.p99
        );
    }
}

/// Debian's etcd under the same measurement, for the README (not asserted).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "measures Debian's etcd for the record; run by hand"]
async fn reference_for_the_record() {
    measure(Flavor::Reference).await;
}
