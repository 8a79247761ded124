//! `role add|delete|get|list|grant-permission|revoke-permission`. As in etcd 3.4, these
//! send their requests without `--command-timeout`.

use clap::{Args, Subcommand};
use etcd_proto::authpb::permission::Type;
use etcd_proto::authpb::Permission;
use etcd_proto::etcdserverpb::auth_client::AuthClient;
use etcd_proto::etcdserverpb::{
    AuthRoleAddRequest, AuthRoleDeleteRequest, AuthRoleGetRequest, AuthRoleGetResponse,
    AuthRoleGrantPermissionRequest, AuthRoleListRequest, AuthRoleRevokePermissionRequest,
};

use super::kv::prefix_end;
use super::positional::{exactly, Positional};
use crate::etcdctl::display::AuthChange;
use crate::etcdctl::error::{CtlError, RpcError};
use crate::etcdctl::strconv::go_bool;
use crate::etcdctl::Ctx;

/// `etcdctl role ...`.
#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Adds a new role
    Add(Positional),
    /// Deletes a role
    Delete(Positional),
    /// Gets detailed information of a role
    Get(Positional),
    /// Lists all roles
    List(Positional),
    /// Grants a key to a role
    GrantPermission(PermissionArgs),
    /// Revokes a key from a role
    RevokePermission(PermissionArgs),
}

/// `role grant-permission` and `role revoke-permission`.
#[derive(Debug, Args)]
pub struct PermissionArgs {
    /// a prefix permission
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    prefix: bool,
    /// a permission of keys that are greater than or equal to the given key using byte compare
    #[arg(long = "from-key", num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    from_key: bool,
    args: Vec<String>,
}

impl PermissionArgs {
    /// The range end for `key [endkey]` (the arguments from the key on) under `--prefix`
    /// or `--from-key`; extra arguments are ignored, as etcdctl ignores them.
    fn range_end(&self, key_args: &[String]) -> Result<Vec<u8>, CtlError> {
        let bad = |why: &str| Err(CtlError::BadArgs(why.into()));
        match (key_args, self.prefix, self.from_key) {
            ([_], true, true) => bad("--from-key and --prefix flags are mutually exclusive"),
            ([key], true, false) => Ok(prefix_end(key.as_bytes())),
            ([_], false, true) => Ok(vec![0]),
            ([_], false, false) => Ok(Vec::new()),
            (_, true, _) => bad("unexpected endkey argument with --prefix flag"),
            (_, _, true) => bad("unexpected endkey argument with --from-key flag"),
            (args, false, false) => Ok(args[1].as_bytes().to_vec()),
        }
    }
}

impl RoleCommand {
    /// Runs the role command.
    pub async fn run(self, ctx: &Ctx) -> Result<(), CtlError> {
        let client = &ctx.client;
        let printer = ctx.printer();
        match self {
            RoleCommand::Add(a) => {
                let [name] = exactly(
                    &a.args,
                    "role add command requires role name as its argument",
                )?;
                let resp = client
                    .unary_unbounded(|ch| async move {
                        let req = AuthRoleAddRequest { name: name.clone() };
                        AuthClient::new(ch).role_add(req).await
                    })
                    .await?;
                ctx.show(printer.auth_change(AuthChange::RoleAdded(name), resp.header.as_ref()))
            }
            RoleCommand::Delete(a) => {
                let [name] = exactly(
                    &a.args,
                    "role delete command requires role name as its argument",
                )?;
                let resp = client
                    .unary_unbounded(|ch| async move {
                        let req = AuthRoleDeleteRequest { role: name.clone() };
                        AuthClient::new(ch).role_delete(req).await
                    })
                    .await?;
                ctx.show(printer.auth_change(AuthChange::RoleDeleted(name), resp.header.as_ref()))
            }
            RoleCommand::Get(a) => {
                let [name] = exactly(
                    &a.args,
                    "role get command requires role name as its argument",
                )?;
                let resp = get(ctx, name).await?;
                ctx.show(printer.role_get(name, &resp))
            }
            RoleCommand::List(a) => {
                exactly::<0>(&a.args, "role list command requires no arguments")?;
                let resp = client
                    .unary_unbounded(|ch| async move {
                        AuthClient::new(ch).role_list(AuthRoleListRequest {}).await
                    })
                    .await?;
                ctx.show(printer.role_list(&resp))
            }
            RoleCommand::GrantPermission(a) => grant(ctx, a).await,
            RoleCommand::RevokePermission(a) => revoke(ctx, a).await,
        }
    }
}

/// A role's permissions.
pub async fn get(ctx: &Ctx, name: &str) -> Result<AuthRoleGetResponse, RpcError> {
    ctx.client
        .unary_unbounded(|ch| async move {
            let req = AuthRoleGetRequest { role: name.into() };
            AuthClient::new(ch).role_get(req).await
        })
        .await
}

/// `role grant-permission <role> <read|write|readwrite> <key> [endkey]`.
async fn grant(ctx: &Ctx, a: PermissionArgs) -> Result<(), CtlError> {
    let [role, kind, key, ..] = &a.args[..] else {
        return Err(CtlError::BadArgs(
            "role grant command requires role name, permission type, and key [endkey] as its argument"
                .into(),
        ));
    };
    let perm = Permission {
        perm_type: permission_type(kind)? as i32,
        key: key.as_bytes().to_vec(),
        range_end: a.range_end(&a.args[2..])?,
    };
    let perm = &perm;
    let resp = ctx
        .client
        .unary_unbounded(|ch| async move {
            let req = AuthRoleGrantPermissionRequest {
                name: role.clone(),
                perm: Some(perm.clone()),
            };
            AuthClient::new(ch).role_grant_permission(req).await
        })
        .await?;
    let change = AuthChange::PermissionGranted(role);
    ctx.show(ctx.printer().auth_change(change, resp.header.as_ref()))
}

/// `role revoke-permission <role> <key> [endkey]`.
async fn revoke(ctx: &Ctx, a: PermissionArgs) -> Result<(), CtlError> {
    let [role, key, ..] = &a.args[..] else {
        return Err(CtlError::BadArgs(
            "role revoke-permission command requires role name and key [endkey] as its argument"
                .into(),
        ));
    };
    let range_end = a.range_end(&a.args[1..])?;
    let range_end = &range_end;
    let resp = ctx
        .client
        .unary_unbounded(|ch| async move {
            let req = AuthRoleRevokePermissionRequest {
                role: role.clone(),
                key: key.as_bytes().to_vec(),
                range_end: range_end.clone(),
            };
            AuthClient::new(ch).role_revoke_permission(req).await
        })
        .await?;
    let change = AuthChange::PermissionRevoked {
        role,
        key: key.as_bytes(),
        range_end,
    };
    ctx.show(ctx.printer().auth_change(change, resp.header.as_ref()))
}

/// `read`, `write` or `readwrite`, in any case.
fn permission_type(name: &str) -> Result<Type, CtlError> {
    Type::from_str_name(&name.to_uppercase())
        .ok_or_else(|| CtlError::BadArgs(format!("invalid permission type: {name}")))
}
