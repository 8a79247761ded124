//! Connections to other members, one lazily connected HTTP/2 channel per peer URL, shared
//! by raft replication and request forwarding.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use etcd_proto::raftpeerpb::raft_peer_client::RaftPeerClient;
use parking_lot::Mutex;
use tonic::transport::{Channel, Endpoint};

use crate::error::EtcdError;
use crate::raft::types::{MemberNode, Raft};

/// Largest peer message: a snapshot chunk or a batch of entries with large values.
pub const MAX_PEER_MESSAGE: usize = 256 * 1024 * 1024;

/// The connection cache. Cheap to clone.
#[derive(Clone, Default)]
pub struct Peers {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl Peers {
    /// A client for the member `node` (its first peer URL).
    pub fn client(&self, node: &MemberNode) -> Result<RaftPeerClient<Channel>, EtcdError> {
        let url = node
            .peer_urls
            .first()
            .ok_or_else(|| EtcdError::Internal(format!("member {} has no peer URL", node.name)))?;
        let channel = {
            let mut channels = self.channels.lock();
            match channels.get(url) {
                Some(c) => c.clone(),
                None => {
                    let c = Endpoint::from_shared(url.clone())
                        .map_err(|e| EtcdError::Internal(format!("bad peer URL {url}: {e}")))?
                        .connect_timeout(Duration::from_secs(1))
                        .tcp_nodelay(true)
                        .http2_keep_alive_interval(Duration::from_secs(10))
                        .connect_lazy();
                    channels.insert(url.clone(), c.clone());
                    c
                }
            }
        };
        Ok(RaftPeerClient::new(channel)
            .max_decoding_message_size(MAX_PEER_MESSAGE)
            .max_encoding_message_size(MAX_PEER_MESSAGE))
    }

    /// A client for the member `id` as the current membership knows it.
    pub fn member(&self, raft: &Raft, id: u64) -> Result<RaftPeerClient<Channel>, EtcdError> {
        let node = raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&id)
            .cloned();
        self.client(&node.ok_or(EtcdError::NoLeader)?)
    }
}

/// The etcd error a failed forwarded call stands for: the leader's own etcd error when it
/// answered with one, otherwise (unreachable, reset) "no leader", as etcd's clients see
/// while a leader is lost.
pub fn forwarded_error(status: tonic::Status) -> EtcdError {
    match EtcdError::from_message(status.message()) {
        EtcdError::Internal(_) if status.code() != tonic::Code::Internal => EtcdError::NoLeader,
        e => e,
    }
}
