//! The member's applied state, shared by the raft state machine (writer) and the API
//! services (readers).

use parking_lot::{Mutex, RwLock};

use crate::alarm::Alarms;
use crate::cluster::bootstrap::is_local;
use crate::lease::Lessor;
use crate::mvcc::MvccStore;
use crate::storage::Backend;
use crate::watch::hub::WatchHub;

/// Everything the state machine applies to.
///
/// Lock order: `mvcc` before `lessor` before `alarms`. The state machine holds the `mvcc` write lock from
/// the first change of an entry until its batch is in the backend, so readers never see an
/// index entry whose record is not stored yet.
pub struct KvState {
    pub mvcc: RwLock<MvccStore>,
    pub lessor: Mutex<Lessor>,
    pub alarms: Mutex<Alarms>,
    pub hub: WatchHub,
    pub backend: Backend,
}

impl KvState {
    /// Loads the state from the backend.
    pub fn open(backend: Backend, min_lease_ttl: i64) -> crate::error::Result<Self> {
        let (mvcc, lessor) = load(&backend.state(), min_lease_ttl)?;
        let alarms = Alarms::open(&backend.state())?;
        let hub = WatchHub::new(mvcc.current_revision());
        Ok(KvState {
            mvcc: RwLock::new(mvcc),
            lessor: Mutex::new(lessor),
            alarms: Mutex::new(alarms),
            hub,
            backend,
        })
    }
}

impl KvState {
    /// Every entry of the state database except this member's own (identity), copied at
    /// one point in time: the content of raft snapshots and backup snapshots.
    pub fn export(&self) -> crate::error::Result<Vec<(sled::IVec, sled::IVec)>> {
        // Holding the store still while copying makes the copy one point in time.
        let _frozen = self.mvcc.read();
        let entries = self
            .backend
            .state()
            .iter()
            .filter(|r| r.as_ref().map_or(true, |(k, _)| !is_local(k)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(entries)
    }

    /// CRC-32C of the replicated state (keys, history, leases, alarms, member attributes),
    /// without the raft positions that differ between members at the same revision.
    pub fn hash(&self) -> crate::error::Result<u32> {
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
        let mut digest = crc.digest();
        for (k, v) in self.export()? {
            if !crate::raft::state_machine::is_raft_position(&k) {
                digest.update(&k);
                digest.update(&v);
            }
        }
        Ok(digest.finalize())
    }

    /// Rewrites the backend's state database to give freed space back to the filesystem
    /// (etcd's defragment). Writes and reads wait meanwhile, as they do in etcd.
    pub fn defragment(&self) -> Result<(), crate::storage::BackendError> {
        let mut mvcc = self.mvcc.write();
        let tree = self.backend.defragment()?;
        mvcc.replace_tree(tree);
        Ok(())
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
