//! `check perf`: not provided by this etcdctl (it would need etcd's load generator and
//! its pass/fail thresholds); the command says so instead of pretending.

use clap::{Args, Subcommand};

use crate::etcdctl::error::CtlError;
use crate::etcdctl::Ctx;

/// `etcdctl check ...`.
#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Check the performance of the etcd cluster
    Perf(PerfArgs),
}

/// `check perf` flags, accepted as etcdctl has them.
#[derive(Debug, Args)]
pub struct PerfArgs {
    /// The performance check's workload model. Accepted workload models are: s, m, l, xl
    #[arg(long, default_value = "s")]
    load: String,
    /// The prefix for writing the performance check's keys.
    #[arg(long, default_value = "/etcdctl-check-perf/")]
    prefix: String,
}

impl CheckCommand {
    /// Runs the check command.
    pub async fn run(self, _ctx: &Ctx) -> Result<(), CtlError> {
        match self {
            CheckCommand::Perf(a) => Err(CtlError::BadFeature(format!(
                "check perf (load {:?}, prefix {:?}) is not supported by this etcdctl",
                a.load, a.prefix
            ))),
        }
    }
}
