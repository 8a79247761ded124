//! etcd-rs patch: grpc-go's keepalive enforcement policy for server connections.
//!
//! grpc-go servers (and so etcd, with `--grpc-keepalive-min-time`) count a client's PING
//! that comes sooner than the minimum time after its previous one as a strike; the third
//! strike ends the connection with GOAWAY `ENHANCE_YOUR_CALM` and the debug data
//! `too_many_pings`, which grpc clients understand as "ping less often". h2 answers every
//! PING, so the policy is added here. hyper builds h2's server itself and exposes no such
//! setting; the policy is therefore taken from a task-local that the application sets
//! around the futures of the connections it wants policed.

use std::time::{Duration, Instant};

/// grpc-go's `maxPingStrikes`: this many early pings are forgiven.
const MAX_STRIKES: u32 = 2;

/// grpc-go's `defaultPingTimeout`: with no stream open and `permit_without_stream` off, a
/// client has no reason to ping more often than this.
const WITHOUT_STREAM_MIN_TIME: Duration = Duration::from_secs(2 * 60 * 60);

/// grpc-go's `keepalive.EnforcementPolicy`.
#[derive(Clone, Copy, Debug)]
pub struct PingPolicy {
    /// Least time a client should wait between two pings.
    pub min_time: Duration,
    /// Whether pings are allowed, at `min_time`, while no stream is open.
    pub permit_without_stream: bool,
}

tokio::task_local! {
    /// The policy for server connections whose handshake completes in this task.
    pub static PING_POLICY: PingPolicy;
}

/// The policy's state on one connection.
#[derive(Debug)]
pub(crate) struct PingEnforcer {
    policy: PingPolicy,
    last_ping: Option<Instant>,
    strikes: u32,
    /// The connection's count of sent HEADERS and DATA frames at the last ping: grpc-go
    /// forgives all strikes once it has sent either since.
    stream_frames_seen: u64,
}

impl PingEnforcer {
    /// The enforcer for a connection made in the current task, if it set a policy.
    pub(crate) fn from_task() -> Option<PingEnforcer> {
        PING_POLICY
            .try_with(|policy| PingEnforcer {
                policy: *policy,
                last_ping: None,
                strikes: 0,
                stream_frames_seen: 0,
            })
            .ok()
    }

    /// Counts a received (non-ACK) PING; true when the connection must be closed.
    pub(crate) fn recv_ping(
        &mut self,
        now: Instant,
        has_streams: bool,
        stream_frames_sent: u64,
    ) -> bool {
        let last = self.last_ping.replace(now);
        if stream_frames_sent != self.stream_frames_seen {
            self.stream_frames_seen = stream_frames_sent;
            self.strikes = 0;
            return false;
        }
        let min_time = if !has_streams && !self.policy.permit_without_stream {
            WITHOUT_STREAM_MIN_TIME
        } else {
            self.policy.min_time
        };
        if last.is_some_and(|last| now.duration_since(last) < min_time) {
            self.strikes += 1;
        }
        self.strikes > MAX_STRIKES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enforcer(min_time: Duration) -> PingEnforcer {
        PingEnforcer {
            policy: PingPolicy {
                min_time,
                permit_without_stream: false,
            },
            last_ping: None,
            strikes: 0,
            stream_frames_seen: 0,
        }
    }

    #[test]
    fn third_early_ping_after_the_first_ends_the_connection() {
        let mut e = enforcer(Duration::from_secs(5));
        let t = Instant::now();
        let at = |ms| t + Duration::from_millis(ms);
        assert!(!e.recv_ping(at(0), true, 0));
        assert!(!e.recv_ping(at(100), true, 0));
        assert!(!e.recv_ping(at(200), true, 0));
        assert!(e.recv_ping(at(300), true, 0));
    }

    #[test]
    fn pings_at_the_min_time_and_after_replies_are_fine() {
        let mut e = enforcer(Duration::from_secs(5));
        let t = Instant::now();
        for i in 0..10 {
            assert!(!e.recv_ping(t + Duration::from_secs(5 * i), true, 0));
        }
        let mut e = enforcer(Duration::from_secs(5));
        for i in 0..10 {
            assert!(!e.recv_ping(t + Duration::from_millis(i), true, i));
        }
    }

    #[test]
    fn without_streams_even_slow_pings_strike() {
        let mut e = enforcer(Duration::from_secs(5));
        let t = Instant::now();
        let minutes = |m: u64| t + Duration::from_secs(60 * m);
        assert!(!e.recv_ping(minutes(0), false, 0));
        assert!(!e.recv_ping(minutes(1), false, 0));
        assert!(!e.recv_ping(minutes(2), false, 0));
        assert!(e.recv_ping(minutes(3), false, 0));
    }
}
