//! `member add|remove|update|list|promote`.

use clap::{Args, Subcommand};
use etcd_proto::etcdserverpb::cluster_client::ClusterClient;
use etcd_proto::etcdserverpb::{
    MemberAddRequest, MemberListRequest, MemberPromoteRequest, MemberRemoveRequest,
    MemberUpdateRequest,
};

use crate::etcdctl::display::{go_quote, Format, MemberChange};
use crate::etcdctl::error::{CtlError, RpcError};
use crate::etcdctl::strconv::{go_bool, hex_u64};
use crate::etcdctl::Ctx;

/// `etcdctl member ...`.
#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Adds a member into the cluster
    Add(AddArgs),
    /// Removes a member from the cluster
    Remove(IdArgs),
    /// Updates a member in the cluster
    Update(UpdateArgs),
    /// Lists all members in the cluster
    List(IdArgs),
    /// Promotes a non-voting member in the cluster
    Promote(IdArgs),
}

/// `member add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// comma separated peer URLs for the new member.
    #[arg(long = "peer-urls", default_value = "")]
    peer_urls: String,
    /// indicates if the new member is raft learner
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    learner: bool,
    args: Vec<String>,
}

/// `member update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// comma separated peer URLs for the updated member.
    #[arg(long = "peer-urls", default_value = "")]
    peer_urls: String,
    args: Vec<String>,
}

/// A member ID argument (or none, for `list`).
#[derive(Debug, Args)]
pub struct IdArgs {
    args: Vec<String>,
}

const NO_ID: &str = "member ID is not provided";
const NO_URLS: &str = "member peer urls not provided";

/// The hexadecimal member ID argument.
fn member_id(args: &[String]) -> Result<u64, CtlError> {
    let [arg] = args else {
        return Err(CtlError::BadArgs(NO_ID.into()));
    };
    hex_u64(arg)
        .map_err(|e| CtlError::BadArgs(format!("bad member ID arg ({e}), expecting ID in Hex")))
}

fn urls(list: &str) -> Result<Vec<String>, CtlError> {
    if list.is_empty() {
        return Err(CtlError::BadArgs(NO_URLS.into()));
    }
    Ok(list.split(',').map(str::to_string).collect())
}

impl MemberCommand {
    /// Runs the member command.
    pub async fn run(self, ctx: &Ctx) -> Result<(), CtlError> {
        let printer = ctx.printer();
        let client = &ctx.client;
        match self {
            MemberCommand::Add(a) => add(ctx, a).await,
            MemberCommand::Remove(a) => {
                let id = member_id(&a.args)?;
                let resp = client
                    .unary(|ch| async move {
                        ClusterClient::new(ch)
                            .member_remove(MemberRemoveRequest { id })
                            .await
                    })
                    .await?;
                ctx.show(printer.member_remove(MemberChange { id }, &resp))
            }
            MemberCommand::Update(a) => {
                let id = member_id(&a.args)?;
                let peer_ur_ls = urls(&a.peer_urls)?;
                let req = MemberUpdateRequest { id, peer_ur_ls };
                let req = &req;
                let resp = client
                    .unary(
                        |ch| async move { ClusterClient::new(ch).member_update(req.clone()).await },
                    )
                    .await?;
                ctx.show(printer.member_update(MemberChange { id }, &resp))
            }
            MemberCommand::List(_) => {
                let resp = client
                    .unary(|ch| async move {
                        ClusterClient::new(ch)
                            .member_list(MemberListRequest::default())
                            .await
                    })
                    .await?;
                ctx.show(printer.member_list(&resp))
            }
            MemberCommand::Promote(a) => {
                let id = member_id(&a.args)?;
                let resp = client
                    .unary(|ch| async move {
                        ClusterClient::new(ch)
                            .member_promote(MemberPromoteRequest { id })
                            .await
                    })
                    .await?;
                ctx.show(printer.member_promote(MemberChange { id }, &resp))
            }
        }
    }
}

/// `member add`: in the simple format also prints the settings the new member starts with.
async fn add(ctx: &Ctx, a: AddArgs) -> Result<(), CtlError> {
    let [name] = &a.args[..] else {
        return Err(CtlError::BadArgs("member name not provided".into()));
    };
    let req = MemberAddRequest {
        peer_ur_ls: urls(&a.peer_urls)?,
        is_learner: a.learner,
    };
    let req = &req;
    let resp = ctx
        .client
        .unary(|ch| async move { ClusterClient::new(ch).member_add(req.clone()).await })
        .await?;
    ctx.show(ctx.printer().member_add(&resp))?;
    if ctx.format != Format::Simple {
        return Ok(());
    }
    let new_id = resp.member.as_ref().map_or(0, |m| m.id);
    let list = list(ctx).await?;
    let initial: Vec<String> = list
        .members
        .iter()
        .flat_map(|m| {
            let member_name = if m.id == new_id {
                name.as_str()
            } else {
                m.name.as_str()
            };
            m.peer_ur_ls
                .iter()
                .map(move |u| format!("{member_name}={u}"))
        })
        .collect();
    println!();
    println!("ETCD_NAME={}", go_quote(name.as_bytes()));
    println!(
        "ETCD_INITIAL_CLUSTER={}",
        go_quote(initial.join(",").as_bytes())
    );
    println!(
        "ETCD_INITIAL_ADVERTISE_PEER_URLS={}",
        go_quote(a.peer_urls.as_bytes())
    );
    println!("ETCD_INITIAL_CLUSTER_STATE=\"existing\"");
    Ok(())
}

/// The cluster's member list, as the endpoints answer it.
pub async fn list(ctx: &Ctx) -> Result<etcd_proto::etcdserverpb::MemberListResponse, RpcError> {
    ctx.client
        .unary(|ch| async move {
            ClusterClient::new(ch)
                .member_list(MemberListRequest::default())
                .await
        })
        .await
}
