//! Backup snapshot files (`snapshot`): `decode` with and without the hash check, then
//! `status` and `restore` on the file, as `etcdctl snapshot status|restore` run them, and
//! the restored data directory loaded as a starting member loads its state.
//!
//! Invariants:
//! - every reader answers a result, never a panic, whatever the file holds;
//! - the hash check only refuses: a file that passes it decodes to the same entries
//!   without it;
//! - decoding is the inverse of encoding: the entries decoded re-encode to a file that
//!   decodes to them again, and to the very same bytes when the file was hashed and of
//!   the encoded length;
//! - `status` reads a file exactly when `decode` does, and counts its entries;
//! - a file that decodes restores, at the revision `status` reports, unless it holds a key
//!   of no known kind: then the restore refuses it, naming the first such key.

use std::path::Path;
use std::time::{Duration, Instant};

use etcd_server::snapshot::{self, restore, SnapshotError};
use etcd_server::storage::{keys, Backend};

/// The restored member, a cluster of one.
const NAME: &str = "m1";
const PEER: &str = "http://127.0.0.1:2380";

pub fn check(data: &[u8]) {
    let hashed = snapshot::decode(data, false);
    let unhashed = snapshot::decode(data, true);
    if let Ok(entries) = &hashed {
        assert_eq!(
            unhashed.as_ref().ok(),
            Some(entries),
            "hash check only refuses"
        );
    }
    if let Ok(entries) = &unhashed {
        let again = snapshot::encode(entries.iter().map(|(k, v)| (k, v)));
        assert_eq!(
            snapshot::decode(&again, false).ok().as_ref(),
            Some(entries),
            "decode inverts encode"
        );
        if hashed.is_ok() && again.len() == data.len() {
            assert_eq!(again, data, "one encoding per content");
        }
    }

    let dir = crate::scratch::dir();
    let path = dir.path().join("snapshot.db");
    std::fs::write(&path, data).expect("snapshot written");
    let status = snapshot::status(&path);
    match (&status, &unhashed) {
        (Ok(s), Ok(entries)) => {
            assert_eq!(s.total_key, entries.len());
            assert_eq!(s.total_size, data.len() as u64);
        }
        (Err(_), Err(_)) => {}
        (s, d) => panic!("status {s:?} disagrees with decode {:?}", d.as_ref().err()),
    }
    let (Ok(status), Ok(entries)) = (status, unhashed) else {
        return;
    };

    let peer: url::Url = PEER.parse().expect("peer URL");
    let cluster = [(NAME.to_string(), peer.clone())];
    let data_dir = dir.path().join("restored");
    let restored = restore::restore(&restore::RestoreOptions {
        snapshot: &path,
        name: NAME,
        initial_cluster: &cluster,
        initial_cluster_token: "fuzz",
        initial_advertise_peer_urls: std::slice::from_ref(&peer),
        data_dir: &data_dir,
        skip_hash_check: hashed.is_err(),
    });
    let unknown = entries.iter().find_map(|(k, _)| keys::classify(k).err());
    let restored = match (restored, unknown) {
        (Ok(restored), None) => restored,
        (Err(SnapshotError::UnknownKey(refused)), Some(unknown)) => {
            assert_eq!(refused, unknown, "the first unknown key is named");
            return;
        }
        (r, unknown) => panic!("restore {:?} with unknown key {unknown:?}", r.err()),
    };
    assert_eq!(restored.revision, status.revision);
    // The member would now start on it: loading a damaged state may fail, not panic.
    let backend = reopen(&data_dir.join("member"));
    let _ = etcd_server::state::KvState::open(backend, 2, Default::default());
}

/// Opens the restored backend. sled releases its file lock from a background thread after
/// the restore's handle is dropped, so the first attempts may find it still held; a real
/// member starts in a new process. Gives up after a deadline.
fn reopen(member_dir: &Path) -> Backend {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Backend::open(member_dir) {
            Ok(b) => return b,
            Err(e) if Instant::now() > deadline => panic!("restored backend opens: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}
