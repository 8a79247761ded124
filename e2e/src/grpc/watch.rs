//! Watch streams driven message by message: requests go in when the test says, and each
//! response is awaited (with a deadline), so a test compares both members' streams one
//! message at a time instead of sleeping and comparing whatever arrived.

use etcd_proto::etcdserverpb::watch_request::RequestUnion;
use etcd_proto::etcdserverpb::{WatchRequest, WatchResponse};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use super::pair::{assert_same, Answer, GrpcPair};
use super::{within, Clients};

/// One open `Watch` stream.
pub struct WatchStream {
    requests: mpsc::Sender<WatchRequest>,
    responses: Streaming<WatchResponse>,
}

/// What the next read of a stream found.
pub type Next = Option<Answer<WatchResponse>>;

impl WatchStream {
    pub async fn open(clients: &Clients) -> WatchStream {
        let (requests, rx) = mpsc::channel(16);
        let mut client = clients.watch.clone();
        let responses = within("open a watch stream", client.watch(ReceiverStream::new(rx)))
            .await
            .expect("watch stream")
            .into_inner();
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

    /// The next response, the status that ended the stream, or None when it ended cleanly.
    pub async fn next(&mut self) -> Next {
        match within("next watch response", self.responses.message()).await {
            Ok(Some(r)) => Some(Answer::Ok(r)),
            Ok(None) => None,
            Err(s) => Some(Answer::from_result(Err(s))),
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
        let normal = |next: Next, ids| match next {
            Some(Answer::Ok(mut r)) => {
                super::normalise::Normalise::normalise(&mut r, ids);
                Some(Answer::Ok(r))
            }
            other => other,
        };
        (
            normal(ours, &mut pair.ours.ids),
            normal(reference, &mut pair.reference.ids),
        )
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
