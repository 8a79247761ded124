//! Maps openraft's errors to the errors etcd clients expect.

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};

use crate::error::EtcdError;

fn leader_gone(leader: Option<u64>) -> EtcdError {
    // Requests are routed to the leader before they reach raft (see `forward`); raft
    // saying "forward" means leadership moved meanwhile, which etcd reports the same way.
    match leader {
        Some(_) => EtcdError::NotLeader,
        None => EtcdError::NoLeader,
    }
}

/// Error of a proposal.
pub fn from_write(
    e: RaftError<u64, ClientWriteError<u64, crate::raft::types::MemberNode>>,
) -> EtcdError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => leader_gone(f.leader_id),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => {
            EtcdError::Internal(c.to_string())
        }
        RaftError::Fatal(_) => EtcdError::Stopped,
    }
}

/// Error of a linearizable-read barrier.
pub fn from_read(
    e: RaftError<u64, CheckIsLeaderError<u64, crate::raft::types::MemberNode>>,
) -> EtcdError {
    match e {
        RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)) => leader_gone(f.leader_id),
        RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)) => EtcdError::Timeout,
        RaftError::Fatal(_) => EtcdError::Stopped,
    }
}
