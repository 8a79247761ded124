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
use tonic::{Request, Response, Status};

use super::client::{CLUSTER_HEADER, CLUSTER_MISMATCH, FROM_HEADER, MAX_PEER_MESSAGE, REMOVED};
use super::{decode, encode};
use crate::api::v3::cluster::ClusterService;
use crate::error::EtcdError;
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

impl PeerService {
    /// Refuses calls from another cluster, and tells a member this leader no longer has
    /// that it has been removed (followers may lag behind a change, so only the leader
    /// says so).
    fn check_sender<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let header = |name: &str| {
            let value = req.metadata().get(name)?.to_str().ok()?;
            u64::from_str_radix(value, 16).ok()
        };
        let s = &self.server;
        if let Some(cluster) = header(CLUSTER_HEADER) {
            if cluster != s.identity.cluster_id {
                let msg = format!(
                    "{CLUSTER_MISMATCH} (got {cluster:x} want {:x})",
                    s.identity.cluster_id
                );
                tracing::error!(target: "rafthttp", "{msg}");
                return Err(Status::failed_precondition(msg));
            }
        }
        let Some(from) = header(FROM_HEADER) else {
            return Ok(());
        };
        let metrics = s.raft.metrics().borrow().clone();
        let known = metrics
            .membership_config
            .membership()
            .get_node(&from)
            .is_some();
        if !known && metrics.current_leader == Some(s.identity.member_id) {
            return Err(Status::failed_precondition(REMOVED));
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl RaftPeer for PeerService {
    async fn append_entries(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.check_sender(&req)?;
        let rpc = decode(&req.into_inner().payload)?;
        reply(&self.server.raft.append_entries(rpc).await)
    }

    async fn vote(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.check_sender(&req)?;
        self.check_sender(&req)?;
        let rpc = decode(&req.into_inner().payload)?;
        reply(&self.server.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.check_sender(&req)?;
        let rpc = decode(&req.into_inner().payload)?;
        reply(&self.server.raft.install_snapshot(rpc).await)
    }

    async fn propose(&self, req: Request<RaftRequest>) -> Result<Response<RaftResponse>, Status> {
        Ok(Response::new(
            self.server.propose_local(req.into_inner()).await?,
        ))
    }

    async fn read_index(
        &self,
        _req: Request<ReadIndexRequest>,
    ) -> Result<Response<ReadIndexResponse>, Status> {
        let index = self.server.read_index_local().await?;
        Ok(Response::new(ReadIndexResponse { index }))
    }

    async fn lease_keep_alive(
        &self,
        req: Request<LeaseKeepAliveRequest>,
    ) -> Result<Response<LeaseKeepAliveResponse>, Status> {
        let id = req.into_inner().id;
        let ttl = self.server.lease_renew(id).await?;
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
        Ok(Response::new(
            self.server.lease_time_to_live(req.into_inner()).await?,
        ))
    }

    async fn campaign(
        &self,
        req: Request<CampaignRequest>,
    ) -> Result<Response<CampaignResponse>, Status> {
        self.check_sender(&req)?;
        self.server
            .raft
            .trigger()
            .elect()
            .await
            .map_err(|e| EtcdError::Internal(e.to_string()))?;
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
    let cluster = ClusterServer::new(ClusterService { server });
    tonic::service::Routes::new(svc)
        .add_service(cluster)
        .into_axum_router()
}
