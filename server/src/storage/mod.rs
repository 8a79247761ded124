//! The state database: a sled database at `<data-dir>/member/snap/db`, laid out like etcd's.
//!
//! It holds the applied state (`state` tree: key-value history, leases, alarms, member
//! identity and the applied log position, written together in one batch per apply; the
//! keys and what each may travel to are laid out in [`keys`]). The
//! raft log is not here but in the write-ahead log (`member/wal`, see [`crate::wal`]),
//! which is the durable record: sled writes the state on its own schedule, and after a
//! crash the state may lag the log; openraft replays the difference. Before the log is
//! purged behind it, [`Backend::sync_state`] makes the state durable with a real fsync of
//! every file of the database (sled's own flush ends in `sync_file_range`, which is not
//! durable: neither the drive's cache nor file metadata is flushed).
//!
//! The state database is replaceable at run time: [`Backend::defragment`] rewrites it into
//! a fresh database (sled never returns freed space to the filesystem on its own) and
//! swaps it in, so every user takes the current tree through [`Backend::state`]. After a
//! defragmentation `member/snap/db` is a symbolic link to the rewritten database's
//! directory beside it.

pub mod defrag;
pub mod keys;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

/// Errors opening or rewriting the backend, with the text etcd prints for an unusable
/// data dir.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("error listing data dir: {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open backend at {path}: {source}")]
    Open { path: PathBuf, source: sled::Error },
    #[error("backend: {0}")]
    Sled(#[from] sled::Error),
}

/// The state database and its one tree.
pub(crate) struct StateDb {
    db: sled::Db,
    tree: sled::Tree,
    /// The directory sled was opened at: `member/snap/db` itself, or after a
    /// defragmentation the directory that link points to (see [`defrag`]).
    path: PathBuf,
}

/// Handles to the backend. Cheap to clone.
#[derive(Clone)]
pub struct Backend {
    state: Arc<RwLock<StateDb>>,
    /// While a defragmentation copies the database: every batch applied since it began,
    /// replayed into the copy (see [`defrag`]).
    journal: Arc<parking_lot::Mutex<Option<Vec<sled::Batch>>>>,
    /// The last measured size of the state database and when it was measured: the quota
    /// check reads it on every write, and measuring lists sled's files.
    size: Arc<parking_lot::Mutex<Option<(Instant, u64)>>>,
    dir: PathBuf,
    /// Capacity of sled's page cache, for this database and every defragmented copy.
    cache_bytes: u64,
}

/// Default capacity of the state database's cache (`--experimental-backend-cache-bytes`).
pub const DEFAULT_CACHE_BYTES: u64 = 128 * 1024 * 1024;

/// How long a measured database size is reused.
const SIZE_TTL: Duration = Duration::from_millis(100);

fn open_db(path: &Path, cache: u64) -> Result<sled::Db, BackendError> {
    sled::Config::new()
        .path(path)
        .cache_capacity(cache)
        .mode(sled::Mode::HighThroughput)
        .open()
        .map_err(|source| BackendError::Open {
            path: path.to_path_buf(),
            source,
        })
}

fn open_tree(db: &sled::Db, path: &Path, name: &str) -> Result<sled::Tree, BackendError> {
    db.open_tree(name).map_err(|source| BackendError::Open {
        path: path.to_path_buf(),
        source,
    })
}

/// Opens the state database at `path` with a cache of `cache_bytes`.
fn open_state(path: &Path, cache_bytes: u64) -> Result<StateDb, BackendError> {
    let db = open_db(path, cache_bytes)?;
    let tree = open_tree(&db, path, "state")?;
    Ok(StateDb {
        db,
        tree,
        path: path.to_path_buf(),
    })
}

/// Fsyncs `path` and, for a directory, everything below it. A file that sled removes
/// meanwhile (a blob or snapshot it replaced) needs no sync.
fn fsync_tree(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            match fsync_tree(&entry?.path()) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
    }
    std::fs::File::open(path)?.sync_all()
}

/// Where the state database of `member_dir` lives.
pub fn state_path(member_dir: &Path) -> PathBuf {
    member_dir.join("snap").join("db")
}

impl Backend {
    /// Opens (creating if needed) the backend below `member_dir`, with the default cache.
    pub fn open(member_dir: &Path) -> Result<Self, BackendError> {
        Backend::open_with_cache(member_dir, DEFAULT_CACHE_BYTES)
    }

    /// Opens (creating if needed) the backend below `member_dir`; sled keeps at most about
    /// `cache_bytes` of the database's pages in memory.
    pub fn open_with_cache(member_dir: &Path, cache_bytes: u64) -> Result<Self, BackendError> {
        let snap = member_dir.join("snap");
        std::fs::create_dir_all(&snap).map_err(|source| BackendError::DataDir {
            path: member_dir.to_path_buf(),
            source,
        })?;
        let state_path = state_path(member_dir);
        defrag::recover(&state_path).map_err(|source| BackendError::DataDir {
            path: member_dir.to_path_buf(),
            source,
        })?;
        Ok(Backend {
            state: Arc::new(RwLock::new(open_state(
                &defrag::live_path(&state_path),
                cache_bytes,
            )?)),
            journal: Arc::default(),
            size: Arc::default(),
            dir: member_dir.to_path_buf(),
            cache_bytes,
        })
    }

    /// The capacity of the state database's cache.
    pub fn cache_capacity(&self) -> u64 {
        self.cache_bytes
    }

    /// The member directory this backend lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current state tree. Take it afresh for each use: defragmentation replaces it.
    pub fn state(&self) -> sled::Tree {
        self.state.read().tree.clone()
    }

    /// Applies `batch` atomically to the state tree. Every write of replicated state goes
    /// through here, so a running defragmentation sees it.
    pub fn apply(&self, batch: sled::Batch) -> Result<(), BackendError> {
        let mut journal = self.journal.lock();
        if let Some(journal) = journal.as_mut() {
            journal.push(batch.clone());
        }
        self.state().apply_batch(batch)?;
        Ok(())
    }

    /// Makes every applied change durable: sled writes out what it buffers, then every
    /// file and directory of the database is fsynced.
    pub fn sync_state(&self) -> Result<(), BackendError> {
        let state = self.state.read();
        state.db.flush()?;
        fsync_tree(&state.path).map_err(|source| BackendError::DataDir {
            path: state.path.clone(),
            source,
        })
    }

    /// Bytes of live entries in the state database: etcd's `dbSizeInUse`, which drops after a
    /// compaction while `dbSize` only drops after a defragmentation. Walks the database.
    pub fn size_in_use(&self) -> u64 {
        self.state()
            .iter()
            .filter_map(Result::ok)
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum()
    }

    /// Bytes the state database occupies on disk: etcd's `dbSize`, the figure the backend
    /// quota is checked against.
    pub fn db_size(&self) -> u64 {
        let mut cached = self.size.lock();
        match *cached {
            Some((at, size)) if at.elapsed() < SIZE_TTL => size,
            _ => {
                let size = self.state.read().db.size_on_disk().unwrap_or(0);
                *cached = Some((Instant::now(), size));
                size
            }
        }
    }

    /// Forgets the measured size (after the database was rewritten).
    fn size_changed(&self) {
        *self.size.lock() = None;
    }
}
