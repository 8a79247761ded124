//! `etcd`: runs one member. Flags, `ETCD_*` environment variables and `--config-file`
//! follow etcd 3.4; see `etcd --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "gateway") {
        return gateway(args);
    }
    if args.get(1).is_some_and(|a| a == "grpc-proxy") {
        if args.get(2).is_some_and(|a| a == "start") {
            let mut rest = vec![std::ffi::OsString::from("etcd grpc-proxy start")];
            rest.extend(args.into_iter().skip(3));
            return etcd_grpc_proxy::run_cli(rest);
        }
        eprintln!("Usage: etcd grpc-proxy start [flags]");
        return ExitCode::from(1);
    }
    let cfg = match etcd_server::config::load_from(args) {
        Ok(cfg) => cfg,
        Err(e) => return e.report(),
    };
    etcd_server::logging::init(cfg.debug);
    for notice in &cfg.notices {
        tracing::warn!(target: "etcdmain", "{notice}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("etcd: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(etcd_server::run::run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(
            e @ (etcd_server::run::StartError::Tls(_)
            | etcd_server::run::StartError::AuthToken(_)
            | etcd_server::run::StartError::DiscoverySrv(_)),
        ) => {
            // etcd ends these with a fatal (C) line.
            etcd_server::logging::critical("etcdmain", &e);
            ExitCode::FAILURE
        }
        // Already logged in etcd's words where it happened.
        Err(etcd_server::run::StartError::Discovery(_)) => ExitCode::FAILURE,
        Err(e) => {
            tracing::error!(target: "etcdmain", "{e}");
            ExitCode::FAILURE
        }
    }
}

/// `etcd gateway start ...`: the same gateway as the `etcd-gateway` binary.
fn gateway(args: Vec<std::ffi::OsString>) -> ExitCode {
    if args.get(2).is_some_and(|a| a == "start") {
        let mut rest = vec![std::ffi::OsString::from("etcd gateway start")];
        rest.extend(args.into_iter().skip(3));
        return etcd_gateway::run_cli(rest);
    }
    print!(
        "gateway related command\n\nUsage:\n  etcd gateway [command]\n\nAvailable Commands:\n  \
         start       start the gateway\n\nFlags:\n  -h, --help   help for gateway\n\n\
         Use \"etcd gateway [command] --help\" for more information about a command.\n"
    );
    ExitCode::SUCCESS
}
