//! The Watch service: many watchers multiplexed on one bidirectional stream.
//!
//! Each stream runs one task that owns its watchers. The task wakes when the hub publishes
//! a revision (or a request arrives), pulls every event its watchers have not seen yet
//! (recent window first, store history otherwise) and sends them in order. A watcher that
//! starts in the past is caught up in batches; once caught up it gets one response per
//! revision, as etcd's synced watchers do.
//!
//! Headers: the stream's revision is the latest revision the hub has published (never the
//! store's, which runs ahead of what the stream may have sent). Catch-up batches carry it,
//! as etcd's do; a synced watcher's response carries its events' revision. Every header is
//! raised to the highest one already sent on the stream, so headers never go backwards
//! (another watcher's catch-up may have announced a later revision). A progress response
//! only announces a revision every watcher it speaks for has fully received. The one
//! exception is etcd's own: a watcher cancelled because its history was compacted gets a
//! header without a revision.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use etcd_proto::etcdserverpb::watch_create_request::FilterType;
use etcd_proto::etcdserverpb::watch_request::RequestUnion;
use etcd_proto::etcdserverpb::watch_server::Watch;
use etcd_proto::etcdserverpb::{ResponseHeader, WatchCreateRequest, WatchRequest, WatchResponse};

use crate::api::caller::Credentials;
use etcd_proto::mvccpb::{event::EventType, Event};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::watch_fragments::fragments;
use super::watch_ids::WatchIds;
use crate::api::require_leader::{LeaderLoss, StreamGuard};
use crate::api::GRPC_OVERHEAD_BYTES;
use crate::error::EtcdError;
use crate::mvcc::index::KeyRange;
use crate::server::EtcdServer;
use crate::state::KvState;

#[cfg(test)]
mod tests;

/// The events of one revision, shared between watchers.
type RevisionEvents = (i64, Arc<Vec<Event>>);

/// Most revisions sent in one response while a watcher catches up.
const CATCH_UP_REVISIONS: i64 = 1000;

/// Watch service over one member.
pub struct WatchService {
    pub server: Arc<EtcdServer>,
    /// How often idle watchers that asked for progress notifications get one.
    pub progress_interval: Duration,
    /// Ends streams that require a leader once the member has lost it.
    pub leader_loss: LeaderLoss,
}

struct Watcher {
    key: Vec<u8>,
    range_end: Vec<u8>,
    next_rev: i64,
    prev_kv: bool,
    no_put: bool,
    no_delete: bool,
    progress_notify: bool,
    fragment: bool,
    synced: bool,
    /// Whether anything was sent since the last progress notification.
    active: bool,
}

impl Watcher {
    fn new(c: &WatchCreateRequest, current: i64) -> Self {
        let next_rev = if c.start_revision > 0 {
            c.start_revision
        } else {
            current + 1
        };
        Watcher {
            key: c.key.clone(),
            range_end: c.range_end.clone(),
            next_rev,
            prev_kv: c.prev_kv,
            no_put: c.filters.contains(&(FilterType::Noput as i32)),
            no_delete: c.filters.contains(&(FilterType::Nodelete as i32)),
            progress_notify: c.progress_notify,
            fragment: c.fragment,
            synced: next_rev > current,
            active: false,
        }
    }

    fn wants(&self, ev: &Event) -> bool {
        let Some(kv) = &ev.kv else { return false };
        let is_put = ev.r#type == EventType::Put as i32;
        if (is_put && self.no_put) || (!is_put && self.no_delete) {
            return false;
        }
        KeyRange::new(&self.key, &self.range_end).contains(&kv.key)
    }

    fn shape(&self, ev: &Event) -> Event {
        let mut ev = ev.clone();
        if !self.prev_kv {
            ev.prev_kv = None;
        }
        ev
    }
}

type Out = mpsc::Sender<Result<WatchResponse, Status>>;

/// Where a stream's response headers come from. A stream needs the member only for its
/// identity and raft term; everything else it reads from the applied state.
pub trait HeaderSource: Send + Sync {
    /// A response header at `revision`.
    fn header(&self, revision: i64) -> ResponseHeader;
}

impl HeaderSource for EtcdServer {
    fn header(&self, revision: i64) -> ResponseHeader {
        EtcdServer::header(self, revision)
    }
}

/// Checks a new watch against the read permissions of the stream's caller (etcd's
/// isWatchPermitted): the token is judged again at every create, as etcd does.
pub struct WatchGate {
    server: Arc<EtcdServer>,
    creds: Credentials,
}

impl WatchGate {
    async fn permits(&self, c: &WatchCreateRequest) -> Result<(), EtcdError> {
        let ai = self.creds.resolve(&self.server).await?;
        // An empty key is the smallest key, as etcd reads it.
        let key: &[u8] = if c.key.is_empty() { &[0] } else { &c.key };
        let auth = self.server.state.auth.read();
        crate::auth::check::range(&auth, &ai.unwrap_or_default(), key, &c.range_end)
    }
}

struct StreamTask {
    state: Arc<KvState>,
    /// `None` where no caller is checked (the unit tests' streams).
    gate: Option<WatchGate>,
    headers: Arc<dyn HeaderSource>,
    /// Size at which a fragmenting watcher's response is split.
    fragment_limit: usize,
    watchers: BTreeMap<i64, Watcher>,
    ids: WatchIds,
    out: Out,
    /// The highest header revision sent on this stream.
    last_header: i64,
}

/// The stream is gone (client left); the task ends.
struct Closed;

impl StreamTask {
    fn new(
        state: Arc<KvState>,
        headers: Arc<dyn HeaderSource>,
        fragment_limit: usize,
        out: Out,
    ) -> Self {
        StreamTask {
            state,
            gate: None,
            headers,
            fragment_limit,
            watchers: BTreeMap::new(),
            ids: WatchIds::default(),
            out,
            last_header: 0,
        }
    }

    async fn send(&self, resp: WatchResponse) -> Result<(), Closed> {
        self.out.send(Ok(resp)).await.map_err(|_| Closed)
    }

    /// A response whose header is at `revision`, or at the highest revision already sent.
    fn response(&mut self, revision: i64, watch_id: i64) -> WatchResponse {
        self.last_header = self.last_header.max(revision);
        WatchResponse {
            header: Some(self.headers.header(self.last_header)),
            watch_id,
            ..Default::default()
        }
    }

    /// The revision up to which every watcher has received its events: what a progress
    /// response for the whole stream may announce.
    fn delivered(&self) -> i64 {
        let latest = self.state.hub.latest();
        self.watchers
            .values()
            .map(|w| w.next_rev - 1)
            .fold(latest, i64::min)
    }

    async fn handle(&mut self, req: WatchRequest) -> Result<(), Closed> {
        let current = self.state.hub.latest();
        match req.request_union {
            Some(RequestUnion::CreateRequest(c)) => {
                if let Some(gate) = &self.gate {
                    // A refused watch is a message, not an error of the stream: the
                    // reason is the error as Go prints a gRPC status.
                    if let Err(e) = gate.permits(&c).await {
                        let r = WatchResponse {
                            created: true,
                            canceled: true,
                            cancel_reason: crate::api::caller::go_status_text(&e),
                            ..self.response(current, -1)
                        };
                        return self.send(r).await;
                    }
                }
                let watchers = &self.watchers;
                let r = match self.ids.assign(&c, |id| watchers.contains_key(&id)) {
                    Ok(id) => {
                        self.watchers.insert(id, Watcher::new(&c, current));
                        self.response(current, id)
                    }
                    Err(refused) => WatchResponse {
                        canceled: true,
                        cancel_reason: refused.to_string(),
                        ..self.response(current, -1)
                    },
                };
                self.send(WatchResponse { created: true, ..r }).await
            }
            Some(RequestUnion::CancelRequest(c)) => {
                if self.watchers.remove(&c.watch_id).is_some() {
                    let mut r = self.response(current, c.watch_id);
                    r.canceled = true;
                    self.send(r).await?;
                }
                Ok(())
            }
            Some(RequestUnion::ProgressRequest(_)) => {
                self.deliver().await?;
                let delivered = self.delivered();
                // Only when a watcher could not be caught up (its history unreadable) is
                // the stream behind what it announced; etcd then defers the answer too.
                if delivered < self.last_header {
                    return Ok(());
                }
                let r = self.response(delivered, -1);
                self.send(r).await
            }
            None => Ok(()),
        }
    }

    /// Sends every watcher the events it has not seen, up to the latest revision.
    async fn deliver(&mut self) -> Result<(), Closed> {
        let latest = self.state.hub.latest();
        let ids: Vec<i64> = self.watchers.keys().copied().collect();
        for id in ids {
            while let Some(w) = self.watchers.get_mut(&id) {
                if w.next_rev > latest {
                    break;
                }
                // A synced watcher whose client stopped reading for a while is caught up
                // in batches like any other, so no read spans unbounded history (etcd
                // moves such watchers to its unsynced set too).
                if w.synced && latest - w.next_rev >= CATCH_UP_REVISIONS {
                    w.synced = false;
                }
                let upto = if w.synced {
                    latest
                } else {
                    latest.min(w.next_rev + CATCH_UP_REVISIONS - 1)
                };
                let from = w.next_rev;
                match self.collect(from, upto) {
                    Err(EtcdError::Compacted) => {
                        let compacted = self.state.mvcc.read().compacted_revision();
                        self.watchers.remove(&id);
                        // etcd's cancellation carries no revision in its header.
                        let mut r = WatchResponse {
                            header: Some(self.headers.header(0)),
                            watch_id: id,
                            ..Default::default()
                        };
                        r.canceled = true;
                        r.compact_revision = compacted;
                        self.send(r).await?;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!("watch {id}: cannot read history: {e}");
                        break;
                    }
                    Ok(revs) => {
                        let w = self.watchers.get_mut(&id).expect("watcher present");
                        let synced = w.synced;
                        w.next_rev = upto + 1;
                        if upto == latest {
                            w.synced = true;
                        }
                        let groups: Vec<(i64, Vec<Event>)> = revs
                            .into_iter()
                            .map(|(rev, evs)| {
                                (
                                    rev,
                                    evs.iter()
                                        .filter(|e| w.wants(e))
                                        .map(|e| w.shape(e))
                                        .collect(),
                                )
                            })
                            .filter(|(_, evs): &(i64, Vec<Event>)| !evs.is_empty())
                            .collect();
                        if groups.is_empty() {
                            continue;
                        }
                        w.active = true;
                        let fragment = w.fragment;
                        if synced {
                            for (rev, evs) in groups {
                                self.send_events(id, rev, evs, fragment).await?;
                            }
                        } else {
                            let evs: Vec<Event> = groups.into_iter().flat_map(|(_, e)| e).collect();
                            self.send_events(id, latest, evs, fragment).await?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Events of revisions `from..=to`, grouped by revision.
    fn collect(&self, from: i64, to: i64) -> Result<Vec<RevisionEvents>, EtcdError> {
        let state = &self.state;
        let compacted = state.mvcc.read().compacted_revision();
        // Compacted history is gone even while the recent window still holds it, and the
        // compacted revision itself lost its tombstones: both are answered from the store.
        if from < compacted {
            return Err(EtcdError::Compacted);
        }
        if from > compacted {
            if let Some(recent) = state.hub.recent(from, to) {
                return Ok(recent.into_iter().map(|r| (r.revision, r.events)).collect());
            }
        }
        let store = state.mvcc.read();
        if from < store.compacted_revision() {
            return Err(EtcdError::Compacted);
        }
        let mut out: Vec<(i64, Vec<Event>)> = Vec::new();
        for rec in store.history(from, to)? {
            let r#type = if rec.tombstone {
                EventType::Delete
            } else {
                EventType::Put
            } as i32;
            let ev = Event {
                r#type,
                kv: Some(rec.kv),
                prev_kv: rec.prev,
            };
            match out.last_mut() {
                Some((rev, evs)) if *rev == rec.rev.main => evs.push(ev),
                _ => out.push((rec.rev.main, vec![ev])),
            }
        }
        Ok(out.into_iter().map(|(r, e)| (r, Arc::new(e))).collect())
    }

    async fn send_events(
        &mut self,
        id: i64,
        rev: i64,
        events: Vec<Event>,
        fragment: bool,
    ) -> Result<(), Closed> {
        let mut resp = self.response(rev, id);
        resp.events = events;
        if !fragment {
            return self.send(resp).await;
        }
        for piece in fragments(resp, self.fragment_limit) {
            self.send(piece).await?;
        }
        Ok(())
    }

    /// Periodic progress: each synced watcher that asked for it and received nothing since
    /// the last round is told the revision it has received everything up to.
    async fn progress(&mut self) -> Result<(), Closed> {
        let floor = self.last_header;
        let due: Vec<(i64, i64)> = self
            .watchers
            .iter_mut()
            .filter(|(_, w)| w.progress_notify && w.synced && w.next_rev > floor)
            .filter_map(|(id, w)| {
                (!std::mem::replace(&mut w.active, false)).then_some((*id, w.next_rev - 1))
            })
            .collect();
        for (id, upto) in due {
            let r = self.response(upto, id);
            self.send(r).await?;
        }
        Ok(())
    }

    /// Serves the stream until the client stops sending (or fails) or stops reading.
    async fn run<In>(mut self, mut inbound: In, progress_every: Duration, mut guard: StreamGuard)
    where
        In: Stream<Item = Result<WatchRequest, Status>> + Unpin,
    {
        let mut revs = self.state.hub.subscribe();
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + progress_every, progress_every);
        loop {
            if self.deliver().await.is_err() {
                return;
            }
            let step = tokio::select! {
                msg = inbound.next() => match msg {
                    Some(Ok(req)) => self.handle(req).await,
                    _ => return,
                },
                changed = revs.changed() => match changed {
                    Ok(()) => Ok(()),
                    Err(_) => return,
                },
                _ = tick.tick() => self.progress().await,
                _ = guard.lost() => {
                    let _ = self.out.send(Err(StreamGuard::error())).await;
                    return;
                }
            };
            if step.is_err() {
                return;
            }
        }
    }
}

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

    async fn watch(
        &self,
        req: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let guard = self.leader_loss.for_stream(req.metadata());
        let creds = Credentials::of_request(&req);
        let (tx, rx) = mpsc::channel(128);
        let mut task = StreamTask::new(
            self.server.state.clone(),
            self.server.clone(),
            self.server.limits.max_request_bytes + GRPC_OVERHEAD_BYTES,
            tx,
        );
        task.gate = Some(WatchGate {
            server: self.server.clone(),
            creds,
        });
        tokio::spawn(task.run(req.into_inner(), self.progress_interval, guard));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
