//! `etcd grpc-proxy start`: a proxy for etcd's v3 API. Every gRPC call (KV, Watch, Lease,
//! Cluster, Maintenance, Auth, Lock, Election), unary or streaming, is forwarded as the
//! HTTP/2 request it is to one of the `--endpoints`, and the answer, trailers included,
//! streamed back.
//!
//! Not built yet (etcd's grpc-proxy has them): coalescing identical watches onto one
//! upstream watch, the serializable-range cache, `--namespace`, registration under
//! `--resolver-prefix`, and TLS on either side. Those flags are refused, not ignored.

pub mod forward;

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

/// `etcd grpc-proxy start`'s flags that act here.
#[derive(Debug, Clone, Parser)]
#[command(name = "etcd grpc-proxy start", about = "start the grpc proxy")]
pub struct Flags {
    /// listen address
    #[arg(long, default_value = "127.0.0.1:23790")]
    pub listen_addr: String,
    /// comma separated etcd cluster endpoints
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:2379")]
    pub endpoints: Vec<String>,
    /// advertise address to register (must be reachable by client)
    #[arg(long, default_value = "127.0.0.1:23790")]
    pub advertise_client_url: String,
    /// string to prefix to all keys for namespacing requests (not built yet)
    #[arg(long, default_value = "")]
    pub namespace: String,
    /// prefix to use for registering proxy (not built yet)
    #[arg(long, default_value = "")]
    pub resolver_prefix: String,
}

/// Parses `args` (program name first) and runs the proxy until SIGTERM or SIGINT.
pub fn run_cli(args: Vec<OsString>) -> ExitCode {
    let flags = match Flags::try_parse_from(args) {
        Ok(flags) => flags,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    for (flag, value) in [
        ("--namespace", &flags.namespace),
        ("--resolver-prefix", &flags.resolver_prefix),
    ] {
        if !value.is_empty() {
            eprintln!("{flag} is not built yet in this grpc-proxy");
            return ExitCode::from(1);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(run(flags))
}

async fn run(flags: Flags) -> ExitCode {
    let upstream = match forward::Upstream::new(&flags.endpoints) {
        Ok(u) => Arc::new(u),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let listener = match tokio::net::TcpListener::bind(&flags.listen_addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "listen tcp {}: bind: {}",
                flags.listen_addr,
                go_text::io::reason(&e)
            );
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "{}",
        serde_json::json!({"level": "info", "msg": "started gRPC proxy", "address": flags.listen_addr, "endpoints": upstream.endpoints(), "advertise-client-url": flags.advertise_client_url})
    );
    let app = axum::Router::new().fallback(move |req: axum::http::Request<axum::body::Body>| {
        let upstream = upstream.clone();
        async move { upstream.forward(req).await }
    });
    let shutdown = async {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
    };
    match axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}
