//! Waiting for an event with a deadline, instead of sleeping for a time that usually
//! covers it: the condition is polled, and the test fails saying what never happened.

use std::time::{Duration, Instant};

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(50);

/// Polls `ready` until it holds; panics with `what` once `limit` has passed.
pub fn until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(POLL);
    }
}

/// [`until`] for async tests: polls without blocking the runtime.
pub async fn until_async(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        tokio::time::sleep(POLL).await;
    }
}
