//! The raft log on the write-ahead log ([`crate::wal`]).
//!
//! `append` writes the entries and fdatasyncs the segment before it reports them durable,
//! in the raft task itself, as etcd saves its WAL in its raft loop. Proposals that arrive
//! meanwhile queue up and go to the log together in the next append (and the leader's
//! batcher packs concurrent requests into one entry), so concurrent writes share one
//! sync. Nothing is acknowledged before it is durable. The vote is synced when saved; the
//! committed log id rides along with the next synced write.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{EntryPayload, Membership, RaftLogReader, Vote};
use std::collections::{BTreeMap, BTreeSet};

use super::types::{
    decode, encode, storage_err, Entry, LogId, MemberNode, StorageError, TypeConfig,
};
use crate::storage::Backend;
use crate::wal::Wal;

/// The log store handed to openraft; its clones share one log.
#[derive(Clone)]
pub struct LogStore {
    wal: Arc<Wal>,
    /// The applied state, made durable before the log behind it is purged.
    backend: Backend,
}

impl LogStore {
    pub fn new(wal: Arc<Wal>, backend: Backend) -> Self {
        LogStore { wal, backend }
    }
}

/// The log id of the last entry of `wal`, or of its purge point when it holds none.
fn last_log_id(wal: &Wal) -> Result<Option<LogId>, StorageError> {
    if let Some((_, last)) = wal.bounds() {
        if let Some((_, raw)) = wal.read(last, last + 1).map_err(storage_err)?.pop() {
            return Ok(Some(decode::<Entry>(&raw)?.log_id));
        }
    }
    purged(wal)
}

/// The last commit index this member learned, as openraft recorded it through
/// `save_committed` before applying up to it (etcd's raft `HardState.Commit`). 0 before
/// anything was committed.
pub fn committed_index(wal: &Wal) -> Result<u64, StorageError> {
    Ok(committed(wal)?.map_or(0, |l| l.index))
}

fn committed(wal: &Wal) -> Result<Option<LogId>, StorageError> {
    Ok(wal
        .committed()
        .map(|raw| decode::<Option<LogId>>(&raw))
        .transpose()?
        .flatten())
}

fn purged(wal: &Wal) -> Result<Option<LogId>, StorageError> {
    wal.purged().map(|(_, raw)| decode(&raw)).transpose()
}

/// Appends, after the last entry of the log, a membership entry that leaves member `id` the
/// only voter (`--force-new-cluster`). Every entry already in the log stays, and the member,
/// alone in its cluster, commits them all once it has elected itself, as etcd does.
/// Answers the index of the new entry, or `None` for an empty log.
pub fn force_single_voter(
    wal: &Wal,
    id: u64,
    node: MemberNode,
) -> Result<Option<u64>, StorageError> {
    let Some(last) = last_log_id(wal)? else {
        return Ok(None);
    };
    let membership = Membership::new(vec![BTreeSet::from([id])], BTreeMap::from([(id, node)]));
    let entry = Entry {
        log_id: LogId::new(last.leader_id, last.index + 1),
        payload: EntryPayload::Membership(membership),
    };
    wal.append(&[(entry.log_id.index, encode(&entry)?)])
        .map_err(storage_err)?;
    Ok(Some(entry.log_id.index))
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
            Bound::Included(i) => i + 1,
            Bound::Excluded(i) => *i,
            Bound::Unbounded => u64::MAX,
        };
        self.wal
            .read(start, end)
            .map_err(storage_err)?
            .iter()
            .map(|(_, raw)| decode(raw))
            .collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        Ok(LogState {
            last_purged_log_id: purged(&self.wal)?,
            last_log_id: last_log_id(&self.wal)?,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        self.wal.save_vote(&encode(vote)?).map_err(storage_err)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        self.wal.vote().map(|raw| decode(&raw)).transpose()
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.wal.save_committed(&encode(&committed)?);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        committed(&self.wal)
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
        let encoded = entries
            .into_iter()
            .map(|e| Ok((e.log_id.index, encode(&e)?)))
            .collect::<Result<Vec<_>, StorageError>>()?;
        match self.wal.append(&encoded) {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let text = e.to_string();
                callback.log_io_completed(Err(io::Error::other(text)));
                Err(storage_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.wal.truncate(log_id.index).map_err(storage_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // The state may lag the log on disk (see `storage`); it must be durable up to the
        // purge point before the entries go.
        self.backend.sync_state().map_err(storage_err)?;
        self.wal
            .purge(log_id.index, &encode(&log_id)?)
            .map_err(storage_err)
    }
}

#[cfg(test)]
mod tests {
    use openraft::CommittedLeaderId;

    use super::*;
    use crate::wal::WalOptions;

    #[tokio::test]
    async fn the_commit_index_is_what_openraft_saved_last() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Arc::new(Wal::open(&dir.path().join("wal"), WalOptions::default()).unwrap());
        let backend = Backend::open(dir.path()).unwrap();
        let mut store = LogStore::new(wal.clone(), backend);
        assert_eq!(committed_index(&wal).unwrap(), 0);
        for index in [3, 7] {
            let log_id = LogId::new(CommittedLeaderId::new(2, 1), index);
            store.save_committed(Some(log_id)).await.unwrap();
            assert_eq!(committed_index(&wal).unwrap(), index);
        }
    }
}
