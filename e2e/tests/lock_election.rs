//! The Lock and Election services: their gRPC answers compared field for field with
//! Debian's etcd 3.4 (queueing, re-locking, a waiter whose lease went, each error), and
//! Debian's etcdctl `lock` and `elect` run as competing processes against our member:
//! never two holders at once, and a holder killed with SIGKILL hands on once its lease
//! expires.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcd_e2e::grpc::{Answer, GrpcPair};
use etcd_e2e::{our_binary, Flavor, Member, DEBIAN_ETCDCTL};
use etcd_proto::etcdserverpb::{LeaseGrantRequest, LeaseRevokeRequest, RangeRequest};
use etcd_proto::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderKey, LeaderRequest, LeaderResponse, ProclaimRequest,
    ResignRequest,
};
use etcd_proto::v3lockpb::{LockRequest, LockResponse, UnlockRequest};
use tokio::task::JoinHandle;

const A: i64 = 0xa1;
const B: i64 = 0xb2;
const C: i64 = 0xc3;

async fn grant(pair: &mut GrpcPair, id: i64) {
    let r = LeaseGrantRequest { ttl: 60, id };
    pair.same(r, |mut c, r| async move { c.lease.lease_grant(r).await })
        .await
        .ok();
}

async fn lock(pair: &mut GrpcPair, name: &str, lease: i64) -> Answer<LockResponse> {
    let r = LockRequest {
        name: name.into(),
        lease,
    };
    pair.same(r, |mut c, r| async move { c.lock.lock(r).await })
        .await
}

/// Waits until `key` exists on both members: a waiter has queued.
async fn until_queued(pair: &GrpcPair, key: &str) {
    for side in [&pair.ours, &pair.reference] {
        let mut kv = side.clients.kv.clone();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = RangeRequest {
                key: key.into(),
                ..Default::default()
            };
            if !kv
                .range(r)
                .await
                .expect("range")
                .into_inner()
                .kvs
                .is_empty()
            {
                break;
            }
            assert!(Instant::now() < deadline, "{key} never queued");
            tokio::task::yield_now().await;
        }
    }
}

/// A call left waiting on each member: (ours, reference).
type Waiting<T> = (JoinHandle<Answer<T>>, JoinHandle<Answer<T>>);

fn lock_on_both(pair: &GrpcPair, name: &str, lease: i64) -> Waiting<LockResponse> {
    let start = |mut c: etcd_e2e::grpc::Clients| {
        let r = LockRequest {
            name: name.into(),
            lease,
        };
        tokio::spawn(async move { Answer::from_result(c.lock.lock(r).await) })
    };
    (
        start(pair.ours.clients.clone()),
        start(pair.reference.clients.clone()),
    )
}

/// The answers of calls left waiting, normalised and compared.
async fn finished<T>(pair: &mut GrpcPair, (ours, reference): Waiting<T>) -> Answer<T>
where
    T: etcd_e2e::grpc::normalise::Normalise + std::fmt::Debug + PartialEq + Send + 'static,
{
    use etcd_e2e::grpc::normalise::Normalise;
    let limit = Duration::from_secs(15);
    let mut ours = tokio::time::timeout(limit, ours)
        .await
        .expect("ours waits")
        .unwrap();
    let mut reference = tokio::time::timeout(limit, reference)
        .await
        .expect("reference waits")
        .unwrap();
    ours.normalise(&mut pair.ours.ids);
    reference.normalise(&mut pair.reference.ids);
    etcd_e2e::grpc::pair::assert_same(&"the waiting call", &ours, &reference);
    ours
}

async fn unlock(pair: &mut GrpcPair, key: &[u8]) {
    let r = UnlockRequest { key: key.to_vec() };
    pair.same(r, |mut c, r| async move { c.lock.unlock(r).await })
        .await
        .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_service_answers_as_etcd() {
    let mut pair = GrpcPair::start(&[]).await;
    for id in [A, B, C] {
        grant(&mut pair, id).await;
    }
    let held = lock(&mut pair, "l", A).await.ok();
    assert_eq!(held.key, format!("l/{A:x}").into_bytes());
    // The same lease locking again holds it still, with the same key.
    lock(&mut pair, "l", A).await.ok();
    // A lease that does not exist.
    lock(&mut pair, "l", 0x77).await;
    // Another lease queues until the holder unlocks.
    let waiting = lock_on_both(&pair, "l", B);
    until_queued(&pair, &format!("l/{B:x}")).await;
    unlock(&mut pair, &held.key).await;
    let next = finished(&mut pair, waiting).await.ok();
    assert_eq!(next.key, format!("l/{B:x}").into_bytes());
    // A waiter whose lease is revoked while it waits is still answered its (gone) key.
    let waiting = lock_on_both(&pair, "l", C);
    until_queued(&pair, &format!("l/{C:x}")).await;
    let r = LeaseRevokeRequest { id: C };
    pair.same(r, |mut c, r| async move { c.lease.lease_revoke(r).await })
        .await
        .ok();
    unlock(&mut pair, &next.key).await;
    let gone = finished(&mut pair, waiting).await.ok();
    assert_eq!(gone.key, format!("l/{C:x}").into_bytes());
    // Unlocking a key nobody holds.
    unlock(&mut pair, b"l/none").await;
}

async fn campaign(pair: &mut GrpcPair, lease: i64, value: &str) -> Answer<CampaignResponse> {
    let r = CampaignRequest {
        name: "e".into(),
        lease,
        value: value.into(),
    };
    pair.same(r, |mut c, r| async move { c.election.campaign(r).await })
        .await
}

async fn leader(pair: &mut GrpcPair) -> Answer<LeaderResponse> {
    let r = LeaderRequest { name: "e".into() };
    pair.same(r, |mut c, r| async move { c.election.leader(r).await })
        .await
}

async fn proclaim(pair: &mut GrpcPair, leader: Option<LeaderKey>, value: &str) {
    let r = ProclaimRequest {
        leader,
        value: value.into(),
    };
    pair.same(r, |mut c, r| async move { c.election.proclaim(r).await })
        .await;
}

/// Opens an Observe stream on one member; its answers arrive on the returned channel.
fn observe(c: &etcd_e2e::grpc::Clients) -> tokio::sync::mpsc::Receiver<LeaderResponse> {
    let mut election = c.election.clone();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let r = LeaderRequest { name: "e".into() };
        let mut stream = election.observe(r).await.expect("observe").into_inner();
        loop {
            let resp = match stream.message().await {
                Ok(Some(resp)) => resp,
                end => panic!("observe stream ended: {end:?}"),
            };
            if tx.send(resp).await.is_err() {
                return;
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_service_answers_as_etcd() {
    use etcd_e2e::grpc::normalise::Normalise;
    let mut pair = GrpcPair::start(&[]).await;
    for id in [A, B] {
        grant(&mut pair, id).await;
    }
    leader(&mut pair).await;
    let mut observers = (
        observe(&pair.ours.clients),
        observe(&pair.reference.clients),
    );
    let first = campaign(&mut pair, A, "one").await.ok().leader;
    leader(&mut pair).await.ok();
    proclaim(&mut pair, first.clone(), "two").await;
    // A campaign by the same lease with another value proclaims it.
    campaign(&mut pair, A, "three").await.ok();
    let mut stale = first.clone();
    stale.as_mut().unwrap().rev += 100;
    proclaim(&mut pair, stale, "x").await;
    proclaim(&mut pair, None, "x").await;
    // The second candidate is elected once the first resigns.
    let waiting = {
        let start = |mut c: etcd_e2e::grpc::Clients| {
            let r = CampaignRequest {
                name: "e".into(),
                lease: B,
                value: "four".into(),
            };
            tokio::spawn(async move { Answer::from_result(c.election.campaign(r).await) })
        };
        (
            start(pair.ours.clients.clone()),
            start(pair.reference.clients.clone()),
        )
    };
    until_queued(&pair, &format!("e/{B:x}")).await;
    let r = ResignRequest {
        leader: first.clone(),
    };
    pair.same(r, |mut c, r| async move { c.election.resign(r).await })
        .await
        .ok();
    finished(&mut pair, waiting).await.ok();
    let r = ResignRequest { leader: None };
    pair.same(r, |mut c, r| async move { c.election.resign(r).await })
        .await;
    // Observers saw: "one", "two", "three", then the next leader's "four".
    let mut seen = (Vec::new(), Vec::new());
    for _ in 0..4 {
        let limit = Duration::from_secs(10);
        let mut o = tokio::time::timeout(limit, observers.0.recv())
            .await
            .unwrap()
            .unwrap();
        let mut r = tokio::time::timeout(limit, observers.1.recv())
            .await
            .unwrap()
            .unwrap();
        o.normalise(&mut pair.ours.ids);
        r.normalise(&mut pair.reference.ids);
        seen.0.push(o);
        seen.1.push(r);
    }
    // etcd heads each update with the revision its watcher had caught up to when it sent
    // it, which depends on timing: only that it is not before the update is compared.
    for l in seen.0.iter_mut().chain(&mut seen.1) {
        let header = l.header.as_mut().unwrap();
        assert!(
            header.revision >= l.kv.as_ref().unwrap().mod_revision,
            "{l:?}"
        );
        header.revision = 0;
    }
    etcd_e2e::grpc::pair::assert_same(&"observed leaders", &seen.0, &seen.1);
    let values: Vec<_> = seen.0.iter().map(|l| l.kv.clone().unwrap().value).collect();
    assert_eq!(values, [&b"one"[..], b"two", b"three", b"four"]);
}

/// A Debian etcdctl process against `member`, its stdout read line by line.
struct Ctl {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Ctl {
    fn spawn(member: &Member, args: &[&str]) -> Ctl {
        Ctl::spawn_with(Path::new(DEBIAN_ETCDCTL), member, args)
    }

    fn spawn_with(binary: &Path, member: &Member, args: &[&str]) -> Ctl {
        let mut child = Command::new(binary)
            .arg(format!("--endpoints={}", member.endpoint()))
            .args(args)
            .env("ETCDCTL_API", "3")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcdctl");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Ctl { child, lines }
    }

    /// The next line printed, waiting at most `limit`.
    fn line(&self, limit: Duration) -> Option<String> {
        self.lines.recv_timeout(limit).ok()
    }
}

impl Drop for Ctl {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three etcdctl processes each run a critical section under the lock several times; each
/// section appends `enter` and `leave` lines to a shared log and bumps a counter file
/// read-modify-write. Overlapping sections would interleave the log or lose increments.
#[test]
fn debian_etcdctl_lock_excludes_across_processes() {
    let member = Member::start(Flavor::Ours, &[]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let counter = dir.path().join("counter");
    std::fs::write(&counter, "0").unwrap();
    let section = format!(
        "echo enter $$ >> {log}; n=$(cat {c}); echo $((n+1)) > {c}.tmp; mv {c}.tmp {c}; echo leave $$ >> {log}",
        log = log.display(),
        c = counter.display()
    );
    const ROUNDS: usize = 5;
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let endpoint = member.endpoint();
            let section = section.clone();
            std::thread::spawn(move || {
                for _ in 0..ROUNDS {
                    let status = Command::new(DEBIAN_ETCDCTL)
                        .args([&format!("--endpoints={endpoint}"), "lock", "shared", "--"])
                        .args(["sh", "-c", &section])
                        .env("ETCDCTL_API", "3")
                        .status()
                        .unwrap();
                    assert!(status.success());
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 2 * 3 * ROUNDS, "{text}");
    for pair in lines.chunks(2) {
        let pid = pair[0].strip_prefix("enter ").expect(&text);
        assert_eq!(
            pair[1],
            format!("leave {pid}"),
            "sections overlapped:\n{text}"
        );
    }
    let count = std::fs::read_to_string(&counter).unwrap();
    assert_eq!(count.trim(), (3 * ROUNDS).to_string());
}

/// A lock holder killed with SIGKILL never unlocks; the waiter gets the lock once the
/// holder's lease (`--ttl`) expires, and not before.
#[test]
fn debian_etcdctl_lock_passes_on_when_the_holder_dies() {
    let member = Member::start(Flavor::Ours, &[]);
    let mut holder = Ctl::spawn(&member, &["lock", "--ttl=2", "dies"]);
    let key = holder.line(Duration::from_secs(10)).expect("holder locks");
    assert!(key.starts_with("dies/"), "{key}");
    let waiter = Ctl::spawn(&member, &["lock", "--ttl=2", "dies"]);
    assert_eq!(waiter.line(Duration::from_secs(1)), None, "two holders");
    holder.child.kill().unwrap();
    let killed = Instant::now();
    let next = waiter.line(Duration::from_secs(10)).expect("waiter locks");
    assert!(next.starts_with("dies/") && next != key, "{next}");
    assert!(killed.elapsed() < Duration::from_secs(8));
}

/// Three candidates: one leader at a time; interrupting the leader (etcdctl resigns)
/// elects the next, and an observer (`elect -l`) sees each leader's proposal. (etcdctl 3.4's
/// `elect` has no `--ttl`: a killed leader would hold on for its session's 60 seconds.)
#[test]
fn debian_etcdctl_elect_hands_on_leadership() {
    let member = Member::start(Flavor::Ours, &[]);
    let observer = Ctl::spawn(&member, &["elect", "-l", "race"]);
    let mut candidates: Vec<_> = ["p0", "p1", "p2"]
        .iter()
        .map(|p| Ctl::spawn(&member, &["elect", "race", p]))
        .collect();
    let mut elected = Vec::new();
    for _ in 0..3 {
        // Exactly one candidate speaks: it prints its key and proposal.
        let leader = (0..)
            .take(200)
            .find_map(|_| {
                candidates
                    .iter()
                    .position(|c| c.line(Duration::from_millis(50)).is_some())
            })
            .expect("someone is elected");
        let proposal = candidates[leader].line(Duration::from_secs(1)).unwrap();
        for (i, c) in candidates.iter().enumerate() {
            if i != leader {
                assert_eq!(c.line(Duration::from_millis(300)), None, "two leaders");
            }
        }
        elected.push(proposal);
        let pid = candidates[leader].child.id() as libc::pid_t;
        // SAFETY: signals a child this test started and has not reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
        candidates[leader].child.wait().unwrap();
        candidates.remove(leader);
    }
    let mut sorted = elected.clone();
    sorted.sort();
    assert_eq!(sorted, ["p0", "p1", "p2"]);
    // The observer printed each leader's key and proposal, in order.
    let seen: Vec<_> = (0..6)
        .map(|_| observer.line(Duration::from_secs(10)).expect("observer"))
        .collect();
    let proposals: Vec<_> = seen.iter().skip(1).step_by(2).cloned().collect();
    assert_eq!(proposals, elected);
}

/// Our etcdctl's `lock` and `elect` against Debian's, each on a fresh member of ours
/// (so revisions agree): what they print, what a locked command sees, their errors and
/// exit statuses. Lease IDs, drawn at random, are blanked.
#[test]
fn our_etcdctl_lock_and_elect_print_as_debians() {
    let transcripts: Vec<Vec<String>> = [PathBuf::from(DEBIAN_ETCDCTL), our_binary("etcdctl")]
        .iter()
        .map(|ctl| {
            let member = Member::start(Flavor::Ours, &[]);
            let mut out = Vec::new();
            for args in [
                &[
                    "lock",
                    "l",
                    "--",
                    "sh",
                    "-c",
                    "echo $ETCD_LOCK_KEY $ETCD_LOCK_REV",
                ][..],
                &["lock", "l", "--", "sh", "-c", "exit 3"],
                &["lock"],
                &["elect", "e"],
                &["elect"],
            ] {
                let o = Command::new(ctl)
                    .arg(format!("--endpoints={}", member.endpoint()))
                    .args(args)
                    .env("ETCDCTL_API", "3")
                    .output()
                    .unwrap();
                out.push(format!(
                    "{args:?} -> {:?}\n{}{}",
                    o.status.code(),
                    String::from_utf8_lossy(&o.stdout),
                    first_line(&o.stderr)
                ));
            }
            // Held until interrupted: the key (and its empty value), the leader's key and
            // proposal, and what an observer prints.
            let observer = Ctl::spawn_with(ctl, &member, &["elect", "-l", "e"]);
            for args in [&["lock", "held"][..], &["elect", "e", "prop"]] {
                let mut held = Ctl::spawn_with(ctl, &member, args);
                for _ in 0..2 {
                    out.push(held.line(Duration::from_secs(10)).expect("printed"));
                }
                let pid = held.child.id() as libc::pid_t;
                // SAFETY: signals a child this test started and has not reaped.
                assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
                out.push(format!("exit {:?}", held.child.wait().unwrap().code()));
            }
            for _ in 0..2 {
                out.push(observer.line(Duration::from_secs(10)).expect("observed"));
            }
            out.iter().map(|l| blank_leases(l)).collect()
        })
        .collect();
    assert_eq!(
        transcripts[1], transcripts[0],
        "ours (left) differs from Debian's"
    );
}

/// The first line of stderr (etcdctl's usage text after a bad argument is not compared).
fn first_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .find(|l| !l.starts_with('{'))
        .unwrap_or_default()
        .to_string()
}

/// `name/<lease hex>` keys with the lease replaced by `<lease>`.
fn blank_leases(line: &str) -> String {
    line.split(' ')
        .map(|w| match w.split_once('/') {
            Some((name, lease))
                if !lease.is_empty() && lease.chars().all(|c| c.is_ascii_hexdigit()) =>
            {
                format!("{name}/<lease>")
            }
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}
