//! `etcd-benchmark`: etcd's `benchmark` load generator (put and range), with its flags.

use std::process::ExitCode;

use clap::Parser;
use etcd_ctl::benchmark::{run, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}
