//! Watchers that fall behind, on our member and on Debian's etcd 3.4 side by side: they
//! never hold up writes, and they never silently skip an event. A watcher whose client
//! stopped reading is caught up from history when it reads again, or, if that history
//! was compacted meanwhile, cancelled with the compaction revision.
//!
//! "Not reading" is real back-pressure: the test's stream reader stops taking messages
//! once its buffer (1024 responses) is full, so HTTP/2 flow control stops the member
//! (within a stream window of 64 KiB, see `Clients::connect_with`).

use std::collections::BTreeMap;
use std::time::Instant;

use etcd_e2e::grpc::requests::put;
use etcd_e2e::grpc::watch::WatchStream;
use etcd_e2e::grpc::{within, Answer, Clients, GrpcPair};
use etcd_e2e::Member;
use etcd_proto::etcdserverpb::watch_request::RequestUnion;
use etcd_proto::etcdserverpb::{CompactionRequest, WatchCreateRequest, WatchResponse};

const STREAMS: usize = 10;
/// The test's HTTP/2 stream window: what a member may send a stream nobody reads.
const STREAM_WINDOW: u32 = 64 * 1024;
const WATCHERS_PER_STREAM: usize = 1000;

fn response(next: Option<Answer<WatchResponse>>) -> WatchResponse {
    match next {
        Some(Answer::Ok(r)) => r,
        other => panic!("the watch stream ended: {other:?}"),
    }
}

fn prefix(p: &str) -> RequestUnion {
    let mut end = p.as_bytes().to_vec();
    *end.last_mut().expect("prefix") += 1;
    RequestUnion::CreateRequest(WatchCreateRequest {
        key: p.into(),
        range_end: end,
        ..Default::default()
    })
}

/// Puts `n` keys under `p` one after another, each bounded by `within`; the revisions.
async fn put_all(clients: &Clients, p: &str, n: usize, value: &str) -> Vec<i64> {
    let mut kv = clients.kv.clone();
    let mut revs = Vec::new();
    for i in 0..n {
        let r = within("put", kv.put(put(&format!("{p}{i}"), value))).await;
        revs.push(
            r.expect("put")
                .into_inner()
                .header
                .expect("header")
                .revision,
        );
    }
    revs
}

/// 10,000 watchers on one prefix, none of them read while the writes run.
/// Clients whose streams hold little that was not read.
async fn small_window(member: &Member) -> Clients {
    Clients::connect_with(member, |e| e.initial_stream_window_size(STREAM_WINDOW)).await
}

async fn many_watchers(name: &str, member: &Member) {
    let clients = &small_window(member).await;
    const WRITES: usize = 20;
    let mut streams = Vec::new();
    for _ in 0..STREAMS {
        let mut s = WatchStream::open(clients).await;
        for _ in 0..WATCHERS_PER_STREAM {
            s.send(prefix("w/")).await;
        }
        for _ in 0..WATCHERS_PER_STREAM {
            assert!(response(s.next().await).created);
        }
        streams.push(s);
    }
    let started = Instant::now();
    let revs = put_all(clients, "w/", WRITES, "v").await;
    let writing = started.elapsed();
    // Now every watcher must have every revision, in order, once.
    for (i, s) in streams.iter_mut().enumerate() {
        let mut per_watcher: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        let mut received = 0;
        while received < WRITES * WATCHERS_PER_STREAM {
            let r = response(s.next().await);
            let got = per_watcher.entry(r.watch_id).or_default();
            for e in &r.events {
                got.push(e.kv.as_ref().expect("kv").mod_revision);
                received += 1;
            }
        }
        assert_eq!(per_watcher.len(), WATCHERS_PER_STREAM, "{name} stream {i}");
        for (id, got) in per_watcher {
            assert_eq!(got, revs, "{name} stream {i} watcher {id}");
        }
    }
    eprintln!(
        "{name}: {WRITES} puts with {} unread watchers took {writing:?}",
        STREAMS * WATCHERS_PER_STREAM
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_unread_watchers_on_one_prefix_hold_up_no_write_and_miss_nothing() {
    let pair = GrpcPair::start(&[]).await;
    many_watchers("etcd", &pair.reference.member).await;
    many_watchers("ours", &pair.ours.member).await;
}

/// One watcher stops reading; 3000 revisions of 4 KiB values are written (far more than
/// every buffer between the member and the test holds) and compacted. When it reads
/// again it must get a gapless run of events and then, since its next revision is gone,
/// a cancellation naming the compaction. Returns (events received, compact revision).
async fn stalled_then_compacted(name: &str, member: &Member) -> (usize, i64) {
    let clients = &small_window(member).await;
    const WRITES: usize = 3000;
    let mut s = WatchStream::open(clients).await;
    s.send(prefix("s/")).await;
    let created = response(s.next().await);
    assert!(created.created, "{name}: {created:?}");
    let value = "x".repeat(4096);
    let revs = put_all(clients, "s/", WRITES, &value).await;
    let head = *revs.last().expect("writes");
    let mut kv = clients.kv.clone();
    let compact = CompactionRequest {
        revision: head,
        physical: true,
    };
    within("compact", kv.compact(compact))
        .await
        .expect("compact");

    let mut got = Vec::new();
    loop {
        let r = response(s.next().await);
        got.extend(
            r.events
                .iter()
                .map(|e| e.kv.as_ref().expect("kv").mod_revision),
        );
        if r.canceled {
            assert_eq!(r.compact_revision, head, "{name}: {r:?}");
            break;
        }
        assert!(
            got.len() < WRITES,
            "{name}: every event arrived although the history was compacted first"
        );
    }
    assert_eq!(
        got,
        revs[..got.len()],
        "{name}: events lost before the cancellation"
    );
    let next = revs[got.len()];
    assert!(
        next < head,
        "{name}: cancelled although revision {next} was not compacted"
    );
    (got.len(), head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_watcher_whose_history_was_compacted_is_cancelled_not_skipped() {
    let pair = GrpcPair::start(&[]).await;
    let theirs = stalled_then_compacted("etcd", &pair.reference.member).await;
    let ours = stalled_then_compacted("ours", &pair.ours.member).await;
    eprintln!("events before the cancellation, compact revision: etcd {theirs:?}, ours {ours:?}");
}
