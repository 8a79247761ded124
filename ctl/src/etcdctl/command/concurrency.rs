//! `lock` and `elect`. etcdctl 3.4 runs the concurrency recipes client-side over KV and
//! watch; this etcdctl asks the member's Lock and Election services, which run the same
//! recipes server-side, so the keys, revisions and printed output are the same.

use std::time::Duration;

use clap::Args;
use etcd_proto::etcdserverpb::kv_client::KvClient;
use etcd_proto::etcdserverpb::lease_client::LeaseClient;
use etcd_proto::etcdserverpb::RangeResponse;
use etcd_proto::etcdserverpb::{LeaseGrantRequest, LeaseKeepAliveRequest, RangeRequest};
use etcd_proto::v3electionpb::election_client::ElectionClient;
use etcd_proto::v3electionpb::{CampaignRequest, LeaderKey, LeaderRequest, ResignRequest};
use etcd_proto::v3lockpb::lock_client::LockClient;
use etcd_proto::v3lockpb::{LockRequest, UnlockRequest};
use tokio::sync::watch;

use crate::etcdctl::client::Conn;
use crate::etcdctl::error::{CtlError, RpcError};
use crate::etcdctl::strconv::go_bool;
use crate::etcdctl::Ctx;

/// The session TTL of `elect`, which etcdctl 3.4 does not let the user set.
const ELECT_TTL: i64 = 60;

/// `etcdctl lock <lockname> [exec-command arg1 arg2 ...]`.
#[derive(Debug, Args)]
pub struct LockArgs {
    /// timeout for session
    #[arg(long, default_value_t = 10)]
    ttl: i64,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// `etcdctl elect <election-name> [proposal]`.
#[derive(Debug, Args)]
pub struct ElectArgs {
    /// observation mode
    #[arg(short = 'l', long, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    listen: bool,
    args: Vec<String>,
}

fn rpc(e: tonic::Status) -> CtlError {
    CtlError::Rpc(RpcError::from(e))
}

/// A lease kept alive for as long as the command runs (concurrency.Session);
/// `expired` turns true once the member no longer renews it.
struct Session {
    lease: i64,
    expired: watch::Receiver<bool>,
}

impl Session {
    async fn open(conn: &Conn, ttl: i64) -> Result<Session, CtlError> {
        let grant = LeaseGrantRequest { ttl, id: 0 };
        let lease = LeaseClient::new(conn.clone())
            .lease_grant(grant)
            .await
            .map_err(rpc)?
            .into_inner()
            .id;
        let (tx, expired) = watch::channel(false);
        let mut client = LeaseClient::new(conn.clone());
        tokio::spawn(async move {
            // Renews a third of the TTL in, as clientv3's keep-alive does.
            let every = Duration::from_secs((ttl / 3).max(1) as u64);
            let requests = async_stream_of(lease, every);
            if let Ok(stream) = client.lease_keep_alive(requests).await {
                let mut stream = stream.into_inner();
                while let Ok(Some(r)) = stream.message().await {
                    if r.ttl <= 0 {
                        break;
                    }
                }
            }
            tx.send_replace(true);
        });
        Ok(Session { lease, expired })
    }

    async fn done(&mut self) {
        let _ = self.expired.wait_for(|e| *e).await;
    }
}

/// Keep-alive requests for `lease`, one now and one every `every`.
fn async_stream_of(
    lease: i64,
    every: Duration,
) -> impl futures::Stream<Item = LeaseKeepAliveRequest> {
    futures::stream::unfold(tokio::time::interval(every), move |mut ticks| async move {
        ticks.tick().await;
        Some((LeaseKeepAliveRequest { id: lease }, ticks))
    })
}

/// Reads `key`, for printing as `get` does.
async fn read_key(conn: &Conn, key: &[u8]) -> Result<RangeResponse, CtlError> {
    let req = RangeRequest {
        key: key.to_vec(),
        ..Default::default()
    };
    let resp = KvClient::new(conn.clone()).range(req).await.map_err(rpc)?;
    Ok(resp.into_inner())
}

/// Resolves on SIGINT or SIGTERM, on which etcdctl unlocks or resigns and exits.
async fn interrupted() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

impl LockArgs {
    pub async fn run(self, ctx: &Ctx) -> Result<(), CtlError> {
        // clap keeps a `--` that follows the lock name; cobra drops it.
        let mut args = self.args;
        if args.get(1).is_some_and(|a| a == "--") {
            args.remove(1);
        }
        let Some((name, command)) = args.split_first() else {
            return Err(CtlError::BadArgs(
                "lock takes a lock name argument and an optional command to execute".into(),
            ));
        };
        let conn = ctx
            .client
            .connection()
            .await
            .map_err(CtlError::Connection)?;
        let mut session = Session::open(&conn, self.ttl).await?;
        let interrupt = interrupted();
        tokio::pin!(interrupt);
        let req = LockRequest {
            name: name.clone().into_bytes(),
            lease: session.lease,
        };
        let mut locks = LockClient::new(conn.clone());
        let locked = tokio::select! {
            r = locks.lock(req) => r.map_err(rpc)?.into_inner(),
            _ = &mut interrupt => return Err(CtlError::Failed("context canceled".into())),
        };
        let held = read_key(&conn, &locked.key).await?;
        if held.kvs.is_empty() {
            return Err(CtlError::Failed("lock lost on init".into()));
        }
        let unlock = UnlockRequest {
            key: locked.key.clone(),
        };
        if let Some((program, args)) = command.split_first() {
            let revision = locked.header.map_or(0, |h| h.revision);
            let status = tokio::process::Command::new(program)
                .args(args)
                .env(
                    "ETCD_LOCK_KEY",
                    String::from_utf8_lossy(&locked.key).as_ref(),
                )
                .env("ETCD_LOCK_REV", revision.to_string())
                .status()
                .await;
            locks.unlock(unlock).await.map_err(rpc)?;
            return match status {
                Ok(s) if s.success() => Ok(()),
                Ok(s) => Err(CtlError::Failed(format!(
                    "exit status {}",
                    s.code().unwrap_or(-1)
                ))),
                Err(e) => Err(CtlError::Failed(e.to_string())),
            };
        }
        ctx.show(ctx.printer().get(&held))?;
        tokio::select! {
            _ = &mut interrupt => {
                locks.unlock(unlock).await.map_err(rpc)?;
                Ok(())
            }
            _ = session.done() => Err(CtlError::Failed("session expired".into())),
        }
    }
}

impl ElectArgs {
    pub async fn run(self, ctx: &Ctx) -> Result<(), CtlError> {
        let (name, proposal) = match &self.args[..] {
            [name] => (name, None),
            [name, proposal] => (name, Some(proposal)),
            _ => {
                return Err(CtlError::BadArgs(
                    "elect takes one election name argument and an optional proposal argument"
                        .into(),
                ))
            }
        };
        if proposal.is_none() && !self.listen {
            return Err(CtlError::BadArgs(
                "no proposal argument but -l not set".into(),
            ));
        }
        let conn = ctx
            .client
            .connection()
            .await
            .map_err(CtlError::Connection)?;
        let interrupt = interrupted();
        tokio::pin!(interrupt);
        let mut election = ElectionClient::new(conn.clone());
        let Some(proposal) = proposal else {
            let req = LeaderRequest {
                name: name.clone().into_bytes(),
            };
            let mut stream = election.observe(req).await.map_err(rpc)?.into_inner();
            loop {
                let resp = tokio::select! {
                    r = stream.message() => r,
                    _ = &mut interrupt => return Ok(()),
                };
                let Ok(Some(leader)) = resp else {
                    return Err(CtlError::Failed("elect: observer lost".into()));
                };
                let shown = RangeResponse {
                    header: leader.header,
                    kvs: leader.kv.into_iter().collect(),
                    count: 1,
                    more: false,
                };
                ctx.show(ctx.printer().get(&shown))?;
            }
        };
        let mut session = Session::open(&conn, ELECT_TTL).await?;
        let req = CampaignRequest {
            name: name.clone().into_bytes(),
            lease: session.lease,
            value: proposal.clone().into_bytes(),
        };
        let leader: Option<LeaderKey> = tokio::select! {
            r = election.campaign(req) => r.map_err(rpc)?.into_inner().leader,
            _ = &mut interrupt => return Err(CtlError::Failed("context canceled".into())),
        };
        let key = leader.as_ref().map(|l| l.key.clone()).unwrap_or_default();
        let held = read_key(&conn, &key).await?;
        ctx.show(ctx.printer().get(&held))?;
        tokio::select! {
            _ = &mut interrupt => {
                election.resign(ResignRequest { leader }).await.map_err(rpc)?;
                Ok(())
            }
            _ = session.done() => Err(CtlError::Failed("elect: session expired".into())),
        }
    }
}
