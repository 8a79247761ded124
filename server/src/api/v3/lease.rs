//! The Lease service: grant and revoke go through raft; keep-alives are answered by the
//! leader's lessor alone, as in etcd.

use std::pin::Pin;
use std::sync::Arc;

use etcd_proto::etcdserverpb::lease_server::Lease;
use etcd_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseStatus,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use etcd_proto::raftrequestpb::raft_request::Request as Raft;
use etcd_proto::raftrequestpb::raft_response::Response as Applied;
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::propose_expecting;
use crate::api::caller::Credentials;
use crate::api::require_leader::{LeaderLoss, StreamGuard};
use crate::error::EtcdError;
use crate::lease::MAX_LEASE_TTL;
use crate::server::EtcdServer;

/// Lease service over one member.
pub struct LeaseService {
    pub server: Arc<EtcdServer>,
    /// Ends keep-alive streams that require a leader once the member has lost it.
    pub leader_loss: LeaderLoss,
}

#[tonic::async_trait]
impl Lease for LeaseService {
    async fn lease_grant(
        &self,
        req: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        let creds = Credentials::of_request(&req);
        let mut req = req.into_inner();
        if req.ttl > MAX_LEASE_TTL {
            return Err(EtcdError::LeaseTtlTooLarge.into());
        }
        crate::quota::check(&self.server, crate::quota::LEASE_OVERHEAD).await?;
        {
            let lessor = self.server.state.lessor.lock();
            req.ttl = lessor.ttl_to_propose(req.ttl);
            if req.id == 0 {
                req.id = loop {
                    let id = rand::random::<i64>() & i64::MAX;
                    if id != 0 && !lessor.contains(id) {
                        break id;
                    }
                };
            }
        }
        propose_expecting!(
            self.server,
            creds,
            Raft::LeaseGrant(req),
            Applied::LeaseGrant
        )
    }

    async fn lease_revoke(
        &self,
        req: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        let creds = Credentials::of_request(&req);
        propose_expecting!(
            self.server,
            creds,
            Raft::LeaseRevoke(req.into_inner()),
            Applied::LeaseRevoke
        )
    }

    type LeaseKeepAliveStream =
        Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send>>;

    async fn lease_keep_alive(
        &self,
        req: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let mut guard = self.leader_loss.for_stream(req.metadata());
        let mut inbound = req.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let server = self.server.clone();
        tokio::spawn(async move {
            let serve = async {
                while let Ok(Some(r)) = inbound.message().await {
                    let resp = server
                        .lease_renew(r.id)
                        .await
                        .map(|ttl| LeaseKeepAliveResponse {
                            header: Some(server.current_header()),
                            id: r.id,
                            ttl,
                        });
                    let failed = resp.is_err();
                    if tx.send(resp.map_err(Status::from)).await.is_err() || failed {
                        return;
                    }
                }
            };
            tokio::select! {
                _ = serve => {}
                _ = guard.lost() => {
                    let _ = tx.send(Err(StreamGuard::error())).await;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn lease_time_to_live(
        &self,
        req: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let creds = Credentials::of_request(&req);
        let req = req.into_inner();
        // etcd 3.4.23 lists the keys of a lease to anyone; later releases (3.4.26, 3.5.9)
        // ask for read permission on each, as ours does.
        let caller = match req.keys {
            true => Some(creds.resolve(&self.server).await?.unwrap_or_default()),
            false => None,
        };
        let resp = self.server.lease_time_to_live(req).await?;
        if let Some(ai) = caller {
            let auth = self.server.state.auth.read();
            for key in &resp.keys {
                crate::auth::check::range(&auth, &ai, key, b"")?;
            }
        }
        Ok(Response::new(resp))
    }

    async fn lease_leases(
        &self,
        _req: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        let leases = self
            .server
            .state
            .lessor
            .lock()
            .ids()
            .into_iter()
            .map(|id| LeaseStatus { id })
            .collect();
        Ok(Response::new(LeaseLeasesResponse {
            header: Some(self.server.current_header()),
            leases,
        }))
    }
}
