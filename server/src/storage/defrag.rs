//! Defragmentation: rewriting the state database into a fresh one.
//!
//! sled keeps the space of deleted and overwritten values inside its files, so after a
//! compaction the database is as large as before; as with etcd's bbolt, only a rewrite
//! gives it back. The rewrite copies the live entries into a new directory beside the
//! database (`db.gen-<n>`), then points `db` at it: `db` becomes a symbolic link, replaced
//! atomically by renaming a fresh link over it (the first time, when `db` is still a
//! directory, it is renamed to `db.old` first). The copy is opened at its own directory
//! and never moved, so it is swapped in without being closed and reopened (reopening a
//! large sled database replays its log: most of a second per few hundred MiB, with writes
//! held off). sled finds blob files and writes its own snapshots by path, so a database is
//! always opened at its real directory, never through the link. A crash at any point
//! leaves `db` naming a complete database (or missing with `db.old` whole), and [`recover`]
//! finishes or undoes the swap and removes what is left over on the next start.
//!
//! Writers are not held off for the copy: [`Backend::apply`] journals every batch applied
//! while a defragmentation runs, and the journal is replayed into the copy (a batch is
//! journaled and applied under one lock, and journaling starts before the copy reads
//! anything, so each key ends up with its last written value). Once the copy has caught up
//! and is on disk, the caller's `pause_writes` guard (the MVCC write lock) is taken for
//! the last few journaled batches, their fsync and the swap only. The copy is flushed and
//! fsynced before the swap, as the database it replaces was durable.

use std::io;
use std::path::{Path, PathBuf};

use super::{open_state, Backend, BackendError};

/// Entries copied per write batch, and bytes at most.
const COPY_BATCH: usize = 10_000;
const COPY_BATCH_BYTES: usize = 4 << 20;
/// The copy is written out and fsynced every this many bytes: a large pile of dirty pages
/// written back at once holds up the write-ahead log's fdatasync behind it (the
/// filesystem journal commits them together), which stalls every acknowledged write. At
/// 8 MiB the put p99 during a defrag of 256 MiB was 53-130 ms (idle 7-10 ms); at 2 MiB,
/// 44-48 ms over five runs.
const COPY_SYNC_BYTES: usize = 2 << 20;

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

/// The directory the database at `db` lives in: the link's target once defragmented.
pub fn live_path(db: &Path) -> PathBuf {
    match std::fs::read_link(db) {
        Ok(target) => db.with_file_name(target),
        Err(_) => db.to_path_buf(),
    }
}

/// Completes or rolls back a swap a crash interrupted, before the database is opened, and
/// removes every copy `db` does not name.
pub fn recover(db: &Path) -> io::Result<()> {
    let old = sibling(db, ".old");
    if std::fs::symlink_metadata(db).is_err() && old.exists() {
        // Crashed between the two renames of the first swap: the old database is whole.
        std::fs::rename(&old, db)?;
    }
    let live = live_path(db);
    let prefix = format!("{}.", db.file_name().unwrap_or_default().to_string_lossy());
    if let Some(parent) = db.parent().filter(|p| p.exists()) {
        for entry in std::fs::read_dir(parent)? {
            let path = entry?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with(&prefix) && path != live {
                if std::fs::symlink_metadata(&path)?.is_dir() {
                    remove_if_present(&path)?;
                } else {
                    std::fs::remove_file(&path)?;
                }
            }
        }
    }
    Ok(())
}

/// Journaled batches replayed while writes go on before the final catch-up under the
/// pause; the rounds stop early once a round finds this few.
const CATCH_UP_ROUNDS: usize = 8;
const CAUGHT_UP: usize = 64;

impl Backend {
    /// Rewrites the state database and swaps the copy in, handing the new state tree to
    /// `swapped` while the `pause_writes` guard is held.
    ///
    /// Every writer of the state must go through [`Backend::apply`] and be held off by the
    /// guard `pause_writes` returns (the state machine writes under the MVCC write lock).
    pub fn defragment<G>(
        &self,
        pause_writes: impl FnOnce() -> G,
        swapped: impl FnOnce(&mut G, sled::Tree),
    ) -> Result<(), BackendError> {
        let path = super::state_path(&self.dir);
        let generation = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let copy_path = sibling(&path, &format!(".gen-{generation}"));
        let source = {
            let mut journal = self.journal.lock();
            *journal = Some(Vec::new());
            self.state()
        };
        let result = self.copy_and_swap(&source, &path, &copy_path, pause_writes, swapped);
        *self.journal.lock() = None;
        if result.is_err() {
            let _ = remove_if_present(&copy_path);
        }
        let old = result?;
        drop(source);
        // The replaced database closes once its last handle is gone, from a thread of
        // sled's own; what cannot be removed yet goes at the next start.
        let old_path = old.path.clone();
        drop(old);
        if let Err(e) = remove_if_present(&old_path) {
            tracing::warn!(target: "backend", "failed to remove the replaced database {}: {e}", old_path.display());
        }
        self.size_changed();
        Ok(())
    }

    /// Replays the batches journaled so far into `copy`; returns how many.
    fn replay_journal(&self, copy: &sled::Tree) -> Result<usize, BackendError> {
        let batches = match self.journal.lock().as_mut() {
            Some(journal) => std::mem::take(journal),
            None => Vec::new(),
        };
        let n = batches.len();
        for batch in batches {
            copy.apply_batch(batch)?;
        }
        Ok(n)
    }

    /// Copies `source` into a new database at `copy_path`, swaps it in and returns the
    /// replaced one.
    fn copy_and_swap<G>(
        &self,
        source: &sled::Tree,
        path: &Path,
        copy_path: &Path,
        pause_writes: impl FnOnce() -> G,
        swapped: impl FnOnce(&mut G, sled::Tree),
    ) -> Result<super::StateDb, BackendError> {
        let io_err = |source| BackendError::DataDir {
            path: path.to_path_buf(),
            source,
        };
        let started = std::time::Instant::now();
        let copy = open_state(copy_path, self.cache_bytes)?;
        let mut batch = sled::Batch::default();
        let (mut pending, mut pending_bytes, mut unsynced) = (0, 0, 0);
        for item in source.iter() {
            let (k, v) = item?;
            pending_bytes += k.len() + v.len();
            batch.insert(k, v);
            pending += 1;
            if pending == COPY_BATCH || pending_bytes >= COPY_BATCH_BYTES {
                copy.tree.apply_batch(std::mem::take(&mut batch))?;
                unsynced += pending_bytes;
                (pending, pending_bytes) = (0, 0);
            }
            if unsynced >= COPY_SYNC_BYTES {
                copy.db.flush()?;
                super::fsync_tree(copy_path).map_err(io_err)?;
                unsynced = 0;
            }
        }
        copy.tree.apply_batch(batch)?;
        for _ in 0..CATCH_UP_ROUNDS {
            if self.replay_journal(&copy.tree)? <= CAUGHT_UP {
                break;
            }
        }
        // Most of the copy goes to disk while writes still go on; what the pause adds
        // below is small.
        copy.db.flush()?;
        super::fsync_tree(copy_path).map_err(io_err)?;
        let copied = started.elapsed();

        let mut guard = pause_writes();
        let paused = std::time::Instant::now();
        let mut current = self.state.write();
        self.replay_journal(&copy.tree)?;
        // The copy replaces a durable database: it must be durable itself before the swap.
        copy.db.flush()?;
        super::fsync_tree(copy_path).map_err(io_err)?;
        let link = sibling(path, ".link");
        if std::fs::symlink_metadata(&link).is_ok() {
            std::fs::remove_file(&link).map_err(io_err)?;
        }
        let target = copy_path.file_name().unwrap_or_default();
        std::os::unix::fs::symlink(target, &link).map_err(io_err)?;
        let is_link = std::fs::symlink_metadata(path)
            .map(|m| m.file_type().is_symlink())
            .map_err(io_err)?;
        if !is_link {
            std::fs::rename(path, sibling(path, ".old")).map_err(io_err)?;
        }
        std::fs::rename(&link, path).map_err(io_err)?;
        if let Some(parent) = path.parent() {
            crate::wal::segment::sync_dir(parent).map_err(io_err)?;
        }
        let mut old = std::mem::replace(&mut *current, copy);
        if !is_link {
            old.path = sibling(path, ".old");
        }
        *self.journal.lock() = None;
        swapped(&mut guard, current.tree.clone());
        drop((current, guard));
        tracing::info!(target: "backend", "defragmented: copied in {copied:?}, writes paused {:?}", paused.elapsed());
        Ok(old)
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
        let mut tree = None;
        backend
            .defragment(|| (), |_, swapped| tree = Some(swapped))
            .unwrap();
        let tree = tree.unwrap();
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
            backend.defragment(|| (), |_, _| ()).unwrap();
        }
        assert_eq!(backend.state().len(), 5);
        drop(backend);
        let reopened = Backend::open(dir.path()).unwrap();
        assert_eq!(reopened.state().len(), 5);
        // The link and the database it names; every replaced one is gone.
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join("snap"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(names[0], "db");
        assert!(names[1].starts_with("db.gen-"), "{names:?}");
    }

    /// Writes keep landing, through [`Backend::apply`], while the database is copied; the
    /// defragmented database must hold every one of them and nothing they removed.
    #[test]
    fn writes_during_the_copy_end_up_in_the_new_database() {
        use std::sync::atomic::Ordering;
        const WRITES_DURING_COPY: u32 = 300;
        let dir = tempfile::tempdir().unwrap();
        let backend = Backend::open(dir.path()).unwrap();
        for i in 0..20_000u32 {
            backend
                .state()
                .insert(i.to_be_bytes(), vec![3u8; 256])
                .unwrap();
        }
        // Stands for the MVCC write lock: writers hold it while applying.
        let writers = std::sync::Arc::new(parking_lot::Mutex::new(()));
        // A bounded number of writes, starting once the defragmentation journals them. (An
        // unbounded stream of tiny batches once deadlocked sled 0.34 here, in about one run
        // in ten; vendor/sled now truncates its file outside its IO thread pool.)
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (backend, writers, done) = (backend.clone(), writers.clone(), done.clone());
            std::thread::spawn(move || {
                while backend.journal.lock().is_none() && !done.load(Ordering::SeqCst) {
                    std::thread::yield_now();
                }
                for i in 0..WRITES_DURING_COPY {
                    let _w = writers.lock();
                    let mut batch = sled::Batch::default();
                    batch.insert(&(1_000_000 + i).to_be_bytes()[..], &i.to_be_bytes()[..]);
                    batch.remove(&(i * 7 % 20_000).to_be_bytes()[..]);
                    backend.apply(batch).unwrap();
                }
                WRITES_DURING_COPY
            })
        };
        backend.defragment(|| writers.lock(), |_, _| ()).unwrap();
        done.store(true, Ordering::SeqCst);
        let written = writer.join().unwrap();
        let state = backend.state();
        let mut removed = std::collections::BTreeSet::new();
        for i in 0..written {
            assert_eq!(
                state.get((1_000_000 + i).to_be_bytes()).unwrap().unwrap(),
                i.to_be_bytes().to_vec(),
                "write {i} of {written}"
            );
            removed.insert(i * 7 % 20_000);
        }
        for i in 0..20_000u32 {
            assert_eq!(
                state.get(i.to_be_bytes()).unwrap().is_some(),
                !removed.contains(&i),
                "key {i}"
            );
        }
        assert_eq!(state.len(), 20_000 - removed.len() + written as usize);
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
