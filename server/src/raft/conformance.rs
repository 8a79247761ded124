//! openraft's storage conformance suite run against our log store (on the WAL) and state
//! machine (on sled), each built fresh in a temporary data dir.

use std::sync::Arc;

use openraft::testing::{StoreBuilder, Suite};

use super::log_store::LogStore;
use super::state_machine::StateMachine;
use super::types::{storage_err, StorageError, TypeConfig};
use crate::state::KvState;
use crate::storage::Backend;
use crate::wal::{Wal, WalOptions};

struct Fresh;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Fresh {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().map_err(storage_err)?;
        let backend = Backend::open(dir.path()).map_err(storage_err)?;
        let wal = Wal::open(&dir.path().join("wal"), WalOptions::default()).map_err(storage_err)?;
        let state =
            Arc::new(KvState::open(backend.clone(), 1, Default::default()).map_err(storage_err)?);
        Ok((
            dir,
            LogStore::new(Arc::new(wal), backend),
            StateMachine::new(state),
        ))
    }
}

#[test]
fn log_store_and_state_machine_pass_openraft_suite() {
    Suite::test_all(Fresh).unwrap();
}
