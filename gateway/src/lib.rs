//! etcd's gateway (`etcd gateway start`, or the `etcd-gateway` binary): a stateless TCP
//! proxy on every node, so applications dial localhost and never need the member list.
//!
//! - [`flags`]: etcd 3.4's flags and ours;
//! - [`endpoints`]: the members, from `--endpoints` or SRV records (re-resolved);
//! - [`remote`]: which member a new connection goes to;
//! - [`proxy`]: forwarding, marking members down and up again;
//! - [`metrics`]: `/metrics`, `/livez`, `/readyz`;
//! - [`log`]: etcd's zap JSON lines.

pub mod endpoints;
pub mod flags;
pub mod log;
pub mod metrics;
pub mod proxy;
pub mod remote;

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use serde_json::json;
use tokio::task::JoinSet;

use endpoints::EndpointError;
use flags::Flags;
use proxy::Gateway;

/// Parses `args` (program name first) and runs the gateway until SIGTERM or SIGINT.
pub fn run_cli(args: Vec<OsString>) -> ExitCode {
    let flags = match Flags::try_parse_from(args) {
        Ok(flags) => flags,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(1);
        }
    };
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

/// Runs the gateway with parsed flags.
pub async fn run(flags: Flags) -> ExitCode {
    let mut resolver = None;
    let mut members = Vec::new();
    if !flags.discovery_srv.is_empty() {
        let r = match etcd_discovery::Resolver::from_system() {
            Ok(r) => r,
            Err(e) => return fail(&EndpointError::Srv(e)),
        };
        members = match endpoints::srv_members(&flags, &r).await {
            Ok(m) => m,
            Err(e) => return fail(&e),
        };
        resolver = Some(r);
    }
    if members.is_empty() {
        // Nothing discovered (or nothing passed the checks): etcd falls back to --endpoints.
        members = match endpoints::static_members(&flags.endpoints) {
            Ok(m) => m,
            Err(e @ EndpointError::Parse(_)) => {
                // etcd prints this one on stdout, without a newline.
                print!("{e}");
                return ExitCode::from(1);
            }
            Err(e) => return fail(&e),
        };
    }
    let listener = match bind(&flags.listen_addr).await {
        Ok(l) => l,
        Err(code) => return code,
    };
    let metrics_listener = if flags.listen_metrics_addr.is_empty() {
        None
    } else {
        match bind(&flags.listen_metrics_addr).await {
            Ok(l) => Some(l),
            Err(code) => return code,
        }
    };

    let endpoints: Vec<String> = members.iter().map(|m| m.addr.clone()).collect();
    let gateway = Arc::new(Gateway::new(members, flags.retry_delay));
    log::info(
        "ready to proxy client requests",
        json!({"endpoints": endpoints}),
    );
    tokio::spawn(gateway.clone().monitor());
    if let (Some(resolver), false) = (resolver, flags.srv_refresh_interval.is_zero()) {
        tokio::spawn(endpoints::refresh(
            flags.clone(),
            resolver,
            gateway.clone(),
            flags.srv_refresh_interval,
        ));
    }
    if let Some(l) = metrics_listener {
        tokio::spawn(metrics::serve(l, gateway.clone()));
    }

    let mut connections = JoinSet::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(gateway.clone().serve(stream));
                }
                Err(e) => log::warn("accept failed", json!({"error": e.to_string()})),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            signal = &mut shutdown => {
                log::info(
                    "received signal; shutting down",
                    json!({"signal": signal, "open-connections": connections.len()}),
                );
                break;
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(flags.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        log::warn(
            "closing connections still open after the grace period",
            json!({"open-connections": connections.len(), "grace": log::seconds(flags.shutdown_grace)}),
        );
        connections.abort_all();
    }
    ExitCode::SUCCESS
}

/// Listens on `addr`; a failure is printed as Go's `net.Listen` error and ends with 1.
async fn bind(addr: &str) -> Result<tokio::net::TcpListener, ExitCode> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        eprintln!("listen tcp {addr}: bind: {}", go_text::io::reason(&e));
        ExitCode::from(1)
    })
}

fn fail(e: &EndpointError) -> ExitCode {
    eprintln!("{e}");
    ExitCode::from(1)
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "terminated",
        _ = int.recv() => "interrupt",
    }
}
