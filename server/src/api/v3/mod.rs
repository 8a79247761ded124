//! The etcd v3 gRPC services.

pub mod auth;
pub mod cluster;
pub mod election;
pub mod kv;
pub mod lease;
pub mod lock;
pub mod maintenance;
pub mod validate;
pub mod watch;
pub mod watch_fragments;
pub mod watch_ids;

use etcd_proto::raftrequestpb::raft_response::Response as Applied;
use etcd_proto::raftrequestpb::RaftRequest;
use prost::Message;
use tonic::Status;

use crate::error::EtcdError;
use crate::server::EtcdServer;

/// The state machine answered with a response of the wrong kind (a bug, never expected).
pub(crate) fn unexpected(r: Applied) -> Status {
    EtcdError::Internal(format!("unexpected apply result {r:?}")).into()
}

/// Bytes etcd's `InternalRaftRequest` spends on its header (field 100 holding the request
/// ID) beyond our raft request: a 2-byte tag, a length byte, the ID's tag and the ID as a
/// varint. etcd's IDs carry the low 16 bits of the member ID on top, then a millisecond
/// timestamp, so the varint's length depends on the member ID.
fn etcd_header_len(member_id: u64) -> usize {
    let id = ((member_id & 0xffff) << 48) | (1 << 47);
    4 + prost::encoding::encoded_len_varint(id)
}

/// etcd refuses a client request whose raft entry would exceed `--max-request-bytes`. Our
/// entry encodes the same request without etcd's header, so that header is added back to
/// cut at the same size as etcd does.
pub(crate) fn check_size(server: &EtcdServer, req: &RaftRequest) -> Result<(), EtcdError> {
    let size = req.encoded_len() + etcd_header_len(server.identity.member_id);
    if size > server.limits.max_request_bytes {
        return Err(EtcdError::RequestTooLarge);
    }
    Ok(())
}

/// Proposes a raft request on behalf of the caller with `$creds` (a
/// [`Credentials`](crate::api::caller::Credentials)) and unwraps the expected response
/// variant, filling its header.
macro_rules! propose_expecting {
    ($server:expr, $creds:expr, $req:expr, $variant:path) => {{
        let req = etcd_proto::raftrequestpb::RaftRequest {
            request: Some($req),
            header: $creds.header(&$server).await?,
        };
        $crate::api::v3::check_size(&$server, &req)?;
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

#[cfg(test)]
mod tests {
    use super::etcd_header_len;

    #[test]
    fn etcd_header_follows_the_member_id() {
        // etcd's default single member (8e9e05c52164694d): a 9-byte ID varint.
        assert_eq!(etcd_header_len(0x8e9e05c52164694d), 13);
        assert_eq!(etcd_header_len(0x1234_0000_0000_8001), 14);
        assert_eq!(etcd_header_len(0x1234_0000_0000_0000), 11);
    }
}
