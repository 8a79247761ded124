//! One write to the store: any number of puts and deletes sharing one revision.

use etcd_proto::etcdserverpb::{RangeRequest, RangeResponse};
use etcd_proto::mvccpb::{event::EventType, Event, KeyValue};
use etcd_proto::raftrequestpb::KvRecord;
use prost::Message;

use super::index::{IndexEntry, KeyRange};
use super::revision::Revision;
use super::{range, MvccStore, META_REVISION};
use crate::error::Result;

/// A write in progress. Changes are visible to reads made through this txn at once and
/// to everyone else when [`WriteTxn::finish`] has run and the batch has been applied.
pub struct WriteTxn<'a> {
    store: &'a mut MvccStore,
    batch: &'a mut sled::Batch,
    rev: i64,
    sub: i64,
    events: Vec<Event>,
}

impl<'a> WriteTxn<'a> {
    pub(super) fn new(store: &'a mut MvccStore, batch: &'a mut sled::Batch) -> Self {
        let rev = store.current + 1;
        WriteTxn {
            store,
            batch,
            rev,
            sub: 0,
            events: Vec::new(),
        }
    }

    /// The revision this write creates if it changes anything.
    pub fn revision(&self) -> i64 {
        self.rev
    }

    /// The revision reads inside this txn observe: its own changes once it has made any.
    pub fn read_revision(&self) -> i64 {
        if self.sub > 0 {
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

    fn next_revision(&mut self) -> Revision {
        let r = Revision::new(self.rev, self.sub);
        self.sub += 1;
        r
    }

    fn record(&mut self, rev: Revision, kv: KeyValue, tombstone: bool) {
        let rec = KvRecord {
            kv: Some(kv.clone()),
            tombstone,
        };
        self.batch.insert(&rev.to_key()[..], rec.encode_to_vec());
        self.store
            .index
            .push(&kv.key, IndexEntry { rev, tombstone });
        self.store.unflushed.insert(rev, kv);
    }

    /// Ends the write. If anything changed, the store's revision advances and the change
    /// events (with previous versions) are returned in order.
    pub fn finish(self) -> Vec<Event> {
        if self.sub > 0 {
            self.store.current = self.rev;
            self.batch
                .insert(META_REVISION, &self.rev.to_be_bytes()[..]);
        }
        self.events
    }
}
