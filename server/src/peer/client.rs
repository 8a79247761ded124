//! Connections to other members, one lazily connected HTTP/2 channel per peer URL, shared
//! by raft replication and request forwarding.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use etcd_proto::raftpeerpb::raft_peer_client::RaftPeerClient;
use parking_lot::Mutex;
use tonic::transport::Channel;

use super::PeerDialer;

use crate::error::EtcdError;
use crate::raft::types::{MemberNode, Raft};

/// Largest peer message: a snapshot chunk or a batch of entries with large values.
pub const MAX_PEER_MESSAGE: usize = 256 * 1024 * 1024;

/// Metadata naming the sending member and its cluster on every peer call.
pub const FROM_HEADER: &str = "x-etcd-from";
pub const CLUSTER_HEADER: &str = "x-etcd-cluster-id";

/// The connection cache, and this member's identity for the calls it makes. Cheap to clone.
#[derive(Clone)]
pub struct Peers {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    dialer: PeerDialer,
    member_id: u64,
    cluster_id: u64,
    removed: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Peers {
    pub fn new(member_id: u64, cluster_id: u64, dialer: PeerDialer) -> Self {
        Peers {
            channels: Arc::default(),
            dialer,
            member_id,
            cluster_id,
            removed: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }

    /// Wraps a peer call's message with this member's identity.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(message);
        let meta = req.metadata_mut();
        for (key, value) in [
            (FROM_HEADER, self.member_id),
            (CLUSTER_HEADER, self.cluster_id),
        ] {
            if let Ok(v) = format!("{value:x}").parse() {
                meta.insert(key, v);
            }
        }
        req
    }

    /// The cluster this member belongs to.
    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// Records that this member has been removed from the cluster (it then shuts down).
    pub fn mark_removed(&self) {
        self.removed.send_replace(true);
    }

    /// Resolves once this member has been removed from the cluster.
    pub async fn removed(&self) {
        let mut rx = self.removed.subscribe();
        let _ = rx.wait_for(|removed| *removed).await;
    }

    /// The channel to a peer URL.
    pub fn channel(&self, url: &str) -> Result<Channel, EtcdError> {
        let mut channels = self.channels.lock();
        if let Some(c) = channels.get(url) {
            return Ok(c.clone());
        }
        let (endpoint, tls) = self
            .dialer
            .endpoint(url)
            .map_err(|e| EtcdError::Internal(format!("bad peer URL {url}: {e}")))?;
        let endpoint = endpoint
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10));
        let c = PeerDialer::lazy(endpoint, tls);
        channels.insert(url.to_string(), c.clone());
        Ok(c)
    }

    /// The channel to the member `node` (its first peer URL).
    pub fn node_channel(&self, node: &MemberNode) -> Result<Channel, EtcdError> {
        let url = node
            .peer_urls
            .first()
            .ok_or_else(|| EtcdError::Internal(format!("member {} has no peer URL", node.name)))?;
        self.channel(url)
    }

    /// A raft client for the member `node`.
    pub fn client(&self, node: &MemberNode) -> Result<RaftPeerClient<Channel>, EtcdError> {
        Ok(raft_client(self.node_channel(node)?))
    }

    /// The channel to member `id` as the current membership knows it.
    pub fn member_channel(&self, raft: &Raft, id: u64) -> Result<Channel, EtcdError> {
        let node = raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&id)
            .cloned();
        self.node_channel(&node.ok_or(EtcdError::NoLeader)?)
    }

    /// A raft client for member `id` as the current membership knows it.
    pub fn member(&self, raft: &Raft, id: u64) -> Result<RaftPeerClient<Channel>, EtcdError> {
        Ok(raft_client(self.member_channel(raft, id)?))
    }
}

/// A raft-peer client on `channel` with the peer message limits.
pub fn raft_client(channel: Channel) -> RaftPeerClient<Channel> {
    RaftPeerClient::new(channel)
        .max_decoding_message_size(MAX_PEER_MESSAGE)
        .max_encoding_message_size(MAX_PEER_MESSAGE)
}
