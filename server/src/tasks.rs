//! Background work of a running member: following raft's leadership, and the leader's
//! lease duties (expiring leases, checkpointing remaining TTLs).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_proto::etcdserverpb::LeaseRevokeRequest;
use etcd_proto::raftrequestpb::raft_request::Request;
use etcd_proto::raftrequestpb::{LeaseCheckpoint, LeaseCheckpoints, RaftRequest};
use parking_lot::Mutex;
use prost::Message;

use crate::server::EtcdServer;

/// Follows raft metrics: records term and leader, promotes or demotes the lessor when
/// this member gains or loses leadership (an election timeout is added to every lease on
/// promotion), and notices when the membership no longer holds this member. `was_member`
/// says whether this member already belonged to the cluster at start (a joining member
/// first replays memberships from before it was added).
///
/// `election` is the election timeout, for etcd's check-quorum: a leader that has heard
/// from no quorum for that long steps down. openraft 0.9 keeps such a leader leading (it
/// commits nothing and serves no linearizable read, but it goes on claiming leadership,
/// and its API ignores a request to step down), so this member then reports no leader,
/// routes requests as a member without a leader does (they wait for one, within the
/// request timeout) and gives up the lessor. Raft itself hands over once a higher term
/// reaches it. openraft reports metrics on every tick (1.5 heartbeats), so the time since
/// the last quorum acknowledgement is re-checked that often.
///
/// A follower likewise reports no leader once it has taken nothing from its leader for an
/// election timeout, as etcd's follower does when its election timer fires. openraft's own
/// timer is not that: it adds two election timeouts to a follower's next election after a
/// vote this member refused for a shorter log, long after it mattered, and clients
/// requiring a leader would wait that much longer to be told.
pub async fn follow_raft(server: Arc<EtcdServer>, election: Duration, mut was_member: bool) {
    let mut metrics = server.raft.metrics();
    let me = server.identity.member_id;
    let mut was_leader = false;
    // (term, when this member was first seen leading in it)
    let mut leading_since: Option<(u64, Instant)> = None;
    // (leader, when this member first saw it lead)
    let mut following_since: Option<(u64, Instant)> = None;
    let mut recheck = tokio::time::interval(election / 10);
    loop {
        let (term, raft_leader, since_quorum_ack, in_membership, any_members) = {
            let m = metrics.borrow_and_update();
            let membership = m.membership_config.membership();
            let any = membership.nodes().next().is_some();
            (
                m.current_term,
                m.current_leader,
                m.millis_since_quorum_ack.map(Duration::from_millis),
                membership.get_node(&me).is_some(),
                any,
            )
        };
        let leader = if raft_leader == Some(me) {
            // A new leader has no quorum acknowledgement yet: count from its election.
            let since = match leading_since {
                Some((t, at)) if t == term => at,
                _ => leading_since.insert((term, Instant::now())).1,
            };
            let silent = since_quorum_ack.unwrap_or_else(|| since.elapsed());
            if silent > election && server.leader() == me {
                tracing::warn!(target: "raft", "raft.node: {me:x} stepped down to follower since quorum is not active ({silent:?} without a quorum) at term {term}");
            }
            raft_leader.filter(|_| silent <= election)
        } else if let Some(l) = raft_leader {
            leading_since = None;
            let since = match following_since {
                Some((f, at)) if f == l => at,
                _ => following_since.insert((l, Instant::now())).1,
            };
            let heard = server.last_heard_from(l).map_or(since, |at| at.max(since));
            let silent = heard.elapsed();
            if silent > election && server.leader() == l {
                tracing::warn!(target: "raft", "raft.node: {me:x} has not heard from leader {l:x} for {silent:?} at term {term}");
            }
            raft_leader.filter(|_| silent <= election)
        } else {
            (leading_since, following_since) = (None, None);
            None
        };
        if in_membership {
            was_member = true;
        } else if was_member && any_members {
            // Stop one election timeout later, so a leader that removed itself can still
            // answer the member-remove call it is finishing.
            was_member = false;
            let peers = server.peers.clone();
            tokio::spawn(async move {
                tokio::time::sleep(election).await;
                peers.mark_removed();
            });
        }
        if leader != Some(server.leader()).filter(|l| *l != 0) {
            match leader {
                Some(l) => {
                    tracing::info!(target: "raft", "raft.node: {me:x} elected leader {l:x} at term {term}")
                }
                None => {
                    tracing::info!(target: "raft", "raft.node: {me:x} lost leader at term {term}")
                }
            }
        }
        server.observe_raft(term, leader);
        let is_leader = leader == Some(me);
        if is_leader != was_leader {
            let mut lessor = server.state.lessor.lock();
            if is_leader {
                lessor.promote(election);
            } else {
                lessor.demote();
            }
            was_leader = is_leader;
        }
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() {
                return;
            },
            _ = recheck.tick() => {}
        }
    }
}

/// On the leader: revokes expired leases and checkpoints remaining TTLs every
/// `checkpoint_every`, so a restart or a new leader honours them.
pub async fn lease_duties(server: Arc<EtcdServer>, checkpoint_every: Duration) {
    let revoking: Arc<Mutex<HashSet<i64>>> = Arc::default();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last_checkpoint = Instant::now();
    loop {
        tick.tick().await;
        let now = Instant::now();
        let (expired, checkpoints) = {
            let lessor = server.state.lessor.lock();
            if !lessor.is_primary() {
                continue;
            }
            let cps = if now.duration_since(last_checkpoint) >= checkpoint_every {
                last_checkpoint = now;
                lessor.checkpoints(now)
            } else {
                Vec::new()
            };
            (lessor.expired(now), cps)
        };
        for id in expired {
            if !revoking.lock().insert(id) {
                continue;
            }
            let (server, revoking) = (server.clone(), revoking.clone());
            tokio::spawn(async move {
                let req = RaftRequest {
                    request: Some(Request::LeaseRevoke(LeaseRevokeRequest { id })),
                    header: None,
                };
                if let Err(e) = server.propose(req).await {
                    tracing::warn!(target: "lease", "failed to revoke expired lease {id:x}: {e}");
                }
                revoking.lock().remove(&id);
            });
        }
        for req in checkpoint_requests(checkpoints, server.limits.max_request_bytes) {
            if let Err(e) = server.propose(req).await {
                tracing::warn!(target: "lease", "failed to checkpoint leases: {e}");
                break;
            }
        }
    }
}

/// Most checkpoints in one entry (etcd's `maxLeaseCheckpointBatchSize`).
const MAX_CHECKPOINTS: usize = 1000;

/// `(lease, remaining TTL)` checkpoints as proposals of at most [`MAX_CHECKPOINTS`] each,
/// each encoding to at most `max_request_bytes` (`--max-request-bytes`), so many leases
/// never make a request the member itself would refuse as too large.
fn checkpoint_requests(checkpoints: Vec<(i64, i64)>, max_request_bytes: usize) -> Vec<RaftRequest> {
    // Room for the request's own framing: the oneof field's key and length.
    let room = max_request_bytes.saturating_sub(16);
    let mut requests = Vec::new();
    let mut current: Vec<LeaseCheckpoint> = Vec::new();
    let mut bytes = 0;
    let flush = |current: &mut Vec<LeaseCheckpoint>, requests: &mut Vec<RaftRequest>| {
        if !current.is_empty() {
            let checkpoints = std::mem::take(current);
            requests.push(RaftRequest {
                request: Some(Request::LeaseCheckpoints(LeaseCheckpoints { checkpoints })),
                header: None,
            });
        }
    };
    for (id, remaining_ttl) in checkpoints {
        let cp = LeaseCheckpoint { id, remaining_ttl };
        let size = 1 + prost::length_delimiter_len(cp.encoded_len()) + cp.encoded_len();
        if current.len() == MAX_CHECKPOINTS || (bytes + size > room && !current.is_empty()) {
            flush(&mut current, &mut requests);
            bytes = 0;
        }
        bytes += size;
        current.push(cp);
    }
    flush(&mut current, &mut requests);
    requests
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(n: i64, max_bytes: usize) -> Vec<RaftRequest> {
        let cps = (1..=n).map(|id| (id << 40, id * 1000)).collect();
        checkpoint_requests(cps, max_bytes)
    }

    fn ids(reqs: &[RaftRequest]) -> Vec<i64> {
        reqs.iter()
            .flat_map(|r| match &r.request {
                Some(Request::LeaseCheckpoints(c)) => {
                    c.checkpoints.iter().map(|c| c.id).collect::<Vec<_>>()
                }
                _ => panic!("not a checkpoint request: {r:?}"),
            })
            .collect()
    }

    #[test]
    fn checkpoints_are_split_by_count_and_by_size() {
        for (n, max_bytes) in [(2500, 1536 * 1024), (2500, 1024), (3, 64), (1, 1)] {
            let reqs = split(n, max_bytes);
            assert_eq!(ids(&reqs), (1..=n).map(|id| id << 40).collect::<Vec<_>>());
            for r in &reqs {
                let count = ids(std::slice::from_ref(r)).len();
                assert!(count <= MAX_CHECKPOINTS);
                // One checkpoint always goes, however small the limit.
                assert!(
                    r.encoded_len() <= max_bytes || count == 1,
                    "{n} {max_bytes}"
                );
            }
        }
        assert_eq!(split(2500, 1536 * 1024).len(), 3);
        assert!(split(2500, 1024).len() > 30);
        assert!(split(0, 1024).is_empty());
    }
}
