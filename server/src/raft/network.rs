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

use super::types::{MemberNode, TypeConfig};
use crate::peer::client::{CLUSTER_MISMATCH, REMOVED};
use crate::peer::Peers;
use etcd_proto::raftpeerpb::RaftMessage;

/// Creates connections to peers.
#[derive(Clone)]
pub struct PeerNetwork {
    pub peers: Peers,
}

/// A connection to one peer.
pub struct PeerClient {
    target: u64,
    node: MemberNode,
    peers: Peers,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &MemberNode) -> PeerClient {
        PeerClient {
            target,
            node: node.clone(),
            peers: self.peers.clone(),
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

impl PeerClient {
    async fn call<Req, Resp, E>(
        &self,
        call: Call,
        req: &Req,
        option: &RPCOption,
    ) -> RpcResult<Resp, E>
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
        let reply = match tokio::time::timeout(option.hard_ttl(), fut).await {
            Err(_) => {
                return Err(network(&format!(
                    "member {:x} did not answer in {:?}",
                    self.target,
                    option.hard_ttl()
                )))
            }
            Ok(Err(status)) => {
                if status.message() == REMOVED {
                    self.peers.mark_removed();
                }
                if let Some(theirs) = status.message().strip_prefix(CLUSTER_MISMATCH) {
                    // Another cluster's member: say so as etcd does, then back off.
                    let want = theirs
                        .rsplit(' ')
                        .next()
                        .unwrap_or("")
                        .trim_end_matches(')');
                    tracing::error!(target: "rafthttp", "request sent was ignored (cluster ID mismatch: peer[{:x}]={want}, local={:x})", self.target, self.peers.cluster_id());
                    return Err(RPCError::Unreachable(Unreachable::new(
                        &std::io::Error::other(status.message().to_string()),
                    )));
                }
                // A member that cannot be reached gets openraft's backoff instead of a
                // retry (and a log line) every heartbeat.
                if status.code() == tonic::Code::Unavailable {
                    return Err(RPCError::Unreachable(Unreachable::new(
                        &std::io::Error::other(status.message().to_string()),
                    )));
                }
                return Err(network(&status));
            }
            Ok(Ok(reply)) => reply.into_inner(),
        };
        let result: Result<Resp, RaftError<u64, E>> =
            crate::peer::decode(&reply.payload).map_err(|e| network(&e))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>, openraft::error::Infallible> {
        self.call(Call::AppendEntries, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        self.call(Call::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>, openraft::error::Infallible> {
        self.call(Call::Vote, &rpc, &option).await
    }
}
