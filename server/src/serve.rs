//! Serving a router on a listener, one connection per task, with the per-connection HTTP/2
//! settings etcd takes from its flags: `--max-concurrent-streams`, `--grpc-keepalive-*`.
//!
//! `axum::serve` builds hyper's connection builder itself, with hyper's defaults (at most
//! 200 concurrent streams per connection, no pings), so connections are served here with
//! hyper-util's auto builder (HTTP/1.1 for `/health` and friends, HTTP/2 for gRPC) instead.

use std::time::Duration;

use axum::serve::Listener;
use h2::server::{PingPolicy, PING_POLICY};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;

use crate::api::caller::ClientCommonName;
use crate::config::Config;

/// grpc-go's server keepalive defaults, which etcd keeps when either of
/// `--grpc-keepalive-interval` and `--grpc-keepalive-timeout` is 0 (it passes grpc-go
/// neither then; the help's "0 to disable" is not what happens).
const GRPC_KEEPALIVE_TIME: Duration = Duration::from_secs(2 * 60 * 60);
const GRPC_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// grpc-go's enforcement policy default, kept when `--grpc-keepalive-min-time` is 0.
const GRPC_MIN_PING_TIME: Duration = Duration::from_secs(5 * 60);

/// What a listener's connections are allowed and how they are kept alive.
#[derive(Debug, Clone, Copy)]
pub struct ConnSettings {
    /// SETTINGS_MAX_CONCURRENT_STREAMS (`None`: hyper's default).
    pub max_concurrent_streams: Option<u32>,
    /// Ping an idle connection this often, and close it when the answer takes longer
    /// than the timeout.
    pub keepalive: Option<(Duration, Duration)>,
    /// grpc-go's keepalive enforcement for clients' pings.
    pub ping_policy: Option<PingPolicy>,
}

impl ConnSettings {
    /// The client URLs: etcd's gRPC server options from the flags.
    pub fn client(cfg: &Config) -> ConnSettings {
        let (interval, timeout) = (cfg.grpc_keepalive_interval, cfg.grpc_keepalive_timeout);
        let keepalive = if interval.is_zero() || timeout.is_zero() {
            (GRPC_KEEPALIVE_TIME, GRPC_KEEPALIVE_TIMEOUT)
        } else {
            (interval, timeout)
        };
        let min_time = match cfg.grpc_keepalive_min_time {
            d if d.is_zero() => GRPC_MIN_PING_TIME,
            d => d,
        };
        ConnSettings {
            max_concurrent_streams: Some(cfg.max_concurrent_streams),
            keepalive: Some(keepalive),
            ping_policy: Some(PingPolicy {
                min_time,
                // etcd's setting.
                permit_without_stream: false,
            }),
        }
    }

    /// The peer URLs: etcd applies none of the client flags there.
    pub fn peer() -> ConnSettings {
        ConnSettings {
            max_concurrent_streams: None,
            keepalive: None,
            ping_policy: None,
        }
    }

    fn builder(&self) -> Builder<TokioExecutor> {
        let mut builder = Builder::new(TokioExecutor::new());
        // The timer bounds HTTP/1.1 header reads (hyper's 30 s) and drives HTTP/2 pings.
        builder.http1().timer(TokioTimer::new());
        let mut http2 = builder.http2();
        http2.timer(TokioTimer::new());
        if let Some(max) = self.max_concurrent_streams {
            http2.max_concurrent_streams(max);
        }
        if let Some((interval, timeout)) = self.keepalive {
            http2
                .keep_alive_interval(interval)
                .keep_alive_timeout(timeout);
        }
        builder
    }
}

/// What a connection tells about its client beyond its address.
pub trait ClientIdentity {
    /// The common name of the client certificate the TLS handshake verified.
    fn client_common_name(&self) -> Option<String>;
}

impl ClientIdentity for tokio::net::TcpStream {
    fn client_common_name(&self) -> Option<String> {
        None
    }
}

impl ClientIdentity for tokio_rustls::server::TlsStream<tokio::net::TcpStream> {
    fn client_common_name(&self) -> Option<String> {
        let certs = self.get_ref().1.peer_certificates()?;
        crate::tls::verify::common_name(certs.first()?)
    }
}

/// Serves `router` on every connection `listener` accepts, until the process ends. Every
/// request of a connection whose client showed a certificate carries its common name
/// (see [`ClientCommonName`]).
pub async fn serve<L>(mut listener: L, router: axum::Router, settings: ConnSettings)
where
    L: Listener,
    L::Io: ClientIdentity,
{
    let builder = settings.builder();
    loop {
        let (io, _) = listener.accept().await;
        let router = match io.client_common_name() {
            Some(cn) => router.clone().layer(axum::Extension(ClientCommonName(cn))),
            None => router.clone(),
        };
        let service = TowerToHyperService::new(router);
        let builder = builder.clone();
        let conn = async move {
            let served = builder
                .serve_connection_with_upgrades(TokioIo::new(io), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(target: "embed", "connection ended: {e}");
            }
        };
        match settings.ping_policy {
            // h2 reads the policy when the connection's handshake completes in this task.
            Some(policy) => drop(tokio::spawn(PING_POLICY.scope(policy, conn))),
            None => drop(tokio::spawn(conn)),
        }
    }
}

/// The vendored h2's ping policy: h2 is outside the workspace, so cargo does not run its unit
/// tests; they run here, with the server's.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../vendor/h2/src/proto/ping_policy.rs"]
mod h2_ping_policy;

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    fn settings(args: &[&str]) -> ConnSettings {
        let args = std::iter::once("etcd").chain(args.iter().copied());
        let cfg = crate::config::load(args.map(OsString::from), std::iter::empty()).unwrap();
        ConnSettings::client(&cfg)
    }

    #[test]
    fn client_listeners_take_etcds_grpc_options() {
        let s = settings(&[
            "--max-concurrent-streams=7",
            "--grpc-keepalive-interval=3s",
            "--grpc-keepalive-timeout=2s",
            "--grpc-keepalive-min-time=1s",
        ]);
        assert_eq!(s.max_concurrent_streams, Some(7));
        let keepalive = (Duration::from_secs(3), Duration::from_secs(2));
        assert_eq!(s.keepalive, Some(keepalive));
        let policy = s.ping_policy.unwrap();
        assert_eq!(policy.min_time, Duration::from_secs(1));
        assert!(!policy.permit_without_stream);
    }

    #[test]
    fn zeros_leave_grpc_gos_defaults() {
        let s = settings(&["--grpc-keepalive-interval=0", "--grpc-keepalive-min-time=0"]);
        let defaults = (GRPC_KEEPALIVE_TIME, GRPC_KEEPALIVE_TIMEOUT);
        assert_eq!(s.keepalive, Some(defaults));
        let s = settings(&["--grpc-keepalive-timeout=0s"]);
        assert_eq!(s.keepalive, Some(defaults));
        assert_eq!(s.ping_policy.unwrap().min_time, Duration::from_secs(5));
        let s = settings(&["--grpc-keepalive-min-time=0s"]);
        assert_eq!(s.ping_policy.unwrap().min_time, GRPC_MIN_PING_TIME);
    }
}
