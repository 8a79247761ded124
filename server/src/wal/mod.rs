//! The write-ahead log: the raft log, the vote and the purge point, durable before
//! anything that depends on them is acknowledged.
//!
//! A directory of segment files (see [`segment`]) holding framed, checksummed records
//! (see [`record`]). Every write that must be durable ends with an fdatasync of the
//! segment it went to; every segment created, renamed or removed is followed by an fsync
//! of the directory. Entries of one append, however many, share one write and one sync
//! (group commit).
//!
//! Recovery at open reads every segment: a torn record at the tail of the last segment
//! (a crash in the middle of a write that was never acknowledged) is cut off and the rest
//! of the segment zeroed, as etcd's WAL repair does; damage anywhere else stops the
//! member with the file and offset. Each new segment starts with the vote, the committed
//! log id and the purge point, so removing the segments behind a purge loses none of
//! them.
//!
//! The log knows entries only as an index and opaque bytes; the raft adapter
//! (`raft::log_store`) encodes them.

pub mod record;
pub mod segment;

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use record::{Decoded, Kind};
use segment::SegmentName;

/// The default size of a segment, as etcd's (64 MiB).
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Why the log could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("wal: {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("wal: {path}: damaged record at offset {offset}: {why}")]
    Damaged {
        path: PathBuf,
        offset: u64,
        why: &'static str,
    },
    #[error("wal: {dir}: segment {missing:016x} is missing")]
    MissingSegment { dir: PathBuf, missing: u64 },
    #[error("wal: {path}: entry {index} at offset {offset} does not follow entry {last}")]
    Gap {
        path: PathBuf,
        offset: u64,
        index: u64,
        last: u64,
    },
    #[error("wal: {0}: the raft log was written by an older build (a sled database); restore this member from a snapshot or re-add it to its cluster")]
    OldFormat(PathBuf),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where an entry's bytes are.
#[derive(Debug, Clone, Copy)]
struct Loc {
    seq: u64,
    offset: u64,
    len: u32,
}

struct Segment {
    path: PathBuf,
    file: Arc<File>,
    /// The highest entry index written to it.
    max_index: Option<u64>,
}

/// What the log holds, in memory: where each entry is, and the latest metadata.
#[derive(Default)]
struct Index {
    segments: BTreeMap<u64, Segment>,
    /// Locations of the entries `first..first + entries.len()`.
    entries: VecDeque<Loc>,
    first: u64,
    vote: Option<Vec<u8>>,
    committed: Option<Vec<u8>>,
    /// The last purged index and its encoded log id.
    purged: Option<(u64, Vec<u8>)>,
}

impl Index {
    fn last_index(&self) -> Option<u64> {
        if self.entries.is_empty() {
            self.purged.as_ref().map(|(i, _)| *i)
        } else {
            Some(self.first + self.entries.len() as u64 - 1)
        }
    }

    /// Drops entries from `index` on.
    fn truncate(&mut self, index: u64) {
        if index <= self.first {
            self.entries.clear();
        } else {
            let keep = (index - self.first) as usize;
            self.entries.truncate(keep);
        }
    }

    /// Drops entries up to and including `index`.
    fn purge(&mut self, index: u64, raw: Vec<u8>) {
        while !self.entries.is_empty() && self.first <= index {
            self.entries.pop_front();
            self.first += 1;
        }
        if self.entries.is_empty() {
            self.first = index + 1;
        }
        self.purged = Some((index, raw));
    }

    /// Records entry `index` at `loc`: an index at or below the last one replaces it and
    /// everything after it (raft overwrote a conflicting suffix); one at or below the purge
    /// point is already covered by a snapshot. Answers false for an index beyond the next
    /// one (a hole in the log).
    fn put(&mut self, index: u64, loc: Loc) -> bool {
        if self.purged.as_ref().is_some_and(|(p, _)| index <= *p) {
            return true;
        }
        if self.last_index().is_some_and(|last| index > last + 1) {
            return false;
        }
        if self.entries.is_empty() || index < self.first {
            self.entries.clear();
            self.first = index;
        } else {
            self.truncate(index);
        }
        self.entries.push_back(loc);
        if let Some(seg) = self.segments.get_mut(&loc.seq) {
            seg.max_index = Some(seg.max_index.map_or(index, |m| m.max(index)));
        }
        true
    }

    /// The records every new segment starts with.
    fn head(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(v) = &self.vote {
            record::encode(&mut out, Kind::Vote, v);
        }
        if let Some(c) = &self.committed {
            record::encode(&mut out, Kind::Committed, c);
        }
        if let Some((i, raw)) = &self.purged {
            record::encode(&mut out, Kind::Purged, &index_payload(*i, raw));
        }
        out
    }
}

fn index_payload(index: u64, data: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + data.len());
    p.extend_from_slice(&index.to_le_bytes());
    p.extend_from_slice(data);
    p
}

fn split_index(payload: &[u8]) -> Option<(u64, &[u8])> {
    let head: [u8; 8] = payload.get(..8)?.try_into().ok()?;
    Some((u64::from_le_bytes(head), &payload[8..]))
}

/// The segment being appended to.
struct Writer {
    seq: u64,
    file: Arc<File>,
    path: PathBuf,
    offset: u64,
    capacity: u64,
    /// Records that need no sync of their own, written with the next synced write.
    deferred: Vec<u8>,
}

/// Tuning of the log.
#[derive(Debug, Clone, Copy)]
pub struct WalOptions {
    /// Bytes preallocated for each segment.
    pub segment_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes: SEGMENT_BYTES,
        }
    }
}

/// The write-ahead log of one member. Appends come from one writer at a time (raft's
/// storage task); reads may come from any task meanwhile.
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    writer: Mutex<Writer>,
    index: RwLock<Index>,
}

impl Wal {
    /// Opens the log in `dir` (created if missing), recovering it as described above.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<Wal, WalError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        if dir.join("conf").exists() && dir.join("db").exists() {
            return Err(WalError::OldFormat(dir.to_path_buf()));
        }
        let mut listed = segment::list(dir).map_err(io_err(dir))?;
        if listed.is_empty() {
            let name = SegmentName {
                seq: 0,
                first_index: 0,
            };
            segment::create(dir, name, opts.segment_bytes, &[]).map_err(io_err(dir))?;
            listed.push((name, dir.join(name.file_name())));
        }
        for (i, (name, _)) in listed.iter().enumerate() {
            let expected = listed[0].0.seq + i as u64;
            if name.seq != expected {
                return Err(WalError::MissingSegment {
                    dir: dir.to_path_buf(),
                    missing: expected,
                });
            }
        }
        let mut index = Index::default();
        let mut writer = None;
        let count = listed.len();
        for (i, (name, path)) in listed.into_iter().enumerate() {
            let file = Arc::new(segment::open(&path).map_err(io_err(&path))?);
            index.segments.insert(
                name.seq,
                Segment {
                    path: path.clone(),
                    file: file.clone(),
                    max_index: None,
                },
            );
            let last = i + 1 == count;
            let end = replay(&mut index, name.seq, &path, &file, last)?;
            if last {
                let capacity = file.metadata().map_err(io_err(&path))?.len();
                writer = Some(Writer {
                    seq: name.seq,
                    file,
                    path,
                    offset: end,
                    capacity,
                    deferred: Vec::new(),
                });
            }
        }
        Ok(Wal {
            dir: dir.to_path_buf(),
            opts,
            writer: Mutex::new(writer.expect("at least one segment")),
            index: RwLock::new(index),
        })
    }

    /// Appends entries (index, encoded entry), in index order, and makes them durable
    /// before returning: one write and one fdatasync for all of them.
    pub fn append(&self, entries: &[(u64, Vec<u8>)]) -> Result<(), WalError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut w = self.writer.lock();
        self.check_follows(&w, entries)?;
        let mut buf = std::mem::take(&mut w.deferred);
        let mut spans = Vec::with_capacity(entries.len());
        for (index, data) in entries {
            let start = buf.len();
            record::encode(&mut buf, Kind::Entry, &index_payload(*index, data));
            spans.push((*index, start + record::HEADER + 8, data.len()));
        }
        if w.offset + buf.len() as u64 > w.capacity {
            self.roll(&mut w, entries[0].0, buf.len())?;
        }
        let base = w.offset;
        self.write_synced(&mut w, &buf)?;
        let mut index = self.index.write();
        for (entry_index, at, len) in spans {
            let loc = Loc {
                seq: w.seq,
                offset: base + at as u64,
                len: len as u32,
            };
            index.put(entry_index, loc);
        }
        Ok(())
    }

    /// Refuses, before anything is written, entries that would leave a hole in the log.
    fn check_follows(&self, w: &Writer, entries: &[(u64, Vec<u8>)]) -> Result<(), WalError> {
        let mut last = self.index.read().last_index();
        for (index, _) in entries {
            if let Some(l) = last.filter(|l| *index > l + 1) {
                return Err(WalError::Gap {
                    path: w.path.clone(),
                    offset: w.offset,
                    index: *index,
                    last: l,
                });
            }
            last = Some(*index);
        }
        Ok(())
    }

    /// Writes `buf` at the writer's offset and syncs it.
    fn write_synced(&self, w: &mut Writer, buf: &[u8]) -> Result<(), WalError> {
        let path = w.path.clone();
        w.file.write_all_at(buf, w.offset).map_err(io_err(&path))?;
        segment::sync_data(&w.file).map_err(io_err(&path))?;
        w.offset += buf.len() as u64;
        Ok(())
    }

    /// Writes one metadata record, durably.
    fn write_record(&self, kind: Kind, payload: &[u8]) -> Result<(), WalError> {
        let mut w = self.writer.lock();
        let mut buf = std::mem::take(&mut w.deferred);
        record::encode(&mut buf, kind, payload);
        if w.offset + buf.len() as u64 > w.capacity {
            let next = self.index.read().last_index().map_or(0, |i| i + 1);
            self.roll(&mut w, next, buf.len())?;
        }
        self.write_synced(&mut w, &buf)
    }

    /// Starts the next segment, its head holding the current metadata, with room for
    /// `need` more bytes.
    fn roll(&self, w: &mut Writer, first_index: u64, need: usize) -> Result<(), WalError> {
        let head = self.index.read().head();
        let name = SegmentName {
            seq: w.seq + 1,
            first_index,
        };
        let room = (head.len() + need) as u64;
        let len = self.opts.segment_bytes.max(room.next_multiple_of(4096));
        let file = segment::create(&self.dir, name, len, &head).map_err(io_err(&self.dir))?;
        let file = Arc::new(file);
        let path = self.dir.join(name.file_name());
        self.index.write().segments.insert(
            name.seq,
            Segment {
                path: path.clone(),
                file: file.clone(),
                max_index: None,
            },
        );
        *w = Writer {
            seq: name.seq,
            file,
            path,
            offset: head.len() as u64,
            capacity: len,
            deferred: Vec::new(),
        };
        Ok(())
    }

    /// Saves the vote, durably.
    pub fn save_vote(&self, vote: &[u8]) -> Result<(), WalError> {
        self.index.write().vote = Some(vote.to_vec());
        self.write_record(Kind::Vote, vote)
    }

    /// Records the committed log id. Not synced on its own: it goes to disk with the next
    /// synced write (losing it only makes a restarted member learn it from its leader).
    pub fn save_committed(&self, committed: &[u8]) {
        self.index.write().committed = Some(committed.to_vec());
        let mut w = self.writer.lock();
        w.deferred.clear();
        record::encode(&mut w.deferred, Kind::Committed, committed);
    }

    /// Removes every entry from `index` on, durably.
    pub fn truncate(&self, index: u64) -> Result<(), WalError> {
        self.index.write().truncate(index);
        self.write_record(Kind::Truncate, &index.to_le_bytes())
    }

    /// Removes every entry up to `index` (whose encoded log id is `raw`), durably, and
    /// deletes the segments that hold nothing newer. The caller must have made durable
    /// whatever replaces the entries (the state they were applied to).
    pub fn purge(&self, index: u64, raw: &[u8]) -> Result<(), WalError> {
        self.index.write().purge(index, raw.to_vec());
        self.write_record(Kind::Purged, &index_payload(index, raw))?;
        let current = self.writer.lock().seq;
        let mut gone = Vec::new();
        {
            let mut idx = self.index.write();
            while let Some((&seq, seg)) = idx.segments.iter().next() {
                let behind = seg.max_index.is_none_or(|m| m <= index);
                if seq == current || !behind {
                    break;
                }
                gone.push(seg.path.clone());
                idx.segments.remove(&seq);
            }
        }
        if !gone.is_empty() {
            for path in &gone {
                std::fs::remove_file(path).map_err(io_err(path))?;
            }
            segment::sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        }
        Ok(())
    }

    /// The latest vote saved.
    pub fn vote(&self) -> Option<Vec<u8>> {
        self.index.read().vote.clone()
    }

    /// The latest committed log id recorded.
    pub fn committed(&self) -> Option<Vec<u8>> {
        self.index.read().committed.clone()
    }

    /// The purge point: the last index removed and its encoded log id.
    pub fn purged(&self) -> Option<(u64, Vec<u8>)> {
        self.index.read().purged.clone()
    }

    /// The index of the first and the last entry held, if any.
    pub fn bounds(&self) -> Option<(u64, u64)> {
        let idx = self.index.read();
        (!idx.entries.is_empty()).then(|| (idx.first, idx.first + idx.entries.len() as u64 - 1))
    }

    /// The entries with indexes in `start..end` that the log holds, in order.
    pub fn read(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, WalError> {
        let wanted: Vec<(u64, Loc, Arc<File>, PathBuf)> = {
            let idx = self.index.read();
            let from = start.max(idx.first);
            let to = end.min(idx.first + idx.entries.len() as u64);
            (from..to)
                .map(|i| {
                    let loc = idx.entries[(i - idx.first) as usize];
                    let seg = &idx.segments[&loc.seq];
                    (i, loc, seg.file.clone(), seg.path.clone())
                })
                .collect()
        };
        let mut out = Vec::with_capacity(wanted.len());
        let mut run_start = 0;
        // Reads runs of entries that lie back to back in one segment with one pread.
        while run_start < wanted.len() {
            let mut run_end = run_start + 1;
            while run_end < wanted.len() && wanted[run_end].1.seq == wanted[run_start].1.seq {
                run_end += 1;
            }
            let (_, first, file, path) = &wanted[run_start];
            let last = wanted[run_end - 1].1;
            let span = (last.offset + last.len as u64 - first.offset) as usize;
            let mut buf = vec![0u8; span];
            file.read_exact_at(&mut buf, first.offset)
                .map_err(io_err(path))?;
            for (i, loc, _, _) in &wanted[run_start..run_end] {
                let at = (loc.offset - first.offset) as usize;
                out.push((*i, buf[at..at + loc.len as usize].to_vec()));
            }
            run_start = run_end;
        }
        Ok(out)
    }
}

/// Replays the records of one segment into `index`; answers where the written part ends.
/// In the last segment a torn tail is cut off (and zeroed on disk); elsewhere any fault is
/// damage. Reads only as far as records go, not the preallocated rest.
fn replay(
    index: &mut Index,
    seq: u64,
    path: &Path,
    file: &File,
    last: bool,
) -> Result<u64, WalError> {
    let damaged = |offset: usize, why| WalError::Damaged {
        path: path.to_path_buf(),
        offset: offset as u64,
        why,
    };
    let len = file.metadata().map_err(io_err(path))?.len() as usize;
    let mut buf = Vec::new();
    let mut off = 0;
    loop {
        fill(file, &mut buf, off + record::HEADER, len).map_err(io_err(path))?;
        let wanted = record::wanted(&buf, off);
        fill(file, &mut buf, off + wanted, len).map_err(io_err(path))?;
        match record::decode(&buf, off) {
            Decoded::Record {
                kind,
                payload,
                framed,
            } => {
                apply_record(index, seq, path, off, kind, payload)?;
                off += framed;
            }
            Decoded::End => break,
            Decoded::Torn if last => {
                tracing::warn!(target: "wal", "repairing {}: cutting a torn record at offset {off}", path.display());
                break;
            }
            Decoded::Torn => return Err(damaged(off, "record cut short")),
            Decoded::Damaged(why) => return Err(damaged(off, why)),
        }
    }
    // Past the end only zeros may follow. In the last segment anything else is the rest
    // of a write that never completed (never acknowledged): zero it, so that records
    // appended later cannot be followed by stale ones.
    let stale = segment::non_zero_ranges(file, off as u64, len as u64).map_err(io_err(path))?;
    if !stale.is_empty() {
        if !last {
            return Err(damaged(off, "data after the end of the segment"));
        }
        for (from, to) in stale {
            file.write_all_at(&vec![0u8; (to - from) as usize], from)
                .map_err(io_err(path))?;
        }
        segment::sync_data(file).map_err(io_err(path))?;
    }
    Ok(off as u64)
}

/// Reads `file` into `buf` (which holds its first `buf.len()` bytes) until it holds `upto`
/// bytes or the whole file, a megabyte at a time at least.
fn fill(file: &File, buf: &mut Vec<u8>, upto: usize, len: usize) -> io::Result<()> {
    const CHUNK: usize = 1024 * 1024;
    if buf.len() >= upto || buf.len() >= len {
        return Ok(());
    }
    let target = upto.max(buf.len() + CHUNK).min(len);
    let at = buf.len();
    buf.resize(target, 0);
    file.read_exact_at(&mut buf[at..], at as u64)
}

fn apply_record(
    index: &mut Index,
    seq: u64,
    path: &Path,
    off: usize,
    kind: Kind,
    payload: &[u8],
) -> Result<(), WalError> {
    let damaged = |why| WalError::Damaged {
        path: path.to_path_buf(),
        offset: off as u64,
        why,
    };
    let short = || damaged("record too short");
    // No raft log reaches the largest index; refusing it keeps `index + 1` (the next entry,
    // the first after a purge) from overflowing.
    let in_range = |i: u64| {
        if i == u64::MAX {
            Err(damaged("index out of range"))
        } else {
            Ok(i)
        }
    };
    match kind {
        Kind::Entry => {
            let (i, data) = split_index(payload).ok_or_else(short)?;
            let i = in_range(i)?;
            let loc = Loc {
                seq,
                offset: (off + record::HEADER + 8) as u64,
                len: data.len() as u32,
            };
            if !index.put(i, loc) {
                return Err(WalError::Gap {
                    path: path.to_path_buf(),
                    offset: off as u64,
                    index: i,
                    last: index.last_index().unwrap_or(0),
                });
            }
        }
        Kind::Vote => index.vote = Some(payload.to_vec()),
        Kind::Committed => index.committed = Some(payload.to_vec()),
        Kind::Truncate => {
            let (i, _) = split_index(payload).ok_or_else(short)?;
            index.truncate(i);
        }
        Kind::Purged => {
            let (i, raw) = split_index(payload).ok_or_else(short)?;
            index.purge(in_range(i)?, raw.to_vec());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
