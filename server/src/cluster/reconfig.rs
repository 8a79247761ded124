//! Runtime reconfiguration on the leader: etcd's member add/remove/update/promote mapped
//! onto openraft membership changes, with etcd's safety checks (`--strict-reconfig-check`)
//! and error texts.
//!
//! etcd adds a voting member in one step. openraft adds voters through a joint
//! configuration that needs the new member to answer, which it cannot do before the
//! operator has started it with the output of `member add`. So `member add` commits the
//! member as a learner marked `voter`, answers at once, and the leader promotes it (see
//! [`promote_caught_up`]) as soon as it has caught up. Until then it is listed as a voter
//! and counted as one by the safety checks, as etcd counts it.

use std::collections::{BTreeMap, BTreeSet};

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::ChangeMembers;

use super::attributes;
use super::ids::member_id;
use crate::error::{EtcdError, Result};
use crate::raft::types::MemberNode;
use crate::server::EtcdServer;

/// A member as the Cluster service reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    pub id: u64,
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

fn quorum(voters: usize) -> usize {
    voters / 2 + 1
}

impl EtcdServer {
    /// Members and voters as etcd sees them: raft's voters plus members added as voters
    /// that raft still holds as learners.
    fn membership(&self) -> (BTreeMap<u64, MemberNode>, BTreeSet<u64>) {
        let metrics = self.raft.metrics().borrow().clone();
        let config = metrics.membership_config.membership().clone();
        let nodes: BTreeMap<u64, MemberNode> =
            config.nodes().map(|(id, n)| (*id, n.clone())).collect();
        let mut voters: BTreeSet<u64> = config.voter_ids().collect();
        voters.extend(nodes.iter().filter(|(_, n)| n.voter).map(|(id, _)| *id));
        (nodes, voters)
    }

    /// Every member, voters and learners, with published names and client URLs.
    pub fn members(&self) -> Vec<MemberView> {
        let (nodes, voters) = self.membership();
        let tree = &self.state.backend.state();
        nodes
            .into_iter()
            .map(|(id, node)| {
                // Unstarted members (nothing published yet) have no name or client URLs.
                let published = attributes::load(tree, id).unwrap_or_default();
                MemberView {
                    id,
                    name: published.name,
                    peer_urls: node.peer_urls,
                    client_urls: published.client_urls,
                    is_learner: !voters.contains(&id),
                }
            })
            .collect()
    }

    /// Whether raft itself holds `id` as a voter (not a learner awaiting promotion).
    pub fn is_raft_voter(&self, id: u64) -> bool {
        self.raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == id)
    }

    fn is_started(&self, id: u64) -> bool {
        attributes::load(&self.state.backend.state(), id).is_some()
    }

    /// etcd's `isReadyToAddVotingMember`: the started voters must still be a quorum of
    /// the larger cluster (so a second member cannot be added while an earlier new one has
    /// not started), except that a one-member cluster may always grow to two.
    fn check_add_voter(&self, voters: &BTreeSet<u64>) -> Result<()> {
        let started = voters.iter().filter(|id| self.is_started(**id)).count();
        let after = voters.len() + 1;
        if started < quorum(after) && !(started == 1 && after == 2) {
            return Err(EtcdError::NotEnoughStarted);
        }
        Ok(())
    }

    /// etcd's `isReadyToRemoveVotingMember`: the started voters left must be a quorum.
    fn check_remove_voter(&self, voters: &BTreeSet<u64>, id: u64) -> Result<()> {
        let left: Vec<u64> = voters.iter().copied().filter(|v| *v != id).collect();
        let started = left.iter().filter(|v| self.is_started(**v)).count();
        if started < quorum(left.len()) {
            return Err(EtcdError::NotEnoughStarted);
        }
        Ok(())
    }

    /// Commits a membership change. openraft runs one change at a time; a change that
    /// finds another in progress (the leader promoting a caught-up member, say) waits for
    /// it, as etcd queues configuration changes, within the caller's request timeout.
    async fn change(&self, changes: ChangeMembers<u64, MemberNode>) -> Result<()> {
        loop {
            match self.raft.change_membership(changes.clone(), false).await {
                Ok(_) => return Ok(()),
                Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                    ChangeMembershipError::InProgress(_),
                ))) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => return Err(crate::raft_errors::from_write(e)),
            }
        }
    }

    /// Adds a member with `peer_urls`; returns its view.
    pub async fn member_add(&self, peer_urls: Vec<String>, is_learner: bool) -> Result<MemberView> {
        let urls = parse_peer_urls(&peer_urls)?;
        let (nodes, voters) = self.membership();
        if nodes
            .values()
            .any(|n| n.peer_urls.iter().any(|u| urls.contains(u)))
        {
            return Err(EtcdError::PeerUrlExist);
        }
        if !is_learner && self.limits.strict_reconfig_check {
            self.check_add_voter(&voters)?;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let id = member_id(&urls, "", Some(now.as_secs() as i64));
        if nodes.contains_key(&id) {
            return Err(EtcdError::MemberExist);
        }
        let node = MemberNode {
            name: String::new(),
            peer_urls: urls.clone(),
            client_urls: Vec::new(),
            voter: !is_learner,
        };
        self.change(ChangeMembers::AddNodes([(id, node)].into()))
            .await?;
        tracing::info!(target: "etcdserver/membership", "added member {id:x} [{}] to cluster {:x}", urls.join(","), self.identity.cluster_id);
        Ok(MemberView {
            id,
            name: String::new(),
            peer_urls: urls,
            client_urls: Vec::new(),
            is_learner,
        })
    }

    /// Removes member `id`.
    pub async fn member_remove(&self, id: u64) -> Result<()> {
        let (nodes, voters) = self.membership();
        if !nodes.contains_key(&id) {
            return Err(EtcdError::MemberNotFound);
        }
        if voters.contains(&id) && self.limits.strict_reconfig_check {
            self.check_remove_voter(&voters, id)?;
        }
        if self.is_raft_voter(id) {
            self.change(ChangeMembers::RemoveVoters([id].into()))
                .await?;
        } else {
            self.change(ChangeMembers::RemoveNodes([id].into())).await?;
        }
        tracing::info!(target: "etcdserver/membership", "removed member {id:x} from cluster {:x}", self.identity.cluster_id);
        Ok(())
    }

    /// Replaces member `id`'s peer URLs.
    pub async fn member_update(&self, id: u64, peer_urls: Vec<String>) -> Result<()> {
        let (nodes, _) = self.membership();
        let mut node = nodes.get(&id).cloned().ok_or(EtcdError::MemberNotFound)?;
        if nodes
            .iter()
            .any(|(other, n)| *other != id && n.peer_urls.iter().any(|u| peer_urls.contains(u)))
        {
            return Err(EtcdError::PeerUrlExist);
        }
        node.peer_urls = peer_urls;
        self.change(ChangeMembers::SetNodes([(id, node)].into()))
            .await
    }

    /// Makes learner `id` a voter; it must have caught up with the leader.
    pub async fn member_promote(&self, id: u64) -> Result<()> {
        let (nodes, voters) = self.membership();
        if !nodes.contains_key(&id) {
            return Err(EtcdError::MemberNotFound);
        }
        if voters.contains(&id) {
            return Err(EtcdError::MemberNotLearner);
        }
        if !self.caught_up(id) {
            return Err(EtcdError::LearnerNotReady);
        }
        self.change(ChangeMembers::AddVoterIds([id].into())).await
    }

    /// etcd's readiness rule: a learner's match index is within 90% of the leader's log.
    fn caught_up(&self, id: u64) -> bool {
        let metrics = self.raft.metrics().borrow().clone();
        let last = metrics.last_log_index.unwrap_or(0);
        let matched = metrics
            .replication
            .as_ref()
            .and_then(|r| r.get(&id).cloned().flatten())
            .map(|l| l.index)
            .unwrap_or(0);
        matched > 0 && matched as f64 >= 0.9 * last as f64
    }
}

/// On the leader: promotes members added as voters once they have caught up.
pub async fn promote_caught_up(server: std::sync::Arc<EtcdServer>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let metrics = server.raft.metrics().borrow().clone();
        if metrics.current_leader != Some(server.identity.member_id) {
            continue;
        }
        let config = metrics.membership_config.membership().clone();
        let voters: BTreeSet<u64> = config.voter_ids().collect();
        let pending: Vec<u64> = config
            .nodes()
            .filter(|(id, n)| n.voter && !voters.contains(id))
            .map(|(id, _)| *id)
            .collect();
        for id in pending {
            if server.caught_up(id) {
                match server.change(ChangeMembers::AddVoterIds([id].into())).await {
                    Ok(()) => {
                        tracing::info!(target: "etcdserver/membership", "member {id:x} caught up; it now votes")
                    }
                    Err(e) => {
                        tracing::warn!(target: "etcdserver/membership", "promoting member {id:x} failed: {e}")
                    }
                }
            }
        }
    }
}

/// A new member's peer URLs, as the cluster stores them; `etcdserver: given member URLs
/// are invalid` when one does not parse or there is none. Checked first, before who may
/// ask, as etcd does.
pub fn parse_peer_urls(peer_urls: &[String]) -> Result<Vec<String>> {
    let parsed: std::result::Result<Vec<url::Url>, _> =
        peer_urls.iter().map(|u| url::Url::parse(u)).collect();
    let urls: Vec<String> = parsed
        .map_err(|_| EtcdError::MemberBadUrls)?
        .iter()
        .map(super::ids::url_string)
        .collect();
    match urls.is_empty() {
        true => Err(EtcdError::MemberBadUrls),
        false => Ok(urls),
    }
}

#[cfg(test)]
mod tests {
    use super::quorum;

    #[test]
    fn quorum_sizes() {
        assert_eq!(
            (quorum(1), quorum(2), quorum(3), quorum(4), quorum(5)),
            (1, 2, 2, 3, 3)
        );
    }
}
