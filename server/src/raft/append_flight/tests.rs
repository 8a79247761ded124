//! Retries of the same entries wait for the call in flight; anything else sends anew.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use openraft::{CommittedLeaderId, EntryPayload};
use tokio::sync::oneshot;

use super::*;
use crate::raft::types::Entry;

fn entry(index: u64) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Blank,
    }
}

fn rpc(prev: u64, last: u64) -> AppendEntriesRequest<TypeConfig> {
    AppendEntriesRequest {
        vote: Vote::new_committed(1, 1),
        prev_log_id: Some(entry(prev).log_id),
        leader_commit: None,
        entries: (prev + 1..=last).map(entry).collect(),
    }
}

/// A peer whose calls are counted and answered when the test says so.
#[derive(Clone, Default)]
struct Peer {
    calls: Arc<AtomicUsize>,
}

type Call = std::pin::Pin<Box<dyn Future<Output = AppendResult> + Send>>;

impl Peer {
    /// A sender whose call is answered by `answer` (a network error if it is dropped).
    fn sender(
        &self,
        answer: oneshot::Receiver<AppendResult>,
    ) -> impl FnOnce(AppendEntriesRequest<TypeConfig>) -> Call {
        let calls = self.calls.clone();
        move |_rpc| {
            calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                answer.await.unwrap_or_else(|_| {
                    Err(RPCError::Network(NetworkError::new(
                        &std::io::Error::other("no answer"),
                    )))
                })
            })
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// openraft's timeout: the call is dropped after a moment.
async fn give_up_on(fut: impl Future<Output = AppendResult>) {
    let r = tokio::time::timeout(Duration::from_millis(20), fut).await;
    assert!(r.is_err(), "the call was meant to be still running");
}

/// Sends `first`, gives up on it as openraft does, sends `retry`, then lets the peer
/// answer the first call with success: the retry's outcome and how many calls reached
/// the peer.
async fn retry_after_giving_up(
    first: AppendEntriesRequest<TypeConfig>,
    retry: AppendEntriesRequest<TypeConfig>,
) -> (AppendEntriesResponse<u64>, usize) {
    let peer = Peer::default();
    let mut flight = AppendFlight::default();
    let (answer, rx) = oneshot::channel();
    give_up_on(flight.send(first, peer.sender(rx))).await;
    let (_unused, rx2) = oneshot::channel();
    let retried = flight.send(retry, peer.sender(rx2));
    answer.send(Ok(AppendEntriesResponse::Success)).unwrap();
    (retried.await.unwrap(), peer.calls())
}

#[tokio::test]
async fn a_retry_of_the_same_entries_waits_for_the_call_in_flight() {
    // openraft retries; the entries are not sent again.
    let (answer, calls) = retry_after_giving_up(rpc(3, 5), rpc(3, 5)).await;
    assert_eq!(answer, AppendEntriesResponse::Success);
    assert_eq!(calls, 1);
}

#[tokio::test]
async fn a_longer_retry_is_told_only_the_flights_entries_are_stored() {
    let (answer, calls) = retry_after_giving_up(rpc(3, 5), rpc(3, 8)).await;
    assert_eq!(
        answer,
        AppendEntriesResponse::PartialSuccess(Some(entry(5).log_id))
    );
    assert_eq!(calls, 1);
}

#[tokio::test]
async fn other_entries_and_retries_after_a_failure_are_sent_anew() {
    let peer = Peer::default();
    let mut flight = AppendFlight::default();
    // A failed call is not joined.
    let (answer, rx) = oneshot::channel();
    answer
        .send(Err(RPCError::Network(NetworkError::new(
            &std::io::Error::other("reset"),
        ))))
        .unwrap();
    assert!(flight.send(rpc(3, 5), peer.sender(rx)).await.is_err());
    let (answer, rx) = oneshot::channel();
    answer.send(Ok(AppendEntriesResponse::Success)).unwrap();
    assert!(flight.send(rpc(3, 5), peer.sender(rx)).await.is_ok());
    assert_eq!(peer.calls(), 2);
    // A different starting point, or fewer entries, is a different call.
    let (_pending, rx) = oneshot::channel();
    give_up_on(flight.send(rpc(3, 5), peer.sender(rx))).await;
    let (answer, rx) = oneshot::channel();
    answer.send(Ok(AppendEntriesResponse::Conflict)).unwrap();
    assert_eq!(
        flight.send(rpc(5, 6), peer.sender(rx)).await.unwrap(),
        AppendEntriesResponse::Conflict
    );
    let (answer, rx) = oneshot::channel();
    answer.send(Ok(AppendEntriesResponse::Success)).unwrap();
    assert!(flight.send(rpc(3, 4), peer.sender(rx)).await.is_ok());
    assert_eq!(peer.calls(), 5);
}
