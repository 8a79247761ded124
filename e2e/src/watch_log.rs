//! Watches opened during a linearizability run, and what they must show.
//!
//! Each watcher follows [`crate::workload::PREFIX`] with `prev_kv` from a start revision,
//! through one member at a time; when its stream breaks (the member was killed) it opens a
//! new watch on another member from the revision after the last one it received, as
//! etcd's clients do. Every response is kept, so the checks see how events were grouped.
//!
//! Every write of the run is under the prefix and every revision of the run comes from one
//! (no leases, no compaction), so a watcher must see every revision from its start to the
//! end exactly once, in order, all events of one revision in one response.
//!
//! Watches are opened as kube-apiserver opens them, requiring a leader: a stream on a
//! member cut off from its cluster is ended ("etcdserver: no leader") and re-opened on
//! another member. The header revisions of each stream are kept too: they must never go
//! backwards.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, EventType, WatchOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::history::seen;
use crate::kv_model::Seen;
use crate::workload::PREFIX;

/// One event as a watch delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub revision: i64,
    pub key: String,
    /// The new value; None for a delete.
    pub value: Option<String>,
    pub prev: Option<Seen>,
}

/// One watcher's responses, each a non-empty list of events, in the order received.
#[derive(Debug, Clone, Default)]
pub struct WatchLog {
    pub id: usize,
    pub start: i64,
    pub responses: Vec<Vec<Change>>,
    /// Streams opened (1 + reconnections).
    pub streams: usize,
    /// Per stream, the header revision of every response but a cancellation.
    pub headers: Vec<Vec<i64>>,
}

impl WatchLog {
    /// The last revision received (start - 1 before any).
    pub fn last(&self) -> i64 {
        self.responses
            .last()
            .and_then(|r| r.last())
            .map_or(self.start - 1, |c| c.revision)
    }
}

/// A running watcher: `progress` is the last revision it received.
pub struct Watching {
    pub progress: Arc<AtomicI64>,
    pub handle: tokio::task::JoinHandle<WatchLog>,
}

/// Starts watcher `id` from `start` through `endpoints`, until `stop`.
pub fn spawn(
    id: usize,
    seed: u64,
    start: i64,
    endpoints: Vec<String>,
    stop: Arc<AtomicBool>,
) -> Watching {
    let progress = Arc::new(AtomicI64::new(start - 1));
    let p = progress.clone();
    let handle = tokio::spawn(async move {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5741_5443_4845_5200 ^ id as u64);
        let mut log = WatchLog {
            id,
            start,
            ..WatchLog::default()
        };
        while !stop.load(Ordering::Relaxed) {
            let endpoint = &endpoints[rng.gen_range(0..endpoints.len())];
            follow(endpoint, &mut log, &p, &stop).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        log
    });
    Watching { progress, handle }
}

/// Follows one watch stream on `endpoint` until it breaks or `stop` is set (checked at
/// least every 200 ms).
async fn follow(endpoint: &str, log: &mut WatchLog, progress: &AtomicI64, stop: &AtomicBool) {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(1))
        .with_require_leader(true);
    let Ok(Ok(mut client)) = tokio::time::timeout(
        Duration::from_secs(2),
        Client::connect([endpoint], Some(options)),
    )
    .await
    else {
        return;
    };
    let from = log.last() + 1;
    let options = WatchOptions::new()
        .with_prefix()
        .with_prev_key()
        .with_start_revision(from);
    let Ok(Ok((_watcher, mut stream))) =
        tokio::time::timeout(Duration::from_secs(2), client.watch(PREFIX, Some(options))).await
    else {
        return;
    };
    log.streams += 1;
    log.headers.push(Vec::new());
    while !stop.load(Ordering::Relaxed) {
        let message = match tokio::time::timeout(Duration::from_millis(200), stream.message()).await
        {
            Err(_) => continue,
            Ok(Ok(Some(m))) => m,
            Ok(_) => return,
        };
        if message.canceled() {
            return;
        }
        if let (Some(h), Some(headers)) = (message.header(), log.headers.last_mut()) {
            headers.push(h.revision());
        }
        let changes: Vec<Change> = message
            .events()
            .iter()
            .filter_map(|e| {
                let kv = e.kv()?;
                Some(Change {
                    revision: kv.mod_revision(),
                    key: String::from_utf8_lossy(kv.key()).into_owned(),
                    value: match e.event_type() {
                        EventType::Put => Some(String::from_utf8_lossy(kv.value()).into_owned()),
                        EventType::Delete => None,
                    },
                    prev: e.prev_kv().map(seen),
                })
            })
            .collect();
        if let Some(last) = changes.last() {
            progress.store(last.revision, Ordering::Relaxed);
            log.responses.push(changes);
        }
    }
}

/// Checks that no stream of one watcher saw a header revision lower than an earlier one.
pub fn check_headers(log: &WatchLog) -> Vec<String> {
    let mut problems = Vec::new();
    for (stream, headers) in log.headers.iter().enumerate() {
        for (i, w) in headers.windows(2).enumerate() {
            if w[1] < w[0] {
                problems.push(format!(
                    "watcher {} stream {stream}: response {} has header revision {} after {}",
                    log.id,
                    i + 1,
                    w[1],
                    w[0]
                ));
            }
        }
    }
    problems.truncate(20);
    problems
}

/// What every revision changed, merged from all watchers: revision -> its events.
pub type Ledger = BTreeMap<i64, Vec<Change>>;

/// Checks one watcher's log alone: revisions from its start, each exactly once, in order,
/// with no gap up to `end`, each revision's events in one response. Errors describe every
/// problem found (at most a few of each kind).
pub fn check_order(log: &WatchLog, end: i64) -> Vec<String> {
    let mut problems = Vec::new();
    let mut expected = log.start;
    let mut seen_in: BTreeMap<i64, usize> = BTreeMap::new();
    for (i, response) in log.responses.iter().enumerate() {
        for c in response {
            if let Some(first) = seen_in.get(&c.revision) {
                if *first != i {
                    problems.push(format!(
                        "watcher {}: revision {} in responses {first} and {i} (a txn's events \
                         split, or a revision delivered twice)",
                        log.id, c.revision
                    ));
                }
                continue;
            }
            if c.revision != expected {
                problems.push(format!(
                    "watcher {}: revision {} after {} (expected {expected})",
                    log.id,
                    c.revision,
                    expected - 1
                ));
            }
            seen_in.insert(c.revision, i);
            expected = c.revision + 1;
        }
    }
    if expected <= end {
        problems.push(format!(
            "watcher {}: stopped at revision {} of {end}",
            log.id,
            expected - 1
        ));
    }
    problems.truncate(20);
    problems
}

/// Merges every watcher's events into one ledger; watchers that disagree about a
/// revision are reported.
pub fn merge(logs: &[WatchLog]) -> (Ledger, Vec<String>) {
    let mut ledger = Ledger::new();
    let mut problems = Vec::new();
    for log in logs {
        let mut mine: Ledger = Ledger::new();
        for c in log.responses.iter().flatten() {
            mine.entry(c.revision).or_default().push(c.clone());
        }
        for (rev, mut changes) in mine {
            changes.sort_by(|a, b| a.key.cmp(&b.key));
            match ledger.get(&rev) {
                Some(known) if *known != changes => problems.push(format!(
                    "watcher {} disagrees at revision {rev}: {changes:?} vs {known:?}",
                    log.id
                )),
                Some(_) => {}
                None => {
                    ledger.insert(rev, changes);
                }
            }
        }
    }
    problems.truncate(20);
    (ledger, problems)
}

/// The version of `key` the ledger says was current at revision `at` (None: absent).
pub fn version_at(ledger: &Ledger, key: &str, at: i64) -> Option<Seen> {
    ledger
        .range(..=at)
        .rev()
        .find_map(|(rev, changes)| {
            changes.iter().find(|c| c.key == key).map(|c| {
                c.value.as_ref().map(|v| Seen {
                    value: v.clone(),
                    mod_revision: *rev,
                })
            })
        })
        .flatten()
}

/// Checks that every event's `prev_kv` is the version the ledger had before it (the
/// ledger must be complete from revision 1).
pub fn check_prev(ledger: &Ledger) -> Vec<String> {
    let mut problems = Vec::new();
    for (rev, changes) in ledger {
        for c in changes {
            let expected = version_at(ledger, &c.key, rev - 1);
            if c.prev != expected {
                problems.push(format!(
                    "revision {rev} {}: prev_kv {:?}, but the version before was {expected:?}",
                    c.key, c.prev
                ));
            }
        }
    }
    problems.truncate(20);
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(revision: i64, key: &str, value: &str, prev: Option<(&str, i64)>) -> Change {
        Change {
            revision,
            key: key.into(),
            value: Some(value.into()),
            prev: prev.map(|(v, r)| Seen {
                value: v.into(),
                mod_revision: r,
            }),
        }
    }

    fn log(responses: Vec<Vec<Change>>) -> WatchLog {
        WatchLog {
            id: 0,
            start: 2,
            responses,
            streams: 1,
            headers: vec![vec![1, 2, 3]],
        }
    }

    #[test]
    fn a_complete_log_passes() {
        let l = log(vec![
            vec![put(2, "a", "x", None)],
            vec![put(3, "a", "y", Some(("x", 2))), put(3, "b", "y", None)],
        ]);
        assert!(check_order(&l, 3).is_empty());
        assert!(check_headers(&l).is_empty());
        let (ledger, disagree) = merge(&[l]);
        assert!(disagree.is_empty());
        assert!(check_prev(&ledger).is_empty());
    }

    #[test]
    fn gaps_repeats_split_txns_and_short_logs_are_reported() {
        let gap = log(vec![
            vec![put(2, "a", "x", None)],
            vec![put(4, "a", "y", None)],
        ]);
        assert_eq!(check_order(&gap, 4).len(), 1);
        let repeat = log(vec![
            vec![put(2, "a", "x", None)],
            vec![put(2, "a", "x", None)],
        ]);
        assert_eq!(check_order(&repeat, 2).len(), 1);
        let split = log(vec![
            vec![put(2, "a", "x", None)],
            vec![put(2, "b", "x", None)],
        ]);
        assert_eq!(check_order(&split, 2).len(), 1);
        let short = log(vec![vec![put(2, "a", "x", None)]]);
        assert_eq!(check_order(&short, 3).len(), 1);
    }

    #[test]
    fn a_header_going_backwards_on_a_stream_is_reported() {
        let mut l = log(vec![vec![put(2, "a", "x", None)]]);
        // A new stream may start lower (another member); within a stream it may not.
        l.headers = vec![vec![5, 5, 9], vec![7, 8]];
        assert!(check_headers(&l).is_empty());
        l.headers.push(vec![7, 9, 8, 10]);
        assert_eq!(check_headers(&l).len(), 1);
    }

    #[test]
    fn a_wrong_prev_kv_and_disagreeing_watchers_are_reported() {
        let l = log(vec![
            vec![put(2, "a", "x", None)],
            vec![put(3, "a", "y", Some(("z", 2)))],
        ]);
        let (ledger, _) = merge(std::slice::from_ref(&l));
        assert_eq!(check_prev(&ledger).len(), 1);
        let other = log(vec![vec![put(2, "a", "w", None)]]);
        let (_, disagree) = merge(&[l, other]);
        assert_eq!(disagree.len(), 1);
    }
}
