//! The Maintenance service: status, alarms, defragmentation, hashes, backup snapshots and
//! leader transfer.

use std::pin::Pin;
use std::sync::Arc;

use etcd_proto::etcdserverpb::maintenance_server::Maintenance;
use etcd_proto::etcdserverpb::{
    AlarmRequest, AlarmResponse, DefragmentRequest, DefragmentResponse, DowngradeRequest,
    DowngradeResponse, HashKvRequest, HashKvResponse, HashRequest, HashResponse, MoveLeaderRequest,
    MoveLeaderResponse, SnapshotRequest, SnapshotResponse, StatusRequest, StatusResponse,
};
use etcd_proto::raftrequestpb::raft_request::Request as Raft;
use etcd_proto::raftrequestpb::raft_response::Response as Applied;
use futures::Stream;
use tonic::{Request, Response, Status};

use super::propose_expecting;
use crate::error::EtcdError;
use crate::server::EtcdServer;
use crate::version::API_VERSION;

/// Bytes per message of a snapshot stream (etcd's chunk size).
const SNAPSHOT_CHUNK: usize = 32 * 1024;

/// Maintenance service over one member.
pub struct MaintenanceService {
    pub server: Arc<EtcdServer>,
}

/// Runs blocking backend work off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EtcdError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EtcdError::Internal(e.to_string()))?
        .map_err(Status::from)
}

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn alarm(&self, req: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        propose_expecting!(self.server, Raft::Alarm(req.into_inner()), Applied::Alarm)
    }

    async fn status(
        &self,
        _req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let s = &self.server;
        let metrics = s.raft.metrics().borrow().clone();
        let me = s.identity.member_id;
        // The leader as this member serves clients (a leader cut off from its quorum
        // reports none, see `tasks::follow_raft`).
        let leader = s.leader();
        let mut errors = Vec::new();
        if leader == 0 {
            errors.push(EtcdError::NoLeader.to_string());
        }
        errors.extend(
            s.state
                .alarms
                .lock()
                .list()
                .iter()
                .map(crate::alarm::describe),
        );
        let is_learner = metrics
            .membership_config
            .membership()
            .learner_ids()
            .any(|id| id == me);
        let state = s.state.clone();
        let db_size_in_use = blocking(move || Ok(state.backend.size_in_use() as i64)).await?;
        Ok(Response::new(StatusResponse {
            header: Some(s.current_header()),
            version: API_VERSION.to_string(),
            db_size: s.state.backend.db_size() as i64,
            leader,
            raft_index: metrics.last_log_index.unwrap_or(0),
            raft_term: metrics.current_term,
            raft_applied_index: metrics.last_applied.map(|l| l.index).unwrap_or(0),
            errors,
            db_size_in_use,
            is_learner,
            db_size_quota: s.limits.quota_bytes as i64,
            ..Default::default()
        }))
    }

    async fn defragment(
        &self,
        _req: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        let state = self.server.state.clone();
        tracing::info!(target: "etcdserver", "starting to defragment the storage backend...");
        let before = state.backend.db_size();
        blocking(move || {
            state
                .defragment()
                .map_err(|e| EtcdError::Internal(e.to_string()))
        })
        .await
        .inspect_err(
            |e| tracing::warn!(target: "etcdserver", "failed to defragment the storage backend: {}", e.message()),
        )?;
        let after = self.server.state.backend.db_size();
        tracing::info!(target: "etcdserver", "finished defragmenting the storage backend (db size {before} -> {after} bytes)");
        Ok(Response::new(DefragmentResponse {
            header: Some(self.server.current_header()),
        }))
    }

    async fn hash(&self, _req: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        let state = self.server.state.clone();
        let hash = blocking(move || state.hash()).await?;
        Ok(Response::new(HashResponse {
            header: Some(self.server.current_header()),
            hash,
        }))
    }

    async fn hash_kv(
        &self,
        req: Request<HashKvRequest>,
    ) -> Result<Response<HashKvResponse>, Status> {
        let rev = req.into_inner().revision;
        let state = self.server.state.clone();
        let (hash, compact_revision, current) = blocking(move || {
            let store = state.mvcc.read();
            let (hash, compacted) = store.hash_kv(rev)?;
            Ok((hash, compacted, store.current_revision()))
        })
        .await?;
        Ok(Response::new(HashKvResponse {
            header: Some(self.server.header(current)),
            hash,
            compact_revision,
            hash_revision: if rev > 0 { rev } else { current },
        }))
    }

    type SnapshotStream = Pin<Box<dyn Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

    async fn snapshot(
        &self,
        _req: Request<SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        let state = self.server.state.clone();
        let bytes = blocking(move || Ok(crate::snapshot::encode(state.export()?))).await?;
        tracing::info!(target: "etcdserver", "sending database snapshot to client ({} bytes)", bytes.len());
        let header = self.server.current_header();
        let total = bytes.len();
        // Chunks are cut as the client reads them: one copy of the snapshot in memory.
        let chunks = (0..total).step_by(SNAPSHOT_CHUNK).map(move |start| {
            let end = (start + SNAPSHOT_CHUNK).min(total);
            Ok(SnapshotResponse {
                header: Some(header),
                remaining_bytes: (total - end) as u64,
                blob: bytes[start..end].to_vec(),
                ..Default::default()
            })
        });
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }

    async fn move_leader(
        &self,
        req: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        self.server.move_leader(req.into_inner().target_id).await?;
        Ok(Response::new(MoveLeaderResponse {
            header: Some(self.server.current_header()),
        }))
    }

    async fn downgrade(
        &self,
        _req: Request<DowngradeRequest>,
    ) -> Result<Response<DowngradeResponse>, Status> {
        Err(Status::unimplemented(
            "unknown method Downgrade for service etcdserverpb.Maintenance",
        ))
    }
}
