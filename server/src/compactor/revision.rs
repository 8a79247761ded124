//! `--auto-compaction-mode=revision`: keep the last N revisions.
//!
//! As etcd does: every five minutes, compact to the current revision minus the retention,
//! unless that is not positive or is the revision this compactor compacted last time.

use std::time::Duration;

use super::{attempt, Compactable};

/// How often etcd's revision compactor looks (and retries after a failure).
const INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Compacts `member` to keep the last `retention` revisions, forever.
pub(super) async fn run(member: &impl Compactable, retention: i64) {
    let description = format!("{retention} revisions");
    let mut previous = 0;
    loop {
        tokio::time::sleep(INTERVAL).await;
        if !member.is_leader() {
            continue;
        }
        let target = member.revision() - retention;
        if target <= 0 || target == previous {
            continue;
        }
        if attempt(member, target, &description, INTERVAL).await {
            previous = target;
        }
    }
}
