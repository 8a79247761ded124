//! `--force-new-cluster`: a surviving member's data restarted as a one-member cluster.
//!
//! The member keeps its ID, its cluster ID, its log and every key. A membership entry
//! naming it the only voter is appended to its log, as etcd appends configuration changes
//! to its WAL; the member then elects itself and commits whatever its log holds. Other
//! members, if any survive, must be removed and re-added to join the new cluster.

use std::collections::BTreeMap;

use super::bootstrap::{set_pending_members, Bootstrap, BootstrapError};
use crate::raft::log_store::force_single_voter;
use crate::raft::state_machine::applied_membership;
use crate::raft::types::MemberNode;
use crate::storage::Backend;

/// Rewrites the membership of member `boot` to itself alone. `fallback` describes this
/// member when the applied membership does not (it always should).
pub fn force_new_cluster(
    backend: &Backend,
    wal: &crate::wal::Wal,
    boot: Bootstrap,
    fallback: MemberNode,
) -> Result<Bootstrap, BootstrapError> {
    let broken = |e: openraft::StorageError<u64>| BootstrapError::Pending(e.to_string());
    let old = applied_membership(backend).map_err(broken)?;
    let me = old
        .as_ref()
        .and_then(|m| m.membership().get_node(&boot.member_id).cloned())
        .map(|node| MemberNode {
            voter: true,
            ..node
        })
        .unwrap_or(fallback);
    let forced = force_single_voter(wal, boot.member_id, me.clone()).map_err(broken)?;
    let Some(index) = forced else {
        // Nothing in the log yet: initialize raft with this member alone instead.
        let members = BTreeMap::from([(boot.member_id, me)]);
        set_pending_members(backend, &members)?;
        return Ok(Bootstrap { members, ..boot });
    };
    tracing::info!(target: "etcdserver", "forcing restart of member {:x} in cluster {:x} at commit index {}", boot.member_id, boot.cluster_id, index - 1);
    if let Some(old) = &old {
        for (id, _) in old.membership().nodes() {
            if *id != boot.member_id {
                tracing::info!(target: "etcdserver/membership", "removed member {id:x} from cluster {:x}", boot.cluster_id);
            }
        }
    }
    Ok(boot)
}
