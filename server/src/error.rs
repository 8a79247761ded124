//! The errors a client can see, with etcd's gRPC codes and message texts.
//!
//! Clients (etcdctl, clientv3, Kubernetes) match on these exact strings and codes, so each
//! variant's text is etcd's, word for word. Errors found while applying a raft entry travel
//! back through the log response as text and are turned into the same variant again with
//! [`EtcdError::from_message`].

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
            | RequestTooLarge | MemberBadUrls => Code::InvalidArgument,
            Compacted | FutureRev | LeaseTtlTooLarge => Code::OutOfRange,
            NoSpace => Code::ResourceExhausted,
            LeaseNotFound | MemberNotFound => Code::NotFound,
            LeaseExist | NotLeader | MemberExist | PeerUrlExist | MemberNotLearner
            | LearnerNotReady | BadLeaderTransferee => Code::FailedPrecondition,
            NoLeader | Timeout | Stopped | NotCapable | LeaderTransferTimeout => Code::Unavailable,
            // etcd 3.4 does not map this error to its gRPC status (its text is rpctypes'
            // ErrGRPCMemberNotEnoughStarted, its code is gRPC's default).
            NotEnoughStarted | Internal(_) => Code::Unknown,
        }
    }

    /// Recovers the variant from its message text (used for errors that crossed the raft log).
    pub fn from_message(message: &str) -> Self {
        use EtcdError::*;
        let known = [
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
        ];
        known
            .into_iter()
            .find(|e| e.to_string() == message)
            .unwrap_or_else(|| Internal(message.trim_start_matches("etcdserver: ").to_string()))
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

    #[test]
    fn messages_round_trip_through_text() {
        for e in [
            EtcdError::Compacted,
            EtcdError::LeaseNotFound,
            EtcdError::DuplicateKey,
        ] {
            assert_eq!(EtcdError::from_message(&e.to_string()), e);
        }
        assert_eq!(
            EtcdError::from_message("etcdserver: disk on fire"),
            EtcdError::Internal("disk on fire".into())
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
