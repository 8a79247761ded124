//! One write to the store: any number of puts and deletes sharing one revision.
//!
//! A write is staged. Its changes are visible at once to reads made through it (the key
//! index and the pending records are updated as it goes, so a txn sees its own earlier
//! ops), but they reach the caller's backend batch, and the store's revision moves, only
//! when [`WriteTxn::commit`] runs. A write dropped without commit, because an op of its
//! request failed, takes every change back out of the index and the pending records: a
//! failed request leaves the store as it found it, whichever op failed.

use etcd_proto::etcdserverpb::{RangeRequest, RangeResponse};
use etcd_proto::mvccpb::{event::EventType, Event, KeyValue};
use etcd_proto::raftrequestpb::KvRecord;
use prost::Message;

use super::index::{IndexEntry, KeyRange};
use super::revision::Revision;
use super::{range, MvccStore};
use crate::error::Result;
use crate::storage::keys;

/// A write in progress. Changes are visible to reads made through this txn at once and
/// to everyone else once [`WriteTxn::commit`] has run and the batch has been applied.
pub struct WriteTxn<'a> {
    store: &'a mut MvccStore,
    rev: i64,
    /// Records of the changes made so far, in order (their position is their sub-revision).
    staged: Vec<(Revision, KvRecord)>,
    events: Vec<Event>,
}

impl<'a> WriteTxn<'a> {
    pub(super) fn new(store: &'a mut MvccStore) -> Self {
        let rev = store.current + 1;
        WriteTxn {
            store,
            rev,
            staged: Vec::new(),
            events: Vec::new(),
        }
    }

    /// The revision this write creates if it changes anything.
    pub fn revision(&self) -> i64 {
        self.rev
    }

    /// The revision reads inside this txn observe: its own changes once it has made any.
    pub fn read_revision(&self) -> i64 {
        if !self.staged.is_empty() {
            self.rev
        } else {
            self.store.current
        }
    }

    fn kv(&self, rev: Revision) -> Result<KeyValue> {
        self.store.kv_at(rev)
    }

    /// Checks a revision a read inside this txn asks for (see [`MvccStore::check_revision`]).
    pub fn check_revision(&self, rev: i64) -> Result<i64> {
        self.store.check_revision(rev)
    }

    /// Current value of `key` as this txn sees it.
    pub fn get(&self, key: &[u8]) -> Result<Option<KeyValue>> {
        let at = self.read_revision();
        self.store
            .index
            .visible(key, at)
            .map(|r| self.kv(r))
            .transpose()
    }

    /// A Range evaluated inside the txn (sees the txn's own earlier writes).
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        let at = if req.revision > 0 {
            self.store.check_revision(req.revision)?
        } else {
            self.read_revision()
        };
        range::evaluate(&self.store.index, at, req, &|rev| self.kv(rev))
    }

    /// Writes a new version of `key`; returns the version it replaced.
    pub fn put(&mut self, key: &[u8], value: Vec<u8>, lease: i64) -> Result<Option<KeyValue>> {
        let prev = self.get(key)?;
        let rev = self.next_revision();
        let (create_revision, version) = match &prev {
            Some(p) => (p.create_revision, p.version + 1),
            None => (rev.main, 1),
        };
        let kv = KeyValue {
            key: key.to_vec(),
            create_revision,
            mod_revision: rev.main,
            version,
            value,
            lease,
        };
        self.record(rev, kv.clone(), false);
        self.events.push(Event {
            r#type: EventType::Put as i32,
            kv: Some(kv),
            prev_kv: prev.clone(),
        });
        Ok(prev)
    }

    /// Deletes every live key in the range; returns the deleted versions in key order.
    pub fn delete_range(&mut self, key: &[u8], range_end: &[u8]) -> Result<Vec<KeyValue>> {
        let at = self.read_revision();
        let victims: Vec<(Vec<u8>, Revision)> = self
            .store
            .index
            .visible_in_range(KeyRange::new(key, range_end), at)
            .map(|(k, r)| (k.to_vec(), r))
            .collect();
        let mut deleted = Vec::with_capacity(victims.len());
        for (k, visible) in victims {
            let prev = self.kv(visible)?;
            let rev = self.next_revision();
            let tomb = KeyValue {
                key: k,
                mod_revision: rev.main,
                ..Default::default()
            };
            self.record(rev, tomb.clone(), true);
            self.events.push(Event {
                r#type: EventType::Delete as i32,
                kv: Some(tomb),
                prev_kv: Some(prev.clone()),
            });
            deleted.push(prev);
        }
        Ok(deleted)
    }

    fn next_revision(&self) -> Revision {
        Revision::new(self.rev, self.staged.len() as i64)
    }

    fn record(&mut self, rev: Revision, kv: KeyValue, tombstone: bool) {
        self.store
            .index
            .push(&kv.key, IndexEntry { rev, tombstone });
        self.store.unflushed.insert(rev, kv.clone());
        let rec = KvRecord {
            kv: Some(kv),
            tombstone,
        };
        self.staged.push((rev, rec));
    }

    /// Ends the write successfully: its records go into `batch` and, if anything changed,
    /// the store's revision advances. Returns the change events (with previous versions)
    /// in order. Cannot fail, so a request that got this far applies whole.
    pub fn commit(mut self, batch: &mut sled::Batch) -> Vec<Event> {
        let staged = std::mem::take(&mut self.staged);
        if !staged.is_empty() {
            for (rev, rec) in staged {
                batch.insert(&rev.to_key()[..], rec.encode_to_vec());
            }
            self.store.current = self.rev;
            batch.insert(keys::REVISION, &self.rev.to_be_bytes()[..]);
        }
        std::mem::take(&mut self.events)
    }
}

impl Drop for WriteTxn<'_> {
    /// Takes back whatever was not committed, newest change first.
    fn drop(&mut self) {
        for (rev, rec) in self.staged.drain(..).rev() {
            let key = rec.kv.map(|kv| kv.key).unwrap_or_default();
            self.store.index.pop(&key, rev);
            self.store.unflushed.remove(&rev);
        }
    }
}
