//! The stream task over a real applied state on a scratch backend, driven through its
//! input stream. Writes go through the same apply path as the raft state machine's and are
//! published to the watch hub as it publishes them; the task is woken by the hub, as in a
//! member. Every wait is on the output channel, bounded.

use std::sync::Arc;
use std::time::Duration;

use etcd_proto::etcdserverpb::request_op::Request as Op;
use etcd_proto::etcdserverpb::watch_create_request::FilterType;
use etcd_proto::etcdserverpb::watch_request::RequestUnion;
use etcd_proto::etcdserverpb::{
    CompactionRequest, DeleteRangeRequest, PutRequest, RequestOp, ResponseHeader, TxnRequest,
    WatchCancelRequest, WatchCreateRequest, WatchProgressRequest, WatchRequest, WatchResponse,
};
use etcd_proto::mvccpb::event::EventType;
use etcd_proto::raftrequestpb::raft_request::Request;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::{HeaderSource, StreamTask, CATCH_UP_REVISIONS};
use crate::api::require_leader::{LeaderLoss, StreamGuard, KEY as HASLEADER};
use crate::state::testing::{apply, open};
use crate::state::KvState;

const CLUSTER: u64 = 0xc1;
const MEMBER: u64 = 0xa1;
const TERM: u64 = 4;

/// Longest wait for a response that must come.
const WAIT: Duration = Duration::from_secs(10);

/// A member with a fixed identity and term.
struct Member;

impl HeaderSource for Member {
    fn header(&self, revision: i64) -> ResponseHeader {
        ResponseHeader {
            cluster_id: CLUSTER,
            member_id: MEMBER,
            revision,
            raft_term: TERM,
        }
    }
}

/// One watch stream: the client's ends of its input and output, and its task.
struct Client {
    requests: mpsc::Sender<Result<WatchRequest, Status>>,
    responses: mpsc::Receiver<Result<WatchResponse, Status>>,
    task: JoinHandle<()>,
}

impl Client {
    fn start(state: &Arc<KvState>) -> Client {
        Client::start_with_limit(state, usize::MAX)
    }

    fn start_with_limit(state: &Arc<KvState>, fragment_limit: usize) -> Client {
        // No idle watcher is due a progress notification during a test.
        let hour = Duration::from_secs(3600);
        Client::start_with(state, fragment_limit, hour, StreamGuard::none())
    }

    fn start_with(
        state: &Arc<KvState>,
        fragment_limit: usize,
        progress_every: Duration,
        guard: StreamGuard,
    ) -> Client {
        let (requests, inbound) = mpsc::channel(16);
        let (out, responses) = mpsc::channel(128);
        let task = StreamTask::new(state.clone(), Arc::new(Member), fragment_limit, out);
        let task = tokio::spawn(task.run(ReceiverStream::new(inbound), progress_every, guard));
        Client {
            requests,
            responses,
            task,
        }
    }

    async fn send(&self, req: RequestUnion) {
        self.requests
            .send(Ok(WatchRequest {
                request_union: Some(req),
            }))
            .await
            .expect("task gone");
    }

    async fn next(&mut self) -> WatchResponse {
        tokio::time::timeout(WAIT, self.responses.recv())
            .await
            .expect("no response in time")
            .expect("stream ended")
            .expect("error response")
    }

    /// Creates a watcher and returns its ID from the `created` response.
    async fn create(&mut self, c: WatchCreateRequest) -> i64 {
        self.send(RequestUnion::CreateRequest(c)).await;
        let r = self.next().await;
        assert!(r.created && !r.canceled, "{r:?}");
        r.watch_id
    }

    /// Asks for progress and checks that the answer is the next response, at `revision`:
    /// the request first delivers whatever is pending, so nothing else was due.
    async fn quiet(&mut self, revision: i64) {
        self.send(RequestUnion::ProgressRequest(WatchProgressRequest {}))
            .await;
        let r = self.next().await;
        assert_eq!(r, progress(revision), "something else was sent first");
    }
}

fn progress(revision: i64) -> WatchResponse {
    WatchResponse {
        header: Some(Member.header(revision)),
        watch_id: -1,
        ..Default::default()
    }
}

fn watch(key: &str, range_end: &str, start_revision: i64) -> WatchCreateRequest {
    WatchCreateRequest {
        key: key.into(),
        range_end: range_end.into(),
        start_revision,
        ..Default::default()
    }
}

fn put_req(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    }
}

fn del_req(key: &str) -> DeleteRangeRequest {
    DeleteRangeRequest {
        key: key.into(),
        ..Default::default()
    }
}

fn put(key: &str, value: &str) -> Request {
    Request::Put(put_req(key, value))
}

fn del(key: &str) -> Request {
    Request::DeleteRange(del_req(key))
}

/// What a watcher is told of one event: revision, type, key, value.
type Seen = (i64, EventType, String, String);

fn seen(r: &WatchResponse) -> Vec<Seen> {
    r.events
        .iter()
        .map(|e| {
            let kv = e.kv.as_ref().expect("event without kv");
            (
                kv.mod_revision,
                EventType::try_from(e.r#type).unwrap(),
                String::from_utf8(kv.key.clone()).unwrap(),
                String::from_utf8(kv.value.clone()).unwrap(),
            )
        })
        .collect()
}

/// Applies `req` and returns the event it is expected to produce.
fn write(state: &KvState, req: Request) -> Seen {
    let (r#type, key, value) = match &req {
        Request::Put(p) => (EventType::Put, p.key.clone(), p.value.clone()),
        Request::DeleteRange(d) => (EventType::Delete, d.key.clone(), Vec::new()),
        other => panic!("not a single-key write: {other:?}"),
    };
    let rev = apply(state, req);
    let key = String::from_utf8(key).unwrap();
    (rev, r#type, key, String::from_utf8(value).unwrap())
}

#[tokio::test]
async fn a_watcher_from_the_past_gets_every_revision_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    {
        let state = open(dir.path());
        for i in 0..2200 {
            let key = format!("k{}", i % 7);
            expected.push(write(&state, put(&key, &i.to_string())));
            if i % 5 == 4 {
                expected.push(write(&state, del(&key)));
            }
            // Writes outside the range move the revision without events for the watcher.
            if i % 50 == 0 {
                write(&state, put("other", "x"));
            }
        }
    }
    // Reopened, the member's watch window starts after the history: the watcher's past is
    // read from the store only.
    let state = Arc::new(open(dir.path()));
    let seeded = state.mvcc.read().current_revision();
    assert!(seeded > 2 * CATCH_UP_REVISIONS + 2);
    let mut client = Client::start(&state);
    let id = client.create(watch("k", "l", 2)).await;

    let mut got = Vec::new();
    let mut catch_up = 0;
    while got.last().map(|s: &Seen| s.0) != Some(expected.last().unwrap().0) {
        let r = client.next().await;
        assert_eq!(r.watch_id, id);
        let evs = seen(&r);
        let (first, last) = (evs.first().unwrap().0, evs.last().unwrap().0);
        assert!(
            last - first < CATCH_UP_REVISIONS,
            "a catch-up response spans {first}..={last}"
        );
        assert!(r.header.unwrap().revision >= last);
        catch_up += 1;
        got.extend(evs);
    }
    assert_eq!(catch_up, 3, "history is sent in chunks of revisions");
    assert_eq!(got, expected);

    // Caught up, the watcher gets each new revision in its own response.
    let mut live = Vec::new();
    for i in 0..20 {
        live.push(write(
            &state,
            put(&format!("k{}", i % 3), &format!("live{i}")),
        ));
        write(&state, put("other", "x"));
    }
    for ev in &live {
        let r = client.next().await;
        assert_eq!((r.watch_id, r.header.unwrap().revision), (id, ev.0));
        assert_eq!(&seen(&r), std::slice::from_ref(ev));
    }
    let current = state.mvcc.read().current_revision();
    client.quiet(current).await;
}

#[tokio::test]
async fn a_txn_arrives_in_one_response() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(open(dir.path()));
    write(&state, put("c", "0"));
    let mut client = Client::start(&state);
    let id = client.create(watch("a", "z", 0)).await;
    let op = |r| RequestOp { request: Some(r) };
    let rev = apply(
        &state,
        Request::Txn(TxnRequest {
            success: vec![
                op(Op::RequestPut(put_req("a", "1"))),
                op(Op::RequestPut(put_req("b", "2"))),
                op(Op::RequestDeleteRange(del_req("c"))),
            ],
            ..Default::default()
        }),
    );
    let next = write(&state, put("d", "4"));
    let r = client.next().await;
    assert_eq!((r.watch_id, r.header.unwrap().revision), (id, rev));
    let txn = vec![
        (rev, EventType::Put, "a".into(), "1".into()),
        (rev, EventType::Put, "b".into(), "2".into()),
        (rev, EventType::Delete, "c".into(), String::new()),
    ];
    assert_eq!(seen(&r), txn);
    let r = client.next().await;
    assert_eq!(seen(&r), vec![next]);
    client.quiet(rev + 1).await;
}

/// Three watchers on one key (deletes only with previous values, puts only with previous
/// values, everything without), over the same writes, live or from history.
async fn filters_and_prev_kv(from_history: bool) {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(open(dir.path()));
    let mut client = Client::start(&state);
    let writes = || {
        write(&state, put("a", "1"));
        write(&state, put("b", "x"));
        write(&state, put("a", "2"));
        write(&state, del("a"));
    };
    if from_history {
        writes();
    }
    let start = if from_history { 2 } else { 0 };
    for (filter, prev_kv) in [
        (Some(FilterType::Noput), true),
        (Some(FilterType::Nodelete), true),
        (None, false),
    ] {
        let c = WatchCreateRequest {
            filters: filter.map(|f| f as i32).into_iter().collect(),
            prev_kv,
            ..watch("a", "", start)
        };
        client.send(RequestUnion::CreateRequest(c)).await;
    }
    // From history, a watcher's events may come before the next one is created.
    let mut responses: Vec<WatchResponse> = Vec::new();
    while responses.iter().filter(|r| r.created).count() < 3 {
        responses.push(client.next().await);
    }
    if !from_history {
        writes();
    }
    while responses.iter().map(|r| r.events.len()).sum::<usize>() < 1 + 2 + 3 {
        responses.push(client.next().await);
    }
    client.quiet(5).await;

    let ids: Vec<i64> = responses
        .iter()
        .filter(|r| r.created)
        .map(|r| r.watch_id)
        .collect();
    let told = |id| -> Vec<_> {
        responses
            .iter()
            .filter(|r| r.watch_id == id)
            .flat_map(|r| r.events.clone())
            .map(|e| {
                let kind = EventType::try_from(e.r#type).unwrap();
                let value = String::from_utf8(e.kv.unwrap().value).unwrap();
                let prev = e.prev_kv.map(|p| String::from_utf8(p.value).unwrap());
                (kind, value, prev)
            })
            .collect()
    };
    let some = |v: &str| Some(v.to_string());
    assert_eq!(
        told(ids[0]),
        vec![(EventType::Delete, String::new(), some("2"))]
    );
    assert_eq!(
        told(ids[1]),
        vec![
            (EventType::Put, "1".to_string(), None),
            (EventType::Put, "2".to_string(), some("1")),
        ]
    );
    assert_eq!(
        told(ids[2]),
        vec![
            (EventType::Put, "1".to_string(), None),
            (EventType::Put, "2".to_string(), None),
            (EventType::Delete, String::new(), None),
        ]
    );
}

#[tokio::test]
async fn filters_and_prev_kv_live() {
    filters_and_prev_kv(false).await;
}

#[tokio::test]
async fn filters_and_prev_kv_from_history() {
    filters_and_prev_kv(true).await;
}

#[tokio::test]
async fn a_watcher_from_compacted_history_is_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(open(dir.path()));
    for i in 0..9 {
        write(&state, put("a", &i.to_string()));
    }
    // The watch window still holds revisions 2..=10; compacted history is gone anyway.
    let current = apply(
        &state,
        Request::Compaction(CompactionRequest {
            revision: 6,
            physical: false,
        }),
    );
    assert_eq!(current, 10);
    let mut client = Client::start(&state);
    client
        .send(RequestUnion::CreateRequest(watch("a", "", 4)))
        .await;
    let created = client.next().await;
    assert!(created.created && !created.canceled);
    assert_eq!(created.header, Some(Member.header(current)));
    let r = client.next().await;
    assert_eq!(
        r,
        WatchResponse {
            // etcd's cancellation for compaction carries no revision in its header.
            header: Some(Member.header(0)),
            watch_id: created.watch_id,
            canceled: true,
            compact_revision: 6,
            ..Default::default()
        }
    );
    // The watcher is gone: later writes are not sent to it.
    write(&state, put("a", "later"));
    client.quiet(current + 1).await;

    // A watcher from after the compaction point is served.
    let id = client.create(watch("a", "", 8)).await;
    let r = client.next().await;
    assert_eq!(r.watch_id, id);
    let revs: Vec<i64> = seen(&r).iter().map(|s| s.0).collect();
    assert_eq!(revs, vec![8, 9, 10, 11]);
}

#[tokio::test]
async fn cancelling_an_unknown_watcher_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(open(dir.path()));
    let mut client = Client::start(&state);
    let id = client.create(watch("a", "", 0)).await;
    client
        .send(RequestUnion::CancelRequest(WatchCancelRequest {
            watch_id: id + 7,
        }))
        .await;
    client.quiet(1).await;

    client
        .send(RequestUnion::CancelRequest(WatchCancelRequest {
            watch_id: id,
        }))
        .await;
    let r = client.next().await;
    assert_eq!(
        r,
        WatchResponse {
            header: Some(Member.header(1)),
            watch_id: id,
            canceled: true,
            ..Default::default()
        }
    );
    write(&state, put("a", "1"));
    client.quiet(2).await;
}

#[tokio::test]
async fn a_progress_request_answers_with_the_current_revision() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(open(dir.path()));
    let mut client = Client::start(&state);
    client.quiet(1).await;
    write(&state, put("a", "1"));
    write(&state, put("b", "2"));
    client.quiet(3).await;
}

#[tokio::test]
async fn a_fragmenting_watcher_gets_a_large_revision_in_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(open(dir.path()));
    let mut client = Client::start_with_limit(&state, 300);
    let id = client
        .create(WatchCreateRequest {
            fragment: true,
            ..watch("a", "z", 0)
        })
        .await;
    let big = "v".repeat(100);
    let op = |k: &str| RequestOp {
        request: Some(Op::RequestPut(put_req(k, &big))),
    };
    let rev = apply(
        &state,
        Request::Txn(TxnRequest {
            success: ["a", "b", "c", "d", "e", "f"].map(op).into(),
            ..Default::default()
        }),
    );
    let mut keys = String::new();
    loop {
        let r = client.next().await;
        assert_eq!((r.watch_id, r.header.unwrap().revision), (id, rev));
        assert!(!r.events.is_empty());
        keys.extend(seen(&r).into_iter().map(|s| s.2));
        if !r.fragment {
            break;
        }
    }
    assert_eq!(keys, "abcdef");
    client.quiet(rev).await;
}

#[tokio::test]
async fn a_closed_output_ends_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(open(dir.path()));
    let mut client = Client::start(&state);
    client.create(watch("a", "", 0)).await;
    // The client stops reading but keeps its input open; the next event ends the task.
    drop(client.responses);
    write(&state, put("a", "1"));
    tokio::time::timeout(WAIT, client.task)
        .await
        .expect("task still running")
        .unwrap();
    drop(client.requests);
}

#[tokio::test]
async fn a_progress_request_first_sends_what_is_pending() {
    // Driven by hand, so that the request is handled while an event is pending.
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(open(dir.path()));
    let (out, mut responses) = mpsc::channel(16);
    let mut task = StreamTask::new(state.clone(), Arc::new(Member), usize::MAX, out);
    let request = |r| WatchRequest {
        request_union: Some(r),
    };
    let create = request(RequestUnion::CreateRequest(watch("a", "", 0)));
    assert!(task.handle(create).await.is_ok());
    let created = responses.try_recv().unwrap().unwrap();
    let ev = write(&state, put("a", "1"));
    let progress_req = request(RequestUnion::ProgressRequest(WatchProgressRequest {}));
    assert!(task.handle(progress_req).await.is_ok());
    let r = responses.try_recv().unwrap().unwrap();
    assert_eq!((r.watch_id, seen(&r)), (created.watch_id, vec![ev]));
    assert_eq!(responses.try_recv().unwrap().unwrap(), progress(2));
    assert!(responses.try_recv().is_err(), "nothing else is sent");
}

/// Header revisions of `responses` in order, checking they never go backwards.
fn assert_monotonic(responses: &[WatchResponse]) {
    let revs: Vec<i64> = responses
        .iter()
        .map(|r| r.header.as_ref().unwrap().revision)
        .collect();
    for (i, w) in revs.windows(2).enumerate() {
        assert!(
            w[1] >= w[0],
            "header {} after {} (response {})",
            w[1],
            w[0],
            i + 1
        );
    }
}

#[tokio::test]
async fn headers_never_go_backwards_while_a_watcher_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(open(dir.path()));
    for i in 0..(3 * CATCH_UP_REVISIONS + 10) {
        write(&state, put(&format!("k{}", i % 11), &i.to_string()));
    }
    let current = state.mvcc.read().current_revision();
    let mut client = Client::start(&state);
    // A synced watcher first, then one from revision 1 on the same stream.
    let live = client.create(watch("k", "l", 0)).await;
    let past = client.create(watch("k", "l", 1)).await;
    let mut responses = Vec::new();
    let mut received = 0;
    while received < current - 1 {
        let r = client.next().await;
        assert_eq!(r.watch_id, past, "{r:?}");
        // etcd puts the member's revision, not the batch's last, in a catch-up header.
        assert_eq!(r.header.as_ref().unwrap().revision, current);
        received += r.events.len() as i64;
        responses.push(r);
    }
    assert!(responses.len() >= 3, "history comes in batches");
    let ev = write(&state, put("k0", "after"));
    for id in [live, past] {
        let r = client.next().await;
        assert_eq!((r.watch_id, seen(&r)), (id, vec![ev.clone()]));
        responses.push(r);
    }
    assert_monotonic(&responses);
    client.quiet(ev.0).await;
}

#[tokio::test]
async fn periodic_progress_never_overtakes_events() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(open(dir.path()));
    let mut client = Client::start_with(
        &state,
        usize::MAX,
        Duration::from_millis(5),
        StreamGuard::none(),
    );
    let c = WatchCreateRequest {
        progress_notify: true,
        ..watch("a", "z", 0)
    };
    let id = client.create(c).await;
    // Writes in bursts with pauses, so that progress rounds fall between and during them.
    let writer = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || {
            let mut last = 0;
            for burst in 0..40 {
                for i in 0..25 {
                    last = write(&state, put(&format!("k{}", i % 5), &burst.to_string())).0;
                }
                std::thread::sleep(Duration::from_millis(7));
            }
            last
        })
    };
    let last = writer.await.unwrap();
    let (mut responses, mut progress, mut seen_up_to) = (Vec::new(), 0, 0);
    while seen_up_to < last {
        let r = client.next().await;
        assert_eq!(r.watch_id, id);
        let rev = r.header.as_ref().unwrap().revision;
        match r.events.last() {
            Some(e) => {
                let first = r.events[0].kv.as_ref().unwrap().mod_revision;
                assert!(
                    first > seen_up_to,
                    "event {first} after progress at {seen_up_to}"
                );
                seen_up_to = e.kv.as_ref().unwrap().mod_revision;
            }
            None => {
                assert!(
                    rev >= seen_up_to,
                    "progress at {rev} after event {seen_up_to}"
                );
                seen_up_to = rev;
                progress += 1;
            }
        }
        responses.push(r);
    }
    assert!(progress > 0, "no progress notification came");
    assert_monotonic(&responses);
}

#[tokio::test]
async fn a_stream_requiring_a_leader_ends_when_the_leader_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(open(dir.path()));
    let (leader, rx) = tokio::sync::watch::channel(1u64);
    let loss = LeaderLoss::follow(rx, Duration::from_millis(20));
    let mut md = tonic::metadata::MetadataMap::new();
    md.insert(HASLEADER, "true".parse().unwrap());
    let hour = Duration::from_secs(3600);
    let mut asking = Client::start_with(&state, usize::MAX, hour, loss.for_stream(&md));
    let mut waiting = Client::start_with(
        &state,
        usize::MAX,
        hour,
        loss.for_stream(&Default::default()),
    );
    asking.create(watch("a", "", 0)).await;
    waiting.create(watch("a", "", 0)).await;
    leader.send_replace(0);
    let ended = tokio::time::timeout(WAIT, asking.responses.recv())
        .await
        .expect("the stream was not ended")
        .expect("the stream ended without an error");
    let err = ended.expect_err("a response instead of the error");
    assert_eq!(
        (err.code(), err.message()),
        (tonic::Code::Unavailable, "etcdserver: no leader")
    );
    assert!(
        asking.responses.recv().await.is_none(),
        "the stream goes on"
    );
    // The other stream waits for a leader, as etcd's do, and is still served.
    let ev = write(&state, put("a", "1"));
    assert_eq!(seen(&waiting.next().await), vec![ev]);
}

#[tokio::test]
async fn a_synced_watcher_left_far_behind_is_caught_up_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(open(dir.path()));
    let mut client = Client::start(&state);
    let id = client.create(watch("a", "b", 0)).await;
    // The client reads nothing while 3000 revisions are written: the stream's buffer fills
    // and its task waits; the writes go on.
    let total = 3 * CATCH_UP_REVISIONS;
    let mut expected = Vec::new();
    for i in 0..total {
        expected.push(write(&state, put("a", &i.to_string())));
    }
    let mut got = Vec::new();
    let mut responses = 0;
    while got.len() < expected.len() {
        let r = client.next().await;
        assert_eq!(r.watch_id, id);
        got.extend(seen(&r));
        responses += 1;
    }
    assert_eq!(got, expected);
    // One response per revision until the buffer was full, then batches.
    assert!(
        responses < 200,
        "{responses} responses: the watcher was not moved to batches"
    );
    client.quiet(expected.last().unwrap().0).await;
}
