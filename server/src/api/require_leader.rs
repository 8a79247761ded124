//! etcd's "require leader" requests: clients (kube-apiserver among them, through clientv3's
//! `WithRequireLeader`) send the gRPC metadata `hasleader: true` to say they would rather
//! fail than be served by a member cut off from its cluster.
//!
//! As in etcd 3.4:
//! - such a request (unary or the opening of a stream) on a member that knows no leader
//!   fails at once with `etcdserver: no leader` (Unavailable), so the client retries on
//!   another member;
//! - such a Watch or LeaseKeepAlive stream already open is ended with that error once the
//!   member has had no leader for [`LOST_AFTER_ELECTIONS`] election timeouts. Streams wait
//!   that long, not one timeout, because re-opening every watch costs far more than
//!   refusing a new request, and a short election should not cost it;
//! - requests without the metadata keep waiting for a leader, as they always did.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

use crate::error::EtcdError;
use crate::server::EtcdServer;

/// The metadata key and value clientv3 sends (`rpctypes.MetadataRequireLeaderKey`).
pub const KEY: &str = "hasleader";
const VALUE: &str = "true";

/// Election timeouts without a leader after which require-leader streams are ended
/// (etcd's `maxNoLeaderCnt`).
pub const LOST_AFTER_ELECTIONS: u32 = 3;

/// Whether a request's HTTP/2 headers (its gRPC metadata) ask for a leader.
pub fn wanted(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(KEY)
        .is_some_and(|v| v.as_bytes() == VALUE.as_bytes())
}

/// Middleware over the gRPC routes: a request asking for a leader on a member without
/// one is answered `etcdserver: no leader` before any service sees it.
pub async fn refuse_without_leader(
    State(server): State<Arc<EtcdServer>>,
    req: Request,
    next: Next,
) -> Response {
    if server.leader() == 0 && wanted(req.headers()) {
        return tonic::Status::from(EtcdError::NoLeader)
            .into_http::<axum::body::Body>()
            .into_response();
    }
    next.run(req).await
}

/// Tells require-leader streams when the member has been without a leader for long enough
/// that they must end. Cheap to clone.
#[derive(Clone)]
pub struct LeaderLoss {
    lost: watch::Receiver<bool>,
}

impl LeaderLoss {
    /// Follows `leader` (the member's leader ID, 0 for none) in a background task: the
    /// loss is declared after `LOST_AFTER_ELECTIONS * election` without a leader, and
    /// withdrawn when a leader is known again.
    pub fn follow(mut leader: watch::Receiver<u64>, election: Duration) -> LeaderLoss {
        let (tx, lost) = watch::channel(false);
        let grace = election * LOST_AFTER_ELECTIONS;
        tokio::spawn(async move {
            loop {
                if leader.wait_for(|l| *l == 0).await.is_err() {
                    return;
                }
                match tokio::time::timeout(grace, leader.wait_for(|l| *l != 0)).await {
                    Ok(Ok(_)) => continue,
                    Ok(Err(_)) => return,
                    Err(_elapsed) => {}
                }
                tracing::warn!(target: "etcdserver", "no leader for {grace:?}: ending the streams that require one");
                tx.send_replace(true);
                if leader.wait_for(|l| *l != 0).await.is_err() {
                    return;
                }
                tx.send_replace(false);
            }
        });
        LeaderLoss { lost }
    }

    /// What ends a stream opened with `metadata`: this loss if the metadata asks for a
    /// leader, nothing otherwise.
    pub fn for_stream(&self, metadata: &tonic::metadata::MetadataMap) -> StreamGuard {
        let wants = metadata
            .get(KEY)
            .is_some_and(|v| v.as_bytes() == VALUE.as_bytes());
        StreamGuard(wants.then(|| self.lost.clone()))
    }
}

/// What a stream waits on besides its own work: the loss of the leader, if it asked for
/// one.
pub struct StreamGuard(Option<watch::Receiver<bool>>);

impl StreamGuard {
    /// Resolves once the stream must end with [`StreamGuard::error`]; never for a stream
    /// that did not ask for a leader (or once the member is shutting down).
    pub async fn lost(&mut self) {
        if let Some(rx) = &mut self.0 {
            if rx.wait_for(|l| *l).await.is_ok() {
                return;
            }
        }
        std::future::pending().await
    }

    /// A stream that did not ask for a leader.
    pub fn none() -> StreamGuard {
        StreamGuard(None)
    }

    /// What a stream ended by the loss answers, as etcd does.
    pub fn error() -> tonic::Status {
        EtcdError::NoLeader.into()
    }
}

#[cfg(test)]
mod tests;
