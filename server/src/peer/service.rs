//! The peer-side server: hands openraft's messages to the local raft node and answers the
//! requests followers forward to the leader.

use std::sync::Arc;

use etcd_proto::etcdserverpb::{
    LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use etcd_proto::raftpeerpb::raft_peer_server::{RaftPeer, RaftPeerServer};
use etcd_proto::raftpeerpb::{RaftMessage, ReadIndexRequest, ReadIndexResponse};
use etcd_proto::raftrequestpb::{RaftRequest, RaftResponse};
use tonic::{Request, Response, Status};

use super::client::MAX_PEER_MESSAGE;
use super::{decode, encode};
use crate::server::EtcdServer;

/// `raftpeerpb.RaftPeer` over one member.
pub struct PeerService {
    pub server: Arc<EtcdServer>,
}

fn reply<T: serde::Serialize>(value: &T) -> Result<Response<RaftMessage>, Status> {
    Ok(Response::new(RaftMessage {
        payload: encode(value)?,
    }))
}

#[tonic::async_trait]
impl RaftPeer for PeerService {
    async fn append_entries(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let rpc = decode(&req.into_inner().payload)?;
        reply(&self.server.raft.append_entries(rpc).await)
    }

    async fn vote(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let rpc = decode(&req.into_inner().payload)?;
        reply(&self.server.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
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
}

/// The router served on every peer URL.
pub fn peer_router(server: Arc<EtcdServer>) -> axum::Router {
    let svc = RaftPeerServer::new(PeerService { server })
        .max_decoding_message_size(MAX_PEER_MESSAGE)
        .max_encoding_message_size(MAX_PEER_MESSAGE);
    tonic::service::Routes::new(svc).into_axum_router()
}
