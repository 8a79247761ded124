//! Raft snapshot files in `member/snap/`: the snapshot openraft sends to followers and a
//! follower installs, kept on disk so that neither building, sending, receiving nor
//! installing one holds the state in memory.
//!
//! ```text
//! "etcd-rs-raftsnap" (16 bytes) | meta length u32 | meta (msgpack)
//! | a backup snapshot of the entries (see `crate::snapshot`: framed entries + SHA-256)
//! ```
//!
//! The meta comes first so a reader finds it without walking the entries; it is known
//! before the first entry is written because a point-in-time view copies the raft
//! positions up front. `current.snap` is the snapshot openraft knows; a snapshot is written
//! (or received) under another name, synced and renamed over it, so `current.snap` is
//! always whole.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use openraft::SnapshotMeta;
use parking_lot::Mutex;

use super::types::{decode, encode, storage_err, MemberNode, StorageError};
use crate::snapshot::{self, Entries};

const MAGIC: &[u8; 16] = b"etcd-rs-raftsnap";

pub type Meta = SnapshotMeta<u64, MemberNode>;

/// The snapshot directory of one member.
pub struct SnapDir {
    dir: PathBuf,
    /// Held while `current.snap` is replaced, so a snapshot built from an older state never
    /// replaces a newer one installed meanwhile.
    replacing: Mutex<()>,
}

impl SnapDir {
    pub fn new(dir: PathBuf) -> SnapDir {
        SnapDir {
            dir,
            replacing: Mutex::new(()),
        }
    }

    /// The snapshot openraft knows.
    pub fn current(&self) -> PathBuf {
        self.dir.join("current.snap")
    }

    /// Where a snapshot sent by the leader is received.
    pub fn incoming(&self) -> PathBuf {
        self.dir.join("incoming.snap")
    }

    fn building(&self) -> PathBuf {
        self.dir.join("building.snap")
    }

    /// Creates (empty) the file a snapshot is received into.
    pub fn create_incoming(&self) -> Result<File, StorageError> {
        std::fs::create_dir_all(&self.dir).map_err(storage_err)?;
        File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.incoming())
            .map_err(storage_err)
    }

    /// Writes a snapshot of `entries` at `meta` and makes it the current one, unless the
    /// current one is already newer. Returns the current snapshot's meta and the file,
    /// opened for reading.
    pub fn write_current<K, V, E>(
        &self,
        meta: &Meta,
        entries: impl IntoIterator<Item = Result<(K, V), E>>,
    ) -> Result<(Meta, File), StorageError>
    where
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        std::fs::create_dir_all(&self.dir).map_err(storage_err)?;
        let built = write(&self.building(), meta, entries)?;
        let _replacing = self.replacing.lock();
        if let Ok(mut current) = File::open(self.current()) {
            let (current_meta, _) = body_offset(&mut current)?;
            if current_meta.last_log_id > meta.last_log_id {
                let _ = std::fs::remove_file(self.building());
                current.rewind().map_err(storage_err)?;
                return Ok((current_meta, current));
            }
        }
        self.rename_over_current(&self.building())?;
        Ok((meta.clone(), built))
    }

    /// Makes the received snapshot the current one (it was synced and checked).
    pub fn promote_incoming(&self) -> Result<(), StorageError> {
        let _replacing = self.replacing.lock();
        self.rename_over_current(&self.incoming())
    }

    fn rename_over_current(&self, from: &Path) -> Result<(), StorageError> {
        std::fs::rename(from, self.current()).map_err(storage_err)?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(storage_err)
    }
}

/// Writes a snapshot file of `entries` at `meta` to `path` and syncs it; returns it opened
/// for reading from the start.
pub fn write<K, V, E>(
    path: &Path,
    meta: &Meta,
    entries: impl IntoIterator<Item = Result<(K, V), E>>,
) -> Result<File, StorageError>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
    E: std::fmt::Display,
{
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).map_err(storage_err)?);
    let head = encode(meta)?;
    out.write_all(MAGIC).map_err(storage_err)?;
    out.write_all(&(head.len() as u32).to_be_bytes())
        .map_err(storage_err)?;
    out.write_all(&head).map_err(storage_err)?;
    let entries = entries
        .into_iter()
        .map(|e| e.map_err(|e| std::io::Error::other(e.to_string())));
    let hash = snapshot::write_body(entries, &mut out).map_err(storage_err)?;
    out.write_all(&hash).map_err(storage_err)?;
    out.into_inner()
        .map_err(storage_err)?
        .sync_all()
        .map_err(storage_err)?;
    File::open(path).map_err(storage_err)
}

/// Reads a snapshot file's meta; returns it and where the entries start.
fn body_offset(file: &mut File) -> Result<(Meta, u64), StorageError> {
    let mut head = [0u8; 20];
    file.read_exact(&mut head).map_err(storage_err)?;
    if &head[..16] != MAGIC {
        return Err(storage_err("not a raft snapshot file"));
    }
    let len = u32::from_be_bytes(head[16..].try_into().expect("4 bytes"));
    let mut meta = vec![0u8; len as usize];
    file.read_exact(&mut meta).map_err(storage_err)?;
    Ok((decode(&meta)?, 20 + len as u64))
}

/// The current snapshot's meta and file (opened for reading from the start), if there is
/// one.
pub fn open_current(snap: &SnapDir) -> Result<Option<(Meta, File)>, StorageError> {
    let mut file = match File::open(snap.current()) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(storage_err(e)),
    };
    let (meta, _) = body_offset(&mut file)?;
    file.rewind().map_err(storage_err)?;
    Ok(Some((meta, file)))
}

/// The meta and the entries of the snapshot file at `path`, the entries read as they are
/// taken; the hash is checked first (in a pass of its own) when `verify`.
pub fn open(path: &Path, verify: bool) -> Result<(Meta, Entries<File>), StorageError> {
    let mut file = File::open(path).map_err(storage_err)?;
    let (meta, offset) = body_offset(&mut file)?;
    let len = file.metadata().map_err(storage_err)?.len() - offset;
    let at_body = || {
        let mut f = File::open(path)?;
        f.seek(SeekFrom::Start(offset))?;
        Ok(f)
    };
    let entries = snapshot::entries_of(at_body, len, !verify).map_err(storage_err)?;
    Ok((meta, entries))
}

#[cfg(test)]
mod tests;
