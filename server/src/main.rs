//! `etcd`: runs one member. Flags, `ETCD_*` environment variables and `--config-file`
//! follow etcd 3.4; see `etcd --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cfg = match etcd_server::config::load_from(std::env::args_os()) {
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
            e @ (etcd_server::run::StartError::Tls(_) | etcd_server::run::StartError::AuthToken(_)),
        ) => {
            // etcd ends these with a fatal (C) line.
            etcd_server::logging::critical("etcdmain", &e);
            ExitCode::FAILURE
        }
        Err(e) => {
            tracing::error!(target: "etcdmain", "{e}");
            ExitCode::FAILURE
        }
    }
}
