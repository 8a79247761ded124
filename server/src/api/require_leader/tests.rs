//! The loss of the leader as streams see it, on tokio's paused clock: every wait is for
//! an event, with time advanced explicitly.

use std::time::Duration;

use tokio::sync::watch;
use tonic::metadata::MetadataMap;

use super::*;

const ELECTION: Duration = Duration::from_millis(1000);

fn asking() -> MetadataMap {
    let mut md = MetadataMap::new();
    md.insert(KEY, "true".parse().unwrap());
    md
}

/// Lets the follower task see the latest leader and the clock.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

/// Sets the leader and lets the follower see it before time moves on.
async fn set(leader: &watch::Sender<u64>, id: u64) {
    leader.send_replace(id);
    settle().await;
}

/// Whether `guard` has fired once every task has run.
async fn fired(guard: &mut StreamGuard) -> bool {
    settle().await;
    tokio::time::timeout(Duration::ZERO, guard.lost())
        .await
        .is_ok()
}

#[tokio::test(start_paused = true)]
async fn streams_end_after_three_election_timeouts_without_a_leader() {
    let (leader, rx) = watch::channel(7u64);
    let loss = LeaderLoss::follow(rx, ELECTION);
    let mut guard = loss.for_stream(&asking());
    assert!(!fired(&mut guard).await, "a leader is known");

    set(&leader, 0).await;
    tokio::time::advance(ELECTION * 3 - Duration::from_millis(10)).await;
    assert!(
        !fired(&mut guard).await,
        "ended before three election timeouts"
    );
    tokio::time::advance(Duration::from_millis(20)).await;
    assert!(
        fired(&mut guard).await,
        "still open after three election timeouts"
    );

    // A leader again: streams opened from now on are not ended.
    set(&leader, 9).await;
    let mut fresh = loss.for_stream(&asking());
    assert!(
        !fired(&mut fresh).await,
        "a new stream ended although a leader is back"
    );
}

#[tokio::test(start_paused = true)]
async fn a_short_election_ends_nothing() {
    let (leader, rx) = watch::channel(7u64);
    let loss = LeaderLoss::follow(rx, ELECTION);
    let mut guard = loss.for_stream(&asking());
    for _ in 0..3 {
        set(&leader, 0).await;
        tokio::time::advance(ELECTION * 2).await;
        assert!(!fired(&mut guard).await);
        set(&leader, 8).await;
        tokio::time::advance(ELECTION).await;
        assert!(!fired(&mut guard).await);
    }
    // The clock restarts with every loss: two seconds more than the last one is not enough.
    set(&leader, 0).await;
    tokio::time::advance(ELECTION * 2).await;
    assert!(!fired(&mut guard).await);
    tokio::time::advance(ELECTION * 2).await;
    assert!(fired(&mut guard).await);
}

#[tokio::test(start_paused = true)]
async fn streams_that_did_not_ask_wait() {
    let (leader, rx) = watch::channel(0u64);
    let loss = LeaderLoss::follow(rx, ELECTION);
    let mut silent = loss.for_stream(&MetadataMap::new());
    let mut other = MetadataMap::new();
    other.insert(KEY, "false".parse().unwrap());
    let mut declined = loss.for_stream(&other);
    tokio::time::advance(ELECTION * 10).await;
    assert!(!fired(&mut silent).await);
    assert!(!fired(&mut declined).await);
    drop(leader);
}

#[test]
fn only_hasleader_true_asks() {
    let mut h = axum::http::HeaderMap::new();
    assert!(!wanted(&h));
    h.insert(KEY, "false".parse().unwrap());
    assert!(!wanted(&h));
    h.insert(KEY, "true".parse().unwrap());
    assert!(wanted(&h));
    assert_eq!(StreamGuard::error().code(), tonic::Code::Unavailable);
    assert_eq!(StreamGuard::error().message(), "etcdserver: no leader");
}
