//! Test support: a member's applied state on a scratch backend, written to the way the raft
//! state machine writes to it, so tests of the readers (views, watch streams) need no raft.

use std::path::Path;

use etcd_proto::raftrequestpb::raft_request::Request;
use etcd_proto::raftrequestpb::raft_response::Response;
use etcd_proto::raftrequestpb::RaftRequest;

use super::KvState;
use crate::apply;
use crate::storage::Backend;

/// The applied state of the member whose data lives below `dir`.
pub fn open(dir: &Path) -> KvState {
    KvState::open(Backend::open(dir).unwrap(), 5, Default::default()).unwrap()
}

/// Applies `request` as the state machine applies an entry holding it: under the write
/// lock, into one backend batch, and only then publishes its events to the watch hub.
/// Panics if the request fails; returns the revision after it.
pub fn apply(state: &KvState, request: Request) -> i64 {
    let mut mvcc = state.mvcc.write();
    let mut batch = sled::Batch::default();
    let outcome = {
        let mut lessor = state.lessor.lock();
        let mut alarms = state.alarms.lock();
        let mut auth = state.auth.write();
        let mut target = apply::Target {
            mvcc: &mut mvcc,
            lessor: &mut lessor,
            alarms: &mut alarms,
            auth: &mut auth,
            index: 0,
        };
        apply::apply(
            &mut target,
            &mut batch,
            RaftRequest {
                request: Some(request),
                header: None,
            },
        )
    };
    if let Some(Response::Error(e)) = &outcome.response.response {
        panic!("request failed: {e:?}");
    }
    state.backend.apply(batch).unwrap();
    mvcc.batch_applied();
    drop(mvcc);
    let revision = outcome.response.revision;
    if !outcome.events.is_empty() {
        state.hub.publish(revision, outcome.events);
    }
    revision
}
