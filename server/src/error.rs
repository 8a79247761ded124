//! The errors a client can see, with etcd's gRPC codes and message texts.
//!
//! Clients (etcdctl, clientv3, Kubernetes) match on these exact strings and codes, so each
//! variant's text is etcd's, word for word. Errors found while applying a raft entry travel
//! back through the log response as an [`ApplyError`] holding the variant's [`ErrorCode`]
//! (never as text to be parsed), and are turned into the same variant again; errors a
//! leader answers over the peer connection carry the same code (see `peer::error`).

use etcd_proto::raftrequestpb::{ApplyError, ErrorCode};
use tonic::{Code, Status};

/// An error returned by the etcd API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EtcdError {
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: value is provided")]
    ValueProvided,
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRev,
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExist,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    #[error("etcdserver: no leader")]
    NoLeader,
    #[error("etcdserver: not leader")]
    NotLeader,
    #[error("etcdserver: request timed out")]
    Timeout,
    /// A forwarded request was sent but its answer was lost with the connection: it may
    /// or may not have been applied, so it is not tried again.
    #[error("etcdserver: request timed out, possibly due to connection lost")]
    TimeoutDueToConnectionLost,
    /// The member is overloaded: its proposal queue is full, or it applies too far behind
    /// what is committed.
    #[error("etcdserver: too many requests")]
    TooManyRequests,
    #[error("etcdserver: server stopped")]
    Stopped,
    #[error("etcdserver: not capable")]
    NotCapable,
    #[error("etcdserver: member not found")]
    MemberNotFound,
    #[error("etcdserver: member ID already exist")]
    MemberExist,
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExist,
    #[error("etcdserver: re-configuration failed due to not enough started members")]
    NotEnoughStarted,
    #[error("etcdserver: given member URLs are invalid")]
    MemberBadUrls,
    #[error("etcdserver: can only promote a learner member")]
    MemberNotLearner,
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    #[error("etcdserver: bad leader transferee")]
    BadLeaderTransferee,
    #[error("etcdserver: request timed out, leader transfer took too long")]
    LeaderTransferTimeout,
    #[error("etcdserver: root user does not exist")]
    RootUserNotExist,
    #[error("etcdserver: root user does not have root role")]
    RootRoleNotExist,
    #[error("etcdserver: user name already exists")]
    UserAlreadyExist,
    #[error("etcdserver: user name is empty")]
    UserEmpty,
    #[error("etcdserver: user name not found")]
    UserNotFound,
    #[error("etcdserver: role name already exists")]
    RoleAlreadyExist,
    #[error("etcdserver: role name not found")]
    RoleNotFound,
    #[error("etcdserver: role name is empty")]
    RoleEmpty,
    #[error("etcdserver: authentication failed, invalid user ID or password")]
    AuthFailed,
    #[error("etcdserver: permission denied")]
    PermissionDenied,
    #[error("etcdserver: role is not granted to the user")]
    RoleNotGranted,
    #[error("etcdserver: permission is not granted to the role")]
    PermissionNotGranted,
    #[error("etcdserver: authentication is not enabled")]
    AuthNotEnabled,
    #[error("etcdserver: invalid auth token")]
    InvalidAuthToken,
    #[error("etcdserver: invalid auth management")]
    InvalidAuthMgmt,
    /// The permissions changed between the check of a token and the apply of its request.
    #[error("etcdserver: revision of auth store is old")]
    AuthOldRevision,
    /// Anything without an etcd counterpart (storage failures and the like).
    #[error("etcdserver: {0}")]
    Internal(String),
}

impl EtcdError {
    /// The gRPC status code etcd uses for this error.
    pub fn code(&self) -> Code {
        use EtcdError::*;
        match self {
            EmptyKey | KeyNotFound | ValueProvided | LeaseProvided | TooManyOps | DuplicateKey
            | RequestTooLarge | MemberBadUrls | UserEmpty | RoleEmpty | AuthFailed
            | AuthOldRevision | InvalidAuthMgmt => Code::InvalidArgument,
            RootUserNotExist | RootRoleNotExist | UserAlreadyExist | UserNotFound
            | RoleAlreadyExist | RoleNotFound | RoleNotGranted | PermissionNotGranted
            | AuthNotEnabled => Code::FailedPrecondition,
            PermissionDenied => Code::PermissionDenied,
            InvalidAuthToken => Code::Unauthenticated,
            Compacted | FutureRev | LeaseTtlTooLarge => Code::OutOfRange,
            NoSpace | TooManyRequests => Code::ResourceExhausted,
            LeaseNotFound | MemberNotFound => Code::NotFound,
            LeaseExist | NotLeader | MemberExist | PeerUrlExist | MemberNotLearner
            | LearnerNotReady | BadLeaderTransferee => Code::FailedPrecondition,
            NoLeader
            | Timeout
            | TimeoutDueToConnectionLost
            | Stopped
            | NotCapable
            | LeaderTransferTimeout => Code::Unavailable,
            // etcd 3.4 does not map this error to its gRPC status (its text is rpctypes'
            // ErrGRPCMemberNotEnoughStarted, its code is gRPC's default).
            NotEnoughStarted | Internal(_) => Code::Unknown,
        }
    }
}

/// Both directions between [`EtcdError`] and [`ErrorCode`] from one list of names (the
/// proto names its codes after the variants). Both matches are exhaustive, so a variant or
/// a code added on one side only does not compile.
macro_rules! wire_codes {
    ($($name:ident),* $(,)?) => {
        impl EtcdError {
            /// The code this error travels under in the raft log's responses.
            pub fn wire_code(&self) -> ErrorCode {
                match self {
                    $(EtcdError::$name => ErrorCode::$name,)*
                    EtcdError::Internal(_) => ErrorCode::Internal,
                }
            }

            /// The error `code` stands for; `detail` is kept for internal errors only.
            pub fn from_wire(code: ErrorCode, detail: String) -> Self {
                match code {
                    $(ErrorCode::$name => EtcdError::$name,)*
                    ErrorCode::Internal => EtcdError::Internal(detail),
                }
            }
        }
    };
}

wire_codes!(
    EmptyKey,
    KeyNotFound,
    ValueProvided,
    LeaseProvided,
    TooManyOps,
    DuplicateKey,
    Compacted,
    FutureRev,
    NoSpace,
    LeaseNotFound,
    LeaseExist,
    LeaseTtlTooLarge,
    RequestTooLarge,
    NoLeader,
    NotLeader,
    Timeout,
    Stopped,
    NotCapable,
    MemberNotFound,
    MemberExist,
    PeerUrlExist,
    NotEnoughStarted,
    MemberBadUrls,
    MemberNotLearner,
    LearnerNotReady,
    BadLeaderTransferee,
    LeaderTransferTimeout,
    TimeoutDueToConnectionLost,
    TooManyRequests,
    RootUserNotExist,
    RootRoleNotExist,
    UserAlreadyExist,
    UserEmpty,
    UserNotFound,
    RoleAlreadyExist,
    RoleNotFound,
    RoleEmpty,
    AuthFailed,
    PermissionDenied,
    RoleNotGranted,
    PermissionNotGranted,
    AuthNotEnabled,
    InvalidAuthToken,
    InvalidAuthMgmt,
    AuthOldRevision,
);

impl From<&EtcdError> for ApplyError {
    fn from(e: &EtcdError) -> Self {
        let detail = match e {
            EtcdError::Internal(detail) => detail.clone(),
            _ => String::new(),
        };
        ApplyError {
            code: e.wire_code() as i32,
            detail,
        }
    }
}

impl From<ApplyError> for EtcdError {
    /// A code this build does not know (a newer member's) is reported as such.
    fn from(e: ApplyError) -> Self {
        match ErrorCode::try_from(e.code) {
            Ok(code) => EtcdError::from_wire(code, e.detail),
            Err(_) => {
                EtcdError::Internal(format!("unknown apply error code {}: {}", e.code, e.detail))
            }
        }
    }
}

impl From<EtcdError> for Status {
    fn from(e: EtcdError) -> Self {
        Status::new(e.code(), e.to_string())
    }
}

impl From<sled::Error> for EtcdError {
    fn from(e: sled::Error) -> Self {
        EtcdError::Internal(format!("backend: {e}"))
    }
}

/// Result alias for API-facing operations.
pub type Result<T, E = EtcdError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code, in order until the first unknown value.
    fn every_code() -> Vec<ErrorCode> {
        (0..).map_while(|i| ErrorCode::try_from(i).ok()).collect()
    }

    #[test]
    fn every_error_round_trips_through_its_code() {
        let codes = every_code();
        assert_eq!(codes.len(), 46, "codes are numbered without gaps");
        for code in codes {
            let e = EtcdError::from_wire(code, "disk on fire".into());
            assert_eq!(e.wire_code(), code);
            assert_eq!(EtcdError::from(ApplyError::from(&e)), e);
        }
        let internal = EtcdError::Internal("disk on fire".into());
        assert_eq!(EtcdError::from(ApplyError::from(&internal)), internal);
        assert_eq!(ApplyError::from(&EtcdError::Compacted).detail, "");
        let unknown = ApplyError {
            code: 999,
            detail: "x".into(),
        };
        assert_eq!(
            EtcdError::from(unknown),
            EtcdError::Internal("unknown apply error code 999: x".into())
        );
    }

    #[test]
    fn codes_match_etcd() {
        let s: Status = EtcdError::Compacted.into();
        assert_eq!(s.code(), Code::OutOfRange);
        assert_eq!(
            s.message(),
            "etcdserver: mvcc: required revision has been compacted"
        );
        assert_eq!(EtcdError::LeaseNotFound.code(), Code::NotFound);
        assert_eq!(EtcdError::EmptyKey.code(), Code::InvalidArgument);
        assert_eq!(EtcdError::NotEnoughStarted.code(), Code::Unknown);
    }
}
