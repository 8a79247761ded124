//! The openraft state machine: applies committed entries to [`KvState`], and builds and
//! installs snapshots of it.
//!
//! Each entry's changes and the entry's log id go to the backend in one atomic batch, so
//! after a crash the applied position and the data always agree and openraft replays the
//! rest from the durable log.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, RaftSnapshotBuilder, SnapshotMeta};
use serde::{Deserialize, Serialize};

use super::types::{
    decode, encode, storage_err, Applied, Entry, LogId, MemberNode, StorageError, StoredMembership,
    TypeConfig,
};
use crate::apply;
use crate::cluster::bootstrap::is_local;
use crate::mvcc::MvccStore;
use crate::state::KvState;
use etcd_proto::raftrequestpb::raft_request::Request;
use etcd_proto::raftrequestpb::{
    raft_response::Response, Empty, RaftRequest, RaftResponse, ResponseBatch,
};

const APPLIED: &[u8] = b"m/applied";
const MEMBERSHIP: &[u8] = b"m/membership";

/// Whether `key` records how far this member's raft has applied (not replicated data).
pub fn is_raft_position(key: &[u8]) -> bool {
    key == APPLIED || key == MEMBERSHIP
}

/// The membership last applied to the state of `backend` (before raft starts).
pub fn applied_membership(
    backend: &crate::storage::Backend,
) -> Result<Option<StoredMembership>, StorageError> {
    match backend.state().get(MEMBERSHIP).map_err(storage_err)? {
        Some(raw) => Ok(Some(decode(&raw)?)),
        None => Ok(None),
    }
}

/// A snapshot as stored in `member/snap/` and sent to followers.
#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta<u64, MemberNode>,
    /// Every entry of the state tree.
    entries: Vec<(serde_bytes::ByteBuf, serde_bytes::ByteBuf)>,
}

/// The state machine handed to openraft. Cheap to clone (it doubles as snapshot builder).
#[derive(Clone)]
pub struct StateMachine {
    state: Arc<KvState>,
    snap_dir: PathBuf,
}

impl StateMachine {
    pub fn new(state: Arc<KvState>) -> Self {
        let snap_dir = state.backend.dir().join("snap");
        StateMachine { state, snap_dir }
    }

    fn read<T: for<'de> Deserialize<'de>>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        match self.state.backend.state().get(key).map_err(storage_err)? {
            Some(raw) => decode(&raw).map(Some),
            None => Ok(None),
        }
    }

    fn snapshot_path(&self) -> PathBuf {
        self.snap_dir.join("current.snap")
    }

    fn save_snapshot_file(&self, file: &SnapshotFile) -> Result<Vec<u8>, StorageError> {
        let bytes = encode(file)?;
        std::fs::create_dir_all(&self.snap_dir).map_err(storage_err)?;
        let tmp = self.snap_dir.join("current.snap.tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(storage_err)?;
            f.write_all(&bytes).map_err(storage_err)?;
            f.sync_all().map_err(storage_err)?;
        }
        std::fs::rename(&tmp, self.snapshot_path()).map_err(storage_err)?;
        Ok(bytes)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        // A point-in-time view walked on a blocking thread: the state machine keeps
        // applying meanwhile (see `state::view`).
        let state = self.state.clone();
        let exported = tokio::task::spawn_blocking(move || state.export())
            .await
            .map_err(storage_err)?
            .map_err(storage_err)?;
        let entries: Vec<_> = exported
            .into_iter()
            .map(|(k, v)| {
                (
                    serde_bytes::ByteBuf::from(k.to_vec()),
                    serde_bytes::ByteBuf::from(v.to_vec()),
                )
            })
            .collect();
        let find = |key: &[u8]| {
            entries
                .iter()
                .find(|(k, _)| k.as_slice() == key)
                .map(|(_, v)| v.as_slice())
        };
        let last_log_id: Option<LogId> = find(APPLIED).map(decode).transpose()?;
        let last_membership: StoredMembership = find(MEMBERSHIP)
            .map(decode)
            .transpose()?
            .unwrap_or_default();
        let snapshot_id = format!(
            "{}-{}",
            last_log_id.map(|l| l.index).unwrap_or(0),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis()
        );
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        let file = SnapshotFile {
            meta: meta.clone(),
            entries,
        };
        let bytes = self.save_snapshot_file(&file)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((
            self.read(APPLIED)?,
            self.read(MEMBERSHIP)?.unwrap_or_default(),
        ))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        // All entries of one call go to the backend in one atomic batch together with the
        // last applied log id; the store stays write-locked until the batch is in, so no
        // reader sees an index entry whose record is not stored yet.
        let mut out = Vec::new();
        let mut published = Vec::new();
        let mut batch = sled::Batch::default();
        let mut mvcc = self.state.mvcc.write();
        let mut last_applied = None;
        for entry in entries {
            last_applied = Some(entry.log_id);
            let response = match entry.payload {
                EntryPayload::Normal(p) => {
                    let mut lessor = self.state.lessor.lock();
                    let mut alarms = self.state.alarms.lock();
                    let mut target = apply::Target {
                        mvcc: &mut mvcc,
                        lessor: &mut lessor,
                        alarms: &mut alarms,
                    };
                    let mut apply_one = |req| {
                        let o = apply::apply(&mut target, &mut batch, req);
                        if !o.events.is_empty() {
                            published.push((o.response.revision, o.events));
                        }
                        o.response
                    };
                    match p.0.request {
                        Some(Request::Batch(b)) => {
                            let responses: Vec<RaftResponse> =
                                b.requests.into_iter().map(&mut apply_one).collect();
                            RaftResponse {
                                response: Some(Response::Batch(ResponseBatch { responses })),
                                revision: target.mvcc.current_revision(),
                            }
                        }
                        request => apply_one(RaftRequest { request }),
                    }
                }
                EntryPayload::Membership(m) => {
                    let stored = StoredMembership::new(Some(entry.log_id), m);
                    batch.insert(MEMBERSHIP, encode(&stored)?);
                    empty_response(&mvcc)
                }
                EntryPayload::Blank => empty_response(&mvcc),
            };
            out.push(Applied(response));
        }
        if let Some(log_id) = last_applied {
            batch.insert(APPLIED, encode(&Some(log_id))?);
            self.state.backend.apply(batch).map_err(storage_err)?;
        }
        mvcc.batch_applied();
        drop(mvcc);
        for (revision, events) in published {
            self.state.hub.publish(revision, events);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, MemberNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let index = meta.last_log_id.map_or(0, |l| l.index);
        tracing::info!(target: "etcdserver", "applying snapshot at index {index}...");
        let file: SnapshotFile = decode(snapshot.get_ref())?;
        // No export may be walking the tree this replaces.
        let _exclusive = self.state.maintenance.clone().write_owned().await;
        let tree = &self.state.backend.state();
        let mut mvcc = self.state.mvcc.write();
        let mut lessor = self.state.lessor.lock();
        let mut batch = sled::Batch::default();
        for key in tree.iter().keys() {
            let key = key.map_err(storage_err)?;
            if !is_local(&key) {
                batch.remove(key);
            }
        }
        for (k, v) in file.entries.iter().filter(|(k, _)| !is_local(k)) {
            batch.insert(k.as_slice(), v.as_slice());
        }
        self.state.backend.apply(batch).map_err(storage_err)?;
        let primary = lessor.is_primary();
        (*mvcc, *lessor) = crate::state::load(tree, lessor.min_ttl()).map_err(storage_err)?;
        *self.state.alarms.lock() = crate::alarm::Alarms::open(tree).map_err(storage_err)?;
        if primary {
            lessor.promote(std::time::Duration::ZERO);
        }
        self.state.hub.reset(mvcc.current_revision());
        drop((mvcc, lessor));
        self.save_snapshot_file(&SnapshotFile {
            meta: meta.clone(),
            entries: file.entries,
        })?;
        tracing::info!(target: "etcdserver", "finished applying incoming snapshot at index {index}");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let bytes = match std::fs::read(self.snapshot_path()) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(storage_err(e)),
        };
        let file: SnapshotFile = decode(&bytes)?;
        Ok(Some(Snapshot {
            meta: file.meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}

fn empty_response(mvcc: &MvccStore) -> RaftResponse {
    RaftResponse {
        response: Some(Response::Empty(Empty {})),
        revision: mvcc.current_revision(),
    }
}
