//! The in-memory key index: for every key, the revisions at which it changed.
//!
//! Values live in the backend keyed by revision; the index answers "which revision of this
//! key is visible at revision R" without touching the disk, and is rebuilt from the backend
//! on start-up.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::revision::Revision;

/// Lower and upper bound of a key range, as `BTreeMap::range` takes them.
type KeyBounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// One change of a key: a put, or a deletion (tombstone) that ends a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub rev: Revision,
    pub tombstone: bool,
}

/// Key -> ordered list of its changes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KeyIndex {
    keys: BTreeMap<Vec<u8>, Vec<IndexEntry>>,
}

/// A key range as etcd expresses it: `end` empty means the single key, `end == [0]`
/// means every key from `start` on, anything else is the half-open range `[start, end)`.
#[derive(Debug, Clone, Copy)]
pub struct KeyRange<'a> {
    pub start: &'a [u8],
    pub end: &'a [u8],
}

impl<'a> KeyRange<'a> {
    pub fn new(start: &'a [u8], end: &'a [u8]) -> Self {
        KeyRange { start, end }
    }

    pub fn is_single(&self) -> bool {
        self.end.is_empty()
    }

    /// Whether `key` falls inside the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        if self.is_single() {
            key == self.start
        } else if self.end == [0] {
            key >= self.start
        } else {
            key >= self.start && key < self.end
        }
    }

    fn bounds(&self) -> Option<KeyBounds<'a>> {
        if self.is_single() {
            return Some((Bound::Included(self.start), Bound::Included(self.start)));
        }
        if self.end == [0] {
            return Some((Bound::Included(self.start), Bound::Unbounded));
        }
        if self.end <= self.start {
            return None;
        }
        Some((Bound::Included(self.start), Bound::Excluded(self.end)))
    }
}

impl KeyIndex {
    /// Records a change of `key` at `rev`.
    pub fn push(&mut self, key: &[u8], entry: IndexEntry) {
        self.keys.entry(key.to_vec()).or_default().push(entry);
    }

    /// Takes back the change of `key` at `rev`, its newest (a write that did not commit).
    pub fn pop(&mut self, key: &[u8], rev: Revision) {
        let Some(entries) = self.keys.get_mut(key) else {
            return;
        };
        debug_assert_eq!(entries.last().map(|e| e.rev), Some(rev));
        if entries.last().is_some_and(|e| e.rev == rev) {
            entries.pop();
        }
        if entries.is_empty() {
            self.keys.remove(key);
        }
    }

    /// The revision of `key` visible at store revision `at`, if the key is live there.
    pub fn visible(&self, key: &[u8], at: i64) -> Option<Revision> {
        visible_in(self.keys.get(key)?, at)
    }

    /// Every live key in `range` at revision `at`, in key order, with its visible revision.
    pub fn visible_in_range<'s>(
        &'s self,
        range: KeyRange<'s>,
        at: i64,
    ) -> impl Iterator<Item = (&'s [u8], Revision)> + 's {
        range
            .bounds()
            .into_iter()
            .flat_map(move |b| self.keys.range::<[u8], _>(b))
            .filter_map(move |(k, entries)| visible_in(entries, at).map(|r| (k.as_slice(), r)))
    }

    /// The revision of `key` that was visible just before `rev` (for prev_kv of history).
    pub fn visible_before(&self, key: &[u8], rev: Revision) -> Option<Revision> {
        let entries = self.keys.get(key)?;
        let pos = entries.partition_point(|e| e.rev < rev);
        let prev = entries[..pos].last()?;
        (!prev.tombstone).then_some(prev.rev)
    }

    /// Drops history older than `at`, keeping for every key the newest change at or below
    /// `at` unless it is a tombstone. Returns the revisions whose records may be deleted.
    pub fn compact(&mut self, at: i64) -> Vec<Revision> {
        let mut dropped = Vec::new();
        self.keys.retain(|_, entries| {
            let upto = entries.partition_point(|e| e.rev.main <= at);
            if upto == 0 {
                return true;
            }
            let keep_from = if entries[upto - 1].tombstone {
                upto
            } else {
                upto - 1
            };
            dropped.extend(entries.drain(..keep_from).map(|e| e.rev));
            !entries.is_empty()
        });
        dropped
    }

    /// Number of keys with any retained history (live or deleted after the compaction point).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn visible_in(entries: &[IndexEntry], at: i64) -> Option<Revision> {
    let pos = entries.partition_point(|e| e.rev.main <= at);
    let e = entries[..pos].last()?;
    (!e.tombstone).then_some(e.rev)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(idx: &mut KeyIndex, k: &str, main: i64) {
        idx.push(
            k.as_bytes(),
            IndexEntry {
                rev: Revision::new(main, 0),
                tombstone: false,
            },
        );
    }
    fn del(idx: &mut KeyIndex, k: &str, main: i64) {
        idx.push(
            k.as_bytes(),
            IndexEntry {
                rev: Revision::new(main, 0),
                tombstone: true,
            },
        );
    }

    #[test]
    fn visibility_follows_generations() {
        let mut idx = KeyIndex::default();
        put(&mut idx, "a", 2);
        put(&mut idx, "a", 3);
        del(&mut idx, "a", 4);
        put(&mut idx, "a", 6);
        assert_eq!(idx.visible(b"a", 1), None);
        assert_eq!(idx.visible(b"a", 3), Some(Revision::new(3, 0)));
        assert_eq!(idx.visible(b"a", 5), None);
        assert_eq!(idx.visible(b"a", 9), Some(Revision::new(6, 0)));
        assert_eq!(idx.visible_before(b"a", Revision::new(6, 0)), None);
        assert_eq!(
            idx.visible_before(b"a", Revision::new(4, 0)),
            Some(Revision::new(3, 0))
        );
    }

    #[test]
    fn ranges_respect_etcd_end_conventions() {
        let mut idx = KeyIndex::default();
        for (i, k) in ["a", "b", "c"].iter().enumerate() {
            put(&mut idx, k, i as i64 + 2);
        }
        let keys = |s: &[u8], e: &[u8]| -> Vec<Vec<u8>> {
            idx.visible_in_range(KeyRange::new(s, e), 10)
                .map(|(k, _)| k.to_vec())
                .collect()
        };
        assert_eq!(keys(b"b", b""), vec![b"b".to_vec()]);
        assert_eq!(keys(b"b", b"\0"), vec![b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(keys(b"a", b"c"), vec![b"a".to_vec(), b"b".to_vec()]);
        assert!(keys(b"c", b"a").is_empty());
    }

    #[test]
    fn compaction_keeps_latest_live_revision() {
        let mut idx = KeyIndex::default();
        put(&mut idx, "a", 2);
        put(&mut idx, "a", 3);
        put(&mut idx, "b", 4);
        del(&mut idx, "b", 5);
        put(&mut idx, "a", 7);
        let mut dropped = idx.compact(5);
        dropped.sort();
        assert_eq!(
            dropped,
            vec![
                Revision::new(2, 0),
                Revision::new(4, 0),
                Revision::new(5, 0)
            ]
        );
        assert_eq!(idx.visible(b"a", 5), Some(Revision::new(3, 0)));
        assert_eq!(idx.visible(b"b", 9), None);
        assert_eq!(idx.len(), 1);
    }
}
