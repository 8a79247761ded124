//! Member-to-member traffic on the peer URL: openraft's messages, and the requests a
//! follower hands to the leader (writes, read indexes, lease renewals). Served as gRPC
//! (`raftpeerpb.RaftPeer`) on every `--listen-peer-urls` address.

pub mod client;
pub mod dialer;
pub mod error;
pub mod service;

pub use client::Peers;
pub use dialer::PeerDialer;

/// Decodes the serde payload of a raft message.
pub fn decode<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, tonic::Status> {
    rmp_serde::from_slice(payload)
        .map_err(|e| tonic::Status::invalid_argument(format!("bad raft message: {e}")))
}

/// Encodes a raft message payload.
pub fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, tonic::Status> {
    rmp_serde::to_vec(value)
        .map_err(|e| tonic::Status::internal(format!("cannot encode raft message: {e}")))
}
