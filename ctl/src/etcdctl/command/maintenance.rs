//! `alarm list|disarm`, `defrag` and `move-leader`.

use clap::{Args, Subcommand};
use etcd_proto::etcdserverpb::alarm_request::AlarmAction;
use etcd_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use etcd_proto::etcdserverpb::{
    AlarmRequest, AlarmResponse, DefragmentRequest, MoveLeaderRequest, StatusRequest,
};

use super::endpoint::{endpoints, ClusterFlag};
use crate::etcdctl::client::Client;
use crate::etcdctl::error::{CtlError, RpcError};
use crate::etcdctl::strconv::hex_u64;
use crate::etcdctl::Ctx;

/// `etcdctl alarm ...`.
#[derive(Debug, Subcommand)]
pub enum AlarmCommand {
    /// Lists all alarms
    List,
    /// Disarms all alarms
    Disarm,
}

async fn alarm(
    client: &Client,
    action: AlarmAction,
    member_id: u64,
    kind: i32,
) -> Result<AlarmResponse, RpcError> {
    let req = AlarmRequest {
        action: action as i32,
        member_id,
        alarm: kind,
    };
    client
        .unary(|ch| async move { MaintenanceClient::new(ch).alarm(req).await })
        .await
}

impl AlarmCommand {
    /// Runs the alarm command.
    pub async fn run(self, ctx: &Ctx) -> Result<(), CtlError> {
        let resp = match self {
            AlarmCommand::List => alarm(&ctx.client, AlarmAction::Get, 0, 0).await?,
            AlarmCommand::Disarm => {
                // As etcd's client: deactivate each active alarm, answer with the last reply.
                let active = alarm(&ctx.client, AlarmAction::Get, 0, 0).await?;
                let mut resp = AlarmResponse::default();
                for a in &active.alarms {
                    let r =
                        alarm(&ctx.client, AlarmAction::Deactivate, a.member_id, a.alarm).await?;
                    resp.header = r.header;
                    resp.alarms.extend(r.alarms);
                }
                resp
            }
        };
        ctx.show(ctx.printer().alarm(&resp))
    }
}

/// `etcdctl defrag`.
#[derive(Debug, Args)]
pub struct DefragArgs {
    #[command(flatten)]
    cluster: ClusterFlag,
    /// Data directory of etcd: offline defragmentation is not supported by this etcdctl
    #[arg(long = "data-dir", default_value = "")]
    data_dir: String,
}

impl DefragArgs {
    /// Runs `defrag`: every endpoint in turn; failures are reported and the rest still run.
    pub async fn run(self, ctx: &Ctx) -> Result<(), CtlError> {
        if !self.data_dir.is_empty() {
            return Err(CtlError::BadFeature(
                "offline defragmentation (--data-dir) is not supported by this etcdctl".into(),
            ));
        }
        let mut failed = false;
        for ep in endpoints(ctx, self.cluster.cluster).await? {
            let client = ctx.client.for_endpoint(&ep)?;
            match client
                .unary(|ch| async move {
                    MaintenanceClient::new(ch)
                        .defragment(DefragmentRequest {})
                        .await
                })
                .await
            {
                Ok(_) => println!("Finished defragmenting etcd member[{ep}]"),
                Err(e) => {
                    failed = true;
                    eprintln!("Failed to defragment etcd member[{ep}] ({e})");
                }
            }
        }
        if failed {
            return Err(CtlError::Silent);
        }
        Ok(())
    }
}

/// `etcdctl move-leader`.
#[derive(Debug, Args)]
pub struct MoveLeaderArgs {
    args: Vec<String>,
}

impl MoveLeaderArgs {
    /// Runs `move-leader`: finds the leader among `--endpoints` and asks it to hand over.
    pub async fn run(self, ctx: &Ctx) -> Result<(), CtlError> {
        let [target] = &self.args[..] else {
            return Err(CtlError::BadArgs(
                "move-leader command needs 1 argument".into(),
            ));
        };
        let target = hex_u64(target).map_err(CtlError::BadArgs)?;
        let mut leader = None;
        for ep in ctx.client.endpoints() {
            let client = ctx.client.for_endpoint(ep)?;
            let status = client
                .unary(
                    |ch| async move { MaintenanceClient::new(ch).status(StatusRequest {}).await },
                )
                .await?;
            let member_id = status.header.as_ref().map_or(0, |h| h.member_id);
            if member_id == status.leader {
                leader = Some((client, status.leader));
                break;
            }
        }
        let Some((client, leader_id)) = leader else {
            return Err(CtlError::BadArgs(format!(
                "no leader endpoint given at [{}]",
                ctx.client.endpoints().join(" ")
            )));
        };
        let resp = client
            .unary(|ch| async move {
                MaintenanceClient::new(ch)
                    .move_leader(MoveLeaderRequest { target_id: target })
                    .await
            })
            .await?;
        ctx.show(ctx.printer().move_leader(leader_id, target, &resp))
    }
}
