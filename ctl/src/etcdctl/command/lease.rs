//! `lease grant|revoke|timetolive|list|keep-alive`.

use std::time::Duration;

use clap::{Args, Subcommand};
use etcd_proto::etcdserverpb::lease_client::LeaseClient;
use etcd_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseLeasesRequest,
    LeaseRevokeRequest, LeaseTimeToLiveRequest,
};

use crate::etcdctl::client::Conn;
use crate::etcdctl::display::Format;
use crate::etcdctl::error::{CtlError, RpcError};
use crate::etcdctl::strconv::{dec_i64, go_bool, hex_i64};
use crate::etcdctl::Ctx;

/// `etcdctl lease ...`.
#[derive(Debug, Subcommand)]
pub enum LeaseCommand {
    /// Creates leases
    Grant(Positional),
    /// Revokes leases
    Revoke(Positional),
    /// Get lease information
    Timetolive(TimeToLiveArgs),
    /// List all active leases
    List(Positional),
    /// Keeps leases alive (renew)
    #[command(name = "keep-alive")]
    KeepAlive(KeepAliveArgs),
}

/// Arguments only.
#[derive(Debug, Args)]
pub struct Positional {
    args: Vec<String>,
}

/// `lease timetolive`.
#[derive(Debug, Args)]
pub struct TimeToLiveArgs {
    /// Get keys attached to this lease
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    keys: bool,
    args: Vec<String>,
}

/// `lease keep-alive`.
#[derive(Debug, Args)]
pub struct KeepAliveArgs {
    /// Resets the keep-alive time to its original value and exits immediately
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    once: bool,
    args: Vec<String>,
}

/// The lease ID argument (hexadecimal), or etcdctl's complaint about it.
fn lease_id(args: &[String], missing: &str) -> Result<i64, CtlError> {
    let [arg] = args else {
        return Err(CtlError::BadArgs(missing.into()));
    };
    hex_i64(arg)
        .map_err(|e| CtlError::BadArgs(format!("bad lease ID arg ({e}), expecting ID in Hex")))
}

impl LeaseCommand {
    /// Runs the lease command.
    pub async fn run(self, ctx: &Ctx) -> Result<(), CtlError> {
        let printer = ctx.printer();
        match self {
            LeaseCommand::Grant(a) => {
                let [ttl] = &a.args[..] else {
                    return Err(CtlError::BadArgs(
                        "lease grant command needs TTL argument".into(),
                    ));
                };
                let ttl = dec_i64(ttl).map_err(|e| CtlError::BadArgs(format!("bad TTL ({e})")))?;
                let req = LeaseGrantRequest { ttl, id: 0 };
                let resp = ctx
                    .client
                    .unary(|ch| async move { LeaseClient::new(ch).lease_grant(req).await })
                    .await
                    .map_err(|e| CtlError::Failed(format!("failed to grant lease ({e})")))?;
                ctx.show(printer.grant(&resp))
            }
            LeaseCommand::Revoke(a) => {
                let id = lease_id(&a.args, "lease revoke command needs 1 argument")?;
                let resp = ctx
                    .client
                    .unary(|ch| async move {
                        LeaseClient::new(ch)
                            .lease_revoke(LeaseRevokeRequest { id })
                            .await
                    })
                    .await
                    .map_err(|e| CtlError::Failed(format!("failed to revoke lease ({e})")))?;
                ctx.show(printer.revoke(id, &resp))
            }
            LeaseCommand::Timetolive(a) => {
                let id = lease_id(
                    &a.args,
                    "lease timetolive command needs lease ID as argument",
                )?;
                let req = LeaseTimeToLiveRequest { id, keys: a.keys };
                let resp = ctx
                    .client
                    .unary(|ch| async move { LeaseClient::new(ch).lease_time_to_live(req).await })
                    .await?;
                ctx.show(printer.time_to_live(&resp, a.keys))
            }
            LeaseCommand::List(_) => {
                let resp = ctx
                    .client
                    .unary(|ch| async move {
                        LeaseClient::new(ch)
                            .lease_leases(LeaseLeasesRequest {})
                            .await
                    })
                    .await
                    .map_err(|e| CtlError::Failed(format!("failed to list leases ({e})")))?;
                ctx.show(printer.leases(&resp))
            }
            LeaseCommand::KeepAlive(a) => {
                let id = lease_id(
                    &a.args,
                    "lease keep-alive command needs lease ID as argument",
                )?;
                keep_alive(ctx, id, a.once).await
            }
        }
    }
}

/// Renews the lease once (`--once`) or until it is gone, printing every renewal.
async fn keep_alive(ctx: &Ctx, id: i64, once: bool) -> Result<(), CtlError> {
    let printer = ctx.printer();
    if once {
        let resp = ctx
            .client
            .unary(|ch| async move { renew(ch, id).await })
            .await
            .map_err(CtlError::Connection)?;
        return ctx.show(printer.keep_alive(&resp));
    }
    let conn = ctx
        .client
        .connection()
        .await
        .map_err(CtlError::Connection)?;
    loop {
        match renew(conn.clone(), id).await {
            Ok(resp) => {
                let resp = resp.into_inner();
                ctx.show(printer.keep_alive(&resp))?;
                tokio::time::sleep(Duration::from_secs((resp.ttl / 3).max(1) as u64)).await;
            }
            Err(status) if status.code() == tonic::Code::NotFound => break,
            Err(status) => return Err(CtlError::Connection(RpcError::from(status))),
        }
    }
    if ctx.format == Format::Simple {
        println!("lease {id:016x} expired or revoked.");
    }
    Ok(())
}

/// One keep-alive round trip; a lease that is gone (TTL <= 0) reads as not found, as
/// etcd's client reports it.
async fn renew(
    conn: Conn,
    id: i64,
) -> Result<tonic::Response<LeaseKeepAliveResponse>, tonic::Status> {
    let mut client = LeaseClient::new(conn);
    let request = futures::stream::iter([LeaseKeepAliveRequest { id }]);
    let mut stream = client.lease_keep_alive(request).await?.into_inner();
    match stream.message().await? {
        Some(resp) if resp.ttl > 0 => Ok(tonic::Response::new(resp)),
        Some(_) => Err(tonic::Status::not_found(
            "etcdserver: requested lease not found",
        )),
        None => Err(tonic::Status::unavailable("keep-alive stream closed")),
    }
}
