//! Snapshot files on disk: what is written is read back, a damaged file is refused, and
//! an older snapshot never replaces a newer one.

use openraft::{CommittedLeaderId, LogId};

use super::*;

fn meta(index: u64) -> Meta {
    Meta {
        last_log_id: Some(LogId::new(CommittedLeaderId::new(1, 1), index)),
        last_membership: Default::default(),
        snapshot_id: format!("s{index}"),
    }
}

fn entries(n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n)
        .map(|i| (format!("k{i:05}").into_bytes(), vec![i as u8; i % 300]))
        .collect()
}

fn ok(e: &[(Vec<u8>, Vec<u8>)]) -> impl Iterator<Item = Result<(&[u8], &[u8]), String>> {
    e.iter().map(|(k, v)| Ok((k.as_slice(), v.as_slice())))
}

#[test]
fn written_snapshots_read_back_and_damage_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let snap = SnapDir::new(dir.path().join("snap"));
    let written = entries(2000);
    let (m, _) = snap.write_current(&meta(7), ok(&written)).unwrap();
    assert_eq!(m, meta(7));
    let (m, read) = open(&snap.current(), true).unwrap();
    assert_eq!(m, meta(7));
    assert_eq!(read.map(|e| e.unwrap()).collect::<Vec<_>>(), written);

    let mut bytes = std::fs::read(snap.current()).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(snap.current(), &bytes).unwrap();
    assert!(open(&snap.current(), true).is_err(), "a flipped bit passed");
    std::fs::write(snap.current(), &bytes[..at]).unwrap();
    assert!(open(&snap.current(), false).is_err(), "a cut file passed");
}

#[test]
fn an_older_snapshot_never_replaces_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let snap = SnapDir::new(dir.path().join("snap"));
    snap.write_current(&meta(9), ok(&entries(3))).unwrap();
    let (m, mut file) = snap.write_current(&meta(5), ok(&entries(1))).unwrap();
    assert_eq!(m, meta(9), "the newer one is kept and returned");
    let (m, _) = body_offset(&mut file).unwrap();
    assert_eq!(m, meta(9));
    assert_eq!(open_current(&snap).unwrap().unwrap().0, meta(9));
    snap.write_current(&meta(12), ok(&entries(2))).unwrap();
    assert_eq!(open_current(&snap).unwrap().unwrap().0, meta(12));
    assert!(open_current(&SnapDir::new(dir.path().join("none")))
        .unwrap()
        .is_none());
}
