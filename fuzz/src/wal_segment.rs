//! A write-ahead log directory opened with `Wal::open`, its segments built from the fuzzer's
//! bytes.
//!
//! Raw bytes rarely carry a valid CRC-32C, so most inputs are read as a small program that
//! frames records with correct checksums (entries at chosen indexes, votes, truncations,
//! purges), mixed with raw bytes that damage them; see [`Program`]. That reaches recovery's
//! index bookkeeping and not only its checksum test.
//!
//! Invariants:
//! - open either succeeds or returns a `WalError`;
//! - every entry an opened log reports is readable, in index order;
//! - recovery is idempotent: opening again finds the same entries and metadata (the first
//!   open's repair of a torn tail is final);
//! - an entry appended after recovery is found, after the others, on the next open (no stale
//!   bytes left after the repaired tail come back).

use etcd_server::wal::record::{self, Kind};
use etcd_server::wal::segment::SegmentName;
use etcd_server::wal::{Wal, WalOptions};

/// Segments past this many are not made (each costs file operations per run).
const MAX_SEGMENTS: usize = 3;

fn options() -> WalOptions {
    WalOptions {
        segment_bytes: 4096,
    }
}

pub fn check(data: &[u8]) {
    let dir = crate::scratch::dir();
    let wal_dir = dir.path().join("wal");
    std::fs::create_dir(&wal_dir).expect("wal dir");
    for (seq, bytes) in segments(data).iter().enumerate() {
        let name = SegmentName {
            seq: seq as u64,
            first_index: 0,
        };
        std::fs::write(wal_dir.join(name.file_name()), bytes).expect("segment written");
    }
    let Ok(wal) = Wal::open(&wal_dir, options()) else {
        return;
    };
    let first = contents(&wal);
    drop(wal);

    let wal = Wal::open(&wal_dir, options()).expect("a recovered log opens again");
    assert_eq!(contents(&wal), first, "recovery is idempotent");

    let Some(next) = next_index(&wal) else {
        return;
    };
    let appended = (next, b"appended after recovery".to_vec());
    wal.append(std::slice::from_ref(&appended))
        .expect("append after recovery");
    drop(wal);
    let wal = Wal::open(&wal_dir, options()).expect("opens after an append");
    let after = contents(&wal);
    assert_eq!(after.entries.last(), Some(&appended));
    assert_eq!(after.vote, first.vote);
    assert_eq!(after.committed, first.committed);
    assert_eq!(after.purged, first.purged);
    let kept: Vec<_> = first
        .entries
        .iter()
        .filter(|(i, _)| *i < next)
        .cloned()
        .collect();
    assert_eq!(&after.entries[..after.entries.len() - 1], &kept[..]);
}

/// Everything an opened log reports.
#[derive(Debug, PartialEq, Eq)]
struct Contents {
    bounds: Option<(u64, u64)>,
    entries: Vec<(u64, Vec<u8>)>,
    vote: Option<Vec<u8>>,
    committed: Option<Vec<u8>>,
    purged: Option<(u64, Vec<u8>)>,
}

fn contents(wal: &Wal) -> Contents {
    let bounds = wal.bounds();
    let entries = match bounds {
        Some((lo, hi)) => {
            assert!(lo <= hi, "bounds {lo}..={hi}");
            let end = hi.saturating_add(1);
            let entries = wal
                .read(lo, end)
                .expect("entries the log holds are readable");
            let indexes: Vec<u64> = entries.iter().map(|(i, _)| *i).collect();
            assert_eq!(indexes, (lo..end).collect::<Vec<_>>());
            entries
        }
        None => Vec::new(),
    };
    Contents {
        bounds,
        entries,
        vote: wal.vote(),
        committed: wal.committed(),
        purged: wal.purged(),
    }
}

/// The index raft would append next: after the last entry, else after the purge point.
/// `None` at the largest index, which the log refuses on open (no raft log reaches it).
fn next_index(wal: &Wal) -> Option<u64> {
    let next = match (wal.bounds(), wal.purged()) {
        (Some((_, last)), _) => last.checked_add(1),
        (None, Some((purged, _))) => purged.checked_add(1),
        (None, None) => Some(0),
    };
    next.filter(|n| *n < u64::MAX)
}

/// How the bytes of a run are read: the first byte chooses raw (even) or a program (odd).
pub fn segments(data: &[u8]) -> Vec<Vec<u8>> {
    match data.split_first() {
        None => vec![Vec::new()],
        Some((mode, rest)) if mode % 2 == 0 => vec![rest.to_vec()],
        Some((mode, rest)) => Program::new(rest).run(mode & 2 != 0),
    }
}

/// A program that writes segments. Each step is an opcode byte and its operands:
///
/// | opcode % 8 | operands | writes |
/// |---|---|---|
/// | 0 | payload | an entry at the next index (after the last entry, truncation or purge) |
/// | 1 | index: u8, payload | an entry at a small index |
/// | 2 | index: u64 LE, payload | an entry at any index |
/// | 3 | payload | a vote |
/// | 4 | payload | a committed log id |
/// | 5 | index: u8 | a truncation |
/// | 6 | index: u8, payload | a purge point |
/// | 7 | n: u8 | n even: starts the next segment; odd: n/2 raw bytes follow |
///
/// A payload is a length byte and that many bytes. A program ending early ends the segment
/// where it is.
pub struct Program<'a> {
    bytes: &'a [u8],
    next: u64,
}

impl<'a> Program<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Program { bytes, next: 0 }
    }

    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(b)
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.bytes.len());
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        head
    }

    fn payload(&mut self) -> Option<&'a [u8]> {
        let n = self.byte()?;
        Some(self.take(n as usize))
    }

    fn u64(&mut self) -> Option<u64> {
        let raw: [u8; 8] = self.take(8).try_into().ok()?;
        Some(u64::from_le_bytes(raw))
    }

    fn entry(&mut self, out: &mut Vec<u8>, index: u64, data: &[u8]) {
        record::encode(out, Kind::Entry, &with_index(index, data));
        self.next = index.wrapping_add(1);
    }

    /// Runs the program; with `pad` each segment is preallocated to whole sectors of zeros
    /// as the log creates them.
    pub fn run(mut self, pad: bool) -> Vec<Vec<u8>> {
        let mut done = Vec::new();
        let mut out = Vec::new();
        while let Some(op) = self.byte() {
            let step = match op % 8 {
                0 => self.payload().map(|p| self.entry(&mut out, self.next, p)),
                1 => self.byte().and_then(|i| {
                    let p = self.payload()?;
                    self.entry(&mut out, i as u64, p);
                    Some(())
                }),
                2 => self.u64().and_then(|i| {
                    let p = self.payload()?;
                    self.entry(&mut out, i, p);
                    Some(())
                }),
                3 => self
                    .payload()
                    .map(|p| record::encode(&mut out, Kind::Vote, p)),
                4 => self
                    .payload()
                    .map(|p| record::encode(&mut out, Kind::Committed, p)),
                5 => self.byte().map(|i| {
                    record::encode(&mut out, Kind::Truncate, &(i as u64).to_le_bytes());
                    self.next = i as u64;
                }),
                6 => self.byte().and_then(|i| {
                    let p = self.payload()?;
                    record::encode(&mut out, Kind::Purged, &with_index(i as u64, p));
                    self.next = self.next.max(i as u64 + 1);
                    Some(())
                }),
                _ => self.byte().map(|n| {
                    if n % 2 == 0 {
                        if done.len() + 1 < MAX_SEGMENTS {
                            done.push(std::mem::take(&mut out));
                        }
                    } else {
                        let raw = self.take(n as usize / 2);
                        out.extend_from_slice(raw);
                    }
                }),
            };
            if step.is_none() {
                break;
            }
        }
        done.push(out);
        if pad {
            for seg in &mut done {
                seg.resize(
                    seg.len().next_multiple_of(record::SECTOR) + record::SECTOR,
                    0,
                );
            }
        }
        done
    }
}

fn with_index(index: u64, data: &[u8]) -> Vec<u8> {
    let mut p = index.to_le_bytes().to_vec();
    p.extend_from_slice(data);
    p
}
