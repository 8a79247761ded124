//! The raft log on the backend.
//!
//! `append` writes the entries into the `raft_log` tree and fsyncs the log database before
//! it reports them durable, in the raft task itself, as etcd saves its WAL in its raft
//! loop. Proposals that arrive meanwhile queue up and go to the log together in the next
//! append (and the leader's batcher packs concurrent requests into one entry), so
//! concurrent writes share fsyncs. Nothing is acknowledged before it is durable. A
//! flusher thread that took the fsync off the raft task cost a lone write more in thread
//! hand-offs than it saved (measured with etcd-benchmark, one client and a thousand).

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{EntryPayload, Membership, RaftLogReader, Vote};
use std::collections::{BTreeMap, BTreeSet};

use super::types::{
    decode, encode, storage_err, Entry, LogId, MemberNode, StorageError, TypeConfig,
};
use crate::storage::Backend;

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const PURGED: &[u8] = b"last_purged";

/// The log store handed to openraft.
#[derive(Clone)]
pub struct LogStore {
    backend: Backend,
}

impl LogStore {
    pub fn new(backend: Backend) -> Self {
        LogStore { backend }
    }

    fn meta<T: for<'de> serde::Deserialize<'de>>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StorageError> {
        match self.backend.raft_meta.get(key).map_err(storage_err)? {
            Some(raw) => decode(&raw).map(Some),
            None => Ok(None),
        }
    }

    fn set_meta<T: serde::Serialize>(&self, key: &[u8], v: &T) -> Result<(), StorageError> {
        self.backend
            .raft_meta
            .insert(key, encode(v)?)
            .map_err(storage_err)?;
        Ok(())
    }

    async fn flush(&self) -> Result<(), StorageError> {
        self.backend
            .wal()
            .flush_async()
            .await
            .map_err(storage_err)?;
        Ok(())
    }
}

/// Appends, after the last entry of the log, a membership entry that leaves member `id` the
/// only voter (`--force-new-cluster`). Every entry already in the log stays, and the member,
/// alone in its cluster, commits them all once it has elected itself, as etcd does.
/// Answers the index of the new entry, or `None` for an empty log.
pub fn force_single_voter(
    backend: &Backend,
    id: u64,
    node: MemberNode,
) -> Result<Option<u64>, StorageError> {
    let last: Option<LogId> = match backend.raft_log.last().map_err(storage_err)? {
        Some((_, raw)) => Some(decode::<Entry>(&raw)?.log_id),
        None => match backend.raft_meta.get(PURGED).map_err(storage_err)? {
            Some(raw) => decode(&raw)?,
            None => None,
        },
    };
    let Some(last) = last else {
        return Ok(None);
    };
    let membership = Membership::new(vec![BTreeSet::from([id])], BTreeMap::from([(id, node)]));
    let entry = Entry {
        log_id: LogId::new(last.leader_id, last.index + 1),
        payload: EntryPayload::Membership(membership),
    };
    backend
        .raft_log
        .insert(index_key(entry.log_id.index), encode(&entry)?)
        .map_err(storage_err)?;
    backend.wal().flush().map_err(storage_err)?;
    Ok(Some(entry.log_id.index))
}

fn index_key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Bound::Included(index_key(*i)),
            Bound::Excluded(i) => Bound::Excluded(index_key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for item in self
            .backend
            .raft_log
            .range((Bound::Included(index_key(start)), end))
        {
            let (_, raw) = item.map_err(storage_err)?;
            out.push(decode(&raw)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.meta(PURGED)?;
        let last = match self.backend.raft_log.last().map_err(storage_err)? {
            Some((_, raw)) => Some(decode::<Entry>(&raw)?.log_id),
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        self.set_meta(VOTE, vote)?;
        self.flush().await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        self.meta(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.set_meta(COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.meta::<Option<LogId>>(COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut batch = sled::Batch::default();
        for e in entries {
            batch.insert(&index_key(e.log_id.index)[..], encode(&e)?);
        }
        self.backend
            .raft_log
            .apply_batch(batch)
            .map_err(storage_err)?;
        let flushed = self.backend.wal().flush().map(drop);
        callback.log_io_completed(flushed.map_err(io::Error::other));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for item in self.backend.raft_log.range(index_key(log_id.index)..) {
            batch.remove(item.map_err(storage_err)?.0);
        }
        self.backend
            .raft_log
            .apply_batch(batch)
            .map_err(storage_err)?;
        self.flush().await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // The state may lag the log on disk (see `storage`); it must hold everything up to
        // the purge point before the entries go.
        self.backend.flush_state().map_err(storage_err)?;
        self.set_meta(PURGED, &log_id)?;
        let mut batch = sled::Batch::default();
        for item in self.backend.raft_log.range(..=index_key(log_id.index)) {
            batch.remove(item.map_err(storage_err)?.0);
        }
        self.backend
            .raft_log
            .apply_batch(batch)
            .map_err(storage_err)?;
        Ok(())
    }
}
