//! The gateway's own Prometheus metrics and probes, on `--listen-metrics-addr`:
//! `/metrics`, `/livez` (the process answers) and `/readyz` (some member is up, so a new
//! connection would be forwarded; a Kubernetes readiness probe can use it).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::StatusCode;
use axum::routing::get;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::proxy::Gateway;

/// Counters the proxy updates as it works.
#[derive(Debug, Default)]
pub struct Metrics {
    pub accepted: AtomicU64,
    pub active: AtomicI64,
    /// Connections closed at once because no member could be dialled.
    pub refused: AtomicU64,
    pub client_bytes: AtomicU64,
    pub member_bytes: AtomicU64,
    pub dial_failures: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    pub fn dial_failed(&self, addr: &str) {
        *self
            .dial_failures
            .lock()
            .entry(addr.to_string())
            .or_default() += 1;
    }

    /// The Prometheus text exposition of the counters and of each member's state.
    pub fn render(&self, members: &[(String, bool)]) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, kind: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed).to_string();
        counter(
            &mut out,
            "etcd_gateway_connections_accepted_total",
            "Client connections accepted.",
            "counter",
            load(&self.accepted),
        );
        counter(
            &mut out,
            "etcd_gateway_connections_active",
            "Client connections being forwarded now.",
            "gauge",
            self.active.load(Ordering::Relaxed).to_string(),
        );
        counter(
            &mut out,
            "etcd_gateway_connections_refused_total",
            "Client connections closed because no member could be dialled.",
            "counter",
            load(&self.refused),
        );
        counter(
            &mut out,
            "etcd_gateway_client_received_bytes_total",
            "Bytes read from clients and forwarded to members.",
            "counter",
            load(&self.client_bytes),
        );
        counter(
            &mut out,
            "etcd_gateway_member_received_bytes_total",
            "Bytes read from members and forwarded to clients.",
            "counter",
            load(&self.member_bytes),
        );
        let _ = writeln!(out, "# HELP etcd_gateway_endpoint_active Whether a member is used for new connections (1) or skipped after a failed dial (0).\n# TYPE etcd_gateway_endpoint_active gauge");
        for (addr, active) in members {
            let _ = writeln!(
                out,
                "etcd_gateway_endpoint_active{{endpoint=\"{addr}\"}} {}",
                u8::from(*active)
            );
        }
        let _ = writeln!(out, "# HELP etcd_gateway_endpoint_dial_failures_total Failed dials per member.\n# TYPE etcd_gateway_endpoint_dial_failures_total counter");
        for (addr, n) in self.dial_failures.lock().iter() {
            let _ = writeln!(
                out,
                "etcd_gateway_endpoint_dial_failures_total{{endpoint=\"{addr}\"}} {n}"
            );
        }
        out
    }
}

/// Serves the probes and metrics until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, gateway: Arc<Gateway>) {
    let metrics = {
        let g = gateway.clone();
        move || {
            let g = g.clone();
            async move { g.metrics.render(&g.member_states()) }
        }
    };
    let ready = move || {
        let g = gateway.clone();
        async move {
            if g.ready() {
                (StatusCode::OK, "ok\n")
            } else {
                (StatusCode::SERVICE_UNAVAILABLE, "no active endpoint\n")
            }
        }
    };
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(ready));
    let _ = axum::serve(listener, app).await;
}

/// A stream that adds the bytes read from it to a counter as they pass (so long-lived
/// connections, such as gRPC's, show in the metrics while they last).
pub struct Counted<'a, S> {
    pub inner: S,
    pub read: &'a AtomicU64,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<'_, S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<'_, S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
