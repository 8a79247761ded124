//! The peer-side server: hands openraft's messages to the local raft node and answers the
//! requests followers forward to the leader.

use std::sync::Arc;

use etcd_proto::etcdserverpb::{
    LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use etcd_proto::raftpeerpb::raft_peer_server::{RaftPeer, RaftPeerServer};
use etcd_proto::raftpeerpb::{
    CampaignRequest, CampaignResponse, RaftMessage, ReadIndexRequest, ReadIndexResponse,
};
use etcd_proto::raftrequestpb::{RaftRequest, RaftResponse};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};
use tonic::{Request, Response, Status};

use super::client::{CLUSTER_HEADER, FROM_HEADER, MAX_PEER_MESSAGE};
use super::error::{status, PeerError, Refusal};
use super::{decode, encode};
use crate::api::v3::cluster::ClusterService;
use crate::error::EtcdError;
use crate::raft::types::TypeConfig;
use crate::server::EtcdServer;
use etcd_proto::etcdserverpb::cluster_server::ClusterServer;

/// `raftpeerpb.RaftPeer` over one member.
pub struct PeerService {
    pub server: Arc<EtcdServer>,
}

fn reply<T: serde::Serialize>(value: &T) -> Result<Response<RaftMessage>, Status> {
    Ok(Response::new(RaftMessage {
        payload: encode(value)?,
    }))
}

/// Which senders a call accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Senders {
    /// Raft's own messages: any member of this cluster, including one this member does
    /// not know yet (it may lag behind the change that added it).
    Cluster,
    /// Requests served for a member (proposals, read indexes, lease calls): current
    /// members only, so a removed member or a stranger cannot write through this one.
    Members,
}

impl PeerService {
    /// Refuses calls from another cluster, and tells a member this leader no longer has
    /// that it has been removed (followers may lag behind a change, so only the leader
    /// says so). With [`Senders::Members`], refuses every sender that is not a current
    /// member.
    fn check_sender<T>(&self, req: &Request<T>, accept: Senders) -> Result<(), Status> {
        let header = |name: &str| {
            let value = req.metadata().get(name)?.to_str().ok()?;
            u64::from_str_radix(value, 16).ok()
        };
        let s = &self.server;
        let refuse = |r: Refusal| Err(PeerError::Refused(r).into_status());
        if let Some(cluster) = header(CLUSTER_HEADER) {
            if cluster != s.identity.cluster_id {
                tracing::error!(target: "rafthttp", "request cluster ID mismatch (got {cluster:x} want {:x})", s.identity.cluster_id);
                return refuse(Refusal::ClusterMismatch {
                    theirs: s.identity.cluster_id,
                });
            }
        }
        let from = header(FROM_HEADER);
        let metrics = s.raft.metrics().borrow().clone();
        let known = from.is_some_and(|id| {
            metrics
                .membership_config
                .membership()
                .get_node(&id)
                .is_some()
        });
        if known || (from.is_none() && accept == Senders::Cluster) {
            return Ok(());
        }
        if metrics.current_leader == Some(s.identity.member_id) && from.is_some() {
            return refuse(Refusal::Removed);
        }
        match accept {
            Senders::Cluster => Ok(()),
            Senders::Members => refuse(Refusal::NotMember),
        }
    }
}

#[tonic::async_trait]
impl RaftPeer for PeerService {
    async fn append_entries(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.check_sender(&req, Senders::Cluster)?;
        let rpc: AppendEntriesRequest<TypeConfig> = decode(&req.into_inner().payload)?;
        let sender = rpc.vote.leader_id().voted_for();
        let res = self.server.raft.append_entries(rpc).await;
        // Taken as this member's leader's word: what tells a follower its leader is alive.
        if let (Some(leader), Ok(r)) = (sender, &res) {
            if !matches!(r, AppendEntriesResponse::HigherVote(_)) {
                self.server.heard_from_leader(leader);
            }
        }
        reply(&res)
    }

    async fn vote(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.check_sender(&req, Senders::Cluster)?;
        let rpc = decode(&req.into_inner().payload)?;
        reply(&self.server.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.check_sender(&req, Senders::Cluster)?;
        let rpc = decode(&req.into_inner().payload)?;
        reply(&self.server.raft.install_snapshot(rpc).await)
    }

    async fn propose(&self, req: Request<RaftRequest>) -> Result<Response<RaftResponse>, Status> {
        self.check_sender(&req, Senders::Members)?;
        let resp = self.server.propose_local(req.into_inner()).await;
        Ok(Response::new(resp.map_err(status)?))
    }

    async fn read_index(
        &self,
        req: Request<ReadIndexRequest>,
    ) -> Result<Response<ReadIndexResponse>, Status> {
        self.check_sender(&req, Senders::Members)?;
        let index = self.server.read_index_local().await.map_err(status)?;
        Ok(Response::new(ReadIndexResponse { index }))
    }

    async fn lease_keep_alive(
        &self,
        req: Request<LeaseKeepAliveRequest>,
    ) -> Result<Response<LeaseKeepAliveResponse>, Status> {
        self.check_sender(&req, Senders::Members)?;
        let id = req.into_inner().id;
        let ttl = self.server.lease_renew(id).await.map_err(status)?;
        Ok(Response::new(LeaseKeepAliveResponse {
            header: Some(self.server.current_header()),
            id,
            ttl,
        }))
    }

    async fn lease_time_to_live(
        &self,
        req: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        self.check_sender(&req, Senders::Members)?;
        let resp = self.server.lease_time_to_live(req.into_inner()).await;
        Ok(Response::new(resp.map_err(status)?))
    }

    async fn campaign(
        &self,
        req: Request<CampaignRequest>,
    ) -> Result<Response<CampaignResponse>, Status> {
        self.check_sender(&req, Senders::Members)?;
        self.server
            .raft
            .trigger()
            .elect()
            .await
            .map_err(|e| status(EtcdError::Internal(e.to_string())))?;
        Ok(Response::new(CampaignResponse {}))
    }
}

/// The router served on every peer URL.
/// Besides raft, it serves the Cluster service: followers forward membership changes to
/// the leader through it, and a joining member reads the member list from it.
pub fn peer_router(server: Arc<EtcdServer>) -> axum::Router {
    let svc = RaftPeerServer::new(PeerService {
        server: server.clone(),
    })
    .max_decoding_message_size(MAX_PEER_MESSAGE)
    .max_encoding_message_size(MAX_PEER_MESSAGE);
    let cluster = ClusterServer::new(ClusterService {
        server,
        on_peer_url: true,
    });
    tonic::service::Routes::new(svc)
        .add_service(cluster)
        .into_axum_router()
}
