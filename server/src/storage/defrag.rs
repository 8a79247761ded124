//! Defragmentation: rewriting the state database into a fresh one.
//!
//! sled keeps the space of deleted and overwritten values inside its files, so after a
//! compaction the database is as large as before; as with etcd's bbolt, only a rewrite
//! gives it back. The rewrite copies the live entries into `db.defrag`, then swaps
//! directories: `db` -> `db.old`, `db.defrag` -> `db`, and removes `db.old`. A crash at any
//! point leaves either the old or the new database complete, and [`recover`] finishes or
//! undoes the swap on the next start.

use std::io;
use std::path::{Path, PathBuf};

use super::{open_state, Backend, BackendError};

/// Entries copied per write batch.
const COPY_BATCH: usize = 10_000;

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Completes or rolls back a swap a crash interrupted, before the database is opened.
pub fn recover(db: &Path) -> io::Result<()> {
    let old = sibling(db, ".old");
    if !db.exists() && old.exists() {
        // Crashed between the two renames: the old database is whole, the copy may be too,
        // but only the old one is known to be.
        std::fs::rename(&old, db)?;
    }
    remove_if_present(&old)?;
    remove_if_present(&sibling(db, ".defrag"))
}

/// Opens the freshly written copy. sled releases a closed database's file lock from a
/// background thread, so the lock the copy held may linger for a moment after the copy
/// was dropped.
fn reopen(path: &Path) -> Result<super::StateDb, BackendError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match open_state(path) {
            Err(BackendError::Open {
                source: sled::Error::Io(e),
                ..
            }) if e.to_string().contains("could not acquire lock")
                && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

impl Backend {
    /// Rewrites the state database and swaps the copy in; returns the new state tree.
    ///
    /// The caller must keep every writer of the state out while this runs (the state
    /// machine writes under the MVCC write lock, which the caller holds).
    pub fn defragment(&self) -> Result<sled::Tree, BackendError> {
        let mut current = self.state.write();
        let path = super::state_path(&self.dir);
        let copy_path = sibling(&path, ".defrag");
        let old_path = sibling(&path, ".old");
        let io_err = |source| BackendError::DataDir {
            path: path.clone(),
            source,
        };
        remove_if_present(&copy_path).map_err(io_err)?;
        current.db.flush()?;
        {
            let copy = open_state(&copy_path)?;
            let mut batch = sled::Batch::default();
            let mut pending = 0;
            for item in current.tree.iter() {
                let (k, v) = item?;
                batch.insert(k, v);
                pending += 1;
                if pending == COPY_BATCH {
                    copy.tree.apply_batch(std::mem::take(&mut batch))?;
                    pending = 0;
                }
            }
            copy.tree.apply_batch(batch)?;
            copy.db.flush()?;
        }
        // The copy replaces a durable database: it must be durable itself before the swap.
        super::fsync_tree(&copy_path).map_err(io_err)?;
        std::fs::rename(&path, &old_path).map_err(io_err)?;
        std::fs::rename(&copy_path, &path).map_err(io_err)?;
        if let Some(parent) = path.parent() {
            crate::wal::segment::sync_dir(parent).map_err(io_err)?;
        }
        *current = reopen(&path)?;
        remove_if_present(&old_path).map_err(io_err)?;
        self.size_changed();
        Ok(current.tree.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defragment_keeps_entries_and_shrinks_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Backend::open(dir.path()).unwrap();
        let value = vec![7u8; 4096];
        for i in 0..3000u32 {
            backend
                .state()
                .insert(i.to_be_bytes(), value.clone())
                .unwrap();
        }
        for i in 0..2990u32 {
            backend.state().remove(i.to_be_bytes()).unwrap();
        }
        backend.sync_state().unwrap();
        let before = backend.db_size();
        let tree = backend.defragment().unwrap();
        assert!(
            backend.db_size() < before / 4,
            "{before} -> {}",
            backend.db_size()
        );
        assert_eq!(tree.len(), 10);
        assert_eq!(backend.state().len(), 10);
        assert_eq!(
            backend.state().get(2995u32.to_be_bytes()).unwrap().unwrap(),
            value
        );
        drop((tree, backend));
        let reopened = Backend::open(dir.path()).unwrap();
        assert_eq!(reopened.state().len(), 10);
    }

    #[test]
    fn defragment_twice_in_a_row() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Backend::open(dir.path()).unwrap();
        for round in 0..5u32 {
            backend
                .state()
                .insert(round.to_be_bytes(), vec![1u8; 100])
                .unwrap();
            backend.defragment().unwrap();
        }
        assert_eq!(backend.state().len(), 5);
    }

    #[test]
    fn an_interrupted_swap_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        {
            let backend = Backend::open(dir.path()).unwrap();
            backend.state().insert(b"k", b"v".to_vec()).unwrap();
            backend.sync_state().unwrap();
        }
        let db = super::super::state_path(dir.path());
        std::fs::rename(&db, sibling(&db, ".old")).unwrap();
        std::fs::create_dir_all(sibling(&db, ".defrag")).unwrap();
        let backend = Backend::open(dir.path()).unwrap();
        assert_eq!(backend.state().get(b"k").unwrap().unwrap(), b"v".to_vec());
        assert!(!sibling(&db, ".defrag").exists());
    }
}
