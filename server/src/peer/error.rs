//! What a failed peer call means, as a type.
//!
//! A member acts on a peer's failure in ways that must not hang on wording: a forwarded
//! write is tried on another leader only if it never left this member, a member told it
//! was removed shuts down, a member of another cluster is backed off from. So the serving
//! side puts the meaning in the status's metadata ([`PeerError::into_status`]) and the
//! calling side reads it back from there or from the transport error's type
//! ([`PeerError::from_status`]); the message text is for people only.

use etcd_proto::raftrequestpb::ErrorCode;
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use crate::error::EtcdError;

/// Metadata carrying an etcd error's [`ErrorCode`] (decimal).
const ERROR_CODE: &str = "x-etcd-error-code";
/// Metadata carrying a [`Refusal`].
const REFUSAL: &str = "x-etcd-refusal";
/// Metadata carrying the refusing member's cluster ID (hex), with a cluster mismatch.
const CLUSTER: &str = "x-etcd-refusal-cluster";

/// Why a member refused a peer call before serving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The leader no longer has the calling member: it has been removed.
    Removed,
    /// The called member belongs to another cluster (`theirs`).
    ClusterMismatch { theirs: u64 },
    /// The caller is not a member this member knows (and this member is not the leader,
    /// which would say [`Refusal::Removed`]).
    NotMember,
}

impl Refusal {
    fn name(self) -> &'static str {
        match self {
            Refusal::Removed => "removed",
            Refusal::ClusterMismatch { .. } => "cluster-mismatch",
            Refusal::NotMember => "not-member",
        }
    }
}

/// The outcome of a failed peer call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerError {
    /// The peer served the call and answered with one of etcd's errors.
    Etcd(EtcdError),
    /// The peer refused the call without serving it.
    Refused(Refusal),
    /// No connection could be made: the call never reached the peer, so trying it
    /// elsewhere cannot apply it twice.
    NotSent(String),
    /// The call was sent but its answer was lost (connection reset, peer gone): it may
    /// have been served.
    Lost(String),
}

impl PeerError {
    /// The status the serving member answers with: etcd's status for an etcd error, with
    /// the meaning in the metadata.
    pub fn into_status(self) -> Status {
        let (mut status, meaning) = match self {
            PeerError::Etcd(e) => {
                let code = (e.wire_code() as i32).to_string();
                (Status::from(e), Some((ERROR_CODE, code)))
            }
            PeerError::Refused(r) => {
                let status = match r {
                    Refusal::Removed => Status::failed_precondition(
                        "the member has been permanently removed from the cluster",
                    ),
                    Refusal::ClusterMismatch { theirs } => {
                        let mut s = Status::failed_precondition(format!(
                            "request cluster ID mismatch (this member's cluster is {theirs:x})"
                        ));
                        insert(s.metadata_mut(), CLUSTER, &format!("{theirs:x}"));
                        s
                    }
                    Refusal::NotMember => {
                        Status::permission_denied("the sender is not a member of this cluster")
                    }
                };
                (status, Some((REFUSAL, r.name().to_string())))
            }
            PeerError::NotSent(m) | PeerError::Lost(m) => (Status::unavailable(m), None),
        };
        if let Some((key, value)) = meaning {
            insert(status.metadata_mut(), key, &value);
        }
        status
    }

    /// What a status received from a peer call means.
    pub fn from_status(status: &Status) -> Self {
        let meta = status.metadata();
        if let Some(code) = header(meta, ERROR_CODE).and_then(|c| c.parse::<i32>().ok()) {
            let e = match ErrorCode::try_from(code) {
                Ok(ErrorCode::Internal) => {
                    EtcdError::Internal(status.message().trim_start_matches("etcdserver: ").into())
                }
                Ok(code) => EtcdError::from_wire(code, String::new()),
                Err(_) => EtcdError::Internal(format!(
                    "unknown error code {code} from peer: {}",
                    status.message()
                )),
            };
            return PeerError::Etcd(e);
        }
        match header(meta, REFUSAL).as_deref() {
            Some("removed") => return PeerError::Refused(Refusal::Removed),
            Some("not-member") => return PeerError::Refused(Refusal::NotMember),
            Some("cluster-mismatch") => {
                let theirs = header(meta, CLUSTER)
                    .and_then(|c| u64::from_str_radix(&c, 16).ok())
                    .unwrap_or(0);
                return PeerError::Refused(Refusal::ClusterMismatch { theirs });
            }
            _ => {}
        }
        if caused_by_connect(status) {
            return PeerError::NotSent(status.message().to_string());
        }
        // A status made on this side from a transport failure keeps that failure as its
        // source; one the peer answered (gRPC's own, such as an oversized message or an
        // unknown method) has none and was not served by our handlers.
        if std::error::Error::source(status).is_some() || status.code() == Code::Cancelled {
            return PeerError::Lost(status.message().to_string());
        }
        PeerError::Etcd(EtcdError::Internal(status.message().to_string()))
    }

    /// The error a client sees for a request that failed on its way to the leader.
    pub fn into_etcd(self) -> EtcdError {
        match self {
            PeerError::Etcd(e) => e,
            // etcd's clients see "no leader" while a leader cannot be reached.
            PeerError::NotSent(_) => EtcdError::NoLeader,
            PeerError::Lost(_) => EtcdError::TimeoutDueToConnectionLost,
            PeerError::Refused(Refusal::Removed | Refusal::NotMember) => EtcdError::Stopped,
            PeerError::Refused(Refusal::ClusterMismatch { theirs }) => {
                EtcdError::Internal(format!("request cluster ID mismatch (peer's {theirs:x})"))
            }
        }
    }
}

impl From<EtcdError> for PeerError {
    fn from(e: EtcdError) -> Self {
        PeerError::Etcd(e)
    }
}

/// The status a peer handler answers for `e`, with its code in the metadata.
pub fn status(e: EtcdError) -> Status {
    PeerError::Etcd(e).into_status()
}

/// Whether the status stands for a failure to connect (tonic's [`tonic::ConnectError`]
/// somewhere in its source chain).
fn caused_by_connect(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        if e.is::<tonic::ConnectError>() {
            return true;
        }
        source = e.source();
    }
    false
}

fn insert(meta: &mut MetadataMap, key: &'static str, value: &str) {
    if let Ok(v) = value.parse() {
        meta.insert(key, v);
    }
}

fn header(meta: &MetadataMap, key: &str) -> Option<String> {
    Some(meta.get(key)?.to_str().ok()?.to_string())
}

#[cfg(test)]
mod tests;
