//! What Kubernetes reads from watch responses besides the events, on our member and on
//! Debian's etcd 3.4 side by side: the header revision (never lower than an earlier one on
//! the stream, even while a watcher catches up over thousands of revisions) and the
//! revision a progress response announces (no event still to come may be at or below it).
//!
//! Writers run while the watchers read, so catch-up batches and live events interleave.
//! Every wait is for a message, bounded by `within`.

use std::sync::Arc;

use etcd_e2e::grpc::requests::put;
use etcd_e2e::grpc::watch::WatchStream;
use etcd_e2e::grpc::{within, Answer, Clients, GrpcPair};
use etcd_proto::etcdserverpb::watch_request::RequestUnion;
use etcd_proto::etcdserverpb::{WatchCreateRequest, WatchProgressRequest, WatchResponse};

/// Revisions written before the catch-up starts: more than five catch-up batches.
const HISTORY: i64 = 6000;
/// Revisions written while it runs.
const DURING: i64 = 1000;
const WRITERS: i64 = 16;

/// Puts `total` keys under `prefix` through `WRITERS` concurrent clients; returns the
/// highest revision acknowledged.
async fn write(clients: &Clients, prefix: &str, total: i64) -> i64 {
    let prefix: Arc<str> = prefix.into();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let mut kv = clients.kv.clone();
            let prefix = prefix.clone();
            tokio::spawn(async move {
                let mut top = 0;
                for i in (w..total).step_by(WRITERS as usize) {
                    let r = put(&format!("{prefix}{}", i % 97), &i.to_string());
                    let h = within("put", kv.put(r)).await.expect("put").into_inner();
                    top = top.max(h.header.expect("header").revision);
                }
                top
            })
        })
        .collect();
    let mut top = 0;
    for t in tasks {
        top = top.max(t.await.expect("writer"));
    }
    top
}

fn response(next: Option<Answer<WatchResponse>>) -> WatchResponse {
    match next {
        Some(Answer::Ok(r)) => r,
        other => panic!("the watch stream ended: {other:?}"),
    }
}

fn revision(r: &WatchResponse) -> i64 {
    r.header.as_ref().expect("header").revision
}

fn mod_revisions(r: &WatchResponse) -> Vec<i64> {
    r.events
        .iter()
        .map(|e| e.kv.as_ref().expect("kv").mod_revision)
        .collect()
}

fn on_prefix(prefix: &str, start_revision: i64, progress_notify: bool) -> RequestUnion {
    let mut end = prefix.as_bytes().to_vec();
    *end.last_mut().expect("prefix") += 1;
    RequestUnion::CreateRequest(WatchCreateRequest {
        key: prefix.into(),
        range_end: end,
        start_revision,
        progress_notify,
        ..Default::default()
    })
}

/// On one member: a watcher from revision 1 over `HISTORY` revisions while `DURING` more
/// are written. Returns the number of responses and of events received.
async fn catch_up(name: &str, clients: &Clients) -> (usize, usize) {
    let first = write(clients, "h/", HISTORY).await;
    let mut stream = WatchStream::open(clients).await;
    stream.send(on_prefix("h/", 1, false)).await;
    let created = response(stream.next().await);
    assert!(created.created, "{name}: {created:?}");
    assert!(
        revision(&created) >= first,
        "{name}: created at {created:?}"
    );
    let writer = tokio::spawn({
        let clients = clients.clone();
        async move { write(&clients, "h/", DURING).await }
    });
    // Nothing else writes to this member: the writer's revisions follow `first`.
    let end = first + DURING;
    let (mut last_header, mut last_event) = (revision(&created), 1);
    let (mut responses, mut events) = (0, 0);
    while last_event < end {
        let r = response(stream.next().await);
        let header = revision(&r);
        assert!(
            header >= last_header,
            "{name}: header {header} after {last_header} (response {responses}, events up to {last_event})"
        );
        let revs = mod_revisions(&r);
        for rev in &revs {
            assert!(*rev > last_event, "{name}: event {rev} after {last_event}");
            last_event = *rev;
        }
        assert!(
            header >= last_event,
            "{name}: header {header} below event {last_event}"
        );
        last_header = header;
        responses += 1;
        events += revs.len();
    }
    assert_eq!(
        writer.await.expect("writer"),
        end,
        "{name}: another writer?"
    );
    (responses, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_over_thousands_of_revisions_never_lowers_the_header() {
    let pair = GrpcPair::start(&[]).await;
    let theirs = catch_up("etcd", &pair.reference.clients).await;
    let ours = catch_up("ours", &pair.ours.clients).await;
    eprintln!("responses, events: etcd {theirs:?}, ours {ours:?}");
    assert_eq!(ours.1, theirs.1, "both must see every write");
    assert_eq!(ours.1 as i64, HISTORY + DURING);
}

/// On one member, while `WRITES` puts run, with one progress request outstanding at all
/// times: how many events came at or below a revision a progress answer had already
/// announced, and how many answers came.
async fn progress_while_writing(name: &str, clients: &Clients, strict: bool) -> (usize, usize) {
    const WRITES: i64 = 2000;
    let mut stream = WatchStream::open(clients).await;
    stream.send(on_prefix("p/", 0, true)).await;
    let created = response(stream.next().await);
    let start = revision(&created);
    let writer = tokio::spawn({
        let clients = clients.clone();
        async move { write(&clients, "p/", WRITES).await }
    });
    let end = start + WRITES;
    let progress = || RequestUnion::ProgressRequest(WatchProgressRequest {});
    stream.send(progress()).await;
    let (mut announced, mut last_event, mut last_header) = (start, start, start);
    let (mut overtaken, mut answers, mut outstanding) = (0, 0, 1);
    while last_event < end || outstanding > 0 {
        let r = response(stream.next().await);
        let header = revision(&r);
        if strict {
            assert!(
                header >= last_header,
                "{name}: header {header} after {last_header}"
            );
        }
        last_header = last_header.max(header);
        if r.watch_id == -1 {
            answers += 1;
            outstanding -= 1;
            announced = announced.max(header);
        }
        for rev in mod_revisions(&r) {
            if rev <= announced {
                overtaken += 1;
                assert!(!strict, "{name}: event {rev} after progress at {announced}");
            }
            last_event = rev;
        }
        if last_event < end && outstanding == 0 {
            stream.send(progress()).await;
            outstanding += 1;
        }
    }
    assert_eq!(
        writer.await.expect("writer"),
        end,
        "{name}: another writer?"
    );
    (overtaken, answers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_progress_answer_never_overtakes_events() {
    let pair = GrpcPair::start(&[]).await;
    // etcd 3.4 answers with its store's revision even while events below it wait in the
    // stream's buffer (fixed in 3.5): counted there, refused here.
    let theirs = progress_while_writing("etcd", &pair.reference.clients, false).await;
    let ours = progress_while_writing("ours", &pair.ours.clients, true).await;
    eprintln!("progress answers overtaken by events / answers: etcd {theirs:?}, ours {ours:?}");
    assert!(
        ours.1 > 10,
        "too few progress answers to mean anything: {ours:?}"
    );
}
