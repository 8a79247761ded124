//! The Election service (v3electionpb): etcd 3.4's leader election run inside the member
//! (see [`crate::concurrency::election`]).

use std::pin::Pin;
use std::sync::Arc;

use etcd_proto::v3electionpb::election_server::Election;
use etcd_proto::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderKey, LeaderRequest, LeaderResponse, ProclaimRequest,
    ProclaimResponse, ResignRequest, ResignResponse,
};
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::api::require_leader::LeaderLoss;
use crate::concurrency::election::{self, Claim};
use crate::concurrency::{plain, Local};
use crate::server::EtcdServer;

/// What etcd answers a Proclaim or Resign without a leader key.
const MISSING_LEADER_KEY: &str = "\"leader\" field must be provided";

/// Election service over one member.
pub struct ElectionService {
    pub server: Arc<EtcdServer>,
    /// Lent to the lease grants of sessions the service opens.
    pub leader_loss: LeaderLoss,
}

impl ElectionService {
    /// The claim a Proclaim or Resign names, with the lease its session uses (a new one
    /// when the leader key names none, as etcd's session does).
    async fn claim(&self, local: &Local, leader: Option<LeaderKey>) -> Result<Claim, Status> {
        let leader = leader.ok_or_else(|| plain(MISSING_LEADER_KEY))?;
        Ok(Claim {
            lease: local.session_lease(leader.lease).await?,
            key: leader.key,
            rev: leader.rev,
        })
    }
}

#[tonic::async_trait]
impl Election for ElectionService {
    async fn campaign(
        &self,
        req: Request<CampaignRequest>,
    ) -> Result<Response<CampaignResponse>, Status> {
        let local = Local::of(&self.server, &self.leader_loss, &req);
        let req = req.into_inner();
        let lease = local.session_lease(req.lease).await?;
        let (claim, header) = election::campaign(&local, &req.name, lease, &req.value).await?;
        Ok(Response::new(CampaignResponse {
            header: Some(header),
            leader: Some(LeaderKey {
                name: req.name,
                key: claim.key,
                rev: claim.rev,
                lease: claim.lease,
            }),
        }))
    }

    async fn proclaim(
        &self,
        req: Request<ProclaimRequest>,
    ) -> Result<Response<ProclaimResponse>, Status> {
        let local = Local::of(&self.server, &self.leader_loss, &req);
        let req = req.into_inner();
        let claim = self.claim(&local, req.leader).await?;
        let header = election::proclaim(&local, &claim, &req.value).await?;
        Ok(Response::new(ProclaimResponse {
            header: Some(header),
        }))
    }

    async fn leader(
        &self,
        req: Request<LeaderRequest>,
    ) -> Result<Response<LeaderResponse>, Status> {
        let local = Local::of(&self.server, &self.leader_loss, &req);
        let (kv, header) = election::leader(&local, &req.into_inner().name).await?;
        Ok(Response::new(LeaderResponse {
            header: Some(header),
            kv: Some(kv),
        }))
    }

    type ObserveStream = Pin<Box<dyn Stream<Item = Result<LeaderResponse, Status>> + Send>>;

    async fn observe(
        &self,
        req: Request<LeaderRequest>,
    ) -> Result<Response<Self::ObserveStream>, Status> {
        let local = Local::of(&self.server, &self.leader_loss, &req);
        let name = req.into_inner().name;
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            let follow = election::observe(&local, &name, |kv, header| {
                let tx = tx.clone();
                async move {
                    let resp = LeaderResponse {
                        header: Some(header),
                        kv: Some(kv),
                    };
                    tx.send(Ok(resp)).await.is_ok()
                }
            });
            // An observer that went away while nothing changed ends the task too.
            tokio::select! {
                _ = follow => {}
                _ = tx.closed() => {}
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn resign(
        &self,
        req: Request<ResignRequest>,
    ) -> Result<Response<ResignResponse>, Status> {
        let local = Local::of(&self.server, &self.leader_loss, &req);
        let claim = self.claim(&local, req.into_inner().leader).await?;
        let header = election::resign(&local, &claim).await?;
        Ok(Response::new(ResignResponse {
            header: Some(header),
        }))
    }
}
