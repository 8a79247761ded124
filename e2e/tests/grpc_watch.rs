//! The Watch service at the gRPC level, message by message against Debian's etcd 3.4:
//! creation (start revisions, ranges, filters, prev_kv, chosen IDs, refused ranges and
//! IDs), the events of puts, deletes and txns, fragmentation, cancellation, progress
//! requests and notifications, and compacted start revisions.
//!
//! Nothing here waits for time to pass: every read waits for a message, and a stream is
//! read up to the events of a marker key written last, so "nothing else arrived" is seen
//! as the marker's events coming next.

use etcd_e2e::grpc::requests::{delete, op, put, txn};
use etcd_e2e::grpc::show::show;
use etcd_e2e::grpc::watch::{ByWatcher, WatchPair};
use etcd_e2e::grpc::{Answer, GrpcPair};
use etcd_proto::etcdserverpb::watch_create_request::FilterType;
use etcd_proto::etcdserverpb::watch_request::RequestUnion;
use etcd_proto::etcdserverpb::{
    CompactionRequest, DeleteRangeRequest, PutRequest, TxnRequest, WatchCancelRequest,
    WatchCreateRequest, WatchProgressRequest,
};

/// The marker watcher's ID and key.
const MARKER: i64 = 100;
const MARKER_KEY: &str = "marker";

/// Largest request (and unfragmented watch response) both members take: small, so that
/// a few events of a few KiB need fragments.
const MAX_REQUEST: &str = "--max-request-bytes=4096";

fn watch(key: &str, end: &str) -> WatchCreateRequest {
    WatchCreateRequest {
        key: key.into(),
        range_end: end.into(),
        ..Default::default()
    }
}

fn create(w: WatchCreateRequest) -> RequestUnion {
    RequestUnion::CreateRequest(w)
}

/// Puts on both; the revision of the put.
async fn put_both(pair: &mut GrpcPair, r: PutRequest) -> i64 {
    let answer = pair.same(r, |mut c, r| async move { c.kv.put(r).await });
    answer.await.ok().header.expect("header").revision
}

async fn txn_both(pair: &mut GrpcPair, r: TxnRequest) {
    pair.same(r, |mut c, r| async move { c.kv.txn(r).await })
        .await
        .ok();
}

async fn delete_both(pair: &mut GrpcPair, r: DeleteRangeRequest) {
    pair.same(r, |mut c, r| async move { c.kv.delete_range(r).await })
        .await
        .ok();
}

/// Revisions h+1..=h+4: a=1, b=2, a=3, b deleted; returns h.
async fn history(pair: &mut GrpcPair) -> i64 {
    let h = put_both(pair, put("a", "1")).await - 1;
    put_both(pair, put("b", "2")).await;
    put_both(pair, put("a", "3")).await;
    delete_both(pair, delete("b", "")).await;
    h
}

/// A stream on each member holding the marker watcher, then the watcher `w` (its created
/// message compared, and its catch-up message when `catch_up` says history matches it).
async fn open(pair: &mut GrpcPair, w: WatchCreateRequest, catch_up: bool) -> WatchPair {
    let mut streams = WatchPair::open(pair).await;
    let marker = WatchCreateRequest {
        watch_id: MARKER,
        ..watch(MARKER_KEY, "")
    };
    streams.send(create(marker)).await;
    streams.same_next(pair, "marker created").await;
    let what = show(&w);
    streams.send(create(w)).await;
    streams.same_next(pair, &format!("created {what}")).await;
    if catch_up {
        streams
            .same_next(pair, &format!("catch-up of {what}"))
            .await;
    }
    streams
}

/// Puts the marker key and compares both streams up to its event; returns the messages.
async fn same_until_marker(pair: &mut GrpcPair, streams: &mut WatchPair, what: &str) -> ByWatcher {
    let revision = put_both(pair, put(MARKER_KEY, "m")).await;
    streams
        .same_until_event_of(pair, (MARKER, revision), what)
        .await
}

/// How many of the messages were marked `fragment`.
fn fragments(seen: &ByWatcher) -> usize {
    seen.values()
        .flatten()
        .filter(|m| matches!(m, Some(Answer::Ok(r)) if r.fragment))
        .count()
}

/// The watchers compared by [`events_by_range_start_revision_filters_and_prev_kv`], made
/// right after the history of revisions `h+1..=h+4`, each with whether that history has
/// events for it (then its catch-up message is read before anything else is written).
///
/// A watcher starting at or before the current revision with no event to catch up on is
/// left out: etcd moves it to its synced watchers on a 100 ms timer, so writes made
/// meanwhile come in one message or several depending on that timer.
fn watchers(h: i64) -> Vec<(WatchCreateRequest, bool)> {
    let filters = |f: &[FilterType]| f.iter().map(|f| *f as i32).collect::<Vec<_>>();
    let all = || watch("\0", "\0");
    let from = |start_revision, w| WatchCreateRequest {
        start_revision,
        ..w
    };
    vec![
        (watch("a", ""), false),
        (
            WatchCreateRequest {
                prev_kv: true,
                ..watch("a", "c")
            },
            false,
        ),
        (watch("b", "\0"), false),
        (watch("", "\0"), false),
        (from(1, all()), true),
        (from(h + 1, all()), true),
        (
            WatchCreateRequest {
                prev_kv: true,
                ..from(h + 3, watch("a", ""))
            },
            true,
        ),
        (from(h + 4, watch("b", "")), true),
        (from(h + 5, all()), false),
        (from(h + 100, all()), false),
        (
            WatchCreateRequest {
                filters: filters(&[FilterType::Noput]),
                ..all()
            },
            false,
        ),
        (
            WatchCreateRequest {
                filters: filters(&[FilterType::Nodelete]),
                ..all()
            },
            false,
        ),
        (
            WatchCreateRequest {
                filters: filters(&[FilterType::Noput, FilterType::Nodelete]),
                ..from(h + 1, all())
            },
            false,
        ),
        (
            WatchCreateRequest {
                filters: filters(&[FilterType::Nodelete]),
                prev_kv: true,
                ..from(h + 1, all())
            },
            true,
        ),
        (
            WatchCreateRequest {
                filters: filters(&[FilterType::Noput]),
                ..from(h + 1, all())
            },
            true,
        ),
        (
            WatchCreateRequest {
                watch_id: 7,
                ..all()
            },
            false,
        ),
        (
            WatchCreateRequest {
                watch_id: -5,
                ..all()
            },
            false,
        ),
        (
            WatchCreateRequest {
                progress_notify: true,
                ..all()
            },
            false,
        ),
        (
            WatchCreateRequest {
                fragment: true,
                prev_kv: true,
                ..all()
            },
            false,
        ),
    ]
}

#[tokio::test]
async fn events_by_range_start_revision_filters_and_prev_kv() {
    let mut pair = GrpcPair::start(&[MAX_REQUEST]).await;
    for case in 0.. {
        let h = history(&mut pair).await;
        let Some((w, catch_up)) = watchers(h).into_iter().nth(case) else {
            break;
        };
        let what = show(&w);
        let mut streams = open(&mut pair, w, catch_up).await;
        // Every kind of change: puts, a txn with a put and a delete in one revision, a
        // range delete.
        put_both(&mut pair, put("a", "5")).await;
        put_both(&mut pair, put("b", "6")).await;
        let t = txn(vec![], vec![op(put("c", "7")), op(delete("a", ""))], vec![]);
        txn_both(&mut pair, t).await;
        let range_delete = DeleteRangeRequest {
            prev_kv: true,
            ..delete("a", "c")
        };
        delete_both(&mut pair, range_delete).await;
        same_until_marker(&mut pair, &mut streams, &what).await;
    }
}

#[tokio::test]
async fn large_revisions_are_fragmented_on_request() {
    let mut pair = GrpcPair::start(&["--max-request-bytes=65536"]).await;
    // etcd fragments past the request limit plus gRPC's 512 KiB allowance: 12 keys of
    // 60000 bytes, each put under the request limit, make one delete whose events carry
    // 720 kB of previous values.
    let value = "v".repeat(60_000);
    for fragment in [true, false] {
        let w = WatchCreateRequest {
            fragment,
            prev_kv: true,
            ..watch("f", "g")
        };
        let mut streams = open(&mut pair, w, false).await;
        for i in 0..12 {
            put_both(&mut pair, put(&format!("f{i:02}"), &value)).await;
        }
        let all = DeleteRangeRequest {
            prev_kv: true,
            ..delete("f", "g")
        };
        delete_both(&mut pair, all).await;
        let what = format!("fragment: {fragment}");
        let seen = same_until_marker(&mut pair, &mut streams, &what).await;
        // The delete's 720 kB (previous values) go as two messages, the first marked.
        assert_eq!(fragments(&seen), if fragment { 1 } else { 0 });
    }
    // A watcher catching up on all of it at once.
    let w = WatchCreateRequest {
        fragment: true,
        start_revision: 1,
        ..watch("f", "g")
    };
    let mut streams = open(&mut pair, w, true).await;
    let seen = same_until_marker(&mut pair, &mut streams, "catch-up with fragments").await;
    assert!(fragments(&seen) > 0, "{seen:?}");
}

#[tokio::test]
async fn cancel_ids_refusals_and_progress_requests() {
    let mut pair = GrpcPair::start(&[]).await;
    history(&mut pair).await;
    let mut streams = open(&mut pair, watch("a", ""), false).await;
    // Watchers get IDs from 0 on, skipping IDs a client chose.
    for w in [
        watch("b", ""),
        WatchCreateRequest {
            watch_id: 2,
            ..watch("c", "")
        },
        watch("d", ""),
        // Taken IDs and empty ranges are refused with the reason.
        WatchCreateRequest {
            watch_id: MARKER,
            ..watch("e", "")
        },
        watch("z", "a"),
        WatchCreateRequest {
            watch_id: 2,
            ..watch("c", "")
        },
    ] {
        let what = show(&w);
        streams.send(create(w)).await;
        streams.same_next(&mut pair, &what).await;
    }
    streams
        .send(RequestUnion::ProgressRequest(WatchProgressRequest {}))
        .await;
    streams.same_next(&mut pair, "progress request").await;
    let cancel = |watch_id| RequestUnion::CancelRequest(WatchCancelRequest { watch_id });
    streams.send(cancel(1)).await;
    streams.same_next(&mut pair, "cancel 1").await;
    // Unknown and already cancelled IDs: no answer, the marker's event comes next.
    streams.send(cancel(1)).await;
    streams.send(cancel(55)).await;
    put_both(&mut pair, put("b", "x")).await;
    put_both(&mut pair, put("a", "x")).await;
    same_until_marker(&mut pair, &mut streams, "after cancelling").await;
    streams.send(create(watch("b", ""))).await;
    let last = streams.same_next(&mut pair, "created after a cancel").await;
    // An ID is not given out again once cancelled.
    streams.send(cancel(last.watch_id)).await;
    streams.same_next(&mut pair, "cancel the newest").await;
    streams.send(create(watch("b", ""))).await;
    streams
        .same_next(&mut pair, "created after cancelling the newest")
        .await;
    streams
        .send(RequestUnion::ProgressRequest(WatchProgressRequest {}))
        .await;
    streams.same_next(&mut pair, "progress request").await;
}

#[tokio::test]
async fn compacted_start_revision_is_cancelled() {
    let mut pair = GrpcPair::start(&[]).await;
    history(&mut pair).await;
    let compact = CompactionRequest {
        revision: 4,
        physical: true,
    };
    pair.same(compact, |mut c, r| async move { c.kv.compact(r).await })
        .await
        .ok();
    for start_revision in [1, 3, 4, 5] {
        let w = WatchCreateRequest {
            start_revision,
            ..watch("\0", "\0")
        };
        let what = show(&w);
        let mut streams = WatchPair::open(&pair).await;
        streams.send(create(w)).await;
        streams
            .same_next(&mut pair, &format!("created {what}"))
            .await;
        // Cancelled with the compacted revision, or the history from there.
        streams.same_next(&mut pair, &what).await;
    }
}

#[tokio::test]
async fn progress_notifications() {
    let mut pair = GrpcPair::start(&["--experimental-watch-progress-notify-interval=1s"]).await;
    history(&mut pair).await;
    let w = WatchCreateRequest {
        progress_notify: true,
        ..watch("a", "")
    };
    let mut streams = WatchPair::open(&pair).await;
    streams.send(create(w)).await;
    streams.same_next(&mut pair, "created").await;
    streams.same_next(&mut pair, "progress notification").await;
    put_both(&mut pair, put("b", "x")).await;
    streams
        .same_next(&mut pair, "progress notification after a write")
        .await;
}
