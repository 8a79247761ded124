//! The batcher over a proposer that holds every proposal until the test lets it go.

use std::sync::Arc;

use etcd_proto::etcdserverpb::PutRequest;
use etcd_proto::raftrequestpb::{Empty, ResponseBatch};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::*;

/// Records what it is asked to propose (the keys of each entry), reports each proposal
/// as it starts, and answers only when the gate lets it.
#[derive(Clone)]
struct HeldProposer {
    started: mpsc::UnboundedSender<()>,
    gate: Arc<Semaphore>,
    proposed: Arc<Mutex<Vec<Vec<Vec<u8>>>>>,
    fail: Option<EtcdError>,
}

fn keys(req: &RaftRequest) -> Vec<Vec<u8>> {
    match &req.request {
        Some(Request::Put(p)) => vec![p.key.clone()],
        Some(Request::Batch(b)) => b.requests.iter().flat_map(keys).collect(),
        _ => Vec::new(),
    }
}

fn answer(req: &RaftRequest) -> RaftResponse {
    let empty = || Some(Response::Empty(Empty {}));
    let response = match &req.request {
        Some(Request::Batch(b)) => Some(Response::Batch(ResponseBatch {
            responses: b
                .requests
                .iter()
                .map(|_| RaftResponse {
                    response: empty(),
                    revision: 1,
                })
                .collect(),
        })),
        _ => empty(),
    };
    RaftResponse {
        response,
        revision: 1,
    }
}

impl Proposer for HeldProposer {
    async fn propose(&self, req: RaftRequest) -> Result<RaftResponse> {
        self.proposed.lock().push(keys(&req));
        let _ = self.started.send(());
        let _pass = self.gate.acquire().await.expect("gate open");
        match &self.fail {
            Some(e) => Err(e.clone()),
            None => Ok(answer(&req)),
        }
    }

    async fn after_batch(&self) {}
}

struct Harness {
    batcher: Batcher,
    started: mpsc::UnboundedReceiver<()>,
    gate: Arc<Semaphore>,
    proposed: Arc<Mutex<Vec<Vec<Vec<u8>>>>>,
}

fn harness(fail: Option<EtcdError>) -> Harness {
    let (started_tx, started) = mpsc::unbounded_channel();
    let proposer = HeldProposer {
        started: started_tx,
        gate: Arc::new(Semaphore::new(0)),
        proposed: Arc::default(),
        fail,
    };
    Harness {
        batcher: Batcher::start(proposer.clone()),
        started,
        gate: proposer.gate.clone(),
        proposed: proposer.proposed.clone(),
    }
}

fn put(key: &str) -> RaftRequest {
    RaftRequest {
        request: Some(Request::Put(PutRequest {
            key: key.as_bytes().to_vec(),
            ..Default::default()
        })),
        header: None,
    }
}

impl Harness {
    /// Fills every in-flight slot with a held single-request proposal.
    async fn occupy_slots(&mut self) -> Vec<oneshot::Receiver<Result<RaftResponse>>> {
        let mut held = Vec::new();
        for i in 0..IN_FLIGHT {
            held.push(self.batcher.submit(put(&format!("slot{i}"))).unwrap());
            self.started.recv().await.expect("the proposal starts");
        }
        held
    }

    /// Fills every slot, queues `k0..k{n}` behind them, then lets every proposal answer:
    /// the receivers of the slot-holding requests, then of the queued ones.
    async fn queue_behind_busy_slots(
        &mut self,
        n: usize,
    ) -> Vec<oneshot::Receiver<Result<RaftResponse>>> {
        let mut all = self.occupy_slots().await;
        for i in 0..n {
            all.push(self.batcher.submit(put(&format!("k{i}"))).unwrap());
        }
        self.gate.add_permits(IN_FLIGHT + 1);
        all
    }
}

#[tokio::test]
async fn requests_queued_behind_busy_slots_share_one_entry() {
    let mut h = harness(None);
    for rx in h.queue_behind_busy_slots(10).await {
        let resp = rx.await.unwrap().unwrap();
        assert_eq!(resp.response, Some(Response::Empty(Empty {})));
    }
    let proposed = h.proposed.lock().clone();
    assert_eq!(proposed.len(), IN_FLIGHT + 1, "{proposed:?}");
    let expected: Vec<Vec<u8>> = (0..10).map(|i| format!("k{i}").into_bytes()).collect();
    assert_eq!(
        proposed[IN_FLIGHT], expected,
        "in queue order, in one entry"
    );
}

#[tokio::test]
async fn a_full_queue_refuses_new_requests_with_too_many_requests() {
    let h = harness(None);
    // The driver task has not run yet: every request stays in the queue.
    let mut queued = Vec::new();
    for i in 0..QUEUE {
        queued.push(h.batcher.submit(put(&format!("k{i}"))).expect("room"));
    }
    let refused = h.batcher.propose(put("one too many")).await;
    assert_eq!(refused, Err(EtcdError::TooManyRequests));
    assert_eq!(
        EtcdError::TooManyRequests.code(),
        tonic::Code::ResourceExhausted
    );
    assert_eq!(
        EtcdError::TooManyRequests.to_string(),
        "etcdserver: too many requests"
    );
}

#[tokio::test]
async fn a_request_whose_client_left_is_not_proposed() {
    let mut h = harness(None);
    let held = h.occupy_slots().await;
    let gone = h.batcher.submit(put("gone")).unwrap();
    let waiting = h.batcher.submit(put("waiting")).unwrap();
    drop(gone);
    h.gate.add_permits(IN_FLIGHT + 1);
    waiting.await.unwrap().unwrap();
    for rx in held {
        rx.await.unwrap().unwrap();
    }
    let proposed = h.proposed.lock().concat();
    assert!(proposed.contains(&b"waiting".to_vec()));
    assert!(
        !proposed.contains(&b"gone".to_vec()),
        "proposed: {proposed:?}"
    );
}

#[tokio::test]
async fn a_failed_entry_fails_every_request_in_it() {
    let mut h = harness(Some(EtcdError::NotLeader));
    for rx in h.queue_behind_busy_slots(3).await {
        assert_eq!(rx.await.unwrap(), Err(EtcdError::NotLeader));
    }
}
