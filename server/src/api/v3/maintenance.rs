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
use crate::api::caller::Credentials;
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

/// Cuts a snapshot body into messages as etcd sends them: chunks, each with the bytes
/// still to come before the trailer; [`SnapshotChunks::finish`] then sends the SHA-256
/// trailer alone (remaining 0 again). No headers. `send` returns false once the client
/// has gone, which stops the writer.
struct SnapshotChunks<S> {
    body_len: u64,
    sent: u64,
    buf: Vec<u8>,
    send: S,
}

impl<S: FnMut(SnapshotResponse) -> bool> SnapshotChunks<S> {
    fn new(body_len: u64, send: S) -> Self {
        SnapshotChunks {
            body_len,
            sent: 0,
            buf: Vec::with_capacity(SNAPSHOT_CHUNK),
            send,
        }
    }

    fn emit(&mut self, blob: Vec<u8>) -> std::io::Result<()> {
        self.sent += blob.len() as u64;
        let msg = SnapshotResponse {
            remaining_bytes: self.body_len.saturating_sub(self.sent),
            blob,
            ..Default::default()
        };
        if (self.send)(msg) {
            Ok(())
        } else {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    /// Sends the trailer after a body of exactly the announced length.
    fn finish(mut self, trailer: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        self.flush()?;
        if self.sent != self.body_len {
            return Err(std::io::Error::other(format!(
                "snapshot body is {} bytes, {} were announced",
                self.sent, self.body_len
            )));
        }
        self.sent = 0;
        self.body_len = 0;
        self.emit(trailer.to_vec())
    }
}

impl<S: FnMut(SnapshotResponse) -> bool> std::io::Write for SnapshotChunks<S> {
    fn write(&mut self, mut bytes: &[u8]) -> std::io::Result<usize> {
        let n = bytes.len();
        while !bytes.is_empty() {
            let take = (SNAPSHOT_CHUNK - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buf.len() == SNAPSHOT_CHUNK {
                let blob = std::mem::replace(&mut self.buf, Vec::with_capacity(SNAPSHOT_CHUNK));
                self.emit(blob)?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let blob = std::mem::take(&mut self.buf);
            self.emit(blob)?;
        }
        Ok(())
    }
}

/// Streams a backup snapshot of a point-in-time view to `tx`, as the client reads it:
/// the view is walked twice (its length first, as etcd announces the bytes remaining),
/// never held in memory, and never under the store's lock. Blocks.
fn send_snapshot(
    state: &crate::state::KvState,
    tx: &tokio::sync::mpsc::Sender<Result<SnapshotResponse, Status>>,
) -> Result<(), EtcdError> {
    let view = state.view()?;
    let mut sizes = Vec::new();
    for entry in view.iter() {
        let (k, v) = entry?;
        sizes.push((k.len(), v.len()));
    }
    let body_len = crate::snapshot::body_len(sizes);
    tracing::info!(target: "etcdserver", "sending database snapshot to client ({} bytes)", body_len + crate::snapshot::HASH_LEN as u64);
    let mut chunks = SnapshotChunks::new(body_len, |m| tx.blocking_send(Ok(m)).is_ok());
    let io = |e: std::io::Error| EtcdError::Internal(format!("snapshot: {e}"));
    let trailer = crate::snapshot::write_body(
        view.iter()
            .map(|r| r.map_err(|e| std::io::Error::other(e.to_string()))),
        &mut chunks,
    )
    .map_err(io)?;
    chunks.finish(&trailer).map_err(io)
}

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    /// etcd answers alarm requests without a header.
    async fn alarm(&self, req: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        let creds = Credentials::of_request(&req);
        // A bad token is refused with the auth package's own error, as etcd 3.4 does.
        creds
            .resolve(&self.server)
            .await
            .map_err(crate::api::caller::auth_package_error)?;
        let resp: Result<Response<AlarmResponse>, Status> = propose_expecting!(
            self.server,
            creds,
            Raft::Alarm(req.into_inner()),
            Applied::Alarm
        );
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
            // etcd's raftIndex is the commit index (read after the applied index).
            raft_index: s.committed_index(),
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
        req: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        Credentials::of_request(&req)
            .check_admin_maintenance(&self.server)
            .await?;
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

    async fn hash(&self, req: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        Credentials::of_request(&req)
            .check_admin_maintenance(&self.server)
            .await?;
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
        Credentials::of_request(&req)
            .check_admin_maintenance(&self.server)
            .await?;
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
            // etcd answers -1 until its first compaction.
            compact_revision: match compact_revision {
                0 => -1,
                rev => rev,
            },
            // etcd 3.6's field, left empty as etcd 3.4 and 3.5 do.
            hash_revision: 0,
        }))
    }

    type SnapshotStream = Pin<Box<dyn Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

    async fn snapshot(
        &self,
        req: Request<SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        Credentials::of_request(&req)
            .check_admin_maintenance(&self.server)
            .await?;
        let state = self.server.state.clone();
        // A few chunks in flight: the walk goes at the pace the client reads.
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tokio::task::spawn_blocking(move || {
            if let Err(e) = send_snapshot(&state, &tx) {
                tracing::warn!(target: "etcdserver", "failed to send database snapshot: {e}");
                let _ = tx.blocking_send(Err(Status::from(e)));
            }
            // The walk freed what it read through (see `memory`).
            crate::memory::release_free_memory();
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
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
        use std::io::Write;
        let file: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
        let body = file.len() - crate::snapshot::HASH_LEN;
        let mut messages = Vec::new();
        let mut chunks = SnapshotChunks::new(body as u64, |m| {
            messages.push(m);
            true
        });
        // Written in uneven pieces, as the encoder does.
        for piece in file[..body].chunks(1000) {
            chunks.write_all(piece).unwrap();
        }
        chunks.finish(&file[body..]).unwrap();
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
