//! The TCP proxy: each client connection is forwarded byte for byte to one member; a
//! member that cannot be dialled is marked down and retried every `--retry-delay` (etcd's
//! `tcpproxy`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::json;
use tokio::net::TcpStream;

use crate::log;
use crate::metrics::{Counted, Metrics};
use crate::remote::{Remote, Remotes};

/// How long a dial to a member may take before the next member is tried (etcd's gateway
/// waits for the kernel's timeout, minutes for a member that drops packets).
const DIAL_TIMEOUT: Duration = Duration::from_secs(3);

/// The proxy's shared state.
pub struct Gateway {
    remotes: Mutex<Remotes>,
    retry_delay: Duration,
    pub metrics: Metrics,
}

impl Gateway {
    pub fn new(remotes: Vec<Arc<Remote>>, retry_delay: Duration) -> Gateway {
        Gateway {
            remotes: Mutex::new(Remotes::new(remotes)),
            retry_delay,
            metrics: Metrics::default(),
        }
    }

    /// Each member's address and whether it takes new connections.
    pub fn member_states(&self) -> Vec<(String, bool)> {
        let remotes = self.remotes.lock();
        remotes
            .list
            .iter()
            .map(|r| (r.addr.clone(), r.is_active()))
            .collect()
    }

    /// Whether a new connection would be forwarded.
    pub fn ready(&self) -> bool {
        self.remotes.lock().list.iter().any(|r| r.is_active())
    }

    /// Replaces the members (SRV records changed); returns whether the list differs.
    pub fn set_members(&self, fresh: Vec<Arc<Remote>>) -> bool {
        let mut remotes = self.remotes.lock();
        let old: Vec<&str> = remotes.list.iter().map(|r| r.addr.as_str()).collect();
        let new: Vec<&str> = fresh.iter().map(|r| r.addr.as_str()).collect();
        if old == new {
            return false;
        }
        remotes.replace(fresh);
        true
    }

    /// Dials a member for a new connection, marking those that fail as down.
    async fn dial(&self) -> Option<TcpStream> {
        loop {
            let remote = self.remotes.lock().pick(&mut rand::thread_rng())?;
            let failure = match dial_member(&remote.addr).await {
                Ok(stream) => return Some(stream),
                Err(failure) => failure,
            };
            remote.set_active(false);
            self.metrics.dial_failed(&remote.addr);
            log::warn(
                "deactivated endpoint",
                json!({"address": remote.addr, "interval": log::seconds(self.retry_delay), "error": failure}),
            );
        }
    }

    /// Forwards one client connection until either side closes it.
    pub async fn serve(self: Arc<Self>, inbound: TcpStream) {
        self.metrics.accepted.fetch_add(1, Ordering::Relaxed);
        let Some(outbound) = self.dial().await else {
            self.metrics.refused.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let _ = inbound.set_nodelay(true);
        let _ = outbound.set_nodelay(true);
        self.metrics.active.fetch_add(1, Ordering::Relaxed);
        let mut client = Counted {
            inner: inbound,
            read: &self.metrics.client_bytes,
        };
        let mut member = Counted {
            inner: outbound,
            read: &self.metrics.member_bytes,
        };
        let _ = tokio::io::copy_bidirectional(&mut client, &mut member).await;
        self.metrics.active.fetch_sub(1, Ordering::Relaxed);
    }

    /// Every `--retry-delay`, dials each member marked down and takes it back when it answers.
    pub async fn monitor(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.retry_delay).await;
            let down: Vec<Arc<Remote>> = self
                .remotes
                .lock()
                .list
                .iter()
                .filter(|r| !r.is_active())
                .cloned()
                .collect();
            for remote in down {
                let gateway = self.clone();
                tokio::spawn(async move { gateway.try_reactivate(&remote).await });
            }
        }
    }

    async fn try_reactivate(&self, remote: &Remote) {
        match dial_member(&remote.addr).await {
            Ok(_) => {
                remote.set_active(true);
                log::info("activated", json!({"address": remote.addr}));
            }
            Err(error) => {
                log::warn(
                    "failed to activate endpoint (stay inactive for another interval)",
                    json!({"address": remote.addr, "interval": log::seconds(self.retry_delay), "error": error}),
                );
            }
        }
    }
}

/// Connects to a member within [`DIAL_TIMEOUT`]; the failure in Go's words.
async fn dial_member(addr: &str) -> Result<TcpStream, String> {
    match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(format!(
            "dial tcp {addr}: connect: {}",
            go_text::io::reason(&e)
        )),
        Err(_) => Err(format!("dial tcp {addr}: i/o timeout")),
    }
}
