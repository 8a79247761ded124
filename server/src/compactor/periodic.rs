//! `--auto-compaction-mode=periodic`: keep the history of the last retention period.
//!
//! As etcd does: sample the current revision every tenth of the compact interval (the
//! period, at most an hour), keep one period's worth of samples, and once a period has
//! passed since the start, compact to the oldest sample — the revision of one period ago.
//! After that, compact every compact interval; a failed attempt is retried at the next
//! sample.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::{attempt, Compactable};
use crate::go_duration;

/// The longest compact interval: retentions over an hour still compact hourly.
const MAX_COMPACT_INTERVAL: Duration = Duration::from_secs(3600);

/// Samples per compact interval.
const RETRY_DIVISOR: u32 = 10;

/// The shortest sampling interval. etcd divides by zero for retentions under 10ns; a floor
/// keeps tiny retentions from spinning.
const MIN_RETRY_INTERVAL: Duration = Duration::from_millis(1);

/// Compacts `member` to keep `period` of history, forever.
pub(super) async fn run(member: &impl Compactable, period: Duration) {
    let compact_interval = period.min(MAX_COMPACT_INTERVAL);
    let retry_interval = (compact_interval / RETRY_DIVISOR).max(MIN_RETRY_INTERVAL);
    let retentions = (period.as_nanos() / retry_interval.as_nanos()) as usize + 1;
    let retention = go_duration::format(period);
    let mut samples = VecDeque::with_capacity(retentions + 1);
    let mut last_success = Instant::now();
    // The first compaction waits a whole period; later ones one compact interval.
    let mut wait = period;
    loop {
        samples.push_back(member.revision());
        if samples.len() > retentions {
            samples.pop_front();
        }
        tokio::time::sleep(retry_interval).await;
        if !member.is_leader() || last_success.elapsed() < wait {
            continue;
        }
        wait = compact_interval;
        let oldest = samples[0];
        if attempt(member, oldest, &retention, retry_interval).await {
            last_success = Instant::now();
        }
    }
}
