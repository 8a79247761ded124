use std::collections::BTreeMap;

use super::*;
use crate::state::testing::open;

/// Applies puts as the state machine does: under the write lock, one batch.
fn put(state: &KvState, key: &str, value: &str) {
    let mut mvcc = state.mvcc.write();
    let mut batch = sled::Batch::default();
    let mut txn = mvcc.write();
    txn.put(key.as_bytes(), value.as_bytes().to_vec(), 0)
        .unwrap();
    txn.commit(&mut batch);
    state.backend.apply(batch).unwrap();
    mvcc.batch_applied();
}

fn compact(state: &KvState, rev: i64) {
    let mut mvcc = state.mvcc.write();
    let mut batch = sled::Batch::default();
    mvcc.compact(rev, &mut batch).unwrap();
    state.backend.apply(batch).unwrap();
}

/// The replicated part of the tree right now, read directly.
fn tree_now(state: &KvState) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let _still = state.mvcc.read();
    state
        .backend
        .state()
        .iter()
        .map(Result::unwrap)
        .filter(|(k, _)| keys::reach(k).unwrap().in_snapshot())
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

fn walk(entries: impl Iterator<Item = sled::Result<(IVec, IVec)>>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    entries
        .map(Result::unwrap)
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

#[test]
fn a_view_stays_at_its_revision_while_writes_and_compaction_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let state = open(dir.path());
    for round in 0..3 {
        for i in 0..300 {
            put(&state, &format!("key{i:03}"), &format!("v{round}"));
        }
    }
    let expected = tree_now(&state);
    let view = state.view().unwrap();
    assert_eq!(view.revision(), 901);
    // Writes and a compaction of everything land before and during the walk.
    for i in 0..100 {
        put(&state, &format!("key{i:03}"), "later");
    }
    compact(&state, 950);
    let mut walk_entries = view.iter();
    let mut seen: Vec<_> = walk_entries.by_ref().take(400).collect();
    for i in 100..300 {
        put(&state, &format!("new{i:03}"), "later");
    }
    assert_eq!(
        state.purge_step(usize::MAX).unwrap(),
        0,
        "history is pinned"
    );
    seen.extend(walk_entries);
    let got = walk(seen.into_iter());
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "the view moved");

    // Once the view is gone the purge deletes what compaction dropped.
    drop(view);
    assert!(state.purge_step(usize::MAX).unwrap() > 0);
    assert_eq!(state.mvcc.read().doomed_count(), 0);
    let after = walk(state.view().unwrap().iter());
    assert_eq!(after, tree_now(&state));
    assert!(after.len() < expected.len(), "compacted history is gone");
}

/// Records a compaction dropped but has not deleted yet change nothing anyone reads.
#[test]
fn doomed_records_are_invisible_until_purged_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (hash_pinned, hash_kv_pinned, view_pinned) = {
        let state = open(dir.path());
        for round in 0..4 {
            for i in 0..50 {
                put(&state, &format!("key{i:02}"), &format!("v{round}"));
            }
        }
        let pin = state.view().unwrap();
        compact(&state, 150);
        assert_eq!(state.mvcc.read().doomed_count(), 99);
        let hashes = (
            state.hash().unwrap(),
            state.mvcc.read().hash_kv(0).unwrap(),
            walk(state.view().unwrap().iter()),
        );
        drop(pin);
        hashes
        // The member stops with the doomed records still stored.
    };
    let state = open(dir.path());
    assert_eq!(
        state.mvcc.read().doomed_count(),
        99,
        "found again on restart"
    );
    assert_eq!(state.hash().unwrap(), hash_pinned);
    assert_eq!(state.mvcc.read().hash_kv(0).unwrap(), hash_kv_pinned);
    while state.purge_step(7).unwrap() > 0 {}
    assert_eq!(state.hash().unwrap(), hash_pinned);
    assert_eq!(state.mvcc.read().hash_kv(0).unwrap(), hash_kv_pinned);
    let purged = walk(state.view().unwrap().iter());
    assert_eq!(purged, view_pinned);
    assert_eq!(purged, tree_now(&state));
}
