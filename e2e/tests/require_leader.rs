//! etcd's "require leader", differential against Debian's etcd 3.4: clients that send the
//! gRPC metadata `hasleader: true` (kube-apiserver through clientv3's `WithRequireLeader`,
//! here the `etcd-client` crate's `with_require_leader(true)`) are refused at once by a
//! member that knows no leader, and their Watch and LeaseKeepAlive streams are ended with
//! `etcdserver: no leader` once the member has been without a leader for three election
//! timeouts. Streams opened without the metadata stay open.
//!
//! Every scenario runs on Debian's etcd first, then on ours, with the same code:
//! 1. the two peers of a follower are killed;
//! 2. the leader is cut off from its followers (network namespaces, iptables);
//! 3. a watch opened as kube-apiserver opens it, on a follower that is then cut off while a
//!    writer goes on through the majority, is re-opened on a healthy member from the last
//!    revision received; what it received in all must be exactly the history.
//!
//! In 1 and 2 the times from losing the leader to the end of the streams are measured on
//! both flavours in the same run, and ours must lie within 50% of etcd's. The partition
//! scenarios need root; a set-up failure fails the test.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{
    Client, ConnectOptions, Error, EventType, GetOptions, KeyValue, WatchOptions, WatchResponse,
};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;

use etcd_e2e::cluster::Cluster;
use etcd_e2e::netns::Network;
use etcd_e2e::{wait, Flavor};

/// What etcd answers a require-leader request on a member without a leader.
const NO_LEADER: &str = "etcdserver: no leader";

/// A refused request must come back within this (etcd refuses before doing anything).
const FAST: Duration = Duration::from_secs(1);

/// How long after the leader was lost a stream's end is awaited (etcd takes 3-5 s).
const STREAM_END_LIMIT: Duration = Duration::from_secs(15);

/// A multi-threaded runtime for the clients and the tasks reading their streams; the test
/// thread itself (which runs etcdctl, kills members, cuts links) is not one of its workers,
/// so blocking there never delays the moment a stream's end is seen.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A client of `endpoints`, sending `hasleader: true` with every request if `require_leader`.
async fn connect(endpoints: &[String], require_leader: bool) -> Client {
    let options = ConnectOptions::new()
        .with_require_leader(require_leader)
        .with_connect_timeout(Duration::from_secs(2));
    Client::connect(endpoints, Some(options))
        .await
        .expect("connect")
}

/// How a stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// With a gRPC status.
    Status(tonic::Code, String),
    /// Without an error (the server closed it cleanly).
    Closed,
    /// Some other failure of the client.
    Other(String),
}

impl End {
    /// What a client error says.
    fn of(e: Error) -> End {
        match e {
            Error::GRpcStatus(s) => End::Status(s.code(), s.message().to_string()),
            e => End::Other(e.to_string()),
        }
    }

    fn is_no_leader(&self) -> bool {
        *self == End::Status(tonic::Code::Unavailable, NO_LEADER.to_string())
    }
}

/// When and how a stream ended.
#[derive(Debug, Clone)]
struct Ended {
    at: Instant,
    how: End,
}

/// Reads a watch stream in a task until it ends; every response is passed on to the
/// receiver returned.
fn follow_watch(
    rt: &Runtime,
    (watcher, mut stream): (etcd_client::Watcher, etcd_client::WatchStream),
) -> (JoinHandle<Ended>, mpsc::UnboundedReceiver<WatchResponse>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = rt.spawn(async move {
        // Dropping the watcher would close the request side of the stream.
        let _watcher = watcher;
        let how = loop {
            match stream.next().await {
                Some(Ok(resp)) => {
                    let _ = tx.send(resp);
                }
                Some(Err(e)) => break End::of(e),
                None => break End::Closed,
            }
        };
        Ended {
            at: Instant::now(),
            how,
        }
    });
    (handle, rx)
}

/// Keeps lease `id` alive through `client`, one keep-alive a second, until the stream ends.
async fn follow_keep_alive(client: &Client, id: i64) -> JoinHandle<Ended> {
    let (mut keeper, mut stream) = client
        .lease_client()
        .keep_alive(id)
        .await
        .expect("open a keep-alive stream");
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        let how = loop {
            tokio::select! {
                _ = every.tick() => {
                    if let Err(e) = keeper.keep_alive().await {
                        break End::Other(format!("cannot send a keep-alive: {e}"));
                    }
                }
                msg = stream.next() => match msg {
                    Some(Ok(resp)) if resp.ttl() > 0 => {}
                    Some(Ok(resp)) => break End::Other(format!("lease gone: {resp:?}")),
                    Some(Err(e)) => break End::of(e),
                    None => break End::Closed,
                },
            }
        };
        Ended {
            at: Instant::now(),
            how,
        }
    })
}

/// Runs `fut` on `rt` for at most `limit`.
fn run_for<F: std::future::Future>(
    rt: &Runtime,
    limit: Duration,
    fut: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    rt.block_on(async { tokio::time::timeout(limit, fut).await })
}

/// Waits up to `limit` for a task reading a stream to see it end.
fn wait_end(rt: &Runtime, handle: JoinHandle<Ended>, limit: Duration, what: &str) -> Ended {
    run_for(rt, limit, handle)
        .unwrap_or_else(|_| panic!("the {what} stream did not end within {limit:?}"))
        .expect("stream task")
}

/// Waits up to `limit` for a watch to deliver a put of `key`.
fn wait_event(
    rt: &Runtime,
    events: &mut mpsc::UnboundedReceiver<WatchResponse>,
    key: &str,
    limit: Duration,
    what: &str,
) {
    rt.block_on(async {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let resp = tokio::time::timeout_at(deadline, events.recv())
                .await
                .unwrap_or_else(|_| panic!("{what} did not deliver {key} within {limit:?}"))
                .unwrap_or_else(|| panic!("{what} ended before delivering {key}"));
            let seen = resp
                .events()
                .iter()
                .filter_map(|e| e.kv())
                .any(|kv| kv.key() == key.as_bytes());
            if seen {
                return;
            }
        }
    })
}

/// The streams one scenario opens on the member that will lose its leader.
struct Streams {
    /// A prefix watch asking for a leader (taken once it has ended).
    rl_watch: Option<JoinHandle<Ended>>,
    /// A lease keep-alive stream asking for a leader (taken once it has ended).
    rl_keep_alive: Option<JoinHandle<Ended>>,
    /// A prefix watch without the metadata, and what it delivers.
    plain_watch: JoinHandle<Ended>,
    plain_events: mpsc::UnboundedReceiver<WatchResponse>,
}

impl Streams {
    /// Opens the streams through `rl` (require-leader) and `plain` (both connected to the
    /// same member) and checks that they work: both watches see a put, the keep-alive
    /// stream answers (`keep_alive` waits for its first answer).
    fn open(rt: &Runtime, rl: &Client, plain: &Client) -> Streams {
        let prefix = WatchOptions::new().with_prefix();
        let rl_watch = rt
            .block_on(rl.watch_client().watch("rl/", Some(prefix.clone())))
            .expect("open the require-leader watch");
        let plain_watch = rt
            .block_on(plain.watch_client().watch("rl/", Some(prefix)))
            .expect("open the plain watch");
        let (rl_watch, mut rl_events) = follow_watch(rt, rl_watch);
        let (plain_watch, mut plain_events) = follow_watch(rt, plain_watch);
        let lease = rt
            .block_on(rl.lease_client().grant(600, None))
            .expect("grant a lease");
        let rl_keep_alive = rt.block_on(follow_keep_alive(rl, lease.id()));
        rt.block_on(plain.kv_client().put("rl/live", "1", None))
            .expect("put rl/live");
        let limit = Duration::from_secs(5);
        wait_event(
            rt,
            &mut rl_events,
            "rl/live",
            limit,
            "the require-leader watch",
        );
        wait_event(rt, &mut plain_events, "rl/live", limit, "the plain watch");
        Streams {
            rl_watch: Some(rl_watch),
            rl_keep_alive: Some(rl_keep_alive),
            plain_watch,
            plain_events,
        }
    }
}

/// How long a request took, and how it failed (or that it did not).
async fn timed<T>(
    request: impl std::future::Future<Output = Result<T, Error>>,
) -> (Duration, Result<(), End>) {
    let start = Instant::now();
    let result = match tokio::time::timeout(Duration::from_secs(5), request).await {
        Ok(r) => r.map(drop).map_err(End::of),
        Err(_) => Err(End::Other("no answer within 5 s".into())),
    };
    (start.elapsed(), result)
}

/// What a scenario measured from the moment the leader was lost (peers stopped, links cut).
#[derive(Debug, Clone, Copy)]
struct Times {
    /// Until a require-leader Get was first refused.
    unary: Duration,
    /// Until the require-leader watch ended.
    watch: Duration,
    /// Until the require-leader keep-alive stream ended.
    keep_alive: Duration,
}

/// After the member behind `rl` lost its leader at `lost`: polls a serializable Get until
/// it is refused with `etcdserver: no leader`, checks that further require-leader requests
/// are refused at once, and waits for both require-leader streams to end with that error.
/// The watch without the metadata must still be open, and a linearizable Get without it
/// waits for a leader instead of failing.
fn observe_loss(
    rt: &Runtime,
    flavor: Flavor,
    rl: &Client,
    plain: &Client,
    streams: &mut Streams,
    lost: Instant,
) -> Times {
    let mut kv = rl.kv_client();
    let serializable = || Some(GetOptions::new().with_serializable());
    let unary = loop {
        let attempt = run_for(rt, Duration::from_secs(3), kv.get("rl/", serializable()));
        let at = lost.elapsed();
        match attempt {
            Err(_) => panic!("{flavor:?}: a serializable require-leader Get hung after {at:?}"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                let end = End::of(e);
                assert!(
                    end.is_no_leader(),
                    "{flavor:?}: a require-leader Get failed with {end:?} after {at:?}"
                );
                break at;
            }
        }
        assert!(
            at < Duration::from_secs(10),
            "{flavor:?}: a require-leader Get was still served {at:?} after the leader was lost"
        );
        std::thread::sleep(Duration::from_millis(50));
    };

    // From now on every require-leader request is refused at once, whatever it is.
    let mut lease = rl.lease_client();
    let refusals = rt.block_on(async {
        [
            ("linearizable Get", timed(kv.get("rl/", None)).await),
            (
                "serializable Get",
                timed(kv.get("rl/", serializable())).await,
            ),
            ("Put", timed(kv.put("rl/refused", "x", None)).await),
            ("LeaseGrant", timed(lease.grant(60, None)).await),
        ]
    });
    for (what, (took, result)) in refusals {
        assert!(
            matches!(&result, Err(end) if end.is_no_leader()),
            "{flavor:?}: a require-leader {what} without a leader gave {result:?}"
        );
        assert!(
            took < FAST,
            "{flavor:?}: refusing a require-leader {what} took {took:?}"
        );
    }

    // Without the metadata a read waits for a leader, as etcd's ReadIndex does.
    let mut plain_kv = plain.kv_client();
    let waited = run_for(rt, Duration::from_secs(3), plain_kv.get("rl/", None));
    assert!(
        waited.is_err(),
        "{flavor:?}: a linearizable Get without require-leader did not wait for a leader: \
         {waited:?}"
    );

    let watch = wait_end(
        rt,
        streams.rl_watch.take().expect("the require-leader watch"),
        STREAM_END_LIMIT,
        "require-leader watch",
    );
    let keep_alive = wait_end(
        rt,
        streams.rl_keep_alive.take().expect("the keep-alive stream"),
        STREAM_END_LIMIT,
        "require-leader keep-alive",
    );
    for (what, ended) in [("watch", &watch), ("keep-alive", &keep_alive)] {
        assert!(
            ended.how.is_no_leader(),
            "{flavor:?}: the require-leader {what} stream ended with {:?}, not Unavailable \
             `{NO_LEADER}`",
            ended.how
        );
    }
    assert!(
        !streams.plain_watch.is_finished(),
        "{flavor:?}: the watch without require-leader ended: {:?}",
        rt.block_on(&mut streams.plain_watch)
    );
    Times {
        unary,
        watch: watch.at.duration_since(lost),
        keep_alive: keep_alive.at.duration_since(lost),
    }
}

/// Polls a linearizable require-leader Get until it is served again (a leader is back).
fn wait_served(rt: &Runtime, flavor: Flavor, rl: &Client, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut kv = rl.kv_client();
    loop {
        let attempt = run_for(rt, Duration::from_secs(3), kv.get("rl/", None));
        if let Ok(Ok(_)) = attempt {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{flavor:?}: require-leader Gets still refused {limit:?} after the leader came \
             back: {attempt:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// After the leader is back: the watch without require-leader, open all along, delivers a
/// new put made through `writer`.
fn plain_watch_goes_on(rt: &Runtime, flavor: Flavor, writer: &Client, streams: &mut Streams) {
    retrying(rt, &format!("{flavor:?}: put rl/after"), || {
        let mut kv = writer.kv_client();
        async move { kv.put("rl/after", "1", None).await }
    });
    wait_event(
        rt,
        &mut streams.plain_events,
        "rl/after",
        Duration::from_secs(10),
        "the plain watch",
    );
    assert!(!streams.plain_watch.is_finished());
}

/// Prints what both flavours measured in `scenario` and asserts that the ends of ours'
/// require-leader streams came within 50% of etcd's times.
fn compare(scenario: &str, etcd: Times, ours: Times) {
    let summary = format!(
        "{scenario}, to the first refused Get / the end of the watch / of the keep-alive: \
         etcd {:?} / {:?} / {:?}; ours {:?} / {:?} / {:?}",
        etcd.unary, etcd.watch, etcd.keep_alive, ours.unary, ours.watch, ours.keep_alive
    );
    eprintln!("{summary}");
    for (what, ours, etcd) in [
        ("watch", ours.watch, etcd.watch),
        ("keep-alive", ours.keep_alive, etcd.keep_alive),
    ] {
        assert!(
            ours >= etcd / 2 && ours <= etcd * 3 / 2,
            "the require-leader {what} ended {ours:?} after the leader was lost on ours, \
             {etcd:?} on etcd: not within etcd's ±50% ({summary})"
        );
    }
}

/// Scenario 1: on a 3-member loopback cluster, streams open on a follower; the two other
/// members are killed (SIGKILL).
fn stopped_peers(flavor: Flavor) -> Times {
    let rt = runtime();
    let mut cluster = Cluster::start(flavor, 3, &[]);
    let leader = cluster.leader(Duration::from_secs(10));
    let a = (0..3).find(|&i| i != leader).expect("a follower");
    let endpoint = vec![cluster.members[a].endpoint()];
    let rl = rt.block_on(connect(&endpoint, true));
    let plain = rt.block_on(connect(&endpoint, false));
    let mut streams = Streams::open(&rt, &rl, &plain);

    let others: Vec<usize> = (0..3).filter(|&i| i != a).collect();
    for &i in &others {
        cluster.members[i].kill9();
    }
    let stopped = Instant::now();
    let times = observe_loss(&rt, flavor, &rl, &plain, &mut streams, stopped);

    // The peers come back: require-leader requests are served again, and the plain watch
    // goes on delivering.
    for &i in &others {
        cluster.members[i].restart();
    }
    wait_served(&rt, flavor, &rl, Duration::from_secs(15));
    plain_watch_goes_on(&rt, flavor, &plain, &mut streams);
    times
}

#[test]
fn streams_requiring_a_leader_end_when_the_peers_stop() {
    let etcd = stopped_peers(Flavor::Reference);
    let ours = stopped_peers(Flavor::Ours);
    compare("from the SIGKILL of the peers", etcd, ours);
}

fn network() -> Network {
    Network::new(3).unwrap_or_else(|e| panic!("cannot build the test's network: {e}"))
}

/// Scenario 2: streams open on the leader, which is then cut off from both followers.
fn isolated_leader(flavor: Flavor) -> Times {
    let rt = runtime();
    let net = network();
    let cluster = Cluster::on_network(&net, 3, flavor, &[]);
    let old = cluster.leader(Duration::from_secs(10));
    let majority: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    let endpoint = vec![cluster.members[old].endpoint()];
    let rl = rt.block_on(connect(&endpoint, true));
    let plain = rt.block_on(connect(&endpoint, false));
    let mut streams = Streams::open(&rt, &rl, &plain);

    net.isolate(old, &majority)
        .unwrap_or_else(|e| panic!("cannot cut the leader off: {e}"));
    let cut = Instant::now();
    let times = observe_loss(&rt, flavor, &rl, &plain, &mut streams, cut);

    net.heal(old)
        .unwrap_or_else(|e| panic!("cannot heal the partition: {e}"));
    wait_served(&rt, flavor, &rl, Duration::from_secs(20));
    let majority_endpoints: Vec<String> = majority
        .iter()
        .map(|&i| cluster.members[i].endpoint())
        .collect();
    let writer = rt.block_on(connect(&majority_endpoints, false));
    plain_watch_goes_on(&rt, flavor, &writer, &mut streams);
    times
}

#[test]
fn streams_requiring_a_leader_end_on_an_isolated_leader() {
    let etcd = isolated_leader(Flavor::Reference);
    let ours = isolated_leader(Flavor::Ours);
    compare("from the cut of the leader's links", etcd, ours);
}

// ---- Scenario 3: a watch as kube-apiserver opens it, across a partition ----------------

/// The prefix kube-apiserver would watch (one resource type).
const PODS: &str = "/registry/pods/default/";
/// Keys the writer cycles through.
const KEYS: usize = 10;

/// A key-value as an event or a range shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Kv {
    value: Vec<u8>,
    create_revision: i64,
    mod_revision: i64,
    version: i64,
}

impl From<&KeyValue> for Kv {
    fn from(kv: &KeyValue) -> Kv {
        Kv {
            value: kv.value().to_vec(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
            version: kv.version(),
        }
    }
}

/// One event a watch delivered.
#[derive(Debug, Clone)]
struct Ev {
    delete: bool,
    key: String,
    kv: Kv,
    prev: Option<Kv>,
}

/// What became of one write.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Acknowledged at this revision.
    Acked(i64),
    /// A delete that found nothing to delete (no revision).
    Nothing,
    /// Failed or timed out: it may or may not have been applied.
    Unknown(String),
}

/// One write the writer made.
#[derive(Debug, Clone)]
struct Write {
    delete: bool,
    key: String,
    /// Unique per put; empty for a delete.
    value: String,
    outcome: Outcome,
}

/// The writer's progress, shared with the test thread.
#[derive(Default)]
struct WriterProgress {
    acked: AtomicUsize,
    last_acked: AtomicI64,
}

/// Writes under [`PODS`] through `client` (one write every 20 ms: mostly puts of a unique
/// value, every seventh a delete) until `stop` is set; returns every write with its outcome.
fn start_writer(
    rt: &Runtime,
    client: Client,
    stop: Arc<AtomicBool>,
    progress: Arc<WriterProgress>,
) -> JoinHandle<Vec<Write>> {
    rt.spawn(async move {
        let mut kv = client.kv_client();
        let mut pace = tokio::time::interval(Duration::from_millis(20));
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut writes = Vec::new();
        for i in 0usize.. {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            pace.tick().await;
            let key = format!("{PODS}p{}", i % KEYS);
            let delete = i % 7 == 3;
            let value = if delete {
                String::new()
            } else {
                format!("v{i}")
            };
            let limit = Duration::from_secs(5);
            let outcome = if delete {
                match tokio::time::timeout(limit, kv.delete(key.clone(), None)).await {
                    Ok(Ok(r)) if r.deleted() == 0 => Outcome::Nothing,
                    Ok(Ok(r)) => Outcome::Acked(r.header().expect("header").revision()),
                    Ok(Err(e)) => Outcome::Unknown(e.to_string()),
                    Err(_) => Outcome::Unknown("timed out".into()),
                }
            } else {
                match tokio::time::timeout(limit, kv.put(key.clone(), value.clone(), None)).await {
                    Ok(Ok(r)) => Outcome::Acked(r.header().expect("header").revision()),
                    Ok(Err(e)) => Outcome::Unknown(e.to_string()),
                    Err(_) => Outcome::Unknown("timed out".into()),
                }
            };
            if let Outcome::Acked(rev) = outcome {
                progress.acked.fetch_add(1, Ordering::Relaxed);
                progress.last_acked.fetch_max(rev, Ordering::Relaxed);
            }
            writes.push(Write {
                delete,
                key,
                value,
                outcome,
            });
        }
        writes
    })
}

/// What the kube-shaped watcher saw.
#[derive(Debug, Default)]
struct KubeLog {
    /// Every event, in the order received, from every stream.
    events: Vec<Ev>,
    /// The revision to resume after: the last event's, or a later progress notification's.
    last: i64,
    /// Progress notifications received.
    progress: usize,
    /// How and when each stream ended, with the number of events received by then.
    ends: Vec<(Ended, usize)>,
    /// The revisions the watch was re-opened from on a healthy member.
    reopened_from: Vec<i64>,
    /// Attempts to re-open that were refused.
    refused_reopens: usize,
}

/// The watch kube-apiserver opens: a prefix, with previous values, progress notifications,
/// from a revision.
fn kube_options(from: i64) -> WatchOptions {
    WatchOptions::new()
        .with_prefix()
        .with_prev_key()
        .with_progress_notify()
        .with_start_revision(from)
}

/// Reads a watch stream into `log` until it ends (Some) or `stop` is set (None).
async fn read_watch(
    stream: &mut etcd_client::WatchStream,
    log: &Mutex<KubeLog>,
    stop: &mut watch::Receiver<bool>,
) -> Option<End> {
    loop {
        let msg = tokio::select! {
            _ = stop.wait_for(|s| *s) => return None,
            msg = stream.next() => msg,
        };
        let resp = match msg {
            Some(Ok(resp)) => resp,
            Some(Err(e)) => return Some(End::of(e)),
            None => return Some(End::Closed),
        };
        let mut log = log.lock().unwrap();
        if resp.canceled() {
            return Some(End::Other(format!(
                "watch canceled: {:?} (compact revision {})",
                resp.cancel_reason(),
                resp.compact_revision()
            )));
        }
        if resp.events().is_empty() {
            if !resp.created() {
                log.progress += 1;
                let rev = resp.header().expect("header").revision();
                log.last = log.last.max(rev);
            }
            continue;
        }
        for e in resp.events() {
            let kv = e.kv().expect("event kv");
            log.events.push(Ev {
                delete: e.event_type() == EventType::Delete,
                key: String::from_utf8_lossy(kv.key()).into_owned(),
                kv: Kv::from(kv),
                prev: e.prev_kv().map(Kv::from),
            });
            log.last = log.last.max(kv.mod_revision());
        }
    }
}

/// Watches as kube-apiserver does from `from`: on `first` (require-leader); whenever a
/// stream ends with `etcdserver: no leader`, re-opens on `healthy` (require-leader) from
/// the last revision received + 1, retrying while refused, until `stop`. A stream ending
/// any other way ends the watching (the test then fails).
fn start_kube_watch(
    rt: &Runtime,
    first: Client,
    healthy: Client,
    from: i64,
    log: Arc<Mutex<KubeLog>>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    log.lock().unwrap().last = from - 1;
    rt.spawn(async move {
        // Dropping a watcher would close the request side of its stream.
        let (mut _watcher, mut stream) = first
            .watch_client()
            .watch(PODS, Some(kube_options(from)))
            .await
            .expect("open the kube-shaped watch");
        loop {
            let Some(end) = read_watch(&mut stream, &log, &mut stop).await else {
                return;
            };
            let resume = end.is_no_leader();
            let from = {
                let mut log = log.lock().unwrap();
                let received = log.events.len();
                let ended = Ended {
                    at: Instant::now(),
                    how: end,
                };
                log.ends.push((ended, received));
                log.last + 1
            };
            if !resume {
                return;
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            (_watcher, stream) = loop {
                let attempt = healthy
                    .watch_client()
                    .watch(PODS, Some(kube_options(from)))
                    .await;
                match attempt {
                    Ok(opened) => break opened,
                    Err(e) if Instant::now() < deadline => {
                        log.lock().unwrap().refused_reopens += 1;
                        let end = End::of(e);
                        assert!(end.is_no_leader(), "re-opening the watch: {end:?}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("cannot re-open the watch from {from}: {e}"),
                }
            };
            log.lock().unwrap().reopened_from.push(from);
        }
    })
}

/// Runs `op` until it succeeds, for up to 20 s: for the requests that set up a check or
/// give the ground truth, whose failure during an election says nothing about what is
/// tested.
fn retrying<T, Fut>(rt: &Runtime, what: &str, mut op: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let failed = match run_for(rt, Duration::from_secs(10), op()) {
            Ok(Ok(t)) => return t,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_string(),
        };
        assert!(Instant::now() < deadline, "{what}: {failed}");
        eprintln!("{what}: {failed}; retrying");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What scenario 3 measured.
#[derive(Debug)]
struct KubeSummary {
    refused_after: Duration,
    cancelled_after: Duration,
    events: usize,
    on_first: usize,
    resumed_from: i64,
    /// Streams ended with `etcdserver: no leader` after the first (elections after healing).
    later_ends: usize,
    progress: usize,
    unknown_writes: usize,
}

/// Scenario 3: a kube-shaped watch on a follower that is cut off while a writer goes on
/// through the majority; the watch, cancelled, resumes on a healthy member; after healing
/// and stopping the writer, the events received must be exactly the history.
fn kube_watch(flavor: Flavor) -> KubeSummary {
    let rt = runtime();
    let net = network();
    let cluster = Cluster::on_network(
        &net,
        3,
        flavor,
        &["--experimental-watch-progress-notify-interval=1s"],
    );
    let leader = cluster.leader(Duration::from_secs(10));
    let cut = (0..3).find(|&i| i != leader).expect("a follower");
    let majority: Vec<usize> = (0..3).filter(|&i| i != cut).collect();
    let majority_endpoints: Vec<String> = majority
        .iter()
        .map(|&i| cluster.members[i].endpoint())
        .collect();
    let writer = rt.block_on(connect(&majority_endpoints, false));
    let healthy = rt.block_on(connect(&majority_endpoints, true));
    let on_cut = rt.block_on(connect(&[cluster.members[cut].endpoint()], true));

    // Some objects exist before the watch starts; kube lists them, then watches from the
    // list's revision + 1.
    for i in 0..KEYS {
        rt.block_on(
            writer
                .kv_client()
                .put(format!("{PODS}p{i}"), "initial", None),
        )
        .expect("initial put");
    }
    let list = rt
        .block_on(
            on_cut
                .kv_client()
                .get(PODS, Some(GetOptions::new().with_prefix())),
        )
        .expect("list");
    let listed = list.header().expect("header").revision();
    let initial: BTreeMap<String, Kv> = list
        .kvs()
        .iter()
        .map(|kv| (String::from_utf8_lossy(kv.key()).into_owned(), Kv::from(kv)))
        .collect();

    let stop_writer = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(WriterProgress::default());
    let writes = start_writer(&rt, writer.clone(), stop_writer.clone(), progress.clone());
    let log = Arc::new(Mutex::new(KubeLog::default()));
    let (stop_watch, stopped) = watch::channel(false);
    let watcher = start_kube_watch(
        &rt,
        on_cut.clone(),
        healthy,
        listed + 1,
        log.clone(),
        stopped,
    );
    let acked = || progress.acked.load(Ordering::Relaxed);
    let received = || log.lock().unwrap().events.len();
    wait::until(
        Duration::from_secs(10),
        "20 writes acknowledged and watched before the cut",
        || acked() >= 20 && received() >= 20,
    );

    net.isolate(cut, &majority)
        .unwrap_or_else(|e| panic!("cannot cut {cut} off: {e}"));
    let cut_at = Instant::now();
    // Meanwhile, when does the cut-off member start refusing require-leader requests?
    let mut probe = on_cut.kv_client();
    let mut refused_after = None;
    wait::until(
        STREAM_END_LIMIT,
        "the watch on the cut-off member did not end",
        || {
            if refused_after.is_none() {
                let get = probe.get(PODS, Some(GetOptions::new().with_serializable()));
                if let Ok(Err(e)) = run_for(&rt, Duration::from_secs(1), get) {
                    let end = End::of(e);
                    assert!(end.is_no_leader(), "{flavor:?}: a Get failed with {end:?}");
                    refused_after = Some(cut_at.elapsed());
                }
            }
            !log.lock().unwrap().ends.is_empty()
        },
    );
    let refused_after = refused_after.expect("the cut-off member refused no Get");
    let (first_end, on_first) = log.lock().unwrap().ends[0].clone();
    assert!(
        first_end.how.is_no_leader(),
        "{flavor:?}: the kube-shaped watch on the cut-off member ended with {:?}",
        first_end.how
    );
    let cancelled_after = first_end.at.duration_since(cut_at);
    // Re-opened on a healthy member, the watch catches up with the writes made meanwhile.
    let target = progress.last_acked.load(Ordering::Relaxed) + 10;
    wait::until(
        Duration::from_secs(10),
        "the re-opened watch did not catch up",
        || log.lock().unwrap().last >= target,
    );

    net.heal(cut)
        .unwrap_or_else(|e| panic!("cannot heal the partition: {e}"));
    let healed_at = acked();
    wait::until(
        Duration::from_secs(20),
        "20 writes acknowledged after healing",
        || acked() >= healed_at + 20,
    );
    stop_writer.store(true, Ordering::Relaxed);
    let writes = rt.block_on(writes).expect("writer task");
    // The healed member's higher term may force an election: the reads that give the
    // ground truth wait for the members to agree on a leader, and retry.
    cluster.leader(Duration::from_secs(20));
    let end = retrying(&rt, "the final list", || {
        let mut kv = writer.kv_client();
        async move { kv.get(PODS, Some(GetOptions::new().with_prefix())).await }
    });
    let end_rev = end.header().expect("header").revision();
    wait::until(
        Duration::from_secs(10),
        "the watch did not receive everything up to the last write",
        || log.lock().unwrap().last >= end_rev || watcher.is_finished(),
    );
    let ended_early = watcher.is_finished();
    stop_watch.send_replace(true);
    let task = rt.block_on(watcher);
    let log = std::mem::take(&mut *log.lock().unwrap());
    assert!(
        !ended_early && task.is_ok(),
        "{flavor:?}: the watching stopped before the last write: {task:?}, {:?}",
        log.ends
    );
    for (ended, received) in &log.ends {
        assert!(
            ended.how.is_no_leader(),
            "{flavor:?}: a watch stream ended with {:?} after {received} events",
            ended.how
        );
    }

    check_history(
        &rt,
        flavor,
        &writer,
        listed,
        end_rev,
        initial,
        &writes,
        &log.events,
    );
    KubeSummary {
        refused_after,
        cancelled_after,
        events: log.events.len(),
        on_first,
        resumed_from: log.reopened_from[0],
        later_ends: log.ends.len() - 1,
        progress: log.progress,
        unknown_writes: writes
            .iter()
            .filter(|w| matches!(w.outcome, Outcome::Unknown(_)))
            .count(),
    }
}

/// Checks that `events` are exactly the history of [`PODS`] from `listed` + 1 to `end_rev`:
/// one event per revision, in order, no gap, no duplicate; each the write acknowledged at
/// that revision (or one whose outcome the writer does not know, at most once); each
/// agreeing with a read of the key at that revision; every previous value the one the
/// history before it gives; and the state the events lead to is the state at `end_rev`.
#[allow(clippy::too_many_arguments)]
fn check_history(
    rt: &Runtime,
    flavor: Flavor,
    client: &Client,
    listed: i64,
    end_rev: i64,
    initial: BTreeMap<String, Kv>,
    writes: &[Write],
    events: &[Ev],
) {
    let acked: BTreeMap<i64, &Write> = writes
        .iter()
        .filter_map(|w| match w.outcome {
            Outcome::Acked(rev) => Some((rev, w)),
            _ => None,
        })
        .collect();
    let mut unknown_used = HashSet::new();
    let mut state = initial;
    let kv = client.kv_client();
    for (n, ev) in events.iter().enumerate() {
        let rev = listed + 1 + n as i64;
        let at = format!("{flavor:?}: event #{n} ({ev:?})");
        assert_eq!(
            ev.kv.mod_revision,
            rev,
            "{at}: expected revision {rev} (a gap or a duplicate; watched from {})",
            listed + 1
        );
        // The write behind it.
        let matches = |w: &Write| {
            w.delete == ev.delete
                && w.key == ev.key
                && (ev.delete || w.value.as_bytes() == ev.kv.value.as_slice())
        };
        match acked.get(&rev) {
            Some(w) => assert!(
                matches(w),
                "{at}: revision {rev} was acknowledged for {w:?}"
            ),
            None => {
                let found = writes.iter().enumerate().find(|(i, w)| {
                    matches!(w.outcome, Outcome::Unknown(_))
                        && matches(w)
                        && !unknown_used.contains(i)
                });
                let (i, _) =
                    found.unwrap_or_else(|| panic!("{at}: no write explains revision {rev}"));
                unknown_used.insert(i);
            }
        }
        // The previous value, and the new one, as the history so far gives them.
        assert_eq!(ev.prev, state.get(&ev.key).cloned(), "{at}: wrong prev_kv");
        if ev.delete {
            assert_eq!(
                (ev.kv.create_revision, ev.kv.version, ev.kv.value.len()),
                (0, 0, 0),
                "{at}: a delete event carries a value"
            );
            state.remove(&ev.key);
        } else {
            let expected = Kv {
                value: ev.kv.value.clone(),
                create_revision: ev.prev.as_ref().map_or(rev, |p| p.create_revision),
                mod_revision: rev,
                version: ev.prev.as_ref().map_or(1, |p| p.version + 1),
            };
            assert_eq!(ev.kv, expected, "{at}: wrong create revision or version");
            state.insert(ev.key.clone(), ev.kv.clone());
        }
        // The key-value store agrees.
        let read = retrying(rt, &format!("{} at {rev}", ev.key), || {
            let (mut kv, key) = (kv.clone(), ev.key.clone());
            async move {
                kv.get(key, Some(GetOptions::new().with_revision(rev)))
                    .await
            }
        });
        let stored = read.kvs().first().map(Kv::from);
        let expected = (!ev.delete).then(|| ev.kv.clone());
        assert_eq!(stored, expected, "{at}: the store says otherwise at {rev}");
    }
    let last = events.last().map_or(listed, |e| e.kv.mod_revision);
    assert_eq!(
        last, end_rev,
        "{flavor:?}: the events stop at {last}, the last write is at {end_rev}"
    );
    let missing: Vec<_> = acked.keys().filter(|&&r| r > end_rev).collect();
    assert!(
        missing.is_empty(),
        "{flavor:?}: acknowledged after the end: {missing:?}"
    );
    let end = retrying(rt, "the list at the end", || {
        let mut kv = kv.clone();
        async move {
            let at_end = GetOptions::new().with_prefix().with_revision(end_rev);
            kv.get(PODS, Some(at_end)).await
        }
    });
    let end: BTreeMap<String, Kv> = end
        .kvs()
        .iter()
        .map(|kv| (String::from_utf8_lossy(kv.key()).into_owned(), Kv::from(kv)))
        .collect();
    assert_eq!(
        state, end,
        "{flavor:?}: the events do not lead to the final state"
    );
}

#[test]
fn kube_shaped_watch_resumes_on_a_healthy_member_without_gaps() {
    let etcd = kube_watch(Flavor::Reference);
    let ours = kube_watch(Flavor::Ours);
    for (flavor, s) in [("etcd", &etcd), ("ours", &ours)] {
        eprintln!(
            "kube-shaped watch, {flavor}: Gets refused {:?}, watch cancelled {:?} after the \
             cut; {} events ({} from the cut-off member, then from revision {} on a healthy \
             one; {} later re-opens), {} progress notifications, {} writes of unknown outcome",
            s.refused_after,
            s.cancelled_after,
            s.events,
            s.on_first,
            s.resumed_from,
            s.later_ends,
            s.progress,
            s.unknown_writes
        );
    }
}
