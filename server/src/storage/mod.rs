//! The on-disk backend: two sled databases under `<data-dir>/member/`, laid out like etcd's.
//!
//! - `member/wal`: the raft log (`raft_log` tree: entries by index; `raft_meta`: vote,
//!   committed, purged). Flushed (fsynced) before anything is acknowledged.
//! - `member/snap/db`: the applied state (`state` tree: key-value history, leases, alarms,
//!   member identity and the applied log position, written together in one batch per
//!   apply). sled flushes it on its own schedule: after a crash the state may lag the log,
//!   and openraft replays the difference from the durable log. It is flushed explicitly
//!   before the log is purged, so the log never loses an entry the state has not kept.
//!
//! The state database is replaceable at run time: [`Backend::defragment`] rewrites it into
//! a fresh database (sled never returns freed space to the filesystem on its own) and
//! swaps it in, so every user takes the current tree through [`Backend::state`].

pub mod defrag;

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
}

/// Handles to the backend. Cheap to clone.
#[derive(Clone)]
pub struct Backend {
    wal: sled::Db,
    pub raft_log: sled::Tree,
    pub raft_meta: sled::Tree,
    state: Arc<RwLock<StateDb>>,
    /// The last measured size of the state database and when it was measured: the quota
    /// check reads it on every write, and measuring lists sled's files.
    size: Arc<parking_lot::Mutex<Option<(Instant, u64)>>>,
    dir: PathBuf,
}

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

/// Opens the state database at `path`.
fn open_state(path: &Path) -> Result<StateDb, BackendError> {
    let db = open_db(path, 128 * 1024 * 1024)?;
    let tree = open_tree(&db, path, "state")?;
    Ok(StateDb { db, tree })
}

/// Where the state database of `member_dir` lives.
pub fn state_path(member_dir: &Path) -> PathBuf {
    member_dir.join("snap").join("db")
}

impl Backend {
    /// Opens (creating if needed) the backend below `member_dir`.
    pub fn open(member_dir: &Path) -> Result<Self, BackendError> {
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
        let wal_path = member_dir.join("wal");
        let wal = open_db(&wal_path, 32 * 1024 * 1024)?;
        Ok(Backend {
            raft_log: open_tree(&wal, &wal_path, "raft_log")?,
            raft_meta: open_tree(&wal, &wal_path, "raft_meta")?,
            wal,
            state: Arc::new(RwLock::new(open_state(&state_path)?)),
            size: Arc::default(),
            dir: member_dir.to_path_buf(),
        })
    }

    /// The member directory this backend lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The database holding the raft log (flushed before a proposal is acknowledged).
    pub fn wal(&self) -> &sled::Db {
        &self.wal
    }

    /// The current state tree. Take it afresh for each use: defragmentation replaces it.
    pub fn state(&self) -> sled::Tree {
        self.state.read().tree.clone()
    }

    /// Makes every applied change durable (before the raft log is purged behind it).
    pub fn flush_state(&self) -> Result<(), sled::Error> {
        self.state.read().db.flush().map(drop)
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
