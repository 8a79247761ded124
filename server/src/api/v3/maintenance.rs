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

/// A snapshot's messages as etcd sends them: the file without its SHA-256 trailer in
/// chunks, each with the bytes still to come before the trailer, then the trailer alone
/// (remaining 0 again); no headers. Chunks are cut as the client reads them, so the
/// snapshot is held once in memory.
fn snapshot_messages(bytes: Vec<u8>) -> impl Iterator<Item = SnapshotResponse> {
    let body = bytes.len().saturating_sub(crate::snapshot::HASH_LEN);
    let chunks = (0..body)
        .step_by(SNAPSHOT_CHUNK)
        .map(move |start| start..(start + SNAPSHOT_CHUNK).min(body));
    let trailer = std::iter::once(body..bytes.len());
    chunks.chain(trailer).map(move |range| SnapshotResponse {
        remaining_bytes: (body - range.end.min(body)) as u64,
        blob: bytes[range].to_vec(),
        ..Default::default()
    })
}

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    /// etcd answers alarm requests without a header.
    async fn alarm(&self, req: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        let resp: Result<Response<AlarmResponse>, Status> =
            propose_expecting!(self.server, Raft::Alarm(req.into_inner()), Applied::Alarm);
        resp.map(|r| {
            Response::new(AlarmResponse {
                header: None,
                ..r.into_inner()
            })
        })
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
            // storageVersion, dbSizeQuota and downgradeInfo are etcd 3.6's, left empty as
            // etcd 3.4 and 3.5 do.
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
        // etcd answers without a header.
        Ok(Response::new(DefragmentResponse { header: None }))
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
            // etcd 3.4 refuses to hash at or below the compacted revision, the compacted
            // revision itself included, though a read at it is served (3.6 hashes it). The
            // hash at a later revision still covers the versions compaction kept.
            if rev > 0 && rev <= store.compacted_revision() {
                return Err(EtcdError::Compacted);
            }
            let (hash, compacted) = store.hash_kv(rev)?;
            Ok((hash, compacted, store.current_revision()))
        })
        .await?;
        Ok(Response::new(HashKvResponse {
            header: Some(self.server.header(current)),
            hash,
            compact_revision,
            // etcd 3.6's field, left empty as etcd 3.4 and 3.5 do.
            hash_revision: 0,
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
        Ok(Response::new(Box::pin(futures::stream::iter(
            snapshot_messages(bytes).map(Ok),
        ))))
    }

    async fn move_leader(
        &self,
        req: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        self.server.move_leader(req.into_inner().target_id).await?;
        // etcd answers without a header.
        Ok(Response::new(MoveLeaderResponse { header: None }))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_messages_count_down_to_the_trailer_then_send_it_alone() {
        let file: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
        let messages: Vec<SnapshotResponse> = snapshot_messages(file.clone()).collect();
        let shape: Vec<(usize, u64)> = messages
            .iter()
            .map(|m| (m.blob.len(), m.remaining_bytes))
            .collect();
        assert_eq!(
            shape,
            [(32768, 37200), (32768, 4432), (4432, 0), (32, 0)],
            "the body's chunks, then the 32-byte hash"
        );
        assert!(messages.iter().all(|m| m.header.is_none()));
        let joined: Vec<u8> = messages.into_iter().flat_map(|m| m.blob).collect();
        assert_eq!(joined, file);
    }
}
