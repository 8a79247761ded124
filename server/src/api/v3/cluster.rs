//! The Cluster service. Member listing is served from raft's membership; runtime
//! reconfiguration (add/remove/update/promote) is not built yet.

use std::sync::Arc;

use etcd_proto::etcdserverpb::cluster_server::Cluster;
use etcd_proto::etcdserverpb::{
    Member, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse,
};
use tonic::{Request, Response, Status};

use crate::cluster::attributes;
use crate::server::EtcdServer;

/// Cluster service over one member.
pub struct ClusterService {
    pub server: Arc<EtcdServer>,
}

impl ClusterService {
    /// The members raft knows, voters and learners.
    pub fn members(&self) -> Vec<Member> {
        let metrics = self.server.raft.metrics().borrow().clone();
        let config = metrics.membership_config.membership().clone();
        let voters: std::collections::BTreeSet<u64> = config.voter_ids().collect();
        let tree = &self.server.state.backend.state;
        config
            .nodes()
            .map(|(id, node)| {
                // Unstarted members (nothing published yet) have no name or client URLs.
                let published = attributes::load(tree, *id).unwrap_or_default();
                Member {
                    id: *id,
                    name: published.name,
                    peer_ur_ls: node.peer_urls.clone(),
                    client_ur_ls: published.client_urls,
                    is_learner: !voters.contains(id),
                }
            })
            .collect()
    }
}

fn not_yet(what: &str) -> Status {
    Status::unimplemented(format!(
        "etcdserver: {what} is not supported by this server yet"
    ))
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        _req: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        Err(not_yet("member add"))
    }

    async fn member_remove(
        &self,
        _req: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        Err(not_yet("member remove"))
    }

    async fn member_update(
        &self,
        _req: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        Err(not_yet("member update"))
    }

    async fn member_list(
        &self,
        _req: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        Ok(Response::new(MemberListResponse {
            header: Some(self.server.current_header()),
            members: self.members(),
        }))
    }

    async fn member_promote(
        &self,
        _req: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        Err(not_yet("member promote"))
    }
}
