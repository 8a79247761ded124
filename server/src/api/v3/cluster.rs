//! The Cluster service. Reads come from the local membership; changes are made by the
//! leader, so a follower hands them to the leader's Cluster service on its peer URL (the
//! peer router serves this service too).

use std::sync::Arc;

use etcd_proto::etcdserverpb::cluster_client::ClusterClient;
use etcd_proto::etcdserverpb::cluster_server::Cluster;
use etcd_proto::etcdserverpb::{
    Member, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse, ResponseHeader,
};
use tonic::{Request, Response, Status};

use crate::cluster::reconfig::MemberView;
use crate::error::EtcdError;
use crate::forward::Route;
use crate::server::EtcdServer;

/// Cluster service over one member.
pub struct ClusterService {
    pub server: Arc<EtcdServer>,
    /// Served on the peer URL to other members, whose errors then carry their code in
    /// the metadata (see `peer::error`); clients get etcd's plain status.
    pub on_peer_url: bool,
}

fn member(v: MemberView) -> Member {
    Member {
        id: v.id,
        name: v.name,
        peer_ur_ls: v.peer_urls,
        client_ur_ls: v.client_urls,
        is_learner: v.is_learner,
    }
}

impl ClusterService {
    fn status(&self, e: EtcdError) -> Status {
        if self.on_peer_url {
            crate::peer::error::status(e)
        } else {
            e.into()
        }
    }

    fn members(&self) -> Vec<Member> {
        self.server.members().into_iter().map(member).collect()
    }

    /// etcd's cluster service fills the header without a revision.
    fn header(&self) -> Option<ResponseHeader> {
        Some(ResponseHeader {
            revision: 0,
            ..self.server.current_header()
        })
    }
}

/// Runs a membership change on the leader, forwarding it when this member is a follower.
/// Only root may change the membership while auth is on; the member the client called
/// checks (a forwarded change comes from a member, over the peer URL).
macro_rules! on_leader {
    ($svc:expr, $req:expr, $method:ident, $local:expr) => {{
        let server = &$svc.server;
        if !$svc.on_peer_url {
            let creds = $crate::api::caller::Credentials::of_request(&$req);
            creds
                .check_admin(server)
                .await
                .map_err(|e| $svc.status(e))?;
        }
        let req = $req.into_inner();
        let routed = server.route(|ch| {
            let req = req.clone();
            async move { ClusterClient::new(ch).$method(req).await }
        });
        let routed = server.within_request_timeout(routed).await;
        match routed.map_err(|e| $svc.status(e))? {
            Route::Remote(resp) => Ok(resp),
            Route::Local => {
                let local: Result<_, EtcdError> = server.within_request_timeout($local(req)).await;
                Ok(Response::new(local.map_err(|e| $svc.status(e))?))
            }
        }
    }};
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        req: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        crate::cluster::reconfig::parse_peer_urls(&req.get_ref().peer_ur_ls)
            .map_err(|e| self.status(e))?;
        on_leader!(self, req, member_add, |r: MemberAddRequest| async move {
            let added = self.server.member_add(r.peer_ur_ls, r.is_learner).await?;
            Ok(MemberAddResponse {
                header: self.header(),
                member: Some(member(added)),
                members: self.members(),
            })
        })
    }

    async fn member_remove(
        &self,
        req: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        on_leader!(
            self,
            req,
            member_remove,
            |r: MemberRemoveRequest| async move {
                self.server.member_remove(r.id).await?;
                Ok(MemberRemoveResponse {
                    header: self.header(),
                    members: self.members(),
                })
            }
        )
    }

    async fn member_update(
        &self,
        req: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        on_leader!(
            self,
            req,
            member_update,
            |r: MemberUpdateRequest| async move {
                self.server.member_update(r.id, r.peer_ur_ls).await?;
                Ok(MemberUpdateResponse {
                    header: self.header(),
                    members: self.members(),
                })
            }
        )
    }

    async fn member_list(
        &self,
        _req: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        Ok(Response::new(MemberListResponse {
            header: self.header(),
            members: self.members(),
        }))
    }

    async fn member_promote(
        &self,
        req: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        on_leader!(
            self,
            req,
            member_promote,
            |r: MemberPromoteRequest| async move {
                self.server.member_promote(r.id).await?;
                Ok(MemberPromoteResponse {
                    header: self.header(),
                    members: self.members(),
                })
            }
        )
    }
}
