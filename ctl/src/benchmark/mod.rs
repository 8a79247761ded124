//! A load generator with the flags and report of etcd's `benchmark` tool, so numbers from
//! our server and from etcd are measured the same way.
//!
//! `--conns` HTTP/2 connections are shared round-robin by `--clients` concurrent workers;
//! workers take requests from a shared counter until `--total` are done, timing each.

mod report;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use etcd_proto::etcdserverpb::kv_client::KvClient;
use etcd_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use etcd_proto::etcdserverpb::{PutRequest, RangeRequest, StatusRequest};
use indicatif::{ProgressBar, ProgressStyle};
use tonic::transport::Channel;

use crate::endpoints;
pub use report::Report;

/// Command line of `etcd-benchmark`.
#[derive(Debug, Parser)]
#[command(
    name = "etcd-benchmark",
    about = "A low-level benchmark tool for etcd3",
    version
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags shared by every benchmark.
#[derive(Debug, Args)]
pub struct Global {
    /// gRPC endpoints
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "127.0.0.1:2379"
    )]
    pub endpoints: Vec<String>,
    /// Total number of gRPC connections
    #[arg(long, global = true, default_value_t = 1)]
    pub conns: usize,
    /// Total number of gRPC clients
    #[arg(long, global = true, default_value_t = 1)]
    pub clients: usize,
    /// Dial timeout for client connections
    #[arg(long = "dial-timeout", global = true, value_parser = parse_duration, default_value = "0s")]
    pub dial_timeout: Duration,
    /// Send every request to the cluster's leader
    #[arg(long = "target-leader", global = true)]
    pub target_leader: bool,
    /// Accepted for compatibility: latencies are always recorded to 3 significant digits
    #[arg(long, global = true)]
    pub precise: bool,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Benchmark put
    Put(PutArgs),
    /// Benchmark range
    Range(RangeArgs),
}

#[derive(Debug, Args)]
pub struct PutArgs {
    /// Total number of put requests
    #[arg(long, default_value_t = 10000)]
    pub total: u64,
    /// Key size of put request
    #[arg(long = "key-size", default_value_t = 8)]
    pub key_size: usize,
    /// Value size of put request
    #[arg(long = "val-size", default_value_t = 8)]
    pub val_size: usize,
    /// Maximum possible keys
    #[arg(long = "key-space-size", default_value_t = 1)]
    pub key_space_size: u64,
    /// Use sequential keys
    #[arg(long = "sequential-keys")]
    pub sequential_keys: bool,
}

#[derive(Debug, Args)]
pub struct RangeArgs {
    /// Key to read (start of the range)
    pub key: String,
    /// End of the range (exclusive)
    pub end: Option<String>,
    /// Total number of range requests
    #[arg(long, default_value_t = 10000)]
    pub total: u64,
    /// Linearizable(l) or Serializable(s)
    #[arg(long, default_value = "l", value_parser = ["l", "s"])]
    pub consistency: String,
}

/// Errors of a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Dial(#[from] endpoints::DialError),
    #[error("no endpoints given")]
    NoEndpoints,
    #[error("no leader found among the endpoints")]
    NoLeader,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.trim().split_at(
        s.trim()
            .find(|c: char| c.is_alphabetic())
            .unwrap_or(s.len()),
    );
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1e3,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration {s:?}")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// One request of a benchmark, built from its sequence number.
#[derive(Clone)]
enum Op {
    Put {
        key_size: usize,
        value: Vec<u8>,
        space: u64,
        sequential: bool,
    },
    Range(RangeRequest),
}

impl Op {
    async fn send(&self, client: &mut KvClient<Channel>, seq: u64) -> Result<(), tonic::Status> {
        match self {
            Op::Put {
                key_size,
                value,
                space,
                sequential,
            } => {
                let n = if *sequential {
                    seq % space
                } else {
                    rand::random::<u64>() % space
                };
                let mut key = vec![0u8; *key_size];
                let bytes = n.to_le_bytes();
                let len = key.len().min(bytes.len());
                key[..len].copy_from_slice(&bytes[..len]);
                let req = PutRequest {
                    key,
                    value: value.clone(),
                    ..Default::default()
                };
                client.put(req).await.map(|_| ())
            }
            Op::Range(r) => client.range(r.clone()).await.map(|_| ()),
        }
    }
}

/// The endpoint (among `list`) whose member is the leader.
async fn find_leader(list: &[String], timeout: Duration) -> Result<String, BenchError> {
    for e in list {
        let ep = endpoints::normalize(e);
        let Ok(ch) = endpoints::dial(&ep, timeout).await else {
            continue;
        };
        let Ok(st) = MaintenanceClient::new(ch).status(StatusRequest {}).await else {
            continue;
        };
        let st = st.into_inner();
        if st.header.is_some_and(|h| h.member_id == st.leader) {
            return Ok(ep);
        }
    }
    Err(BenchError::NoLeader)
}

/// Runs the benchmark the command line describes and prints etcd's report.
pub async fn run(cli: Cli) -> Result<(), BenchError> {
    let (op, total) = match &cli.command {
        Command::Put(p) => (
            Op::Put {
                key_size: p.key_size,
                value: vec![b'-'; p.val_size],
                space: p.key_space_size.max(1),
                sequential: p.sequential_keys,
            },
            p.total,
        ),
        Command::Range(r) => (
            Op::Range(RangeRequest {
                key: r.key.clone().into_bytes(),
                range_end: r.end.clone().unwrap_or_default().into_bytes(),
                serializable: r.consistency == "s",
                ..Default::default()
            }),
            r.total,
        ),
    };
    let g = &cli.global;
    if g.endpoints.is_empty() {
        return Err(BenchError::NoEndpoints);
    }
    let dial_timeout = if g.dial_timeout.is_zero() {
        Duration::from_secs(5)
    } else {
        g.dial_timeout
    };
    let targets = if g.target_leader {
        vec![find_leader(&g.endpoints, dial_timeout).await?]
    } else {
        g.endpoints
            .iter()
            .map(|e| endpoints::normalize(e))
            .collect()
    };
    let mut channels = Vec::new();
    for i in 0..g.conns.max(1) {
        channels.push(endpoints::dial(&targets[i % targets.len()], dial_timeout).await?);
    }

    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:60} {pos}/{len} {percent:>3}% {elapsed_precise}")
            .expect("valid template"),
    );
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for i in 0..g.clients.max(1) {
        let mut client = KvClient::new(channels[i % channels.len()].clone())
            .max_decoding_message_size(usize::MAX);
        let (op, next, bar) = (op.clone(), next.clone(), bar.clone());
        workers.push(tokio::spawn(async move {
            let mut report = Report::default();
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= total {
                    return report;
                }
                let t = Instant::now();
                let res = op.send(&mut client, seq).await;
                report.record(t.elapsed(), res.err().map(|e| e.message().to_string()));
                bar.inc(1);
            }
        }));
    }
    let mut report = Report::default();
    for w in workers {
        if let Ok(r) = w.await {
            report.merge(r);
        }
    }
    bar.finish();
    println!();
    print!("{}", report.render(start.elapsed()));
    Ok(())
}
