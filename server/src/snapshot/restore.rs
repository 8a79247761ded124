//! `etcdctl snapshot restore`: a fresh data dir for one member of a new cluster, holding a
//! snapshot's keys, leases and revisions.
//!
//! The member and cluster IDs come from `--name`, `--initial-cluster`,
//! `--initial-cluster-token` and `--initial-advertise-peer-urls`, exactly as a first start
//! with those flags would derive them, so every member restored with the same flags agrees.
//! The raft log starts empty; on its first start the member initializes raft with the
//! restored membership and needs no cluster flags.

use std::path::Path;

use url::Url;

use super::{read, SnapshotError};
use crate::cluster::bootstrap::{bootstrap, set_pending_members, InitialCluster};
use crate::storage::{keys, Backend};

/// What to restore, and as which member.
pub struct RestoreOptions<'a> {
    pub snapshot: &'a Path,
    pub name: &'a str,
    pub initial_cluster: &'a [(String, Url)],
    pub initial_cluster_token: &'a str,
    pub initial_advertise_peer_urls: &'a [Url],
    pub data_dir: &'a Path,
    pub skip_hash_check: bool,
}

/// The restored member.
#[derive(Debug, Clone, Copy)]
pub struct Restored {
    pub member_id: u64,
    pub cluster_id: u64,
    pub revision: i64,
}

/// Restores `opts.snapshot` into `opts.data_dir`, which must not exist.
pub fn restore(opts: &RestoreOptions<'_>) -> Result<Restored, SnapshotError> {
    if opts.data_dir.exists() {
        return Err(SnapshotError::DataDirExists(
            opts.data_dir.display().to_string(),
        ));
    }
    let entries = read(opts.snapshot, opts.skip_hash_check)?;
    let result = write(opts, entries);
    if result.is_err() {
        // Leave nothing half-made behind: a retry must not find the data dir "existing".
        let _ = std::fs::remove_dir_all(opts.data_dir);
    }
    result
}

fn write(opts: &RestoreOptions<'_>, entries: Vec<super::Entry>) -> Result<Restored, SnapshotError> {
    let backend = Backend::open(&opts.data_dir.join("member"))?;
    let boot = bootstrap(
        &backend,
        &InitialCluster {
            name: opts.name,
            token: opts.initial_cluster_token,
            initial_cluster: opts.initial_cluster,
            advertise_peer_urls: opts.initial_advertise_peer_urls,
            advertise_client_urls: &[],
        },
    )?;
    // Only key-value data is carried over: raft positions, member attributes and alarms
    // belong to the old cluster (see `keys::Reach::restored`).
    let mut revision = 1;
    let mut batch = sled::Batch::default();
    for (k, v) in entries {
        if !keys::reach(&k)?.restored() {
            continue;
        }
        if k == keys::REVISION {
            revision = v.as_slice().try_into().map(i64::from_be_bytes).unwrap_or(1);
        }
        batch.insert(k, v);
    }
    backend.state().apply_batch(batch)?;
    set_pending_members(&backend, &boot.members)?;
    backend.sync_state()?;
    Ok(Restored {
        member_id: boot.member_id,
        cluster_id: boot.cluster_id,
        revision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Restores `snapshot` as member m1 of a one-member cluster named `name` into `data_dir`.
    fn restore_as(name: &str, snapshot: &Path, data_dir: &Path) -> Result<Restored, SnapshotError> {
        let peer: Url = "http://127.0.0.1:2380".parse().unwrap();
        let cluster = [("m1".to_string(), peer.clone())];
        restore(&RestoreOptions {
            snapshot,
            name,
            initial_cluster: &cluster,
            initial_cluster_token: "tok",
            initial_advertise_peer_urls: std::slice::from_ref(&peer),
            data_dir,
            skip_hash_check: false,
        })
    }

    /// A snapshot holding one key of every kind, each valued `old` (the revision 9).
    fn every_kind() -> Vec<(Vec<u8>, Vec<u8>)> {
        keys::KeyKind::ALL
            .iter()
            .map(|&kind| match kind {
                keys::KeyKind::Revision => (keys::REVISION.to_vec(), 9i64.to_be_bytes().to_vec()),
                kind => (keys::example(kind), b"old".to_vec()),
            })
            .collect()
    }

    #[test]
    fn restore_refuses_an_existing_data_dir_and_keeps_only_data() {
        let dir = tempfile::tempdir().unwrap();
        let snap = dir.path().join("s.db");
        std::fs::write(&snap, super::super::encode(every_kind())).unwrap();
        let data_dir = dir.path().join("m1.etcd");
        let restored = restore_as("m1", &snap, &data_dir).unwrap();
        assert_eq!(restored.revision, 9);
        let err = restore_as("m1", &snap, &data_dir).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("data-dir {:?} exists", data_dir.display().to_string())
        );

        // The data came along; nothing else of the old cluster did: this member's own keys
        // are the restore's.
        let backend = Backend::open(&data_dir.join("member")).unwrap();
        for &kind in keys::KeyKind::ALL {
            let value = backend.state().get(keys::example(kind)).unwrap();
            let old = value
                .as_deref()
                .is_some_and(|v| v == b"old" || v == 9i64.to_be_bytes());
            assert_eq!(old, kind.reach().restored(), "{kind:?}");
        }
        let boot = crate::cluster::bootstrap::load_identity(&backend)
            .unwrap()
            .unwrap();
        assert_eq!(boot.member_id, restored.member_id);
        assert_eq!(boot.members.len(), 1);
    }

    #[test]
    fn a_key_of_no_known_kind_is_refused_and_leaves_no_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let snap = dir.path().join("s.db");
        let mut entries = every_kind();
        entries.push((b"m/unknown".to_vec(), b"x".to_vec()));
        std::fs::write(&snap, super::super::encode(entries)).unwrap();
        let data_dir = dir.path().join("m1.etcd");
        let err = restore_as("m1", &snap, &data_dir).unwrap_err();
        assert!(
            matches!(&err, SnapshotError::UnknownKey(k) if k.0 == b"m/unknown"),
            "{err}"
        );
        assert!(!data_dir.exists());
    }

    #[test]
    fn a_bad_name_leaves_no_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let snap = dir.path().join("s.db");
        std::fs::write(
            &snap,
            super::super::encode(Vec::<(Vec<u8>, Vec<u8>)>::new()),
        )
        .unwrap();
        let data_dir = dir.path().join("x.etcd");
        let err = restore_as("other", &snap, &data_dir).unwrap_err();
        assert!(
            err.to_string().contains("couldn't find local name"),
            "{err}"
        );
        assert!(!data_dir.exists());
    }
}
