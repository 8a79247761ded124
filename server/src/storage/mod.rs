//! The on-disk backend: one sled database under `<data-dir>/member/`.
//!
//! Three trees: `raft_log` (log entries by index), `raft_meta` (vote, committed, purged) and
//! `state` (the applied state: key-value history, leases, member identity and the applied
//! log position, all written together in one batch per log entry). Only the raft log is
//! flushed before a proposal is acknowledged; the state is replayed from the log after a
//! crash because sled recovers its operations in order.

use std::path::{Path, PathBuf};

/// Backend key prefix of the applied-state metadata entries.
pub const META_PREFIX: &[u8] = b"m/";

/// Errors opening the backend, with the text etcd prints for an unusable data dir.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("error listing data dir: {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open backend at {path}: {source}")]
    Open { path: PathBuf, source: sled::Error },
}

/// Handles to the backend's trees. Cheap to clone.
#[derive(Clone)]
pub struct Backend {
    pub db: sled::Db,
    pub raft_log: sled::Tree,
    pub raft_meta: sled::Tree,
    pub state: sled::Tree,
    dir: PathBuf,
}

impl Backend {
    /// Opens (creating if needed) the backend below `member_dir`.
    pub fn open(member_dir: &Path) -> Result<Self, BackendError> {
        std::fs::create_dir_all(member_dir).map_err(|source| BackendError::DataDir {
            path: member_dir.to_path_buf(),
            source,
        })?;
        let path = member_dir.join("db");
        let open = |path: &Path| -> sled::Result<sled::Db> {
            sled::Config::new()
                .path(path)
                .cache_capacity(128 * 1024 * 1024)
                .mode(sled::Mode::HighThroughput)
                .open()
        };
        let db = open(&path).map_err(|source| BackendError::Open {
            path: path.clone(),
            source,
        })?;
        let tree = |name: &str| {
            db.open_tree(name).map_err(|source| BackendError::Open {
                path: path.clone(),
                source,
            })
        };
        Ok(Backend {
            raft_log: tree("raft_log")?,
            raft_meta: tree("raft_meta")?,
            state: tree("state")?,
            db,
            dir: member_dir.to_path_buf(),
        })
    }

    /// The member directory this backend lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes the backend occupies on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// Whether this backend already holds a member (a restart rather than a first start).
    pub fn is_initialized(&self) -> bool {
        self.state.get(b"m/member_id").ok().flatten().is_some()
    }
}
