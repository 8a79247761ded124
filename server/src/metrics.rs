//! Prometheus metrics under etcd's metric names, computed when scraped.

mod process;

use std::fmt::Write;

use crate::server::EtcdServer;

/// One gauge in Prometheus text format.
fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

/// Renders the metrics page. Walks the database (the in-use size); call it off the
/// async runtime.
pub fn render(server: &EtcdServer) -> String {
    let mut out = String::new();
    let leader = server.leader();
    let (rev, compacted, keys) = {
        let s = server.state.mvcc.read();
        (s.current_revision(), s.compacted_revision(), s.key_count())
    };
    let m = server.raft.metrics().borrow().clone();
    // Read after the applied index, so never behind it.
    let committed = server.committed_index();
    let db = server.state.backend.db_size();
    gauge(
        &mut out,
        "etcd_server_has_leader",
        "Whether or not a leader exists. 1 is existence, 0 is not.",
        u8::from(leader != 0),
    );
    gauge(
        &mut out,
        "etcd_server_is_leader",
        "Whether or not this member is a leader.",
        u8::from(leader == server.identity.member_id),
    );
    let _ = writeln!(
        out,
        "# HELP etcd_server_id Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.\n# TYPE etcd_server_id gauge\netcd_server_id{{server_id=\"{:x}\"}} 1",
        server.identity.member_id
    );
    gauge(
        &mut out,
        "etcd_server_proposals_committed_total",
        "The total number of consensus proposals committed.",
        committed,
    );
    gauge(
        &mut out,
        "etcd_server_proposals_applied_total",
        "The total number of consensus proposals applied.",
        m.last_applied.map(|l| l.index).unwrap_or(0),
    );
    gauge(
        &mut out,
        "etcd_debugging_mvcc_current_revision",
        "The current revision of store.",
        rev,
    );
    gauge(
        &mut out,
        "etcd_debugging_mvcc_compact_revision",
        "The revision of the last compaction in store.",
        compacted,
    );
    gauge(
        &mut out,
        "etcd_debugging_mvcc_keys_total",
        "Total number of keys.",
        keys,
    );
    gauge(
        &mut out,
        "etcd_mvcc_db_total_size_in_bytes",
        "Total size of the underlying database physically allocated in bytes.",
        db,
    );
    gauge(
        &mut out,
        "etcd_mvcc_db_total_size_in_use_in_bytes",
        "Total size of the underlying database logically in use in bytes.",
        server.state.backend.size_in_use(),
    );
    gauge(
        &mut out,
        "etcd_server_quota_backend_bytes",
        "Current backend storage quota size in bytes.",
        server.limits.quota_bytes,
    );
    gauge(
        &mut out,
        "etcd_rs_backend_cache_capacity_bytes",
        "Most bytes of the state database's pages kept in memory (--experimental-backend-cache-bytes).",
        server.state.backend.cache_capacity(),
    );
    gauge(
        &mut out,
        "etcd_rs_watch_window_bytes",
        "Bytes of recent events kept in memory for watchers (at most 8 MiB).",
        server.state.hub.window_bytes(),
    );
    process::render(&mut out);
    out
}
