//! The compactors' schedules on tokio's paused clock: what they compact, and when.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::{run, Compactable};
use crate::config::AutoCompaction;
use crate::error::EtcdError;

type Schedule<T> = Box<dyn Fn(Duration) -> T + Send + Sync>;

/// A member whose revision and leadership follow the time since the test started, whose
/// compactions fail with the queued errors first, and which records every attempt.
struct Member {
    start: Instant,
    revision: Schedule<i64>,
    leading: Schedule<bool>,
    failures: Mutex<VecDeque<EtcdError>>,
    attempts: Mutex<Vec<(Duration, i64)>>,
}

impl Member {
    fn new(revision: impl Fn(Duration) -> i64 + Send + Sync + 'static) -> Member {
        Member {
            start: Instant::now(),
            revision: Box::new(revision),
            leading: Box::new(|_| true),
            failures: Mutex::default(),
            attempts: Mutex::default(),
        }
    }

    fn leading(self, leading: impl Fn(Duration) -> bool + Send + Sync + 'static) -> Member {
        Member {
            leading: Box::new(leading),
            ..self
        }
    }

    fn failing(self, failures: impl IntoIterator<Item = EtcdError>) -> Member {
        Member {
            failures: Mutex::new(failures.into_iter().collect()),
            ..self
        }
    }

    /// Runs a compactor in `mode` for `span` and answers its attempts.
    async fn attempts(self, mode: AutoCompaction, span: Duration) -> Vec<(Duration, i64)> {
        let member = Arc::new(self);
        let compactor = tokio::spawn(run(member.clone(), mode));
        tokio::time::sleep(span).await;
        compactor.abort();
        let attempts = member.attempts.lock().clone();
        attempts
    }
}

impl Compactable for Member {
    fn is_leader(&self) -> bool {
        (self.leading)(self.start.elapsed())
    }

    fn revision(&self) -> i64 {
        (self.revision)(self.start.elapsed())
    }

    async fn compact(&self, revision: i64) -> Result<(), EtcdError> {
        self.attempts.lock().push((self.start.elapsed(), revision));
        self.failures.lock().pop_front().map_or(Ok(()), Err)
    }
}

fn min(n: u64) -> Duration {
    Duration::from_secs(n * 60)
}

/// One new revision a minute, starting at 1.
fn per_minute(t: Duration) -> i64 {
    1 + (t.as_secs() / 60) as i64
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test(start_paused = true)]
async fn periodic_compacts_to_the_revision_of_one_period_ago() {
    let attempts = Member::new(per_minute)
        .attempts(AutoCompaction::Periodic(HOUR), min(183))
        .await;
    // Nothing for the first hour; then hourly, to the oldest of the 11 samples taken every
    // 6 minutes (after the first, that sample is 66 minutes old, as etcd's is).
    assert_eq!(attempts, [(min(60), 1), (min(120), 55), (min(180), 115)]);
}

#[tokio::test(start_paused = true)]
async fn periodic_over_an_hour_compacts_hourly() {
    let attempts = Member::new(per_minute)
        .attempts(AutoCompaction::Periodic(24 * HOUR), min(26 * 60 + 3))
        .await;
    assert_eq!(
        attempts,
        [(min(24 * 60), 1), (min(25 * 60), 55), (min(26 * 60), 115)]
    );
}

#[tokio::test(start_paused = true)]
async fn periodic_retries_a_failure_at_the_next_sample() {
    let attempts = Member::new(per_minute)
        .failing([EtcdError::Timeout])
        .attempts(AutoCompaction::Periodic(HOUR), min(130))
        .await;
    assert_eq!(attempts, [(min(60), 1), (min(66), 1), (min(126), 61)]);
}

#[tokio::test(start_paused = true)]
async fn periodic_counts_an_already_compacted_revision_as_done() {
    let attempts = Member::new(per_minute)
        .failing([EtcdError::Compacted])
        .attempts(AutoCompaction::Periodic(HOUR), min(125))
        .await;
    assert_eq!(attempts, [(min(60), 1), (min(120), 55)]);
}

#[tokio::test(start_paused = true)]
async fn periodic_samples_on_a_follower_and_compacts_once_it_leads() {
    let attempts = Member::new(per_minute)
        .leading(|t| t >= min(93))
        .attempts(AutoCompaction::Periodic(HOUR), min(170))
        .await;
    // A follower keeps sampling, so a new leader compacts at its first tick.
    assert_eq!(attempts, [(min(96), 31), (min(156), 91)]);
}

#[tokio::test(start_paused = true)]
async fn periodic_with_seconds_of_retention() {
    let attempts = Member::new(|t| 1 + (t.as_millis() / 100) as i64)
        .attempts(
            AutoCompaction::Periodic(Duration::from_secs(2)),
            Duration::from_millis(4100),
        )
        .await;
    let at = Duration::from_millis;
    assert_eq!(attempts, [(at(2000), 1), (at(4000), 19)]);
}

#[tokio::test(start_paused = true)]
async fn revision_compacts_every_five_minutes_without_repeating() {
    let revision = |t: Duration| match t {
        t if t < min(7) => 5,
        t if t < min(17) => 100,
        _ => 200,
    };
    let attempts = Member::new(revision)
        .attempts(AutoCompaction::Revision(10), min(27))
        .await;
    // 5 min: 5 - 10 is not positive; 15 and 25 min: nothing new since the last compaction.
    assert_eq!(attempts, [(min(10), 90), (min(20), 190)]);
}

#[tokio::test(start_paused = true)]
async fn revision_retries_a_failure_five_minutes_later() {
    let attempts = Member::new(|_| 100)
        .failing([EtcdError::Timeout])
        .attempts(AutoCompaction::Revision(10), min(17))
        .await;
    assert_eq!(attempts, [(min(5), 90), (min(10), 90)]);
}

#[tokio::test(start_paused = true)]
async fn revision_compacts_only_on_the_leader() {
    let attempts = Member::new(per_minute)
        .leading(|t| t >= min(12))
        .attempts(AutoCompaction::Revision(10), min(17))
        .await;
    assert_eq!(attempts, [(min(15), 6)]);
}
