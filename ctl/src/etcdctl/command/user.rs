//! `user add|delete|get|list|passwd|grant-role|revoke-role`. As in etcd 3.4, these send
//! their requests without `--command-timeout`.

use clap::{Args, Subcommand};
use etcd_proto::authpb::UserAddOptions;
use etcd_proto::etcdserverpb::auth_client::AuthClient;
use etcd_proto::etcdserverpb::{
    AuthUserAddRequest, AuthUserChangePasswordRequest, AuthUserDeleteRequest, AuthUserGetRequest,
    AuthUserGrantRoleRequest, AuthUserListRequest, AuthUserRevokeRoleRequest,
};

use super::positional::{exactly, Positional};
use super::role;
use crate::etcdctl::display::AuthChange;
use crate::etcdctl::error::CtlError;
use crate::etcdctl::password;
use crate::etcdctl::strconv::go_bool;
use crate::etcdctl::Ctx;

/// `etcdctl user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Adds a new user
    Add(AddArgs),
    /// Deletes a user
    Delete(Positional),
    /// Gets detailed information of a user
    Get(GetArgs),
    /// Lists all users
    List(Positional),
    /// Changes password of user
    Passwd(PasswdArgs),
    /// Grants a role to a user
    GrantRole(Positional),
    /// Revokes a role from a user
    RevokeRole(Positional),
}

/// `user add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Read password from stdin instead of interactive terminal
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = true, default_missing_value = "true", value_parser = go_bool)]
    interactive: bool,
    /// Supply password from the command line flag
    #[arg(long = "new-user-password", default_value = "")]
    new_user_password: String,
    /// Create a user without password (CN based auth only)
    #[arg(long = "no-password", num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    no_password: bool,
    args: Vec<String>,
}

/// `user get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Show permissions of roles granted to the user
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    detail: bool,
    args: Vec<String>,
}

/// `user passwd`.
#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// If true, read password from stdin instead of interactive terminal
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = true, default_missing_value = "true", value_parser = go_bool)]
    interactive: bool,
    args: Vec<String>,
}

impl UserCommand {
    /// Runs the user command.
    pub async fn run(self, ctx: &Ctx) -> Result<(), CtlError> {
        let client = &ctx.client;
        let printer = ctx.printer();
        match self {
            UserCommand::Add(a) => add(ctx, a).await,
            UserCommand::Delete(a) => {
                let [name] = exactly(
                    &a.args,
                    "user delete command requires user name as its argument",
                )?;
                let resp = client
                    .unary_unbounded(|ch| async move {
                        let req = AuthUserDeleteRequest { name: name.clone() };
                        AuthClient::new(ch).user_delete(req).await
                    })
                    .await?;
                ctx.show(printer.auth_change(AuthChange::UserDeleted(name), resp.header.as_ref()))
            }
            UserCommand::Get(a) => get(ctx, a).await,
            UserCommand::List(a) => {
                exactly::<0>(&a.args, "user list command requires no arguments")?;
                let resp = client
                    .unary_unbounded(|ch| async move {
                        AuthClient::new(ch).user_list(AuthUserListRequest {}).await
                    })
                    .await?;
                ctx.show(printer.user_list(&resp))
            }
            UserCommand::Passwd(a) => {
                let [name] = exactly(
                    &a.args,
                    "user passwd command requires user name as its argument",
                )?;
                let password = new_password(name, a.interactive).await?;
                let password = &password;
                let resp = client
                    .unary_unbounded(|ch| async move {
                        let req = AuthUserChangePasswordRequest {
                            name: name.clone(),
                            password: password.clone(),
                            ..Default::default()
                        };
                        AuthClient::new(ch).user_change_password(req).await
                    })
                    .await?;
                ctx.show(printer.auth_change(AuthChange::PasswordChanged, resp.header.as_ref()))
            }
            UserCommand::GrantRole(a) => {
                let complaint =
                    "user grant command requires user name and role name as its argument";
                let [user, role] = exactly(&a.args, complaint)?;
                let resp = client
                    .unary_unbounded(|ch| async move {
                        let req = AuthUserGrantRoleRequest {
                            user: user.clone(),
                            role: role.clone(),
                        };
                        AuthClient::new(ch).user_grant_role(req).await
                    })
                    .await?;
                let change = AuthChange::RoleGranted { user, role };
                ctx.show(printer.auth_change(change, resp.header.as_ref()))
            }
            UserCommand::RevokeRole(a) => {
                let complaint = "user revoke-role requires user name and role name as its argument";
                let [user, role] = exactly(&a.args, complaint)?;
                let resp = client
                    .unary_unbounded(|ch| async move {
                        let req = AuthUserRevokeRoleRequest {
                            name: user.clone(),
                            role: role.clone(),
                        };
                        AuthClient::new(ch).user_revoke_role(req).await
                    })
                    .await?;
                let change = AuthChange::RoleRevoked { user, role };
                ctx.show(printer.auth_change(change, resp.header.as_ref()))
            }
        }
    }
}

/// `user add`: the password comes from `--new-user-password`, after a colon in the
/// argument, or is asked for; `--no-password` makes a user that cannot log in with one.
async fn add(ctx: &Ctx, a: AddArgs) -> Result<(), CtlError> {
    let [arg] = exactly(
        &a.args,
        "user add command requires user name as its argument",
    )?;
    let (name, password) = if a.no_password {
        (arg.clone(), String::new())
    } else if !a.new_user_password.is_empty() {
        (arg.clone(), a.new_user_password.clone())
    } else if let Some((name, password)) = arg.split_once(':') {
        if name.is_empty() {
            return Err(CtlError::BadArgs("empty user name is not allowed".into()));
        }
        (name.to_string(), password.to_string())
    } else {
        (arg.clone(), new_password(arg, a.interactive).await?)
    };
    let options = UserAddOptions {
        no_password: a.no_password,
    };
    let (name, password) = (&name, &password);
    let resp = ctx
        .client
        .unary_unbounded(|ch| async move {
            let req = AuthUserAddRequest {
                name: name.clone(),
                password: password.clone(),
                options: Some(options),
                ..Default::default()
            };
            AuthClient::new(ch).user_add(req).await
        })
        .await?;
    ctx.show(
        ctx.printer()
            .auth_change(AuthChange::UserAdded(name), resp.header.as_ref()),
    )
}

/// `user get`; with `--detail`, the user's roles as `role get` prints them, each after
/// an empty line (the heading is plain text whatever the output format, as in etcdctl).
async fn get(ctx: &Ctx, a: GetArgs) -> Result<(), CtlError> {
    let [name] = exactly(
        &a.args,
        "user get command requires user name as its argument",
    )?;
    let resp = ctx
        .client
        .unary_unbounded(|ch| async move {
            let req = AuthUserGetRequest { name: name.clone() };
            AuthClient::new(ch).user_get(req).await
        })
        .await?;
    let printer = ctx.printer();
    if !a.detail {
        return ctx.show(printer.user_get(name, &resp));
    }
    println!("User: {name}");
    for role in &resp.roles {
        println!();
        let perms = role::get(ctx, role).await?;
        ctx.show(printer.role_get(role, &perms))?;
    }
    Ok(())
}

/// The password for `user add` or `user passwd`: asked for twice (`--interactive`, the
/// default), or one word read from stdin.
async fn new_password(name: &str, interactive: bool) -> Result<String, CtlError> {
    if !interactive {
        return Ok(password::scan_word().await);
    }
    let ask = |prompt: String| async move {
        password::ask(&prompt)
            .await
            .map_err(|e| CtlError::BadArgs(format!("failed to ask password: {e}")))
    };
    let first = ask(format!("Password of {name}: ")).await?;
    if first.is_empty() {
        return Err(CtlError::BadArgs("empty password".into()));
    }
    let again = ask(format!("Type password of {name} again for confirmation: ")).await?;
    if first != again {
        return Err(CtlError::BadArgs("given passwords are different".into()));
    }
    Ok(first)
}
