//! The Lock service (v3lockpb): etcd 3.4's distributed mutex run inside the member (see
//! [`crate::concurrency`]).

use std::sync::Arc;

use etcd_proto::v3lockpb::lock_server::Lock;
use etcd_proto::v3lockpb::{LockRequest, LockResponse, UnlockRequest, UnlockResponse};
use tonic::{Request, Response, Status};

use crate::api::require_leader::LeaderLoss;
use crate::concurrency::{mutex, Local};
use crate::server::EtcdServer;

/// Lock service over one member.
pub struct LockService {
    pub server: Arc<EtcdServer>,
    /// Lent to the lease grants of sessions the service opens.
    pub leader_loss: LeaderLoss,
}

#[tonic::async_trait]
impl Lock for LockService {
    async fn lock(&self, req: Request<LockRequest>) -> Result<Response<LockResponse>, Status> {
        let local = Local::of(&self.server, &self.leader_loss, &req);
        let req = req.into_inner();
        let lease = local.session_lease(req.lease).await?;
        let (key, header) = mutex::lock(&local, &req.name, lease).await?;
        Ok(Response::new(LockResponse {
            header: Some(header),
            key,
        }))
    }

    async fn unlock(
        &self,
        req: Request<UnlockRequest>,
    ) -> Result<Response<UnlockResponse>, Status> {
        let local = Local::of(&self.server, &self.leader_loss, &req);
        let header = local.delete(req.into_inner().key).await?;
        Ok(Response::new(UnlockResponse {
            header: Some(header),
        }))
    }
}
