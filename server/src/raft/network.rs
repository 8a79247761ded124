//! openraft's transport: AppendEntries, Vote and InstallSnapshot as `raftpeerpb.RaftPeer`
//! calls on the target member's peer URL. Payloads are openraft's own types, serde-encoded;
//! the receiving side answers `Result<response, RaftError>` the same way.

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use std::time::Duration;

use super::append_flight::{AppendFlight, FLIGHT_LIMIT};
use super::types::{Entry, LogId, MemberNode, TypeConfig};
use crate::peer::error::{PeerError, Refusal};
use crate::peer::Peers;
use etcd_proto::raftpeerpb::RaftMessage;

/// Creates connections to peers.
#[derive(Clone)]
pub struct PeerNetwork {
    pub peers: Peers,
}

/// A connection to one peer.
pub struct PeerClient {
    link: Link,
    appends: AppendFlight,
}

/// The peer a client talks to. Cheap to clone.
#[derive(Clone)]
struct Link {
    target: u64,
    node: MemberNode,
    peers: Peers,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &MemberNode) -> PeerClient {
        PeerClient {
            link: Link {
                target,
                node: node.clone(),
                peers: self.peers.clone(),
            },
            appends: AppendFlight::default(),
        }
    }
}

#[derive(Clone, Copy)]
enum Call {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

type RpcResult<R, E> = Result<R, RPCError<u64, MemberNode, RaftError<u64, E>>>;

impl Link {
    async fn call<Req, Resp, E>(&self, call: Call, req: &Req, limit: Duration) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let network = |e: &dyn std::fmt::Display| {
            RPCError::Network(NetworkError::new(&std::io::Error::other(e.to_string())))
        };
        let mut client = self.peers.client(&self.node).map_err(|e| {
            RPCError::Unreachable(Unreachable::new(&std::io::Error::other(e.to_string())))
        })?;
        let payload = crate::peer::encode(req).map_err(|e| network(&e))?;
        let msg = self.peers.request(RaftMessage { payload });
        let fut = async {
            match call {
                Call::AppendEntries => client.append_entries(msg).await,
                Call::Vote => client.vote(msg).await,
                Call::InstallSnapshot => client.install_snapshot(msg).await,
            }
        };
        let reply = match tokio::time::timeout(limit, fut).await {
            Err(_) => {
                return Err(network(&format!(
                    "member {:x} did not answer in {limit:?}",
                    self.target
                )))
            }
            Ok(Err(status)) => {
                let unreachable = |status: &tonic::Status| {
                    RPCError::Unreachable(Unreachable::new(&std::io::Error::other(
                        status.message().to_string(),
                    )))
                };
                return Err(match PeerError::from_status(&status) {
                    PeerError::Refused(Refusal::Removed) => {
                        self.peers.mark_removed();
                        network(&status)
                    }
                    PeerError::Refused(Refusal::ClusterMismatch { theirs }) => {
                        // Another cluster's member: say so as etcd does, then back off.
                        tracing::error!(target: "rafthttp", "request sent was ignored (cluster ID mismatch: peer[{:x}]={theirs:x}, local={:x})", self.target, self.peers.cluster_id());
                        unreachable(&status)
                    }
                    // A member that cannot be reached gets openraft's backoff instead of
                    // a retry (and a log line) every heartbeat.
                    PeerError::NotSent(_) | PeerError::Lost(_) => unreachable(&status),
                    PeerError::Refused(Refusal::NotMember) | PeerError::Etcd(_) => network(&status),
                });
            }
            Ok(Ok(reply)) => reply.into_inner(),
        };
        let result: Result<Resp, RaftError<u64, E>> =
            crate::peer::decode(&reply.payload).map_err(|e| network(&e))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    /// Sends at most [`MAX_APPEND_BYTES`] of entries (at least one entry) and reports a
    /// partial success for the rest, which openraft then sends in the next call.
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>, openraft::error::Infallible> {
        let (rpc, cut_at) = fit_append(rpc, MAX_APPEND_BYTES);
        let resp = if rpc.entries.is_empty() {
            let limit = option.hard_ttl();
            self.link.call(Call::AppendEntries, &rpc, limit).await?
        } else {
            let link = self.link.clone();
            let send =
                move |rpc| async move { link.call(Call::AppendEntries, &rpc, FLIGHT_LIMIT).await };
            self.appends.send(rpc, send).await?
        };
        Ok(match (resp, cut_at) {
            (AppendEntriesResponse::Success, Some(last_sent)) => {
                AppendEntriesResponse::PartialSuccess(Some(last_sent))
            }
            (resp, _) => resp,
        })
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        self.link
            .call(Call::InstallSnapshot, &rpc, option.hard_ttl())
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>, openraft::error::Infallible> {
        self.link.call(Call::Vote, &rpc, option.hard_ttl()).await
    }
}

/// Most entry bytes in one AppendEntries call, etcd's default `MaxSizePerMsg`: well under
/// the peer message limit, and small enough to arrive within a heartbeat interval.
const MAX_APPEND_BYTES: usize = 1024 * 1024;

/// About how many bytes `entry` takes in an AppendEntries message.
fn entry_bytes(entry: &Entry) -> usize {
    use openraft::EntryPayload;
    use prost::Message;
    // Log ID and framing; a membership entry is a few URLs.
    const OVERHEAD: usize = 64;
    match &entry.payload {
        EntryPayload::Normal(p) => OVERHEAD + p.0.encoded_len(),
        EntryPayload::Blank => OVERHEAD,
        EntryPayload::Membership(m) => OVERHEAD + 256 * m.nodes().count(),
    }
}

/// Cuts `rpc` to the entries that fit in `limit` bytes (always at least one), and says
/// the last entry kept when some were left out.
fn fit_append(
    mut rpc: AppendEntriesRequest<TypeConfig>,
    limit: usize,
) -> (AppendEntriesRequest<TypeConfig>, Option<LogId>) {
    let mut bytes = 0;
    let keep = rpc
        .entries
        .iter()
        .take_while(|e| {
            bytes += entry_bytes(e);
            bytes <= limit
        })
        .count()
        .max(1);
    if keep >= rpc.entries.len() {
        return (rpc, None);
    }
    rpc.entries.truncate(keep);
    let last = rpc.entries.last().map(|e| e.log_id);
    (rpc, last)
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload, Vote};

    use super::super::types::Proposal;
    use super::*;
    use etcd_proto::etcdserverpb::PutRequest;
    use etcd_proto::raftrequestpb::raft_request::Request;
    use etcd_proto::raftrequestpb::RaftRequest;

    fn put(index: u64, value_len: usize) -> Entry {
        let req = RaftRequest {
            request: Some(Request::Put(PutRequest {
                key: b"k".to_vec(),
                value: vec![7; value_len],
                ..Default::default()
            })),
            header: None,
        };
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Proposal(req)),
        }
    }

    fn append(entries: Vec<Entry>) -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: Vote::new_committed(1, 1),
            prev_log_id: None,
            leader_commit: None,
            entries,
        }
    }

    #[test]
    fn appends_are_cut_to_the_byte_limit() {
        let big = (1..=10).map(|i| put(i, 300 * 1024)).collect();
        let (rpc, last) = fit_append(append(big), MAX_APPEND_BYTES);
        assert_eq!(rpc.entries.len(), 3);
        assert_eq!(last, Some(rpc.entries[2].log_id));
        let encoded = crate::peer::encode(&rpc).unwrap();
        assert!(encoded.len() <= MAX_APPEND_BYTES, "{}", encoded.len());
    }

    #[test]
    fn an_entry_larger_than_the_limit_goes_alone() {
        let entries = vec![put(1, 2 * MAX_APPEND_BYTES), put(2, 10)];
        let (rpc, last) = fit_append(append(entries), MAX_APPEND_BYTES);
        assert_eq!(rpc.entries.len(), 1);
        assert_eq!(last.map(|l| l.index), Some(1));
    }

    #[test]
    fn appends_within_the_limit_are_sent_whole() {
        let small: Vec<_> = (1..=1000).map(|i| put(i, 100)).collect();
        let (rpc, last) = fit_append(append(small), MAX_APPEND_BYTES);
        assert_eq!((rpc.entries.len(), last), (1000, None));
        let (rpc, last) = fit_append(append(Vec::new()), MAX_APPEND_BYTES);
        assert_eq!((rpc.entries.len(), last), (0, None));
    }
}
