//! openraft type configuration: what goes into the log and what comes back.

use std::fmt;

use etcd_proto::raftrequestpb::{RaftRequest, RaftResponse};
use prost::Message;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A member as raft's membership records it: its etcd name and URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberNode {
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    /// Added by `member add` as a voter: raft holds it as a learner until it has caught
    /// up, then the leader promotes it (etcd lists it as a voter all along).
    #[serde(default)]
    pub voter: bool,
}

/// A proposal in the log. Serialized as its protobuf encoding so that the log format is
/// the same protobuf the rest of the system speaks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Proposal(pub RaftRequest);

/// The state machine's answer to a [`Proposal`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Applied(pub RaftResponse);

macro_rules! serde_as_protobuf {
    ($wrapper:ident, $inner:ty) => {
        impl Serialize for $wrapper {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0.encode_to_vec())
            }
        }
        impl<'de> Deserialize<'de> for $wrapper {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let bytes = serde_bytes::ByteBuf::deserialize(d)?;
                <$inner>::decode(bytes.as_slice())
                    .map($wrapper)
                    .map_err(serde::de::Error::custom)
            }
        }
        impl fmt::Display for $wrapper {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
    };
}
serde_as_protobuf!(Proposal, RaftRequest);
serde_as_protobuf!(Applied, RaftResponse);

openraft::declare_raft_types!(
    /// The raft types of an etcd member: node IDs are etcd member IDs.
    pub TypeConfig:
        D = Proposal,
        R = Applied,
        NodeId = u64,
        Node = MemberNode,
        SnapshotData = SnapshotData,
);

/// A raft snapshot in transit or at rest: a file in `member/snap/` (see `snapshot_file`),
/// so no snapshot is held in memory.
pub type SnapshotData = tokio::fs::File;

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<u64>;
pub type StorageError = openraft::StorageError<u64>;
pub type StoredMembership = openraft::StoredMembership<u64, MemberNode>;

/// Wraps a storage failure the way openraft expects.
pub fn storage_err(e: impl fmt::Display) -> StorageError {
    StorageError::IO {
        source: openraft::StorageIOError::write(openraft::AnyError::error(e.to_string())),
    }
}

/// Encodes any serde value for the backend (log entries, votes, membership).
pub fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StorageError> {
    rmp_serde::to_vec(v).map_err(storage_err)
}

/// Inverse of [`encode`].
pub fn decode<T: for<'de> Deserialize<'de>>(raw: &[u8]) -> Result<T, StorageError> {
    rmp_serde::from_slice(raw).map_err(storage_err)
}
