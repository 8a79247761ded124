//! An AppendEntries call that outlives openraft's wait for it.
//!
//! openraft 0.9 waits one heartbeat interval for the answer to an AppendEntries call, then
//! drops the call and sends the same entries again. An entry of a few MiB that a follower
//! needs longer than that to receive and fdatasync (a busy disk, a loaded machine) would
//! be sent again and again and never acknowledged. So each call with entries runs in a
//! task of its own, bounded by [`FLIGHT_LIMIT`], and a retry of the same entries waits for
//! that call instead of sending them again: the follower receives each entry once, and the
//! leader learns of it as soon as it is stored.

use std::future::Future;
use std::time::Duration;

use openraft::error::{NetworkError, RPCError, RaftError};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};
use openraft::Vote;
use tokio::sync::watch;

use super::types::{LogId, MemberNode, TypeConfig};

/// Longest an AppendEntries call may run, however many times openraft gives up on it.
pub const FLIGHT_LIMIT: Duration = Duration::from_secs(5);

/// The outcome of one AppendEntries call.
pub type AppendResult =
    Result<AppendEntriesResponse<u64>, RPCError<u64, MemberNode, RaftError<u64>>>;

/// The AppendEntries call in flight to one member, if any.
#[derive(Default)]
pub struct AppendFlight {
    current: Option<Flight>,
}

struct Flight {
    vote: Vote<u64>,
    prev: Option<LogId>,
    last: Option<LogId>,
    done: watch::Receiver<Option<AppendResult>>,
}

impl Flight {
    /// Whether `rpc` asks for this flight's entries (and maybe more after them): same
    /// leader, same starting point, at least as far. Entries at an index under one vote
    /// never change, so they are the same entries.
    fn covers(&self, rpc: &AppendEntriesRequest<TypeConfig>) -> bool {
        let last = rpc.entries.last().map(|e| e.log_id);
        self.vote == rpc.vote && self.prev == rpc.prev_log_id && last >= self.last
    }

    /// Whether the call ended in an error (a retry then sends again).
    fn failed(&self) -> bool {
        matches!(&*self.done.borrow(), Some(Err(_)))
    }
}

impl AppendFlight {
    /// Sends `rpc` with `send`, or waits for the call already sending its entries.
    pub async fn send<F>(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        send: impl FnOnce(AppendEntriesRequest<TypeConfig>) -> F,
    ) -> AppendResult
    where
        F: Future<Output = AppendResult> + Send + 'static,
    {
        let asked = rpc.entries.last().map(|e| e.log_id);
        let join = self
            .current
            .as_ref()
            .is_some_and(|f| f.covers(&rpc) && !f.failed());
        if !join {
            let (tx, done) = watch::channel(None);
            self.current = Some(Flight {
                vote: rpc.vote,
                prev: rpc.prev_log_id,
                last: asked,
                done,
            });
            let call = send(rpc);
            tokio::spawn(async move {
                let result = tokio::time::timeout(FLIGHT_LIMIT, call)
                    .await
                    .unwrap_or_else(|_| {
                        Err(RPCError::Network(NetworkError::new(
                            &std::io::Error::other(format!(
                                "AppendEntries did not finish in {FLIGHT_LIMIT:?}"
                            )),
                        )))
                    });
                tx.send_replace(Some(result));
            });
        }
        let flight = self
            .current
            .as_ref()
            .expect("a flight was just found or started");
        let mut done = flight.done.clone();
        let sent = flight.last;
        let result = match done.wait_for(Option::is_some).await {
            Ok(r) => copy(r.as_ref().expect("finished")),
            Err(_) => Err(RPCError::Network(NetworkError::new(
                &std::io::Error::other("AppendEntries task ended without an answer"),
            ))),
        };
        // The outcome is delivered once; later calls send again (entries already stored
        // are then only acknowledged again by the follower).
        self.current = None;
        // Only the entries of the flight were sent: a success covers those alone.
        match result {
            Ok(AppendEntriesResponse::Success) if sent < asked => {
                Ok(AppendEntriesResponse::PartialSuccess(sent))
            }
            other => other,
        }
    }
}

/// A copy of a finished call's outcome (openraft's response type is not `Clone`).
fn copy(r: &AppendResult) -> AppendResult {
    match r {
        Ok(AppendEntriesResponse::Success) => Ok(AppendEntriesResponse::Success),
        Ok(AppendEntriesResponse::PartialSuccess(m)) => {
            Ok(AppendEntriesResponse::PartialSuccess(*m))
        }
        Ok(AppendEntriesResponse::Conflict) => Ok(AppendEntriesResponse::Conflict),
        Ok(AppendEntriesResponse::HigherVote(v)) => Ok(AppendEntriesResponse::HigherVote(*v)),
        Err(e) => Err(e.clone()),
    }
}

#[cfg(test)]
mod tests;
