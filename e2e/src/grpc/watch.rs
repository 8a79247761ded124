//! Watch streams driven message by message: requests go in when the test says, and each
//! response is awaited (with a deadline), so a test compares both members' streams one
//! message at a time instead of sleeping and comparing whatever arrived.

use std::collections::BTreeMap;

use etcd_proto::etcdserverpb::watch_request::RequestUnion;
use etcd_proto::etcdserverpb::{WatchRequest, WatchResponse};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::normalise::{Ids, Normalise};
use super::pair::{assert_same, Answer, GrpcPair};
use super::{within, Clients};

/// One open `Watch` stream.
pub struct WatchStream {
    requests: mpsc::Sender<WatchRequest>,
    /// Fed by a task that reads the stream: etcd sends the response headers only with the
    /// first message, so the call itself returns only then.
    responses: mpsc::Receiver<Result<WatchResponse, Status>>,
}

/// What the next read of a stream found.
pub type Next = Option<Answer<WatchResponse>>;

/// Messages of one stream by watch ID, each watcher's in the order they came.
pub type ByWatcher = BTreeMap<i64, Vec<Next>>;

/// Where [`ByWatcher`] keeps the end of the stream (a status, or a clean end).
const ENDED: i64 = i64::MIN;

impl WatchStream {
    pub async fn open(clients: &Clients) -> WatchStream {
        let (requests, rx) = mpsc::channel(16);
        let (tx, responses) = mpsc::channel(1024);
        let mut client = clients.watch.clone();
        tokio::spawn(async move {
            let stream = client.watch(ReceiverStream::new(rx)).await;
            let Ok(stream) = stream.map_err(|s| tx.try_send(Err(s))) else {
                return;
            };
            forward(stream.into_inner(), tx).await;
        });
        WatchStream {
            requests,
            responses,
        }
    }

    pub async fn send(&self, request: RequestUnion) {
        self.requests
            .send(WatchRequest {
                request_union: Some(request),
            })
            .await
            .expect("watch stream open");
    }

    /// The messages up to the one that carries watcher `marker`'s event of revision
    /// `marker_rev` (a key the test wrote last, as a marker), by watcher.
    ///
    /// etcd orders the messages of one watcher, but not those of different watchers of
    /// one revision (it walks a Go map), so messages are compared watcher by watcher, and
    /// the other watchers' messages of the marker's revision are left out: they may come
    /// before or after the marker's.
    pub async fn until_event_of(&mut self, marker: i64, marker_rev: i64) -> ByWatcher {
        let mut seen = ByWatcher::new();
        loop {
            let next = self.next().await;
            let (watcher, revision, done) = match &next {
                Some(Answer::Ok(r)) => {
                    let revision = r.header.as_ref().map_or(0, |h| h.revision);
                    let done = r.watch_id == marker && !r.events.is_empty();
                    (r.watch_id, revision, done)
                }
                _ => (ENDED, 0, true),
            };
            if watcher == marker || revision < marker_rev {
                seen.entry(watcher).or_default().push(next);
            }
            if done {
                return seen;
            }
        }
    }

    /// The next response, the status that ended the stream, or None when it ended cleanly.
    pub async fn next(&mut self) -> Next {
        match within("next watch response", self.responses.recv()).await {
            Some(Ok(r)) => Some(Answer::Ok(r)),
            None => None,
            Some(Err(s)) => Some(Answer::from_result(Err(s))),
        }
    }
}

/// A watch stream on each member of a [`GrpcPair`].
pub struct WatchPair {
    pub ours: WatchStream,
    pub reference: WatchStream,
}

impl WatchPair {
    pub async fn open(pair: &GrpcPair) -> WatchPair {
        WatchPair {
            ours: WatchStream::open(&pair.ours.clients).await,
            reference: WatchStream::open(&pair.reference.clients).await,
        }
    }

    /// Sends `request` on both streams.
    pub async fn send(&self, request: RequestUnion) {
        self.reference.send(request.clone()).await;
        self.ours.send(request).await;
    }

    /// The next message of each stream, normalised: (ours, reference).
    pub async fn next(&mut self, pair: &mut GrpcPair) -> (Next, Next) {
        let reference = self.reference.next().await;
        let ours = self.ours.next().await;
        (
            normal(ours, &mut pair.ours.ids),
            normal(reference, &mut pair.reference.ids),
        )
    }

    /// Asserts that both streams send the same messages up to the marker's event (see
    /// [`WatchStream::until_event_of`]); returns them.
    pub async fn same_until_event_of(
        &mut self,
        pair: &mut GrpcPair,
        (marker, marker_rev): (i64, i64),
        what: &str,
    ) -> ByWatcher {
        let reference = self.reference.until_event_of(marker, marker_rev).await;
        let ours = self.ours.until_event_of(marker, marker_rev).await;
        let ours = normal_all(ours, &mut pair.ours.ids);
        let reference = normal_all(reference, &mut pair.reference.ids);
        assert_same(what, &ours, &reference);
        ours
    }

    /// Asserts that the next message of both streams is the same; returns it.
    pub async fn same_next(&mut self, pair: &mut GrpcPair, what: &str) -> WatchResponse {
        let (ours, reference) = self.next(pair).await;
        assert_same(what, &ours, &reference);
        match ours {
            Some(Answer::Ok(r)) => r,
            other => panic!("{what}: the stream ended: {other:?}"),
        }
    }
}

/// Copies a stream's messages, then the status that ended it, if any, into `tx`.
async fn forward(
    mut stream: Streaming<WatchResponse>,
    tx: mpsc::Sender<Result<WatchResponse, Status>>,
) {
    loop {
        let next = stream.message().await;
        let item = match next {
            Ok(Some(r)) => Ok(r),
            Ok(None) => return,
            Err(s) => Err(s),
        };
        let last = item.is_err();
        if tx.send(item).await.is_err() || last {
            return;
        }
    }
}

fn normal(next: Next, ids: &mut Ids) -> Next {
    match next {
        Some(Answer::Ok(mut r)) => {
            r.normalise(ids);
            Some(Answer::Ok(r))
        }
        other => other,
    }
}

fn normal_all(all: ByWatcher, ids: &mut Ids) -> ByWatcher {
    all.into_iter()
        .map(|(w, msgs)| (w, msgs.into_iter().map(|n| normal(n, ids)).collect()))
        .collect()
}
