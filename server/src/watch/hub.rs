//! Fan-out of applied changes to watch streams.
//!
//! The state machine publishes each revision's events here. Streams are woken through a
//! `tokio::sync::watch` of the latest revision and pull the events they have not seen:
//! from an in-memory window of recent revisions when it still covers them, otherwise from
//! the store's history. A slow stream therefore never blocks the writer and never misses an
//! event; it simply catches up from history (etcd's "unsynced watchers").

use std::collections::VecDeque;
use std::sync::Arc;

use etcd_proto::mvccpb::Event;
use parking_lot::Mutex;
use tokio::sync::watch;

/// All events one revision produced.
#[derive(Debug, Clone)]
pub struct RevisionEvents {
    pub revision: i64,
    pub events: Arc<Vec<Event>>,
}

/// How many events, and bytes of them, the recent window keeps before it drops the oldest
/// revisions. Bytes bound it too: with large values a count alone let the window hold
/// hundreds of MiB, memory a member under a pod's limit does not have. A watcher the window
/// no longer covers reads the store's history instead.
const WINDOW_EVENTS: usize = 16 * 1024;
const WINDOW_BYTES: usize = 8 << 20;

struct Window {
    /// Each revision's events with their size in bytes.
    revs: VecDeque<(RevisionEvents, usize)>,
    events: usize,
    bytes: usize,
    /// Every revision at or above this one is in `revs` (if it produced events at all).
    covered_from: i64,
}

/// Bytes the events take, as encoded (about what they hold in memory).
fn size(events: &[Event]) -> usize {
    events.iter().map(prost::Message::encoded_len).sum()
}

/// The hub shared by the state machine (publisher) and watch streams (subscribers).
pub struct WatchHub {
    latest: watch::Sender<i64>,
    window: Mutex<Window>,
}

impl WatchHub {
    /// A hub whose history window starts after `revision`.
    pub fn new(revision: i64) -> Self {
        let (latest, _) = watch::channel(revision);
        WatchHub {
            latest,
            window: Mutex::new(Window {
                revs: VecDeque::new(),
                events: 0,
                bytes: 0,
                covered_from: revision + 1,
            }),
        }
    }

    /// Publishes the events of `revision` and wakes every stream.
    pub fn publish(&self, revision: i64, events: Vec<Event>) {
        {
            let mut w = self.window.lock();
            let bytes = size(&events);
            w.events += events.len();
            w.bytes += bytes;
            let rev = RevisionEvents {
                revision,
                events: Arc::new(events),
            };
            w.revs.push_back((rev, bytes));
            while (w.events > WINDOW_EVENTS || w.bytes > WINDOW_BYTES) && w.revs.len() > 1 {
                let (old, bytes) = w.revs.pop_front().expect("window is not empty");
                w.events -= old.events.len();
                w.bytes -= bytes;
                w.covered_from = old.revision + 1;
            }
        }
        self.latest.send_replace(revision);
    }

    /// Forgets the window (after the store was replaced wholesale, e.g. by a snapshot).
    pub fn reset(&self, revision: i64) {
        let mut w = self.window.lock();
        w.revs.clear();
        w.events = 0;
        w.bytes = 0;
        w.covered_from = revision + 1;
        drop(w);
        self.latest.send_replace(revision);
    }

    /// A receiver that changes whenever a revision is published.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.latest.subscribe()
    }

    /// Bytes of events the recent window holds.
    pub fn window_bytes(&self) -> usize {
        self.window.lock().bytes
    }

    /// The latest published revision.
    pub fn latest(&self) -> i64 {
        *self.latest.borrow()
    }

    /// Events of revisions `from..=to` if the window still covers `from`.
    pub fn recent(&self, from: i64, to: i64) -> Option<Vec<RevisionEvents>> {
        let w = self.window.lock();
        if from < w.covered_from {
            return None;
        }
        Some(
            w.revs
                .iter()
                .map(|(r, _)| r)
                .filter(|r| r.revision >= from && r.revision <= to)
                .cloned()
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_covers_recent_revisions_only() {
        let hub = WatchHub::new(1);
        let ev = || vec![Event::default(); 1024];
        for rev in 2..=20 {
            hub.publish(rev, ev());
        }
        assert_eq!(hub.latest(), 20);
        assert!(hub.recent(2, 20).is_none(), "oldest revisions were dropped");
        let got = hub.recent(10, 12).unwrap();
        assert_eq!(
            got.iter().map(|r| r.revision).collect::<Vec<_>>(),
            vec![10, 11, 12]
        );
    }

    #[test]
    fn large_values_are_bounded_by_bytes() {
        let hub = WatchHub::new(1);
        let big = |n: usize| {
            let kv = etcd_proto::mvccpb::KeyValue {
                value: vec![7; n],
                ..Default::default()
            };
            vec![Event {
                kv: Some(kv),
                ..Default::default()
            }]
        };
        for rev in 2..=40 {
            hub.publish(rev, big(1 << 20));
        }
        assert!(hub.recent(31, 40).is_none(), "more than 8 MiB kept");
        assert_eq!(hub.recent(34, 40).unwrap().len(), 7);
        // One revision larger than the bound is still kept, alone.
        hub.publish(41, big(9 << 20));
        assert_eq!(hub.recent(41, 41).unwrap().len(), 1);
        assert!(hub.recent(40, 41).is_none());
    }
}
