//! The member's applied state, shared by the raft state machine (writer) and the API
//! services (readers).
//!
//! Whole-database work (exports, hashes, defragmentation, purging what compaction dropped)
//! is done here without holding the MVCC lock for its length: see [`view`] for how an
//! export gets one point in time, [`purge`] for compaction's deletions and
//! [`KvState::defragment`] for the rewrite.

pub mod purge;
#[cfg(test)]
pub mod testing;
pub mod view;

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::alarm::Alarms;
use crate::auth::store::AuthStore;
use crate::auth::tokens::Tokens;
use crate::error::EtcdError;
use crate::lease::Lessor;
use crate::mvcc::MvccStore;
use crate::storage::{keys, Backend};
use crate::watch::hub::WatchHub;

/// Everything the state machine applies to.
///
/// Lock order: `mvcc` before `lessor` before `alarms` before `auth`. The state machine
/// holds the `mvcc` write lock from the first change of an entry until its batch is in the
/// backend, so readers never see an index entry whose record is not stored yet; and a
/// reader holding the `mvcc` read lock sees the permissions of the same point in time.
pub struct KvState {
    pub mvcc: RwLock<MvccStore>,
    pub lessor: Mutex<Lessor>,
    pub alarms: Mutex<Alarms>,
    pub auth: RwLock<AuthStore>,
    pub hub: WatchHub,
    pub backend: Backend,
    /// Shared by [`view::StateView`]s, taken exclusively by whatever replaces the state
    /// tree under them (defragmentation, snapshot installation).
    pub maintenance: Arc<tokio::sync::RwLock<()>>,
}

impl KvState {
    /// Loads the state from the backend.
    pub fn open(
        backend: Backend,
        min_lease_ttl: i64,
        tokens: Tokens,
    ) -> crate::error::Result<Self> {
        let (mvcc, lessor) = load(&backend.state(), min_lease_ttl)?;
        let alarms = Alarms::open(&backend.state())?;
        let auth = AuthStore::open(&backend.state(), tokens)?;
        let hub = WatchHub::new(mvcc.current_revision());
        Ok(KvState {
            mvcc: RwLock::new(mvcc),
            lessor: Mutex::new(lessor),
            alarms: Mutex::new(alarms),
            auth: RwLock::new(auth),
            hub,
            backend,
            maintenance: Arc::default(),
        })
    }
}

impl KvState {
    /// Every entry of the state database that travels in snapshots (all but this
    /// member's own, see [`keys::Reach`]), at one point in time: the content of raft
    /// snapshots. A key of no known kind is refused. Blocks; run it off the runtime.
    pub fn export(&self) -> crate::error::Result<Vec<(sled::IVec, sled::IVec)>> {
        Ok(self.view()?.iter().collect::<Result<Vec<_>, _>>()?)
    }

    /// CRC-32C of the replicated state (history, revisions, leases, alarms, member
    /// attributes), without the raft positions that differ between members at the same
    /// revision. Blocks; run it off the runtime.
    pub fn hash(&self) -> crate::error::Result<u32> {
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
        let mut digest = crc.digest();
        for entry in self.view()?.iter() {
            let (k, v) = entry?;
            let reach = keys::reach(&k).map_err(|e| EtcdError::Internal(e.to_string()))?;
            if reach.in_hash() {
                digest.update(&k);
                digest.update(&v);
            }
        }
        Ok(digest.finalize())
    }

    /// Rewrites the backend's state database to give freed space back to the filesystem
    /// (etcd's defragment). Blocks; run it off the runtime.
    ///
    /// Unlike etcd, which holds its write lock for the whole rewrite, reads and writes go
    /// on while the entries are copied (the backend replays the writes made meanwhile into
    /// the copy); both wait only while the caught-up copy is swapped in.
    pub fn defragment(&self) -> Result<(), crate::storage::BackendError> {
        let _exclusive = self.maintenance.blocking_write();
        let done = self
            .backend
            .defragment(|| self.mvcc.write(), |mvcc, tree| mvcc.replace_tree(tree));
        crate::memory::release_free_memory();
        done
    }
}

/// Builds the store and the lessor from a state tree, re-attaching keys to their leases.
pub fn load(tree: &sled::Tree, min_lease_ttl: i64) -> crate::error::Result<(MvccStore, Lessor)> {
    let mvcc = MvccStore::open(tree.clone())?;
    let mut lessor = Lessor::open(tree, min_lease_ttl)?;
    let all = etcd_proto::etcdserverpb::RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..Default::default()
    };
    for kv in mvcc.range(&all)?.kvs {
        if kv.lease != 0 {
            lessor.reattach(&kv.key, 0, kv.lease);
        }
    }
    Ok((mvcc, lessor))
}
