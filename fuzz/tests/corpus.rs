//! Replays every committed corpus file through its target's checks in an ordinary test
//! build: the seeds (and any crash input added as a regression) must pass.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let path = entry.expect("corpus entry").path();
        eprintln!("{}", path.display());
        check(&std::fs::read(&path).expect("corpus file"));
        n += 1;
    }
    assert!(n > 0, "{} has no inputs", dir.display());
}

#[test]
fn wal_record() {
    replay("wal_record", etcd_fuzz::wal_record::check);
}

#[test]
fn wal_segment() {
    replay("wal_segment", etcd_fuzz::wal_segment::check);
}

#[test]
fn snapshot_file() {
    replay("snapshot_file", etcd_fuzz::snapshot_file::check);
}

#[test]
fn raft_apply() {
    replay("raft_apply", etcd_fuzz::raft_apply::check);
}

#[test]
fn config_file() {
    replay("config_file", etcd_fuzz::config_file::check);
}

#[test]
fn tls_pem() {
    replay("tls_pem", etcd_fuzz::tls_pem::check);
}

#[test]
fn jwt_verify() {
    replay("jwt_verify", etcd_fuzz::jwt_verify::check);
}

#[test]
fn token_flag() {
    replay("token_flag", etcd_fuzz::token_flag::check);
}
