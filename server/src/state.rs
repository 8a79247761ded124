//! The member's applied state, shared by the raft state machine (writer) and the API
//! services (readers).

use parking_lot::{Mutex, RwLock};

use crate::lease::Lessor;
use crate::mvcc::MvccStore;
use crate::storage::Backend;
use crate::watch::hub::WatchHub;

/// Everything the state machine applies to.
///
/// Lock order: `mvcc` before `lessor`. The state machine holds the `mvcc` write lock from
/// the first change of an entry until its batch is in the backend, so readers never see an
/// index entry whose record is not stored yet.
pub struct KvState {
    pub mvcc: RwLock<MvccStore>,
    pub lessor: Mutex<Lessor>,
    pub hub: WatchHub,
    pub backend: Backend,
}

impl KvState {
    /// Loads the state from the backend.
    pub fn open(backend: Backend, min_lease_ttl: i64) -> crate::error::Result<Self> {
        let (mvcc, lessor) = load(&backend.state, min_lease_ttl)?;
        let hub = WatchHub::new(mvcc.current_revision());
        Ok(KvState {
            mvcc: RwLock::new(mvcc),
            lessor: Mutex::new(lessor),
            hub,
            backend,
        })
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
