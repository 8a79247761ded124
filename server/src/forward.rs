//! Handing a request to the leader. A follower sends it over the peer connection; when
//! the leader it knew cannot be reached (it died), it waits for the next election and
//! tries the new leader, within the request timeout, instead of failing at once.
//!
//! A request is tried again only when it provably never left this member (no connection
//! could be made, or the leader is no longer a member to connect to). Once it was sent,
//! a lost answer is reported as etcd reports it (`request timed out, possibly due to
//! connection lost`) and never resent: the leader may have applied it, and a
//! compare-and-swap applied twice is a different history.

use std::future::Future;
use std::time::Duration;

use tonic::transport::Channel;

use crate::error::{EtcdError, Result};
use crate::peer::error::PeerError;
use crate::server::EtcdServer;

/// Where a request is to be served.
pub enum Route<T> {
    /// This member leads: serve it here.
    Local,
    /// The leader answered.
    Remote(T),
}

/// Attempts before giving up on leaders that cannot be reached.
const ATTEMPTS: usize = 3;

impl EtcdServer {
    /// Runs `call` on the leader's peer channel, or answers [`Route::Local`] when this
    /// member leads.
    pub async fn route<T, F, Fut>(&self, mut call: F) -> Result<Route<T>>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = std::result::Result<T, tonic::Status>>,
    {
        for attempt in 1..=ATTEMPTS {
            let leader = self.leader_id().await?;
            if self.is_me(leader) {
                return Ok(Route::Local);
            }
            // A leader that has just been removed is no longer in the membership.
            let channel = match self.peers.member_channel(&self.raft, leader) {
                Ok(channel) => channel,
                Err(_) if attempt < ATTEMPTS => {
                    self.wait_leader_change(leader).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match call(channel).await.map_err(|s| PeerError::from_status(&s)) {
                Ok(t) => return Ok(Route::Remote(t)),
                Err(PeerError::NotSent(_)) if attempt < ATTEMPTS => {
                    self.wait_leader_change(leader).await
                }
                Err(e) => return Err(e.into_etcd()),
            }
        }
        Err(EtcdError::NoLeader)
    }

    /// Waits (up to a few election timeouts) until there is a leader other than `old`.
    async fn wait_leader_change(&self, old: u64) {
        let limit = Duration::from_millis(self.raft_timing_ms() * 3);
        let _ = tokio::time::timeout(limit, self.leader_other_than(old)).await;
    }

    fn raft_timing_ms(&self) -> u64 {
        self.raft.config().election_timeout_max.max(100)
    }
}
