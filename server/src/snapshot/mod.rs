//! Backup snapshots: the file `etcdctl snapshot save` writes and `snapshot restore` reads.
//!
//! etcd streams its bbolt file with a SHA-256 of the stream appended; ours streams the
//! entries of the state database in a simple framed format, with the same trailing
//! SHA-256 so a damaged or truncated file is refused before anything is restored:
//!
//! ```text
//! "etcd-rs-snapshot" (16 bytes) | version u32 | (key len u32, key, value len u32, value)*
//! | u32::MAX | zero padding to a multiple of 512 bytes | sha256 of everything before it
//! ```
//!
//! The padding gives the file etcd's shape (whole 512-byte pages plus a 32-byte hash), which
//! etcd's own `etcdctl snapshot save` checks, so both etcdctls can save our snapshots.
//! Integers are big-endian. A copy of a member's state database (`member/snap/db`) can be
//! restored too, but, having no hash, only with `--skip-hash-check`, as etcd requires for a
//! copied db file.

pub mod reader;
pub mod restore;

pub use reader::{verify_hash, Entries};

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::config::error::go_io_reason;
use crate::storage::keys;
use crate::storage::BackendError;

const MAGIC: &[u8; 16] = b"etcd-rs-snapshot";
const VERSION: u32 = 1;
const END: u32 = u32::MAX;
pub(crate) const HASH_LEN: usize = 32;
/// The body (everything before the hash) is a whole number of these.
const PAGE: usize = 512;
/// bbolt's magic number, at byte 16 of an etcd snapshot (page header + meta offset).
const BOLT_MAGIC: [u8; 4] = 0xED0C_DAEDu32.to_le_bytes();

/// A key and value of the state database.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Why a snapshot could not be read or restored, in etcdctl's words where etcd has them.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("open {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("invalid database")]
    InvalidDatabase,
    #[error("invalid database: {0} is an etcd (bbolt) snapshot; move its data with `etcdctl make-mirror` instead")]
    EtcdSnapshot(String),
    #[error("snapshot missing hash but --skip-hash-check=false")]
    MissingHash,
    #[error("expected sha256 {}, got {}", go_bytes(.expected), go_bytes(.got))]
    HashMismatch { expected: Vec<u8>, got: Vec<u8> },
    #[error("data-dir {0:?} exists")]
    DataDirExists(String),
    #[error("{0}")]
    Backend(#[from] BackendError),
    #[error("{0}")]
    Bootstrap(#[from] crate::cluster::bootstrap::BootstrapError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("invalid database: {0}")]
    UnknownKey(#[from] keys::UnknownKey),
}

impl From<sled::Error> for SnapshotError {
    fn from(e: sled::Error) -> Self {
        SnapshotError::Backend(BackendError::Sled(e))
    }
}

/// A byte slice as Go's `%v` prints it: `[1 2 3]`.
fn go_bytes(b: &[u8]) -> String {
    let parts: Vec<String> = b.iter().map(u8::to_string).collect();
    format!("[{}]", parts.join(" "))
}

/// Length of the body (everything before the hash) of a snapshot whose entries have
/// these key and value lengths: a sender announces it before the first byte.
pub fn body_len(sizes: impl IntoIterator<Item = (usize, usize)>) -> u64 {
    let framing = (MAGIC.len() + 4 + 4) as u64;
    let entries: u64 = sizes.into_iter().map(|(k, v)| 8 + (k + v) as u64).sum();
    (framing + entries).div_ceil(PAGE as u64) * PAGE as u64
}

/// Passes bytes on to `out` and hashes them.
struct Hashing<'a, W> {
    out: &'a mut W,
    hash: Sha256,
    written: u64,
}

impl<W: std::io::Write> Hashing<'_, W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hash.update(bytes);
        self.written += bytes.len() as u64;
        self.out.write_all(bytes)
    }
}

/// Writes the body of a snapshot of `entries` to `out` as they come, so a snapshot never
/// has to be held whole; returns the SHA-256 trailer, for the caller to send last.
pub fn write_body<K, V, E>(
    entries: impl IntoIterator<Item = Result<(K, V), E>>,
    out: &mut impl std::io::Write,
) -> Result<[u8; HASH_LEN], E>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
    E: From<std::io::Error>,
{
    let mut w = Hashing {
        out,
        hash: Sha256::new(),
        written: 0,
    };
    w.put(MAGIC)?;
    w.put(&VERSION.to_be_bytes())?;
    for entry in entries {
        let (k, v) = entry?;
        for part in [k.as_ref(), v.as_ref()] {
            w.put(&(part.len() as u32).to_be_bytes())?;
            w.put(part)?;
        }
    }
    w.put(&END.to_be_bytes())?;
    let padding = w.written.div_ceil(PAGE as u64) * PAGE as u64 - w.written;
    w.put(&vec![0; padding as usize])?;
    w.out.flush()?;
    Ok(w.hash.finalize().into())
}

/// Encodes state entries as a snapshot file, hash appended.
pub fn encode<K, V>(entries: impl IntoIterator<Item = (K, V)>) -> Vec<u8>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let mut out = Vec::with_capacity(1 << 16);
    let hash = write_body(entries.into_iter().map(Ok::<_, std::io::Error>), &mut out)
        .expect("writing to memory");
    out.extend_from_slice(&hash);
    out
}

/// Reads a snapshot file's entries; the trailing hash is verified unless `skip_hash_check`.
pub fn decode(bytes: &[u8], skip_hash_check: bool) -> Result<Vec<Entry>, SnapshotError> {
    entries_of(|| Ok(bytes), bytes.len() as u64, skip_hash_check)?.collect()
}

/// The entries of a snapshot of `len` bytes that `open` reads from the start: its hash is
/// first checked in a pass of its own (unless `skip_hash_check`), then entries are parsed
/// as the caller takes them.
pub fn entries_of<R: std::io::Read>(
    mut open: impl FnMut() -> std::io::Result<R>,
    len: u64,
    skip_hash_check: bool,
) -> Result<Entries<R>, SnapshotError> {
    // A foreign or damaged file is named as such before its hash is looked at.
    let entries = Entries::new(open()?, len)?;
    if !skip_hash_check {
        verify_hash(open()?, len)?;
    }
    Ok(entries)
}

/// The entries of a snapshot file, or of a copied state database directory (which has no
/// hash, so needs `skip_hash_check`), as they are read.
pub fn open(
    path: &Path,
    skip_hash_check: bool,
) -> Result<Box<dyn Iterator<Item = Result<Entry, SnapshotError>>>, SnapshotError> {
    let open_err = |e: std::io::Error| SnapshotError::Open {
        path: path.display().to_string(),
        reason: go_io_reason(&e),
    };
    let meta = std::fs::metadata(path).map_err(open_err)?;
    if meta.is_dir() {
        if !skip_hash_check {
            return Err(SnapshotError::MissingHash);
        }
        let db = sled::Config::new().path(path).open()?;
        let tree = db.open_tree("state")?;
        return Ok(Box::new(tree.iter().map(|r| {
            r.map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(SnapshotError::from)
        })));
    }
    let file = || std::fs::File::open(path);
    match entries_of(file, meta.len(), skip_hash_check) {
        Ok(entries) => Ok(Box::new(entries)),
        Err(SnapshotError::EtcdSnapshot(_)) => {
            Err(SnapshotError::EtcdSnapshot(path.display().to_string()))
        }
        Err(SnapshotError::Io(e)) => Err(open_err(e)),
        Err(other) => Err(other),
    }
}

/// Reads the entries of a snapshot file (see [`open`]) into memory.
pub fn read(path: &Path, skip_hash_check: bool) -> Result<Vec<Entry>, SnapshotError> {
    open(path, skip_hash_check)?.collect()
}

/// What `etcdctl snapshot status` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// CRC-32C over every key and value, in order (etcd hashes its buckets the same way).
    pub hash: u32,
    /// The store revision the snapshot was taken at.
    pub revision: i64,
    /// Entries in the snapshot.
    pub total_key: usize,
    /// Size of the snapshot file in bytes.
    pub total_size: u64,
}

/// The status of a snapshot file (the hash is not verified, as in etcd).
pub fn status(path: &Path) -> Result<Status, SnapshotError> {
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    let mut digest = crc.digest();
    let (mut revision, mut total_key) = (1, 0);
    for entry in open(path, true)? {
        let (k, v) = entry?;
        digest.update(&k);
        digest.update(&v);
        if k == keys::REVISION {
            revision = v.as_slice().try_into().map(i64::from_be_bytes).unwrap_or(1);
        }
        total_key += 1;
    }
    Ok(Status {
        hash: digest.finalize(),
        revision,
        total_key,
        total_size: std::fs::metadata(path)?.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        encode([
            (b"k1".as_slice(), b"v1".as_slice()),
            (keys::REVISION, &7i64.to_be_bytes()),
        ])
    }

    #[test]
    fn round_trip_and_hash_check() {
        let bytes = sample();
        let entries = decode(&bytes, false).unwrap();
        assert_eq!(entries[0], (b"k1".to_vec(), b"v1".to_vec()));
        let mut flipped = bytes.clone();
        flipped[30] ^= 1;
        let err = decode(&flipped, false).unwrap_err().to_string();
        assert!(err.starts_with("expected sha256 ["), "{err}");
        assert!(decode(&flipped, true).is_ok());
        let unhashed = &bytes[..bytes.len() - HASH_LEN];
        assert!(matches!(
            decode(unhashed, false),
            Err(SnapshotError::MissingHash)
        ));
        assert!(decode(unhashed, true).is_ok());
    }

    #[test]
    fn the_announced_body_length_is_the_written_one() {
        for n in [0usize, 1, 7, 300] {
            let entries: Vec<(Vec<u8>, Vec<u8>)> = (0..n)
                .map(|i| (vec![b'k'; i % 13 + 1], vec![b'v'; i * 37 % 1000]))
                .collect();
            let file = encode(entries.iter().map(|(k, v)| (k, v)));
            let announced = body_len(entries.iter().map(|(k, v)| (k.len(), v.len())));
            assert_eq!(announced as usize, file.len() - HASH_LEN, "{n} entries");
            assert_eq!(decode(&file, false).unwrap(), entries);
        }
    }

    #[test]
    fn foreign_files_are_refused() {
        assert!(matches!(
            decode(b"garbage", false),
            Err(SnapshotError::InvalidDatabase)
        ));
        let mut bolt = vec![0u8; 4096];
        bolt[16..20].copy_from_slice(&BOLT_MAGIC);
        assert!(matches!(
            decode(&bolt, false),
            Err(SnapshotError::EtcdSnapshot(_))
        ));
        let mut overlong = sample();
        overlong[20..24].copy_from_slice(&1000u32.to_be_bytes());
        assert!(matches!(
            decode(&overlong, true),
            Err(SnapshotError::InvalidDatabase)
        ));
        assert!(matches!(
            decode(&sample()[..100], true),
            Err(SnapshotError::InvalidDatabase)
        ));
    }

    #[test]
    fn status_reads_revision_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        std::fs::write(&path, sample()).unwrap();
        let st = status(&path).unwrap();
        assert_eq!((st.revision, st.total_key), (7, 2));
        assert_eq!(st.total_size, sample().len() as u64);
        assert_eq!(go_bytes(&[1, 22]), "[1 22]");
    }
}
