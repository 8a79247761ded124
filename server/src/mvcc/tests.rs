use etcd_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use etcd_proto::etcdserverpb::RangeRequest;

use super::*;

fn open() -> (tempfile::TempDir, sled::Db, MvccStore) {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let store = MvccStore::open(db.open_tree("state").unwrap()).unwrap();
    (dir, db, store)
}

fn apply(store: &mut MvccStore, f: impl FnOnce(&mut WriteTxn<'_>)) {
    let tree = store.tree.clone();
    let mut batch = sled::Batch::default();
    let mut txn = store.write();
    f(&mut txn);
    txn.commit(&mut batch);
    tree.apply_batch(batch).unwrap();
}

fn get(store: &MvccStore, key: &str, rev: i64) -> Vec<(String, String)> {
    let req = RangeRequest {
        key: key.into(),
        revision: rev,
        ..Default::default()
    };
    store
        .range(&req)
        .unwrap()
        .kvs
        .into_iter()
        .map(|kv| {
            (
                String::from_utf8(kv.key).unwrap(),
                String::from_utf8(kv.value).unwrap(),
            )
        })
        .collect()
}

#[test]
fn revisions_versions_and_generations() {
    let (_d, _db, mut s) = open();
    assert_eq!(s.current_revision(), 1);
    apply(&mut s, |t| {
        t.put(b"foo", b"bar".to_vec(), 0).unwrap();
    });
    apply(&mut s, |t| {
        let prev = t.put(b"foo", b"baz".to_vec(), 0).unwrap().unwrap();
        assert_eq!(prev.value, b"bar");
    });
    let kv = s.get(b"foo").unwrap().unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 3, 2));
    apply(&mut s, |t| {
        assert_eq!(t.delete_range(b"foo", b"").unwrap().len(), 1);
    });
    assert_eq!(s.current_revision(), 4);
    apply(&mut s, |t| {
        t.put(b"foo", b"new".to_vec(), 0).unwrap();
    });
    let kv = s.get(b"foo").unwrap().unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (5, 5, 1));
    assert_eq!(get(&s, "foo", 3), vec![("foo".into(), "baz".into())]);
    assert!(get(&s, "foo", 4).is_empty());
}

#[test]
fn deleting_nothing_keeps_the_revision() {
    let (_d, _db, mut s) = open();
    apply(&mut s, |t| {
        assert!(t.delete_range(b"nothing", b"").unwrap().is_empty());
    });
    assert_eq!(s.current_revision(), 1);
}

#[test]
fn txn_reads_its_own_writes_under_one_revision() {
    let (_d, _db, mut s) = open();
    apply(&mut s, |t| {
        t.put(b"a", b"1".to_vec(), 0).unwrap();
        t.put(b"b", b"2".to_vec(), 0).unwrap();
        let r = t.range(&RangeRequest {
            key: b"a".to_vec(),
            range_end: b"c".to_vec(),
            ..Default::default()
        });
        assert_eq!(r.unwrap().count, 2);
    });
    assert_eq!(s.current_revision(), 2);
    assert_eq!(s.get(b"b").unwrap().unwrap().mod_revision, 2);
}

#[test]
fn range_options_limit_sort_count() {
    let (_d, _db, mut s) = open();
    for (k, v) in [("k1", "c"), ("k2", "a"), ("k3", "b")] {
        apply(&mut s, |t| {
            t.put(k.as_bytes(), v.as_bytes().to_vec(), 0).unwrap();
        });
    }
    let base = RangeRequest {
        key: b"k".to_vec(),
        range_end: b"l".to_vec(),
        ..Default::default()
    };
    let r = s
        .range(&RangeRequest {
            limit: 2,
            ..base.clone()
        })
        .unwrap();
    assert_eq!((r.kvs.len(), r.more, r.count), (2, true, 3));
    let r = s
        .range(&RangeRequest {
            sort_order: SortOrder::Descend as i32,
            sort_target: SortTarget::Value as i32,
            ..base.clone()
        })
        .unwrap();
    let vals: Vec<_> = r.kvs.iter().map(|kv| kv.value.clone()).collect();
    assert_eq!(vals, vec![b"c".to_vec(), b"b".to_vec(), b"a".to_vec()]);
    let r = s
        .range(&RangeRequest {
            count_only: true,
            ..base.clone()
        })
        .unwrap();
    assert_eq!((r.count, r.kvs.len()), (3, 0));
    let r = s
        .range(&RangeRequest {
            min_mod_revision: 3,
            ..base.clone()
        })
        .unwrap();
    assert_eq!((r.count, r.kvs.len()), (3, 2));
    let r = s
        .range(&RangeRequest {
            keys_only: true,
            ..base
        })
        .unwrap();
    assert!(r.kvs.iter().all(|kv| kv.value.is_empty()));
}

#[test]
fn compaction_and_revision_errors() {
    let (_d, _db, mut s) = open();
    for v in ["1", "2", "3"] {
        apply(&mut s, |t| {
            t.put(b"k", v.as_bytes().to_vec(), 0).unwrap();
        });
    }
    let tree = s.tree.clone();
    let mut batch = sled::Batch::default();
    s.compact(3, &mut batch).unwrap();
    tree.apply_batch(batch).unwrap();
    assert_eq!(s.check_revision(2), Err(EtcdError::Compacted));
    assert_eq!(s.check_revision(9), Err(EtcdError::FutureRev));
    assert_eq!(get(&s, "k", 3), vec![("k".into(), "2".into())]);
    assert_eq!(
        s.compact(3, &mut sled::Batch::default()),
        Err(EtcdError::Compacted)
    );
    assert_eq!(tree.scan_prefix([keys::HISTORY_PREFIX]).count(), 2);
}

#[test]
fn a_fresh_store_compacts_revision_zero_once() {
    let (_d, _db, mut s) = open();
    assert_eq!(s.compacted_revision(), 0);
    s.compact(0, &mut sled::Batch::default()).unwrap();
    assert_eq!(
        s.compact(0, &mut sled::Batch::default()),
        Err(EtcdError::Compacted)
    );
    s.compact(1, &mut sled::Batch::default()).unwrap();
    assert_eq!(s.check_revision(1), Ok(1));
}

#[test]
fn reopen_rebuilds_index_and_revision() {
    let (d, db, mut s) = open();
    apply(&mut s, |t| {
        t.put(b"x", b"1".to_vec(), 7).unwrap();
    });
    apply(&mut s, |t| {
        t.delete_range(b"x", b"").unwrap();
    });
    drop(s);
    let s = MvccStore::open(db.open_tree("state").unwrap()).unwrap();
    assert_eq!(s.current_revision(), 3);
    assert!(s.get(b"x").unwrap().is_none());
    let hist = s.history(1, 3).unwrap();
    assert_eq!(hist.len(), 2);
    assert!(hist[1].tombstone);
    assert_eq!(hist[1].prev.as_ref().unwrap().lease, 7);
    drop(d);
}

#[test]
fn writes_sharing_one_backend_batch_see_each_other() {
    // A batched raft entry applies many writes into one backend batch before it is
    // stored; each write must see the previous ones (prev_kv, versions).
    let (_dir, _db, mut store) = open();
    let tree = store.tree.clone();
    let mut batch = sled::Batch::default();
    for value in ["1", "2", "3"] {
        let mut txn = store.write();
        txn.put(b"k", value.as_bytes().to_vec(), 0).unwrap();
        txn.commit(&mut batch);
    }
    let txn = store.write();
    let seen = txn.get(b"k").unwrap().unwrap();
    assert_eq!(
        (seen.value.as_slice(), seen.version, seen.mod_revision),
        (&b"3"[..], 3, 4)
    );
    drop(txn);
    tree.apply_batch(batch).unwrap();
    store.batch_applied();
    assert_eq!(
        get(&store, "k", 0),
        vec![("k".to_string(), "3".to_string())]
    );
    assert_eq!(
        get(&store, "k", 2),
        vec![("k".to_string(), "1".to_string())]
    );
}

#[test]
fn a_write_dropped_without_commit_takes_everything_back() {
    let (_dir, _db, mut store) = open();
    apply(&mut store, |t| {
        t.put(b"a", b"1".to_vec(), 0).unwrap();
        t.put(b"b", b"2".to_vec(), 0).unwrap();
    });
    let before = store.memory_state();
    {
        let mut txn = store.write();
        assert_eq!(txn.delete_range(b"a", b"\0").unwrap().len(), 2);
        txn.put(b"new", b"x".to_vec(), 0).unwrap();
        txn.put(b"a", b"again".to_vec(), 0).unwrap();
        assert!(txn.get(b"b").unwrap().is_none());
        assert_eq!(txn.read_revision(), 3);
    }
    assert_eq!(store.memory_state(), before);
    assert_eq!(store.key_count(), 2);

    // The next write gets the revision the dropped one would have had.
    apply(&mut store, |t| {
        t.put(b"c", b"3".to_vec(), 0).unwrap();
    });
    assert_eq!(store.current_revision(), 3);
    assert_eq!(get(&store, "a", 0), vec![("a".into(), "1".into())]);
    store.batch_applied();
    let reopened = MvccStore::open(store.tree.clone()).unwrap();
    assert_eq!(reopened.memory_state(), store.memory_state());
}
