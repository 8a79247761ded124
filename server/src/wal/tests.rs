//! Recovery and durability-format tests of the log: reopen after every kind of write, a
//! torn tail cut off, damage refused with its file and offset.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::*;

fn small() -> WalOptions {
    WalOptions {
        segment_bytes: 4096,
    }
}

fn entry(i: u64) -> (u64, Vec<u8>) {
    (
        i,
        format!("entry-{i}-")
            .repeat(5 + 5 * (i as usize % 7))
            .into_bytes(),
    )
}

fn entries(range: std::ops::Range<u64>) -> Vec<(u64, Vec<u8>)> {
    range.map(entry).collect()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    segment::list(dir)
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

#[test]
fn everything_written_is_there_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), small()).unwrap();
        for i in 0..50 {
            wal.append(&[entry(i)]).unwrap();
        }
        wal.append(&entries(50..120)).unwrap();
        wal.save_vote(b"vote-2").unwrap();
        wal.save_committed(b"commit-100");
        wal.append(&[entry(120)]).unwrap();
        assert!(segments(dir.path()).len() > 3, "small segments roll over");
    }
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!(wal.bounds(), Some((0, 120)));
    assert_eq!(wal.read(0, 121).unwrap(), entries(0..121));
    assert_eq!(wal.read(30, 40).unwrap(), entries(30..40));
    assert_eq!(wal.vote().as_deref(), Some(&b"vote-2"[..]));
    assert_eq!(wal.committed().as_deref(), Some(&b"commit-100"[..]));
}

#[test]
fn truncation_and_overwrites_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), small()).unwrap();
        wal.append(&entries(1..40)).unwrap();
        wal.truncate(30).unwrap();
        assert_eq!(wal.bounds(), Some((1, 29)));
        wal.append(&[(30, b"new-30".to_vec())]).unwrap();
        // An entry at an earlier index replaces the suffix from there on.
        wal.append(&[(20, b"new-20".to_vec())]).unwrap();
        assert!(matches!(
            wal.append(&[(25, b"gap".to_vec())]),
            Err(WalError::Gap { .. })
        ));
    }
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!(wal.bounds(), Some((1, 20)));
    assert_eq!(wal.read(20, 21).unwrap(), vec![(20, b"new-20".to_vec())]);
    assert_eq!(wal.read(1, 20).unwrap(), entries(1..20));
}

#[test]
fn purging_removes_old_segments_and_keeps_the_vote() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), small()).unwrap();
        wal.save_vote(b"vote-1").unwrap();
        for i in 0..200 {
            wal.append(&[entry(i)]).unwrap();
        }
        let before = segments(dir.path()).len();
        wal.purge(150, b"log-id-150").unwrap();
        let after = segments(dir.path()).len();
        assert!(after < before, "{after} segments left of {before}");
        assert_eq!(wal.bounds(), Some((151, 199)));
    }
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!(wal.bounds(), Some((151, 199)));
    assert_eq!(wal.purged(), Some((150, b"log-id-150".to_vec())));
    assert_eq!(wal.vote().as_deref(), Some(&b"vote-1"[..]));
    assert_eq!(wal.read(0, 300).unwrap(), entries(151..200));
}

#[test]
fn a_purge_past_the_last_entry_leaves_an_empty_log_that_continues() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), small()).unwrap();
        wal.append(&entries(0..10)).unwrap();
        wal.purge(500, b"snapshot-500").unwrap();
        assert_eq!(wal.bounds(), None);
        assert!(matches!(
            wal.append(&[entry(502)]),
            Err(WalError::Gap { .. })
        ));
    }
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!(wal.bounds(), None);
    wal.append(&[entry(501)]).unwrap();
    drop(wal);
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!(wal.bounds(), Some((501, 501)));
}

/// The last segment and the offset just past its last record.
fn tail(dir: &Path) -> (PathBuf, usize) {
    let last = segments(dir).pop().unwrap();
    let bytes = std::fs::read(&last).unwrap();
    let end = bytes.iter().rposition(|b| *b != 0).unwrap() + 1;
    (last, end)
}

#[test]
fn a_torn_tail_is_cut_off_and_the_log_continues() {
    let dir = tempfile::tempdir().unwrap();
    let big = |i: u64| (i, vec![i as u8 + 1; 3000]);
    {
        let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        for i in 1..=5 {
            wal.append(&[big(i)]).unwrap();
        }
    }
    // A crash in the middle of writing entry 5: one of its sectors never reached the disk.
    let (last, end) = tail(dir.path());
    let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    let sector = (end - 1500) / record::SECTOR * record::SECTOR;
    f.write_all_at(&[0u8; record::SECTOR], sector as u64)
        .unwrap();
    drop(f);

    let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!(wal.bounds(), Some((1, 4)));
    assert_eq!(
        wal.read(1, 5).unwrap(),
        (1..=4).map(big).collect::<Vec<_>>()
    );
    // The rest of the torn write was zeroed: a shorter entry written now is not followed
    // by stale bytes that could pass for records.
    wal.append(&[(5, b"short".to_vec())]).unwrap();
    drop(wal);
    let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!(wal.bounds(), Some((1, 5)));
    assert_eq!(wal.read(5, 6).unwrap(), vec![(5, b"short".to_vec())]);
}

#[test]
fn records_after_a_lost_header_are_discarded_not_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let big = |i: u64| (i, vec![0xAB; 1000 + i as usize]);
    let start;
    {
        let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        wal.append(&[big(1)]).unwrap();
        start = tail(dir.path()).1.next_multiple_of(8);
        // One unacknowledged batch of three whose first sector was lost in a crash.
        wal.append(&[big(2), big(3), big(4)]).unwrap();
    }
    let (last, _) = tail(dir.path());
    let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    let lost = vec![0u8; record::SECTOR * 2 - start % record::SECTOR];
    f.write_all_at(&lost, start as u64).unwrap();
    drop(f);
    let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!(wal.bounds(), Some((1, 1)));
    wal.append(&[(2, b"two".to_vec())]).unwrap();
    drop(wal);
    let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!(wal.bounds(), Some((1, 2)));
}

#[test]
fn a_flipped_byte_mid_file_is_refused_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        wal.append(&entries(0..100)).unwrap();
    }
    let (last, end) = tail(dir.path());
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&last)
        .unwrap();
    let at = (end / 2) as u64;
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x20], at).unwrap();
    drop(f);
    let err = Wal::open(dir.path(), WalOptions::default()).err().unwrap();
    let WalError::Damaged { path, offset, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(path, &last);
    assert!(*offset <= at && at - offset < 200, "{offset} vs {at}");
    let text = err.to_string();
    assert!(
        text.contains(&last.display().to_string()) && text.contains("offset"),
        "{text}"
    );
}

#[test]
fn damage_in_an_earlier_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), small()).unwrap();
        for i in 0..100 {
            wal.append(&[entry(i)]).unwrap();
        }
    }
    let first = segments(dir.path()).remove(0);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .unwrap();
    // Zero a whole sector: a torn write, but not at the tail of the log.
    f.write_all_at(&[0u8; record::SECTOR], 0).unwrap();
    drop(f);
    assert!(matches!(
        Wal::open(dir.path(), small()),
        Err(WalError::Damaged { .. })
    ));
}

#[test]
fn a_missing_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), small()).unwrap();
        for i in 0..100 {
            wal.append(&[entry(i)]).unwrap();
        }
    }
    std::fs::remove_file(&segments(dir.path())[1]).unwrap();
    assert!(matches!(
        Wal::open(dir.path(), small()),
        Err(WalError::MissingSegment { missing: 1, .. })
    ));
}

#[test]
fn a_raft_log_of_the_old_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("conf"), b"x").unwrap();
    std::fs::write(dir.path().join("db"), b"x").unwrap();
    assert!(matches!(
        Wal::open(dir.path(), small()),
        Err(WalError::OldFormat(_))
    ));
}

#[test]
fn an_entry_larger_than_a_segment_gets_a_segment_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let huge = (1, vec![7u8; 20_000]);
    {
        let wal = Wal::open(dir.path(), small()).unwrap();
        wal.append(&[(0, b"zero".to_vec())]).unwrap();
        wal.append(std::slice::from_ref(&huge)).unwrap();
        wal.append(&[(2, b"two".to_vec())]).unwrap();
    }
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!(wal.read(1, 2).unwrap(), vec![huge]);
    assert_eq!(wal.bounds(), Some((0, 2)));
}

/// No raft log reaches index u64::MAX: a record naming it (checksum intact) is refused as
/// damage instead of overflowing the log's index arithmetic. Found by fuzzing.
#[test]
fn an_entry_or_purge_at_the_largest_index_is_refused() {
    for kind in [Kind::Entry, Kind::Purged] {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = Vec::new();
        record::encode(&mut seg, Kind::Vote, b"before");
        let at = seg.len() as u64;
        record::encode(&mut seg, kind, &index_payload(u64::MAX, b"x"));
        record::encode(&mut seg, Kind::Vote, b"after");
        seg.resize(4096, 0);
        let name = segment::SegmentName {
            seq: 0,
            first_index: 0,
        };
        std::fs::write(dir.path().join(name.file_name()), &seg).unwrap();
        match Wal::open(dir.path(), small()) {
            Err(WalError::Damaged { offset, .. }) => assert_eq!(offset, at, "{kind:?}"),
            Err(e) => panic!("{kind:?}: {e}"),
            Ok(wal) => panic!("{kind:?}: opened with bounds {:?}", wal.bounds()),
        }
    }
}
