//! The revisioned key-value store (etcd's MVCC model).
//!
//! Every change gets a revision; a put appends a new version of a key, a delete appends a
//! tombstone that ends the key's generation. History records live in the backend keyed by
//! revision (so watchers replay it in order), the in-memory [`index::KeyIndex`] maps keys to
//! their revisions, and compaction drops history older than a revision.
//!
//! A write is staged in a [`WriteTxn`] and goes into a [`sled::Batch`] supplied by the
//! caller only when it commits, so the raft state machine can store a request's changes
//! together with its applied log index atomically, and a request that fails half-way
//! leaves nothing behind.
//!
//! Compaction changes the index at once but deletes the dropped records from the backend in
//! bounded steps (as etcd's scheduled compaction does): the first [`PURGE_CHUNK`] in the
//! compacting apply itself, the rest by [`crate::state::purge`] between applies, each step
//! a short hold of the store's write lock. Until then they are *doomed*: no index entry
//! refers to them, and whatever walks history (hash, export) skips them, so the store
//! reads the same as if they were gone. While a point-in-time export is pinned
//! ([`MvccStore::pin_history`]) nothing is deleted, which is what keeps history at or
//! below the export's revision unchanged while it is copied without the lock.

pub mod index;
pub mod range;
pub mod revision;
pub mod write;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use etcd_proto::etcdserverpb::{RangeRequest, RangeResponse};
use etcd_proto::mvccpb::KeyValue;
use etcd_proto::raftrequestpb::KvRecord;
use prost::Message;

use crate::error::{EtcdError, Result};
use crate::storage::keys;
use index::{IndexEntry, KeyIndex};
use revision::Revision;
pub use write::WriteTxn;

/// Doomed records deleted per purge step: small enough that a step holds the write lock
/// for a moment only (etcd's compaction batch limit is 1000 too).
pub const PURGE_CHUNK: usize = 1000;

/// Keeps history records where they are while it lives (see the module doc).
#[derive(Debug)]
pub struct HistoryPin(Arc<AtomicUsize>);

impl Drop for HistoryPin {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The MVCC store over one backend tree.
pub struct MvccStore {
    tree: sled::Tree,
    index: KeyIndex,
    current: i64,
    /// The last compacted revision; -1 before the first compaction (as etcd's
    /// `compactMainRev`), so that revision 0 can be compacted once on a fresh store.
    compacted: i64,
    /// Records written into a backend batch that has not been applied yet: later writes
    /// of the same batch (a batched raft entry) read them from here.
    unflushed: Pending,
    /// Records compaction dropped that are still in the backend, oldest first.
    doomed: BTreeSet<Revision>,
    /// Live [`HistoryPin`]s; no doomed record is deleted while any is.
    pins: Arc<AtomicUsize>,
}

impl MvccStore {
    /// Opens the store, rebuilding the key index from the history records.
    pub fn open(tree: sled::Tree) -> Result<Self> {
        let mut index = KeyIndex::default();
        let mut current = read_i64(&tree, keys::REVISION)?.unwrap_or(1);
        for item in tree.scan_prefix([keys::HISTORY_PREFIX]) {
            let (k, v) = item?;
            let Some(rev) = Revision::from_key(&k) else {
                continue;
            };
            let rec = decode_record(&v)?;
            let key = rec.kv.map(|kv| kv.key).unwrap_or_default();
            index.push(
                &key,
                IndexEntry {
                    rev,
                    tombstone: rec.tombstone,
                },
            );
            current = current.max(rev.main);
        }
        let compacted = read_i64(&tree, keys::COMPACTED)?.unwrap_or(-1);
        // Records a compaction dropped but had not deleted yet when the member stopped are
        // still there: compacting the rebuilt index again finds exactly them.
        let doomed = if compacted >= 0 {
            index.compact(compacted).into_iter().collect()
        } else {
            BTreeSet::new()
        };
        Ok(MvccStore {
            tree,
            index,
            current,
            compacted,
            unflushed: Pending::new(),
            doomed,
            pins: Arc::default(),
        })
    }

    /// Points the store at a rewritten copy of its tree (after defragmentation).
    pub fn replace_tree(&mut self, tree: sled::Tree) {
        self.tree = tree;
    }

    /// The revision of the last change (1 for an empty store, as in etcd).
    pub fn current_revision(&self) -> i64 {
        self.current
    }

    /// The revision of the last compaction (0 if never compacted).
    pub fn compacted_revision(&self) -> i64 {
        self.compacted.max(0)
    }

    /// Checks that `rev` (0 = current) can be read, as etcd's mvcc does.
    pub fn check_revision(&self, rev: i64) -> Result<i64> {
        if rev <= 0 {
            return Ok(self.current);
        }
        if rev > self.current {
            return Err(EtcdError::FutureRev);
        }
        if rev < self.compacted {
            return Err(EtcdError::Compacted);
        }
        Ok(rev)
    }

    /// Serves a Range request from committed state. The header is left to the caller.
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        let at = self.check_revision(req.revision)?;
        range::evaluate(&self.index, at, req, &|rev| self.kv_at(rev))
    }

    /// The key-value written at `rev`.
    pub fn kv_at(&self, rev: Revision) -> Result<KeyValue> {
        if let Some(kv) = self.unflushed.get(&rev) {
            return Ok(kv.clone());
        }
        let raw = self
            .tree
            .get(rev.to_key())?
            .ok_or_else(|| EtcdError::Internal(format!("mvcc: revision {rev:?} not found")))?;
        Ok(decode_record(&raw)?.kv.unwrap_or_default())
    }

    /// Called once the backend batch holding the latest writes has been applied.
    pub fn batch_applied(&mut self) {
        self.unflushed.clear();
    }

    /// Visible value of `key` at the current revision.
    pub fn get(&self, key: &[u8]) -> Result<Option<KeyValue>> {
        self.index
            .visible(key, self.current)
            .map(|r| self.kv_at(r))
            .transpose()
    }

    /// Starts a write that will produce revision `current + 1` if it changes anything and
    /// commits.
    pub fn write(&mut self) -> WriteTxn<'_> {
        WriteTxn::new(self)
    }

    /// History records with `from <= main revision <= to`, in revision order, with the
    /// previous version of each key (for watchers that asked for prev_kv).
    pub fn history(&self, from: i64, to: i64) -> Result<Vec<HistoryRecord>> {
        let start = Revision::new(from.max(1), 0).to_key();
        let end = Revision::new(to.saturating_add(1), 0).to_key();
        let mut out = Vec::new();
        for item in self.tree.range(start..end) {
            let (k, v) = item?;
            let Some(rev) = Revision::from_key(&k) else {
                continue;
            };
            if self.is_doomed(rev) {
                continue;
            }
            let rec = decode_record(&v)?;
            let kv = rec.kv.unwrap_or_default();
            let prev = match self.index.visible_before(&kv.key, rev) {
                Some(p) => Some(self.kv_at(p)?),
                None => None,
            };
            out.push(HistoryRecord {
                rev,
                kv,
                tombstone: rec.tombstone,
                prev,
            });
        }
        Ok(out)
    }

    /// Compacts history up to `rev` (inclusive): drops superseded versions from the index and
    /// queues their records for deletion in `batch`.
    pub fn compact(&mut self, rev: i64, batch: &mut sled::Batch) -> Result<()> {
        if rev <= self.compacted {
            return Err(EtcdError::Compacted);
        }
        if rev > self.current {
            return Err(EtcdError::FutureRev);
        }
        self.doomed.extend(self.index.compact(rev));
        self.compacted = rev;
        batch.insert(keys::COMPACTED, &rev.to_be_bytes()[..]);
        self.purge_into(batch, PURGE_CHUNK);
        Ok(())
    }

    /// Queues the deletion of up to `limit` doomed records, oldest first, in `batch`;
    /// returns how many. None while history is pinned.
    pub fn purge_into(&mut self, batch: &mut sled::Batch, limit: usize) -> usize {
        if self.pins.load(Ordering::SeqCst) > 0 {
            return 0;
        }
        let mut n = 0;
        while n < limit {
            let Some(rev) = self.doomed.pop_first() else {
                break;
            };
            batch.remove(&rev.to_key()[..]);
            n += 1;
        }
        n
    }

    /// Doomed records not deleted yet.
    pub fn doomed_count(&self) -> usize {
        self.doomed.len()
    }

    /// Whether `rev`'s record is doomed (dropped by compaction, not deleted yet).
    pub fn is_doomed(&self, rev: Revision) -> bool {
        self.doomed.contains(&rev)
    }

    /// The doomed revisions, oldest first (for a view that walks history without the lock).
    pub fn doomed(&self) -> Vec<Revision> {
        self.doomed.iter().copied().collect()
    }

    /// Stops doomed records from being deleted until the pin is dropped. Take it under the
    /// same lock hold as whatever it protects (a purge step needs the write lock).
    pub fn pin_history(&self) -> HistoryPin {
        self.pins.fetch_add(1, Ordering::SeqCst);
        HistoryPin(self.pins.clone())
    }

    /// etcd's HashKV: a CRC-32C over the history up to `rev` (0 = current), equal on every
    /// member that applied the same entries; also answers the compacted revision.
    pub fn hash_kv(&self, rev: i64) -> Result<(u32, i64)> {
        let at = self.check_revision(rev)?;
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
        let mut digest = crc.digest();
        let start = [keys::HISTORY_PREFIX];
        let end = Revision::new(at.saturating_add(1), 0).to_key();
        for item in self.tree.range(&start[..]..&end[..]) {
            let (k, v) = item?;
            // etcd skips the revisions its compaction has scheduled for deletion too.
            if Revision::from_key(&k).is_some_and(|r| self.is_doomed(r)) {
                continue;
            }
            digest.update(&k);
            digest.update(&v);
        }
        Ok((digest.finalize(), self.compacted_revision()))
    }

    /// Number of keys the index tracks.
    pub fn key_count(&self) -> usize {
        self.index.len()
    }
}

/// One change from history, as watchers consume it.
#[derive(Debug, Clone)]
pub struct HistoryRecord {
    pub rev: Revision,
    pub kv: KeyValue,
    pub tombstone: bool,
    pub prev: Option<KeyValue>,
}

fn decode_record(raw: &[u8]) -> Result<KvRecord> {
    KvRecord::decode(raw).map_err(|e| EtcdError::Internal(format!("mvcc: corrupt record: {e}")))
}

fn read_i64(tree: &sled::Tree, key: &[u8]) -> Result<Option<i64>> {
    Ok(tree
        .get(key)?
        .and_then(|v| Some(i64::from_be_bytes(v.as_ref().try_into().ok()?))))
}

/// Records written by an unfinished write, readable before the batch reaches the backend.
type Pending = HashMap<Revision, KeyValue>;

/// Everything a store holds in memory, for tests that check what a request changed.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryState {
    pub index: KeyIndex,
    pub current: i64,
    pub compacted: i64,
    pub pending: std::collections::BTreeMap<Revision, KeyValue>,
}

#[cfg(test)]
impl MvccStore {
    pub fn memory_state(&self) -> MemoryState {
        MemoryState {
            index: self.index.clone(),
            current: self.current,
            compacted: self.compacted,
            pending: self.unflushed.clone().into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests;
