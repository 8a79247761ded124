//! `endpoint health|status|hashkv [--cluster]`: one check per endpoint, each through its
//! own connection under `--command-timeout`.

use std::time::Instant;

use clap::{Args, Subcommand};
use etcd_proto::etcdserverpb::kv_client::KvClient;
use etcd_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use etcd_proto::etcdserverpb::{
    alarm_request::AlarmAction, AlarmRequest, HashKvRequest, RangeRequest, StatusRequest,
};
use futures::stream::{FuturesUnordered, StreamExt};

use crate::etcdctl::client::Client;
use crate::etcdctl::display::{EpHashKv, EpHealth, EpStatus};
use crate::etcdctl::duration;
use crate::etcdctl::error::CtlError;
use crate::etcdctl::strconv::{go_bool, go_i64};
use crate::etcdctl::Ctx;

/// `etcdctl endpoint ...`.
#[derive(Debug, Subcommand)]
pub enum EndpointCommand {
    /// Checks the healthiness of endpoints specified in `--endpoints` flag
    Health(ClusterFlag),
    /// Prints out the status of endpoints specified in `--endpoints` flag
    Status(ClusterFlag),
    /// Prints the KV history hash for each endpoint in --endpoints
    Hashkv(HashKvArgs),
}

/// `--cluster`.
#[derive(Debug, Args)]
pub struct ClusterFlag {
    /// use all endpoints from the cluster member list
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    pub cluster: bool,
}

/// `endpoint hashkv`.
#[derive(Debug, Args)]
pub struct HashKvArgs {
    #[command(flatten)]
    cluster: ClusterFlag,
    /// maximum revision to hash (default: all revisions)
    #[arg(long, default_value = "0", value_parser = go_i64, allow_hyphen_values = true)]
    rev: i64,
}

/// The endpoints to act on: `--endpoints`, or every client URL of the cluster.
pub async fn endpoints(ctx: &Ctx, cluster: bool) -> Result<Vec<String>, CtlError> {
    if !cluster {
        return Ok(ctx.client.endpoints().to_vec());
    }
    let list = super::member::list(ctx).await.map_err(|e| {
        CtlError::Failed(format!(
            "failed to fetch endpoints from etcd cluster member list: {e}"
        ))
    })?;
    Ok(list
        .members
        .into_iter()
        .flat_map(|m| m.client_ur_ls)
        .collect())
}

impl EndpointCommand {
    /// Runs the endpoint command.
    pub async fn run(self, ctx: &Ctx) -> Result<(), CtlError> {
        match self {
            EndpointCommand::Health(f) => health(ctx, endpoints(ctx, f.cluster).await?).await,
            EndpointCommand::Status(f) => status(ctx, endpoints(ctx, f.cluster).await?).await,
            EndpointCommand::Hashkv(a) => {
                hashkv(ctx, endpoints(ctx, a.cluster.cluster).await?, a.rev).await
            }
        }
    }
}

/// A quorum read of key `health`, then no active alarm, within the command timeout.
async fn check(client: Client, endpoint: String) -> EpHealth {
    let started = Instant::now();
    let read = client
        .unary(|ch| async move {
            KvClient::new(ch)
                .range(RangeRequest {
                    key: b"health".to_vec(),
                    ..Default::default()
                })
                .await
        })
        .await;
    let mut result = EpHealth {
        endpoint,
        health: false,
        took: duration::format(started.elapsed()),
        error: String::new(),
    };
    match read {
        Err(e) if e.to_string() != "etcdserver: permission denied" => {
            result.error = e.to_string();
            return result;
        }
        _ => result.health = true,
    }
    let alarms = client
        .unary(|ch| async move {
            MaintenanceClient::new(ch)
                .alarm(AlarmRequest {
                    action: AlarmAction::Get as i32,
                    ..Default::default()
                })
                .await
        })
        .await;
    match alarms {
        Ok(r) if !r.alarms.is_empty() => {
            result.health = false;
            result.error = r
                .alarms
                .iter()
                .fold("Active Alarm(s): ".to_string(), |acc, a| {
                    acc + match a.alarm {
                        1 => "NOSPACE ",
                        2 => "CORRUPT ",
                        _ => "UNKNOWN ",
                    }
                });
        }
        Ok(_) => {}
        Err(_) => {
            result.health = false;
            result.error = "Unable to fetch the alarm list".into();
        }
    }
    result
}

async fn health(ctx: &Ctx, endpoints: Vec<String>) -> Result<(), CtlError> {
    let mut checks = FuturesUnordered::new();
    for ep in endpoints {
        checks.push(check(ctx.client.for_endpoint(&ep)?, ep));
    }
    let mut results = Vec::new();
    while let Some(r) = checks.next().await {
        results.push(r);
    }
    ctx.show(ctx.printer().endpoint_health(&results))?;
    if results.iter().any(|r| !r.health) {
        return Err(CtlError::Failed("unhealthy cluster".into()));
    }
    Ok(())
}

async fn status(ctx: &Ctx, endpoints: Vec<String>) -> Result<(), CtlError> {
    let mut statuses = Vec::new();
    let mut failed = false;
    for ep in endpoints {
        let client = ctx.client.for_endpoint(&ep)?;
        match client
            .unary(|ch| async move { MaintenanceClient::new(ch).status(StatusRequest {}).await })
            .await
        {
            Ok(status) => statuses.push(EpStatus {
                endpoint: ep,
                status,
            }),
            Err(e) => {
                failed = true;
                eprintln!("Failed to get the status of endpoint {ep} ({e})");
            }
        }
    }
    ctx.show(ctx.printer().endpoint_status(&statuses))?;
    if failed {
        return Err(CtlError::Silent);
    }
    Ok(())
}

async fn hashkv(ctx: &Ctx, endpoints: Vec<String>, revision: i64) -> Result<(), CtlError> {
    let mut hashes = Vec::new();
    let mut last_error = None;
    for ep in endpoints {
        let client = ctx.client.for_endpoint(&ep)?;
        let req = HashKvRequest { revision };
        match client
            .unary(|ch| async move { MaintenanceClient::new(ch).hash_kv(req).await })
            .await
        {
            Ok(hash) => hashes.push(EpHashKv { endpoint: ep, hash }),
            Err(e) => {
                eprintln!("Failed to get the hash of endpoint {ep} ({e})");
                last_error = Some(e);
            }
        }
    }
    ctx.show(ctx.printer().endpoint_hashkv(&hashes))?;
    match last_error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
