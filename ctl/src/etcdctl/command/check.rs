//! `check perf`: etcd 3.4's write-performance check. For 60 seconds a workload model's
//! clients (each with a connection of its own, as etcdctl opens one client each) put
//! 1 KiB values under random 256-byte keys below `--prefix`, paced to the model's rate;
//! then the keys are deleted and the throughput, the slowest request and the standard
//! deviation are judged against etcd's thresholds with etcdctl's words and exit status.

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use etcd_proto::etcdserverpb::kv_client::KvClient;
use etcd_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use etcd_proto::etcdserverpb::{
    CompactionRequest, DefragmentRequest, DeleteRangeRequest, PutRequest, RangeRequest,
};
use tokio::sync::{mpsc, Mutex};
use tokio::time::Instant;

use super::kv::prefix_end;
use crate::benchmark::Report;
use crate::etcdctl::client::Client;
use crate::etcdctl::display::go_quote;
use crate::etcdctl::error::{CtlError, RpcError};
use crate::etcdctl::progress::SecondsBar;
use crate::etcdctl::strconv::go_bool;
use crate::etcdctl::Ctx;
use crate::rate::Limiter;

/// How long the load runs, in seconds; also the timeout of the check for existing keys.
const RUN_SECS: u64 = 60;
/// Timeout of the clean-up calls (delete, compact, defragment).
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Size of each key after the prefix, and of each value.
const KEY_SIZE: usize = 256;
const VALUE_SIZE: usize = 1024;

/// `etcdctl check ...`.
#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Check the performance of the etcd cluster
    Perf(PerfArgs),
}

/// `check perf` flags.
#[derive(Debug, Args)]
pub struct PerfArgs {
    /// The performance check's workload model. Accepted workloads: s(small), m(medium), l(large), xl(xLarge)
    #[arg(long, default_value = "s")]
    load: String,
    /// The prefix for writing the performance check's keys.
    #[arg(long, default_value = "/etcdctl-check-perf/")]
    prefix: String,
    /// Compact storage with last revision after test is finished.
    #[arg(long = "auto-compact", num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    auto_compact: bool,
    /// Defragment storage after test is finished.
    #[arg(long = "auto-defrag", num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    auto_defrag: bool,
}

impl CheckCommand {
    /// Runs the check command.
    pub async fn run(self, ctx: &Ctx) -> Result<(), CtlError> {
        match self {
            CheckCommand::Perf(a) => a.run(ctx).await,
        }
    }
}

/// A workload model: the write rate the cluster should sustain and how many clients
/// share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Load {
    writes_per_sec: u32,
    clients: usize,
}

impl Load {
    /// etcd's models by name or alias.
    fn named(name: &str) -> Option<Load> {
        let (writes_per_sec, clients) = match name {
            "s" | "small" => (150, 50),
            "m" | "medium" => (1000, 200),
            "l" | "large" => (8000, 500),
            "xl" | "xLarge" => (15000, 1000),
            _ => return None,
        };
        Some(Load {
            writes_per_sec,
            clients,
        })
    }
}

impl PerfArgs {
    /// Runs `check perf`.
    pub async fn run(self, ctx: &Ctx) -> Result<(), CtlError> {
        let load = Load::named(&self.load)
            .ok_or_else(|| CtlError::BadFeature(format!("unknown load option {}", self.load)))?;
        let prefix = self.prefix.as_bytes().to_vec();
        let client = &ctx.client;
        let existing = RangeRequest {
            key: prefix.clone(),
            range_end: prefix_end(&prefix),
            limit: 1,
            ..Default::default()
        };
        let existing = &existing;
        let existing = client
            .unary_within(Duration::from_secs(RUN_SECS), |ch| async move {
                KvClient::new(ch).range(existing.clone()).await
            })
            .await?;
        if !existing.kvs.is_empty() {
            return Err(CtlError::InvalidInput(format!(
                "prefix {} has keys. Delete with etcdctl del --prefix {} first",
                go_quote(&prefix),
                self.prefix
            )));
        }

        let (report, elapsed) = put_load(client, load, &prefix).await?;

        let delete = DeleteRangeRequest {
            key: prefix.clone(),
            range_end: prefix_end(&prefix),
            ..Default::default()
        };
        let delete = &delete;
        let deleted = client
            .unary_within(CLEANUP_TIMEOUT, |ch| async move {
                KvClient::new(ch).delete_range(delete.clone()).await
            })
            .await?;
        if self.auto_compact {
            let revision = deleted.header.map_or(0, |h| h.revision);
            compact(client, revision).await?;
        }
        if self.auto_defrag {
            for endpoint in client.endpoints() {
                defrag(client, endpoint).await?;
            }
        }
        let verdict = Verdict::of(&report, elapsed, load);
        print!("{}", verdict.text);
        if verdict.pass {
            Ok(())
        } else {
            Err(CtlError::Silent)
        }
    }
}

/// Runs the load for [`RUN_SECS`] under the progress bar; returns the results and the
/// time until the last request came back. As in etcdctl, one producer makes the requests
/// at the model's pace into a queue as long as there are clients, and every client takes
/// the next one when it is free: when the cluster stalls, up to that many requests wait
/// ready and go out at once after it.
async fn put_load(
    client: &Client,
    load: Load,
    prefix: &[u8],
) -> Result<(Report, Duration), RpcError> {
    let others: Vec<Client> = (1..load.clients).map(|_| client.another()).collect();
    // Connect (and authenticate) them all before the clock starts, as etcdctl's clients
    // dial when created.
    let channels = std::iter::once(client)
        .chain(&others)
        .map(Client::connection);
    let channels = futures::future::join_all(channels)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;

    let (queue, requests) = mpsc::channel(load.clients);
    let requests = Arc::new(Mutex::new(requests));
    let bar = tokio::spawn(SecondsBar::new(RUN_SECS).run());
    let start = Instant::now();
    let mut key = RandomKey::new(prefix.to_vec());
    let producer = tokio::spawn(async move {
        let limiter = Limiter::per_second(load.writes_per_sec);
        let deadline = start + Duration::from_secs(RUN_SECS);
        while limiter.wait(deadline).await {
            let put = PutRequest {
                key: key.next(),
                value: vec![0; VALUE_SIZE],
                ..Default::default()
            };
            if queue.send(put).await.is_err() {
                break;
            }
        }
    });
    let workers: Vec<_> = channels
        .into_iter()
        .map(|channel| {
            let requests = requests.clone();
            tokio::spawn(async move {
                let mut kv = KvClient::new(channel);
                let mut report = Report::default();
                loop {
                    let Some(put) = requests.lock().await.recv().await else {
                        return report;
                    };
                    let sent = Instant::now();
                    let result = kv.put(put).await;
                    let error = result.err().map(|s| RpcError::from(s).to_string());
                    report.record(sent.elapsed(), error);
                }
            })
        })
        .collect();
    let mut report = Report::default();
    for worker in futures::future::join_all(workers).await {
        report.merge(worker.expect("check perf worker"));
    }
    let elapsed = start.elapsed();
    let _ = producer.await;
    let _ = bar.await;
    Ok((report, elapsed))
}

/// Keys as etcdctl makes them: the prefix, then a 256-byte buffer whose first bytes are
/// the varint of a random non-negative 63-bit number (the rest is what earlier, longer
/// varints left there, zeros at first).
struct RandomKey {
    prefix: Vec<u8>,
    buf: [u8; KEY_SIZE],
}

impl RandomKey {
    fn new(prefix: Vec<u8>) -> RandomKey {
        RandomKey {
            prefix,
            buf: [0; KEY_SIZE],
        }
    }

    fn next(&mut self) -> Vec<u8> {
        let n = rand::random::<u64>() >> 1;
        // Go's binary.PutVarint: zig-zag, then 7 bits a byte, low bits first.
        let mut v = n << 1;
        let mut i = 0;
        while v >= 0x80 {
            self.buf[i] = v as u8 | 0x80;
            v >>= 7;
            i += 1;
        }
        self.buf[i] = v as u8;
        [&self.prefix[..], &self.buf[..]].concat()
    }
}

/// `compact` of etcdctl's check commands: physical, announced before and after.
async fn compact(client: &Client, revision: i64) -> Result<(), CtlError> {
    println!("Compacting with revision {revision}");
    let req = CompactionRequest {
        revision,
        physical: true,
    };
    client
        .unary_within(CLEANUP_TIMEOUT, |ch| async move {
            KvClient::new(ch).compact(req).await
        })
        .await?;
    println!("Compacted with revision {revision}");
    Ok(())
}

/// `defrag` of etcdctl's check commands: one endpoint, announced before and after.
async fn defrag(client: &Client, endpoint: &str) -> Result<(), CtlError> {
    let quoted = go_quote(endpoint.as_bytes());
    println!("Defragmenting {quoted}");
    client
        .for_endpoint(endpoint)?
        .unary_within(CLEANUP_TIMEOUT, |ch| async move {
            MaintenanceClient::new(ch)
                .defragment(DefragmentRequest {})
                .await
        })
        .await?;
    println!("Defragmented {quoted}");
    Ok(())
}

/// What etcdctl prints about a run, and whether it passed.
#[derive(Debug, PartialEq)]
struct Verdict {
    text: String,
    pass: bool,
}

impl Verdict {
    /// etcd's judgement: no errors, over 90% of the model's rate, the slowest request
    /// within 500 ms and a standard deviation within 100 ms.
    fn of(report: &Report, elapsed: Duration, load: Load) -> Verdict {
        let mut text = String::new();
        let mut pass = true;
        if !report.errors().is_empty() {
            text.push_str("FAIL: too many errors\n");
            for (error, count) in report.errors() {
                text.push_str(&format!("FAIL: ERROR({error}) -> {count}\n"));
            }
            pass = false;
        }
        let rps = report.ok() as f64 / elapsed.as_secs_f64();
        // etcdctl rounds the rate up by adding one to its integer part.
        let shown = rps as u64 + 1;
        if rps / load.writes_per_sec as f64 <= 0.9 {
            text.push_str(&format!("FAIL: Throughput too low: {shown} writes/s\n"));
            pass = false;
        } else {
            text.push_str(&format!("PASS: Throughput is {shown} writes/s\n"));
        }
        let slowest = report.slowest().as_secs_f64();
        if slowest > 0.5 {
            text.push_str(&format!("Slowest request took too long: {slowest:.6}s\n"));
            pass = false;
        } else {
            text.push_str(&format!("PASS: Slowest request took {slowest:.6}s\n"));
        }
        let stddev = report.stddev_secs();
        if stddev > 0.1 {
            text.push_str(&format!("Stddev too high: {stddev:.6}s\n"));
            pass = false;
        } else {
            text.push_str(&format!("PASS: Stddev is {stddev:.6}s\n"));
        }
        text.push_str(if pass { "PASS\n" } else { "FAIL\n" });
        Verdict { text, pass }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_by_name_and_alias() {
        assert_eq!(Load::named("small"), Load::named("s"));
        assert_eq!(
            Load::named("xLarge"),
            Some(Load {
                writes_per_sec: 15000,
                clients: 1000
            })
        );
        assert_eq!(Load::named("XL"), None);
    }

    #[test]
    fn keys_are_the_prefix_and_256_bytes() {
        let mut keys = RandomKey::new(b"/p/".to_vec());
        let (a, b) = (keys.next(), keys.next());
        assert_eq!(a.len(), 3 + KEY_SIZE);
        assert!(a.starts_with(b"/p/"));
        assert_ne!(a, b);
    }

    fn report(latencies_ms: &[u64], errors: &[&str]) -> Report {
        let mut r = Report::default();
        for &ms in latencies_ms {
            r.record(Duration::from_millis(ms), None);
        }
        for e in errors {
            r.record(Duration::ZERO, Some(e.to_string()));
        }
        r
    }

    #[test]
    fn a_good_run_passes() {
        let small = Load::named("s").unwrap();
        let r = report(&[10; 9000], &[]);
        let v = Verdict::of(&r, Duration::from_millis(60_010), small);
        assert!(v.pass);
        assert_eq!(
            v.text,
            "PASS: Throughput is 150 writes/s\n\
             PASS: Slowest request took 0.010000s\n\
             PASS: Stddev is 0.000000s\n\
             PASS\n"
        );
    }

    #[test]
    fn slow_or_failing_runs_fail_in_etcds_words() {
        let small = Load::named("s").unwrap();
        let mut latencies = vec![10; 100];
        latencies.push(900);
        let r = report(&latencies, &["etcdserver: too many requests"]);
        let v = Verdict::of(&r, Duration::from_secs(60), small);
        assert!(!v.pass);
        assert_eq!(
            v.text.lines().collect::<Vec<_>>(),
            [
                "FAIL: too many errors",
                "FAIL: ERROR(etcdserver: too many requests) -> 1",
                "FAIL: Throughput too low: 2 writes/s",
                "Slowest request took too long: 0.900000s",
                "PASS: Stddev is 0.088103s",
                "FAIL",
            ]
        );
    }
}
