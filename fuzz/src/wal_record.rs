//! One record of the write-ahead log (`wal::record`): `decode` walked over arbitrary bytes
//! as recovery walks a segment, and `encode` of arbitrary payloads.
//!
//! Invariants:
//! - a record that decodes re-encodes to exactly the bytes it was decoded from (the framing
//!   is canonical, so no two byte strings stand for the same record);
//! - `wanted` asks for at least a header and, for a record that decodes, for no more than
//!   the bytes it occupies;
//! - whatever `encode` writes decodes to the same kind and payload, followed by the end of
//!   the log when zeros follow.

use etcd_server::wal::record::{self, Decoded, Kind};

const KINDS: [Kind; 5] = [
    Kind::Entry,
    Kind::Vote,
    Kind::Committed,
    Kind::Truncate,
    Kind::Purged,
];

pub fn check(data: &[u8]) {
    walk(data);
    if let Some((&selector, payload)) = data.split_first() {
        round_trip(KINDS[selector as usize % KINDS.len()], payload);
    }
}

/// Decodes record after record from the start, as recovery reads a segment.
fn walk(data: &[u8]) {
    let mut off = 0;
    while off <= data.len() {
        let wanted = record::wanted(data, off);
        assert!(wanted >= record::HEADER, "wanted {wanted} at {off}");
        match record::decode(data, off) {
            Decoded::Record {
                kind,
                payload,
                framed,
            } => {
                assert!(framed >= record::HEADER + payload.len());
                assert!(off + framed <= data.len());
                assert!(wanted >= framed, "wanted {wanted} < framed {framed}");
                let mut again = Vec::new();
                record::encode(&mut again, kind, payload);
                // A record at the very end of the bytes may lack (zero) padding.
                assert_eq!(&again[..framed], &data[off..off + framed], "at {off}");
                assert!(again[framed..].iter().all(|b| *b == 0));
                assert!(framed == again.len() || off + framed == data.len());
                off += framed;
            }
            Decoded::End | Decoded::Torn | Decoded::Damaged(_) => break,
        }
    }
}

fn round_trip(kind: Kind, payload: &[u8]) {
    let mut buf = Vec::new();
    record::encode(&mut buf, kind, payload);
    assert_eq!(buf.len(), record::framed_len(payload.len()));
    assert_eq!(buf.len() % 8, 0);
    let end = buf.len();
    buf.resize(end + record::HEADER, 0);
    assert_eq!(record::wanted(&buf, 0), end);
    assert_eq!(
        record::decode(&buf, 0),
        Decoded::Record {
            kind,
            payload,
            framed: end
        }
    );
    assert_eq!(record::decode(&buf, end), Decoded::End);
}
