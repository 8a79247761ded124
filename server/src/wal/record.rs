//! One record of the write-ahead log, framed as
//!
//! ```text
//! | len: u32 LE | crc: u32 LE | kind: u8 | payload: len bytes | zero padding to 8 bytes |
//! ```
//!
//! `crc` is CRC-32C over `len`, `kind` and the payload, so a damaged length is caught like
//! damaged data. Segments are preallocated with zeros, so an all-zero header marks the end
//! of what was written. The padding keeps headers 8-byte aligned, which keeps a header
//! inside one disk sector.
//!
//! A record that fails its check is told apart as etcd's WAL does: if part of it lies in a
//! disk sector that is entirely zero, the write was torn by a crash (the sector never
//! reached the disk); otherwise the bytes were damaged after they were written.

use crc::{Crc, CRC_32_ISCSI};

/// Bytes before the payload.
pub const HEADER: usize = 9;
/// Records start at multiples of this.
const ALIGN: usize = 8;
/// The unit a disk writes atomically (what a torn write leaves whole or zero).
pub const SECTOR: usize = 512;
/// No record is larger: a length beyond it is damage, not a record.
pub const MAX_PAYLOAD: usize = 512 * 1024 * 1024;

const CASTAGNOLI: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A raft log entry (its index first, then the encoded entry).
    Entry = 1,
    /// The raft vote.
    Vote = 2,
    /// The last committed log id known to this member.
    Committed = 3,
    /// Every entry from this index on is gone.
    Truncate = 4,
    /// Every entry up to this log id is gone (covered by a snapshot).
    Purged = 5,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Entry,
            2 => Kind::Vote,
            3 => Kind::Committed,
            4 => Kind::Truncate,
            5 => Kind::Purged,
            _ => return None,
        })
    }
}

fn checksum(len: u32, kind: u8, payload: &[u8]) -> u32 {
    let mut d = CASTAGNOLI.digest();
    d.update(&len.to_le_bytes());
    d.update(&[kind]);
    d.update(payload);
    d.finalize()
}

/// The bytes a record of `payload_len` takes in the log, padding included.
pub fn framed_len(payload_len: usize) -> usize {
    (HEADER + payload_len).div_ceil(ALIGN) * ALIGN
}

/// Appends the framed record to `out`.
pub fn encode(out: &mut Vec<u8>, kind: Kind, payload: &[u8]) {
    let len = payload.len() as u32;
    let start = out.len();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&checksum(len, kind as u8, payload).to_le_bytes());
    out.push(kind as u8);
    out.extend_from_slice(payload);
    out.resize(start + framed_len(payload.len()), 0);
}

/// How many bytes from `off` [`decode`] needs to see: the header, then the whole record
/// it announces (a length beyond [`MAX_PAYLOAD`] asks for no more than the header).
pub fn wanted(buf: &[u8], off: usize) -> usize {
    match buf.get(off..off + 4) {
        Some(len) => {
            let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
            if len > MAX_PAYLOAD {
                HEADER
            } else {
                framed_len(len)
            }
        }
        None => HEADER,
    }
}

/// What is found at an offset of a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole, intact record; the next one starts `framed` bytes further.
    Record {
        kind: Kind,
        payload: &'a [u8],
        framed: usize,
    },
    /// Zeros: nothing was written from here on.
    End,
    /// A record cut short by a crash (a zero sector inside it, or the file ends in it).
    Torn,
    /// A record whose bytes changed after they were written.
    Damaged(&'static str),
}

/// Decodes the record starting at `off` of `buf`, a whole segment read from its start (so
/// offsets in `buf` are file offsets, which sector alignment needs).
pub fn decode(buf: &[u8], off: usize) -> Decoded<'_> {
    let rest = &buf[off..];
    if rest.len() < HEADER {
        return if rest.iter().all(|b| *b == 0) {
            Decoded::End
        } else {
            Decoded::Torn
        };
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    let kind = rest[8];
    if len == 0 && crc == 0 && kind == 0 {
        return Decoded::End;
    }
    let len = len as usize;
    if len > MAX_PAYLOAD {
        return torn_or(buf, off, HEADER, "record length out of range");
    }
    if rest.len() < HEADER + len {
        return Decoded::Torn;
    }
    let payload = &rest[HEADER..HEADER + len];
    if checksum(len as u32, kind, payload) != crc {
        return torn_or(buf, off, HEADER + len, "checksum mismatch");
    }
    let framed = framed_len(len).min(rest.len());
    if rest[HEADER + len..framed].iter().any(|b| *b != 0) {
        return Decoded::Damaged("non-zero padding");
    }
    match Kind::from_u8(kind) {
        Some(kind) => Decoded::Record {
            kind,
            payload,
            framed,
        },
        None => Decoded::Damaged("unknown record kind"),
    }
}

/// A record failing its check is torn when a whole disk sector within it reads as zeros
/// (the sector was never written); otherwise it is damaged.
fn torn_or(buf: &[u8], off: usize, len: usize, why: &'static str) -> Decoded<'static> {
    let end = (off + len).min(buf.len());
    let mut start = off;
    while start < end {
        let sector_end = ((start / SECTOR) + 1) * SECTOR;
        let chunk = &buf[start..sector_end.min(end)];
        if chunk.iter().all(|b| *b == 0) {
            return Decoded::Torn;
        }
        start = sector_end;
    }
    Decoded::Damaged(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(kind: Kind, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, kind, payload);
        out
    }

    #[test]
    fn round_trip_with_alignment() {
        let mut buf = one(Kind::Vote, b"abc");
        assert_eq!(buf.len(), 16);
        encode(&mut buf, Kind::Entry, &[7; 100]);
        buf.resize(4096, 0);
        let Decoded::Record {
            kind,
            payload,
            framed,
        } = decode(&buf, 0)
        else {
            panic!("first record");
        };
        assert_eq!((kind, payload, framed), (Kind::Vote, &b"abc"[..], 16));
        match decode(&buf, 16) {
            Decoded::Record { kind, payload, .. } => {
                assert_eq!(kind, Kind::Entry);
                assert_eq!(payload, &[7; 100][..]);
            }
            other => panic!("second record: {other:?}"),
        }
        assert_eq!(decode(&buf, 16 + framed_len(100)), Decoded::End);
    }

    #[test]
    fn a_flipped_byte_is_damage() {
        let mut buf = one(Kind::Entry, &[1; 2000]);
        buf.resize(4096, 0);
        buf[1500] ^= 0x40;
        assert_eq!(decode(&buf, 0), Decoded::Damaged("checksum mismatch"));
        let mut buf = one(Kind::Entry, &[1; 2000]);
        buf[0] ^= 0x01; // the length
        buf.resize(4096, 0);
        assert!(matches!(decode(&buf, 0), Decoded::Damaged(_)));
    }

    #[test]
    fn a_zero_sector_inside_a_record_is_a_torn_write() {
        let mut buf = one(Kind::Entry, &[1; 2000]);
        buf.resize(4096, 0);
        buf[1024..1536].fill(0);
        assert_eq!(decode(&buf, 0), Decoded::Torn);
    }

    #[test]
    fn a_record_running_past_the_end_is_torn() {
        let buf = one(Kind::Entry, &[1; 2000]);
        assert_eq!(decode(&buf[..1000], 0), Decoded::Torn);
        assert_eq!(decode(&buf[..5], 0), Decoded::Torn);
        assert_eq!(decode(&[0u8; 5], 0), Decoded::End);
    }

    #[test]
    fn an_unknown_kind_is_damage() {
        let mut buf = Vec::new();
        let payload = b"x";
        buf.extend_from_slice(&1u32.to_le_bytes());
        buf.extend_from_slice(&checksum(1, 9, payload).to_le_bytes());
        buf.push(9);
        buf.extend_from_slice(payload);
        buf.resize(64, 0);
        assert_eq!(decode(&buf, 0), Decoded::Damaged("unknown record kind"));
    }
}
