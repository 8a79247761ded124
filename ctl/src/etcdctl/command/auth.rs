//! `auth enable|disable`. etcd 3.4's etcdctl prints their result as plain text whatever
//! the output format.

use clap::Subcommand;
use etcd_proto::etcdserverpb::auth_client::AuthClient;
use etcd_proto::etcdserverpb::{
    AuthDisableRequest, AuthEnableRequest, AuthRoleAddRequest, AuthUserGrantRoleRequest,
};

use super::positional::{exactly, Positional};
use crate::etcdctl::error::{CtlError, RpcError};
use crate::etcdctl::Ctx;

/// What etcd answers `AuthEnable` when the root user lacks the root role; etcdctl then
/// creates the role, grants it and tries again.
const NO_ROOT_ROLE: &str = "etcdserver: root user does not have root role";

/// `etcdctl auth ...`.
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Enables authentication
    Enable(Positional),
    /// Disables authentication
    Disable(Positional),
}

impl AuthCommand {
    /// Runs the auth command.
    pub async fn run(self, ctx: &Ctx) -> Result<(), CtlError> {
        match self {
            AuthCommand::Enable(a) => {
                no_args(&a, "enable")?;
                enable(ctx).await?;
                println!("Authentication Enabled");
            }
            AuthCommand::Disable(a) => {
                no_args(&a, "disable")?;
                ctx.client
                    .unary(|ch| async move {
                        AuthClient::new(ch)
                            .auth_disable(AuthDisableRequest {})
                            .await
                    })
                    .await?;
                println!("Authentication Disabled");
            }
        }
        Ok(())
    }
}

fn no_args(a: &Positional, command: &str) -> Result<(), CtlError> {
    let complaint = format!("auth {command} command does not accept any arguments");
    exactly::<0>(&a.args, &complaint).map(|_| ())
}

/// Enables authentication, giving the root user the root role first if that is missing.
async fn enable(ctx: &Ctx) -> Result<(), RpcError> {
    let client = &ctx.client;
    loop {
        let enabled = client
            .unary(|ch| async move { AuthClient::new(ch).auth_enable(AuthEnableRequest {}).await })
            .await;
        match enabled {
            Err(RpcError::Server(e)) if e == NO_ROOT_ROLE => {}
            done => return done.map(|_| ()),
        }
        client
            .unary(|ch| async move {
                let role = AuthRoleAddRequest {
                    name: "root".into(),
                };
                AuthClient::new(ch).role_add(role).await
            })
            .await?;
        client
            .unary(|ch| async move {
                let grant = AuthUserGrantRoleRequest {
                    user: "root".into(),
                    role: "root".into(),
                };
                AuthClient::new(ch).user_grant_role(grant).await
            })
            .await?;
    }
}
