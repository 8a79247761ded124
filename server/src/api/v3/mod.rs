//! The etcd v3 gRPC services.

pub mod cluster;
pub mod kv;
pub mod lease;
pub mod maintenance;
pub mod validate;
pub mod watch;

use etcd_proto::raftrequestpb::raft_response::Response as Applied;
use tonic::Status;

use crate::error::EtcdError;

/// The state machine answered with a response of the wrong kind (a bug, never expected).
pub(crate) fn unexpected(r: Applied) -> Status {
    EtcdError::Internal(format!("unexpected apply result {r:?}")).into()
}

/// Proposes a raft request and unwraps the expected response variant, filling its header.
macro_rules! propose_expecting {
    ($server:expr, $req:expr, $variant:path) => {{
        let req = etcd_proto::raftrequestpb::RaftRequest {
            request: Some($req),
        };
        match $server.propose(req).await? {
            ($variant(mut r), rev) => {
                r.header = Some($server.header(rev));
                Ok(tonic::Response::new(r))
            }
            (other, _) => Err($crate::api::v3::unexpected(other)),
        }
    }};
}
pub(crate) use propose_expecting;
