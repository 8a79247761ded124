//! `--force-new-cluster`: a surviving member's data restarted as a one-member cluster.
//!
//! The member keeps its ID, its cluster ID and every key; the raft log, the vote and the
//! old membership are dropped, and raft is initialized again with this member alone, as
//! etcd does when it rewrites the membership in its WAL. Other members, if any survive,
//! must be removed and re-added to join the new cluster.

use std::collections::BTreeMap;

use super::bootstrap::{set_pending_members, Bootstrap, BootstrapError};
use crate::raft::state_machine::forget_raft_position;
use crate::raft::types::MemberNode;
use crate::storage::Backend;

/// Rewrites the data dir of member `boot` into a one-member cluster. `fallback` describes
/// this member when the old membership does not (it always should).
pub fn force_new_cluster(
    backend: &Backend,
    boot: Bootstrap,
    fallback: MemberNode,
) -> Result<Bootstrap, BootstrapError> {
    let old = forget_raft_position(backend).map_err(|e| BootstrapError::Pending(e.to_string()))?;
    let me = old
        .as_ref()
        .and_then(|m| m.membership().get_node(&boot.member_id).cloned())
        .unwrap_or(fallback);
    let commit = old
        .as_ref()
        .and_then(|m| m.log_id().map(|l| l.index))
        .unwrap_or(0);
    tracing::info!(target: "etcdserver", "forcing restart of member {:x} in cluster {:x} at commit index {commit}", boot.member_id, boot.cluster_id);
    if let Some(old) = &old {
        for id in old.membership().nodes().map(|(id, _)| *id) {
            if id != boot.member_id {
                tracing::info!(target: "etcdserver/membership", "removed member {id:x} from cluster {:x}", boot.cluster_id);
            }
        }
    }
    backend.raft_log.clear()?;
    backend.raft_meta.clear()?;
    backend.wal().flush()?;
    let members = BTreeMap::from([(boot.member_id, MemberNode { voter: true, ..me })]);
    set_pending_members(backend, &members)?;
    Ok(Bootstrap { members, ..boot })
}
