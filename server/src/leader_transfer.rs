//! Leadership transfer (`etcdctl move-leader`).
//!
//! openraft 0.9 has no transfer message, so the leader does what the transfer achieves:
//! it stops sending heartbeats and stops campaigning itself, then keeps asking the
//! transferee to campaign. The other members grant the transferee's vote once their leader
//! lease has run out (about one election timeout), and the transferee, which campaigns
//! first, wins. Heartbeats and campaigning resume whatever the outcome.

use std::time::{Duration, Instant};

use etcd_proto::raftpeerpb::CampaignRequest;

use crate::error::{EtcdError, Result};
use crate::server::EtcdServer;

/// Turns the leader's heartbeats and elections back on when the transfer ends.
struct Resume<'a>(&'a EtcdServer);

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        let rc = self.0.raft.runtime_config();
        rc.heartbeat(true);
        rc.elect(true);
    }
}

impl EtcdServer {
    /// Hands leadership to voting member `target`; only the leader can (etcd answers
    /// `not leader` elsewhere, and etcdctl sends the request to the leader).
    pub async fn move_leader(&self, target: u64) -> Result<()> {
        let me = self.identity.member_id;
        if self.raft.metrics().borrow().current_leader != Some(me) {
            return Err(EtcdError::NotLeader);
        }
        if !self.is_raft_voter(target) {
            return Err(EtcdError::BadLeaderTransferee);
        }
        if target == me {
            return Ok(());
        }
        tracing::info!(target: "etcdserver", "leadership transfer starting: {me:x} -> {target:x}");
        let started = Instant::now();
        let deadline = started + self.limits.request_timeout;
        let interval = Duration::from_millis(self.raft.config().heartbeat_interval);
        let rc = self.raft.runtime_config();
        rc.heartbeat(false);
        rc.elect(false);
        let _resume = Resume(self);
        let mut client = self.peers.member(&self.raft, target)?;
        while self.raft.metrics().borrow().current_leader != Some(target) {
            if Instant::now() >= deadline {
                return Err(EtcdError::LeaderTransferTimeout);
            }
            if let Err(e) = client
                .campaign(self.peers.request(CampaignRequest {}))
                .await
            {
                tracing::debug!(target: "etcdserver", "transferee {target:x} did not campaign: {e}");
            }
            tokio::time::sleep(interval).await;
        }
        tracing::info!(target: "etcdserver", "leadership transfer finished: {me:x} -> {target:x} took {:?}", started.elapsed());
        Ok(())
    }
}
