//! Installing a raft snapshot into the state database in bounded memory.
//!
//! The snapshot file is checked whole first (hash, framing, every key of a known kind)
//! without changing anything, then made the current snapshot, then the state is replaced
//! in batches: a marker ([`INSTALL_PENDING`]) goes in first, every key a snapshot carries
//! is removed, the snapshot's entries are inserted, and the marker goes out with the last
//! batch. sled recovers a prefix of the batches applied, so a member stopped half-way
//! finds the marker on its next start and redoes the install from the current snapshot
//! ([`finish_interrupted`]) before it loads its state.

use std::path::Path;

use super::snapshot_file::{self, SnapDir};
use super::types::{storage_err, StorageError};
use crate::storage::keys::{self, INSTALL_PENDING};
use crate::storage::Backend;

/// Most entries, and bytes of keys and values, in one batch.
const BATCH_ENTRIES: usize = 10_000;
const BATCH_BYTES: usize = 4 << 20;

/// Reads the whole snapshot at `path` and refuses it if it is damaged or holds a key of
/// no known kind. Returns the number of entries.
pub fn check(path: &Path) -> Result<usize, StorageError> {
    let (_, entries) = snapshot_file::open(path, true)?;
    let mut n = 0;
    for entry in entries {
        let (k, _) = entry.map_err(storage_err)?;
        keys::reach(&k).map_err(storage_err)?;
        n += 1;
    }
    Ok(n)
}

/// A batch that is applied when it grows past the limits.
struct Batches<'a> {
    backend: &'a Backend,
    batch: sled::Batch,
    entries: usize,
    bytes: usize,
}

impl Batches<'_> {
    fn add(&mut self, bytes: usize) -> Result<(), StorageError> {
        self.entries += 1;
        self.bytes += bytes;
        if self.entries >= BATCH_ENTRIES || self.bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        let batch = std::mem::take(&mut self.batch);
        (self.entries, self.bytes) = (0, 0);
        self.backend.apply(batch).map_err(storage_err)
    }
}

/// Replaces everything a snapshot carries in the state database with the entries of the
/// (checked) snapshot at `path`; this member's own keys stay. Holds at most one batch.
pub fn replace_state(backend: &Backend, path: &Path) -> Result<(), StorageError> {
    let (meta, entries) = snapshot_file::open(path, false)?;
    let tree = backend.state();
    let mut out = Batches {
        backend,
        batch: sled::Batch::default(),
        entries: 0,
        bytes: 0,
    };
    let position = super::types::encode(&meta.last_log_id)?;
    out.batch.insert(INSTALL_PENDING, position);
    out.flush()?;
    for key in tree.iter().keys() {
        let key = key.map_err(storage_err)?;
        if keys::reach(&key).map_err(storage_err)?.in_snapshot() {
            out.bytes += key.len();
            out.batch.remove(key);
            out.add(0)?;
        }
    }
    out.flush()?;
    for entry in entries {
        let (k, v) = entry.map_err(storage_err)?;
        if keys::reach(&k).map_err(storage_err)?.in_snapshot() {
            let len = k.len() + v.len();
            out.batch.insert(k, v);
            out.add(len)?;
        }
    }
    out.batch.remove(INSTALL_PENDING);
    out.flush()?;
    backend.sync_state().map_err(storage_err)
}

/// Redoes an install a stop interrupted; true if there was one. Call before the state is
/// loaded.
pub fn finish_interrupted(backend: &Backend, snap: &SnapDir) -> Result<bool, StorageError> {
    if backend
        .state()
        .get(INSTALL_PENDING)
        .map_err(storage_err)?
        .is_none()
    {
        return Ok(false);
    }
    tracing::warn!(target: "etcdserver", "a snapshot installation was interrupted; installing {} again", snap.current().display());
    replace_state(backend, &snap.current())?;
    Ok(true)
}
