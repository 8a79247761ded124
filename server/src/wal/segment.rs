//! Segment files: `<seq>-<first index>.wal`, both as 16 hex digits (etcd's naming), each
//! preallocated with zeros so that appending to it changes no file metadata and a plain
//! fdatasync makes a write durable.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// A segment's place in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SegmentName {
    /// Position among the segments, from 0, without gaps.
    pub seq: u64,
    /// The index of the first entry appended to it (informational, as in etcd).
    pub first_index: u64,
}

impl SegmentName {
    pub fn file_name(&self) -> String {
        format!("{:016x}-{:016x}.wal", self.seq, self.first_index)
    }

    /// Parses a segment's file name; `None` for any other file.
    pub fn parse(name: &str) -> Option<SegmentName> {
        let stem = name.strip_suffix(".wal")?;
        let (seq, index) = stem.split_once('-')?;
        if seq.len() != 16 || index.len() != 16 {
            return None;
        }
        Some(SegmentName {
            seq: u64::from_str_radix(seq, 16).ok()?,
            first_index: u64::from_str_radix(index, 16).ok()?,
        })
    }
}

/// The segments in `dir`, in order; leftovers of an interrupted segment creation
/// (`*.wal.tmp`) are removed.
pub fn list(dir: &Path) -> io::Result<Vec<(SegmentName, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".wal.tmp") {
            std::fs::remove_file(entry.path())?;
        } else if let Some(seg) = SegmentName::parse(&name) {
            out.push((seg, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Makes a directory entry durable (a created, renamed or removed file in it).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reserves `len` bytes of disk for `file`, zero-filled. Falls back to a sparse extension
/// where the filesystem cannot preallocate.
fn preallocate(file: &File, len: u64) -> io::Result<()> {
    // SAFETY: fallocate on a valid, open file descriptor; no memory is passed.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len as libc::off_t) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => file.set_len(len),
        _ => Err(err),
    }
}

/// Creates segment `name` in `dir` holding `head` at its start, `len` bytes in all: written
/// under a temporary name, synced, renamed into place and the directory synced, so a crash
/// leaves either no segment or a whole one.
pub fn create(dir: &Path, name: SegmentName, len: u64, head: &[u8]) -> io::Result<File> {
    let path = dir.join(name.file_name());
    let tmp = dir.join(format!("{}.tmp", name.file_name()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    preallocate(&file, len.max(head.len() as u64))?;
    file.write_all_at(head, 0)?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    sync_dir(dir)?;
    Ok(file)
}

/// Opens an existing segment for reading and appending.
pub fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path)
}

/// Makes the data written to `file` durable (fdatasync: the data and the metadata needed
/// to read it back).
pub fn sync_data(file: &File) -> io::Result<()> {
    file.sync_data()
}

/// The ranges of `file` between `from` and `to` that hold non-zero bytes, in blocks of
/// 64 KiB. Regions the filesystem reports as holes (never written, or preallocated and
/// unwritten) are skipped without reading; the rest is compared against zeros.
pub fn non_zero_ranges(file: &File, from: u64, to: u64) -> io::Result<Vec<(u64, u64)>> {
    const BLOCK: usize = 64 * 1024;
    static ZEROS: [u8; BLOCK] = [0; BLOCK];
    let mut out = Vec::new();
    let mut pos = from;
    let mut buf = vec![0u8; BLOCK];
    while pos < to {
        let Some(data) = seek(file, pos, libc::SEEK_DATA)? else {
            break;
        };
        let hole = seek(file, data, libc::SEEK_HOLE)?.unwrap_or(to).min(to);
        let mut at = data;
        while at < hole {
            let n = ((hole - at) as usize).min(BLOCK);
            file.read_exact_at(&mut buf[..n], at)?;
            if buf[..n] != ZEROS[..n] {
                out.push((at, at + n as u64));
            }
            at += n as u64;
        }
        pos = hole;
    }
    Ok(out)
}

/// `lseek` with `SEEK_DATA`/`SEEK_HOLE`; `None` past the last data. Filesystems without
/// hole reporting answer as if the whole file were data, which is merely slower.
fn seek(file: &File, at: u64, whence: libc::c_int) -> io::Result<Option<u64>> {
    // SAFETY: lseek on a valid, open file descriptor; the file offset it moves is not
    // used by positional reads and writes.
    let rc = unsafe { libc::lseek(file.as_raw_fd(), at as libc::off_t, whence) };
    if rc >= 0 {
        return Ok(Some(rc as u64));
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ENXIO) {
        Ok(None)
    } else {
        Err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort() {
        let a = SegmentName {
            seq: 2,
            first_index: 0x1f,
        };
        assert_eq!(a.file_name(), "0000000000000002-000000000000001f.wal");
        assert_eq!(SegmentName::parse(&a.file_name()), Some(a));
        assert_eq!(SegmentName::parse("0000000000000002.wal"), None);
        assert_eq!(SegmentName::parse("conf"), None);
    }

    #[test]
    fn create_preallocates_and_removes_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("0000000000000009-0000000000000000.wal.tmp"),
            b"x",
        )
        .unwrap();
        let name = SegmentName {
            seq: 0,
            first_index: 0,
        };
        let f = create(dir.path(), name, 4096, b"head").unwrap();
        assert_eq!(f.metadata().unwrap().len(), 4096);
        let listed = list(dir.path()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].0, name);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
