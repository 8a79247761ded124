//! A point-in-time view of the state database, read without holding the store's lock.
//!
//! sled 0.34 has no snapshot isolation: an iterator sees writes that land while it walks.
//! Holding the MVCC lock for the whole copy (as export used to) makes the copy consistent
//! but stalls every writer, and, the lock being fair, every reader queued behind that
//! writer, for as long as a whole-database copy takes. A view instead relies on how the
//! state is laid out:
//!
//! - History records are keyed by revision and only ever appended above the current
//!   revision; the one thing that removes them is compaction's purge, and a view pins
//!   history ([`crate::mvcc::HistoryPin`]) so the purge waits. So the history records at or
//!   below the view's revision `R` stay exactly as they were when the view was taken, and
//!   can be walked later without the lock.
//! - Everything else (revision and compaction marks, applied position, membership,
//!   leases, alarms, member attributes) is small and is copied while the lock is held.
//! - Records compaction doomed but had not deleted yet are left out (their revisions are
//!   copied too), so the view reads as the store would with every purge done.
//! - Nothing replaces the tree under a view: defragmentation and snapshot installation
//!   take the maintenance lock exclusively, a view holds it shared.
//!
//! Taking a view holds the MVCC read lock only for the copy of the small part.

use std::iter::Peekable;

use sled::IVec;

use super::KvState;
use crate::error::EtcdError;
use crate::mvcc::revision::Revision;
use crate::mvcc::HistoryPin;
use crate::storage::keys::{self, HISTORY_PREFIX};

/// The state database as it was at one revision: the keys that travel in snapshots
/// ([`keys::Reach::in_snapshot`]); a key of no known kind makes taking the view fail.
pub struct StateView {
    revision: i64,
    /// Entries outside history, in key order, copied when the view was taken.
    outside_history: Vec<(IVec, IVec)>,
    /// Doomed revisions at that moment, in order.
    doomed: Vec<Revision>,
    tree: sled::Tree,
    _pin: HistoryPin,
    _maintenance: tokio::sync::OwnedRwLockReadGuard<()>,
}

impl KvState {
    /// Takes a point-in-time view of the replicated state. Blocks (on the maintenance
    /// lock while a defragmentation runs), so call it off the async runtime.
    pub fn view(&self) -> crate::error::Result<StateView> {
        // Waits only while a defragmentation or a snapshot installation runs.
        let maintenance = futures::executor::block_on(self.maintenance.clone().read_owned());
        let mvcc = self.mvcc.read();
        let tree = self.backend.state();
        let below = tree.range(..[HISTORY_PREFIX]);
        let above = tree.range([HISTORY_PREFIX + 1]..);
        let mut outside_history = Vec::new();
        for entry in below.chain(above) {
            let (k, v) = entry?;
            let reach = keys::reach(&k).map_err(|e| EtcdError::Internal(e.to_string()))?;
            if reach.in_snapshot() {
                outside_history.push((k, v));
            }
        }
        Ok(StateView {
            revision: mvcc.current_revision(),
            outside_history,
            doomed: mvcc.doomed(),
            tree,
            _pin: mvcc.pin_history(),
            _maintenance: maintenance,
        })
    }
}

impl StateView {
    /// The store revision the view shows.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The value of a key outside history (positions, revisions, leases, alarms) as the
    /// view holds it.
    pub fn outside_history(&self, key: &[u8]) -> Option<&IVec> {
        let i = self
            .outside_history
            .binary_search_by(|(k, _)| k.as_ref().cmp(key))
            .ok()?;
        Some(&self.outside_history[i].1)
    }

    /// Every entry of the view in key order. Walks the database; run it off the runtime.
    pub fn iter(&self) -> impl Iterator<Item = sled::Result<(IVec, IVec)>> + '_ {
        let start = [HISTORY_PREFIX];
        let end = Revision::new(self.revision.saturating_add(1), 0).to_key();
        let doomed = &self.doomed;
        let history = self
            .tree
            .range(&start[..]..&end[..])
            .filter(move |r| match r {
                Ok((k, _)) => {
                    Revision::from_key(k).is_some_and(|rev| doomed.binary_search(&rev).is_err())
                }
                Err(_) => true,
            });
        Merge {
            a: self.outside_history.iter().cloned().map(Ok).peekable(),
            b: history.peekable(),
        }
    }
}

/// Two key-ordered entry streams as one (their keys never coincide).
struct Merge<A: Iterator, B: Iterator> {
    a: Peekable<A>,
    b: Peekable<B>,
}

type Item = sled::Result<(IVec, IVec)>;

impl<A: Iterator<Item = Item>, B: Iterator<Item = Item>> Iterator for Merge<A, B> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        let a_first = match (self.a.peek(), self.b.peek()) {
            (None, None) => return None,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            // An error goes out first, wherever it came from.
            (Some(Err(_)), _) => true,
            (_, Some(Err(_))) => false,
            (Some(Ok((ka, _))), Some(Ok((kb, _)))) => ka < kb,
        };
        if a_first {
            self.a.next()
        } else {
            self.b.next()
        }
    }
}

#[cfg(test)]
mod tests;
