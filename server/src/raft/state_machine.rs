//! The openraft state machine: applies committed entries to [`KvState`], and builds and
//! installs snapshots of it.
//!
//! Each entry's changes and the entry's log id go to the backend in one atomic batch, so
//! after a crash the applied position and the data always agree and openraft replays the
//! rest from the durable log.

use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, RaftSnapshotBuilder, SnapshotMeta};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::snapshot_file::{self, SnapDir};
use super::snapshot_install;
use super::types::{
    decode, encode, storage_err, Applied, Entry, LogId, MemberNode, SnapshotData, StorageError,
    StoredMembership, TypeConfig,
};
use crate::apply;
use crate::mvcc::MvccStore;
use crate::state::KvState;
use crate::storage::keys::{APPLIED, MEMBERSHIP};
use etcd_proto::raftrequestpb::raft_request::Request;
use etcd_proto::raftrequestpb::{
    raft_response::Response, Empty, RaftRequest, RaftResponse, ResponseBatch,
};

/// The membership last applied to the state of `backend` (before raft starts).
pub fn applied_membership(
    backend: &crate::storage::Backend,
) -> Result<Option<StoredMembership>, StorageError> {
    match backend.state().get(MEMBERSHIP).map_err(storage_err)? {
        Some(raw) => Ok(Some(decode(&raw)?)),
        None => Ok(None),
    }
}

/// The state machine handed to openraft. Cheap to clone (it doubles as snapshot builder).
#[derive(Clone)]
pub struct StateMachine {
    state: Arc<KvState>,
    snap: Arc<SnapDir>,
}

impl StateMachine {
    pub fn new(state: Arc<KvState>) -> Self {
        let snap = Arc::new(snap_dir(&state.backend));
        StateMachine { state, snap }
    }

    fn read<T: for<'de> Deserialize<'de>>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        match self.state.backend.state().get(key).map_err(storage_err)? {
            Some(raw) => decode(&raw).map(Some),
            None => Ok(None),
        }
    }
}

impl StateMachine {
    /// Makes the incoming file hold the snapshot `data` holds, durably. openraft hands
    /// back the file [`RaftStateMachine::begin_receiving_snapshot`] gave it, written; any
    /// other file (openraft's storage suite passes the leader's own) is copied in.
    async fn take_into_incoming(&self, mut data: SnapshotData) -> Result<(), StorageError> {
        use std::os::unix::fs::MetadataExt;
        use tokio::io::AsyncSeekExt;
        data.flush().await.map_err(storage_err)?;
        let given = data.metadata().await.map_err(storage_err)?;
        let incoming = std::fs::metadata(self.snap.incoming()).ok();
        if incoming.is_some_and(|i| (i.dev(), i.ino()) == (given.dev(), given.ino())) {
            return data.sync_all().await.map_err(storage_err);
        }
        data.rewind().await.map_err(storage_err)?;
        let mut copy = tokio::fs::File::from_std(self.snap.create_incoming()?);
        tokio::io::copy(&mut data, &mut copy)
            .await
            .map_err(storage_err)?;
        copy.flush().await.map_err(storage_err)?;
        copy.sync_all().await.map_err(storage_err)
    }
}

/// Where `backend`'s member keeps its raft snapshots.
pub fn snap_dir(backend: &crate::storage::Backend) -> SnapDir {
    SnapDir::new(backend.dir().join("snap"))
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        // A point-in-time view walked on a blocking thread: the state machine keeps
        // applying meanwhile (see `state::view`).
        let (state, snap) = (self.state.clone(), self.snap.clone());
        let (meta, file) = tokio::task::spawn_blocking(move || {
            let view = state.view().map_err(storage_err)?;
            let last_log_id: Option<LogId> = view
                .outside_history(APPLIED)
                .map(|v| decode(v))
                .transpose()?;
            let last_membership: StoredMembership = view
                .outside_history(MEMBERSHIP)
                .map(|v| decode(v))
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
            snap.write_current(&meta, view.iter())
        })
        .await
        .map_err(storage_err)??;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(tokio::fs::File::from_std(file)),
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
                    let mut auth = self.state.auth.write();
                    let mut target = apply::Target {
                        mvcc: &mut mvcc,
                        lessor: &mut lessor,
                        alarms: &mut alarms,
                        auth: &mut auth,
                        index: entry.log_id.index,
                    };
                    let mut apply_one = |req| {
                        let o = apply::apply(&mut target, &mut batch, req);
                        if !o.events.is_empty() {
                            published.push((o.response.revision, o.events));
                        }
                        o.response
                    };
                    match p.0 {
                        RaftRequest {
                            request: Some(Request::Batch(b)),
                            ..
                        } => {
                            let responses: Vec<RaftResponse> =
                                b.requests.into_iter().map(&mut apply_one).collect();
                            RaftResponse {
                                response: Some(Response::Batch(ResponseBatch { responses })),
                                revision: target.mvcc.current_revision(),
                            }
                        }
                        request => apply_one(request),
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

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotData>, StorageError> {
        let file = self.snap.create_incoming()?;
        Ok(Box::new(tokio::fs::File::from_std(file)))
    }

    /// Installs the snapshot openraft received into the incoming file: checked whole,
    /// made the current snapshot, then the state replaced from it in batches (see
    /// [`snapshot_install`]), with the store's lock held only for the replacement.
    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, MemberNode>,
        snapshot: Box<SnapshotData>,
    ) -> Result<(), StorageError> {
        let index = meta.last_log_id.map_or(0, |l| l.index);
        tracing::info!(target: "etcdserver", "applying snapshot at index {index}...");
        self.take_into_incoming(*snapshot).await?;
        let incoming = self.snap.incoming();
        let entries = tokio::task::spawn_blocking(move || snapshot_install::check(&incoming))
            .await
            .map_err(storage_err)??;
        self.snap.promote_incoming()?;
        // No view may be walking the tree this replaces.
        let exclusive = self.state.maintenance.clone().write_owned().await;
        let (state, snap) = (self.state.clone(), self.snap.clone());
        tokio::task::spawn_blocking(move || {
            let _exclusive = exclusive;
            let tree = &state.backend.state();
            let mut mvcc = state.mvcc.write();
            let mut lessor = state.lessor.lock();
            snapshot_install::replace_state(&state.backend, &snap.current())?;
            let primary = lessor.is_primary();
            (*mvcc, *lessor) = crate::state::load(tree, lessor.min_ttl()).map_err(storage_err)?;
            *state.alarms.lock() = crate::alarm::Alarms::open(tree).map_err(storage_err)?;
            state.auth.write().reload(tree).map_err(storage_err)?;
            if primary {
                lessor.promote(std::time::Duration::ZERO);
            }
            state.hub.reset(mvcc.current_revision());
            Ok::<_, StorageError>(())
        })
        .await
        .map_err(storage_err)??;
        tracing::info!(target: "etcdserver", "finished applying incoming snapshot at index {index} ({entries} entries)");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let snap = self.snap.clone();
        let current = tokio::task::spawn_blocking(move || snapshot_file::open_current(&snap))
            .await
            .map_err(storage_err)??;
        Ok(current.map(|(meta, file)| Snapshot {
            meta,
            snapshot: Box::new(tokio::fs::File::from_std(file)),
        }))
    }
}

fn empty_response(mvcc: &MvccStore) -> RaftResponse {
    RaftResponse {
        response: Some(Response::Empty(Empty {})),
        revision: mvcc.current_revision(),
    }
}

#[cfg(test)]
mod tests {
    //! One key of every kind, each written by its owner into a real backend, and what the
    //! snapshot, install and hash paths do with each.

    use std::collections::{BTreeMap, BTreeSet};

    use etcd_proto::etcdserverpb::alarm_request::AlarmAction;
    use etcd_proto::etcdserverpb::{
        AlarmRequest, AlarmType, CompactionRequest, LeaseGrantRequest, PutRequest,
    };
    use etcd_proto::etcdserverpb::{AuthRoleAddRequest, AuthUserGrantRoleRequest};
    use etcd_proto::raftrequestpb::auth_change::Change;
    use etcd_proto::raftrequestpb::{AuthChange, Empty, MemberAttributes, UserAdd};
    use openraft::{CommittedLeaderId, Membership};

    use super::*;
    use crate::cluster::bootstrap::persist_identity;
    use crate::storage::keys::{self, KeyKind};
    use crate::storage::Backend;

    struct Member {
        _dir: tempfile::TempDir,
        sm: StateMachine,
        state: Arc<KvState>,
    }

    impl Member {
        /// A started member `id` (its identity persisted) with nothing applied.
        fn new(id: u64) -> Member {
            let dir = tempfile::tempdir().unwrap();
            let backend = Backend::open(dir.path()).unwrap();
            let members = BTreeMap::from([(id, MemberNode::default())]);
            persist_identity(&backend, id, 99, &members).unwrap();
            let state = Arc::new(KvState::open(backend, 1, Default::default()).unwrap());
            Member {
                sm: StateMachine::new(state.clone()),
                state,
                _dir: dir,
            }
        }

        /// Applies `requests` as entries 2.., after a membership entry at index 1.
        async fn apply(&mut self, requests: Vec<Request>) {
            let log_id = |index| LogId::new(CommittedLeaderId::new(1, 1), index);
            let membership = Membership::new(
                vec![BTreeSet::from([1])],
                BTreeMap::from([(1, MemberNode::default())]),
            );
            let mut entries = vec![Entry {
                log_id: log_id(1),
                payload: EntryPayload::Membership(membership),
            }];
            for (i, request) in requests.into_iter().enumerate() {
                entries.push(Entry {
                    log_id: log_id(i as u64 + 2),
                    payload: EntryPayload::Normal(super::super::types::Proposal(RaftRequest {
                        request: Some(request),
                        header: None,
                    })),
                });
            }
            for applied in self.sm.apply(entries).await.unwrap() {
                let failed = matches!(applied.0.response, Some(Response::Error(_)));
                assert!(!failed, "{:?}", applied.0);
            }
        }

        /// What openraft does with a snapshot sent here: received into a file of this
        /// member's, then installed.
        async fn receive(&mut self, snapshot: Snapshot<TypeConfig>) -> Result<(), StorageError> {
            let mut data = self.sm.begin_receiving_snapshot().await.unwrap();
            let mut from = snapshot.snapshot;
            tokio::io::copy(&mut *from, &mut *data).await.unwrap();
            self.sm.install_snapshot(&snapshot.meta, data).await
        }

        /// The keys of this member's current snapshot.
        fn snapshot_keys(&self) -> Vec<Vec<u8>> {
            let (_, entries) = snapshot_file::open(&self.sm.snap.current(), true).unwrap();
            entries.map(|e| e.unwrap().0).collect()
        }

        fn tree(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
            let tree = self.state.backend.state();
            tree.iter()
                .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
                .collect()
        }
    }

    fn kinds<'a>(keys: impl IntoIterator<Item = &'a [u8]>) -> BTreeSet<KeyKind> {
        keys.into_iter()
            .map(|k| keys::classify(k).unwrap())
            .collect()
    }

    fn all_kinds(pick: fn(keys::Reach) -> bool) -> BTreeSet<KeyKind> {
        KeyKind::ALL
            .iter()
            .copied()
            .filter(|k| pick(k.reach()))
            .collect()
    }

    /// Member 1 after a put, a lease, an alarm, member attributes and a compaction: every
    /// writer of the state tree has written.
    async fn member_with_every_kind() -> Member {
        let mut m = Member::new(1);
        m.apply(vec![
            Request::Put(PutRequest {
                key: b"foo".to_vec(),
                value: b"bar".to_vec(),
                ..Default::default()
            }),
            Request::LeaseGrant(LeaseGrantRequest { ttl: 60, id: 7 }),
            Request::Alarm(AlarmRequest {
                action: AlarmAction::Activate as i32,
                member_id: 1,
                alarm: AlarmType::Corrupt as i32,
            }),
            Request::MemberAttributes(MemberAttributes {
                id: 1,
                name: "m1".into(),
                client_urls: vec!["http://127.0.0.1:2379".into()],
            }),
            Request::Compaction(CompactionRequest {
                revision: 2,
                physical: false,
            }),
            auth(Change::UserAdd(UserAdd {
                name: "root".into(),
                password_hash: b"hash".to_vec(),
                options: None,
            })),
            auth(Change::UserGrantRole(AuthUserGrantRoleRequest {
                user: "root".into(),
                role: "root".into(),
            })),
            auth(Change::RoleAdd(AuthRoleAddRequest {
                name: "readers".into(),
            })),
            auth(Change::Enable(Empty {})),
        ])
        .await;
        m
    }

    fn auth(change: Change) -> Request {
        Request::Auth(AuthChange {
            change: Some(change),
        })
    }

    /// Member 2 with a lease of its own (replaced by any snapshot), and its local keys.
    async fn receiver() -> (Member, Vec<(Vec<u8>, Vec<u8>)>) {
        let mut b = Member::new(2);
        b.apply(vec![Request::LeaseGrant(LeaseGrantRequest {
            ttl: 60,
            id: 8,
        })])
        .await;
        let own = b
            .tree()
            .into_iter()
            .filter(|(k, _)| !keys::reach(k).unwrap().in_snapshot())
            .collect();
        (b, own)
    }

    /// What a receiver holding `own` holds after installing `a`'s snapshot, in key order.
    fn installed(a: &Member, own: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut expected: Vec<_> = a
            .tree()
            .into_iter()
            .filter(|(k, _)| keys::reach(k).unwrap().in_snapshot())
            .chain(own)
            .collect();
        expected.sort();
        expected
    }

    #[tokio::test]
    async fn the_writers_write_every_kind_and_nothing_unknown() {
        let m = member_with_every_kind().await;
        let tree = m.tree();
        // The install marker exists only while an install runs (see
        // `an_interrupted_install_is_redone_at_start`).
        let mut expected = all_kinds(|_| true);
        expected.remove(&KeyKind::InstallPending);
        assert_eq!(
            kinds(tree.iter().map(|(k, _)| k.as_slice())),
            expected,
            "a kind no writer writes, or a writer this test misses"
        );
    }

    #[tokio::test]
    async fn snapshots_carry_all_but_local_keys_and_install_keeps_the_receivers_own() {
        let mut a = member_with_every_kind().await;
        let snapshot = a.sm.build_snapshot().await.unwrap();
        assert_eq!(
            kinds(a.snapshot_keys().iter().map(|k| k.as_slice())),
            all_kinds(keys::Reach::in_snapshot)
        );

        let (mut b, own) = receiver().await;
        assert_eq!(own.len(), 3, "member ID, cluster ID, pending members");
        b.receive(snapshot).await.unwrap();
        let expected = installed(&a, own);
        assert_eq!(
            b.tree(),
            expected,
            "the sender's state and the receiver's own keys"
        );
        assert_eq!(b.state.hash().unwrap(), a.state.hash().unwrap());
        assert_eq!(
            b.snapshot_keys(),
            a.snapshot_keys(),
            "b keeps the snapshot it installed"
        );
    }

    #[tokio::test]
    async fn an_interrupted_install_is_redone_at_start() {
        let mut a = member_with_every_kind().await;
        a.sm.build_snapshot().await.unwrap();
        let (b, own) = receiver().await;
        // As a stop half-way leaves it: the snapshot is current, the marker is in, and
        // the state is neither the old nor the new one.
        std::fs::create_dir_all(b.sm.snap.current().parent().unwrap()).unwrap();
        std::fs::copy(a.sm.snap.current(), b.sm.snap.current()).unwrap();
        let tree = b.state.backend.state();
        tree.insert(keys::INSTALL_PENDING, b"x".to_vec()).unwrap();
        tree.remove(keys::REVISION).unwrap();
        let redone = snapshot_install::finish_interrupted(&b.state.backend, &b.sm.snap).unwrap();
        assert!(redone);
        let expected = installed(&a, own);
        assert_eq!(b.tree(), expected);
        assert!(!snapshot_install::finish_interrupted(&b.state.backend, &b.sm.snap).unwrap());
    }

    #[tokio::test]
    async fn the_hash_covers_exactly_the_replicated_kinds() {
        let m = member_with_every_kind().await;
        let tree = m.state.backend.state();
        let before = m.state.hash().unwrap();
        for (k, v) in m.tree() {
            tree.insert(&k, b"changed".to_vec()).unwrap();
            let changed = m.state.hash().unwrap() != before;
            tree.insert(&k, v).unwrap();
            let kind = keys::classify(&k).unwrap();
            assert_eq!(changed, kind.reach().in_hash(), "{kind:?}");
        }
        assert_eq!(m.state.hash().unwrap(), before);
    }

    #[tokio::test]
    async fn a_key_of_no_known_kind_stops_snapshots_hash_and_install() {
        let mut a = member_with_every_kind().await;
        let snapshot = a.sm.build_snapshot().await.unwrap();
        a.state.backend.state().insert(b"m/unknown", b"x").unwrap();
        assert!(a.sm.build_snapshot().await.is_err());
        assert!(a.state.hash().is_err());
        assert!(a.state.export().is_err());

        // A snapshot holding one changes nothing on the receiver.
        let (_, entries) = snapshot_file::open(&a.sm.snap.current(), true).unwrap();
        let mut entries: Vec<_> = entries.map(|e| e.unwrap()).collect();
        entries.push((b"m/unknown".to_vec(), b"x".to_vec()));
        entries.sort();
        let b = Member::new(2);
        let before = b.tree();
        let mut sm = b.sm.clone();
        let path = b.sm.snap.incoming();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let ok = entries.into_iter().map(Ok::<_, std::io::Error>);
        let file = snapshot_file::write(&path, &snapshot.meta, ok).unwrap();
        let data = Box::new(tokio::fs::File::from_std(file));
        assert!(sm.install_snapshot(&snapshot.meta, data).await.is_err());
        assert_eq!(b.tree(), before);
        assert!(
            !sm.snap.current().exists(),
            "a refused snapshot is not kept"
        );
    }
}
