//! The Auth service: turning auth on and off, logins, users and roles.
//!
//! Changes go through raft and are checked when applied (only root may make them once
//! auth is on). Passwords are hashed here, before proposing, so the slow bcrypt runs once
//! and every member stores the same hash. Listing and reading users and roles are served
//! from this member's state after a linearizable read barrier, with the checks etcd's
//! apply makes: root, or a user asking about itself or about a role it holds.

use std::sync::Arc;

use etcd_proto::etcdserverpb::auth_server::Auth;
use etcd_proto::etcdserverpb::*;
use etcd_proto::raftrequestpb::auth_change::Change;
use etcd_proto::raftrequestpb::raft_request::Request as Raft;
use etcd_proto::raftrequestpb::raft_response::Response as Applied;
use etcd_proto::raftrequestpb::{
    AuthChange, Authenticate, Empty, RaftRequest, UserAdd, UserChangePassword,
};
use tonic::{Request, Response, Status};

use crate::api::caller::Credentials;
use crate::auth::password;
use crate::auth::simple_token::SimpleTokens;
use crate::auth::store::AuthStore;
use crate::error::{EtcdError, Result};
use crate::server::EtcdServer;

/// Auth service over one member.
pub struct AuthService {
    pub server: Arc<EtcdServer>,
}

impl AuthService {
    /// Proposes `change` on behalf of the caller; answers what the apply issued (a login's
    /// token) and the header to answer with.
    async fn propose(
        &self,
        creds: &Credentials,
        change: Change,
    ) -> Result<(Option<String>, Option<ResponseHeader>)> {
        let req = RaftRequest {
            request: Some(Raft::Auth(AuthChange {
                change: Some(change),
            })),
            header: creds.header(&self.server).await?,
        };
        super::check_size(&self.server, &req)?;
        match self.server.propose(req).await? {
            (Applied::AuthToken(t), rev) => Ok((Some(t.token), Some(self.server.header(rev)))),
            (Applied::Empty(_), rev) => Ok((None, Some(self.server.header(rev)))),
            (other, _) => Err(EtcdError::Internal(format!(
                "unexpected apply result {other:?}"
            ))),
        }
    }

    /// The header of a change that answers nothing else.
    async fn change<T: Default>(
        &self,
        creds: &Credentials,
        change: Change,
        fill: impl FnOnce(Option<ResponseHeader>) -> T,
    ) -> Result<Response<T>, Status> {
        let (_, header) = self.propose(creds, change).await?;
        Ok(Response::new(fill(header)))
    }

    /// Reads the auth state linearizably as the caller, after `allowed` agreed.
    async fn read<T>(
        &self,
        creds: &Credentials,
        allowed: impl FnOnce(&AuthStore, &crate::auth::AuthInfo) -> Result<()>,
        read: impl FnOnce(&AuthStore) -> Result<T>,
    ) -> Result<T, Status> {
        self.server.linearizable_read().await?;
        let ai = creds.resolve(&self.server).await?.unwrap_or_default();
        let auth = self.server.state.auth.read();
        allowed(&auth, &ai)?;
        Ok(read(&auth)?)
    }
}

/// Hashes `password` with the member's bcrypt cost, off the async runtime.
async fn hash(server: &EtcdServer, password: String) -> Result<Vec<u8>> {
    let cost = server.auth_settings.bcrypt_cost;
    tokio::task::spawn_blocking(move || password::hash(&password, cost))
        .await
        .map_err(|e| EtcdError::Internal(e.to_string()))?
}

/// The hash to store for a new password: the one the client made (3.5's
/// `hashedPassword`), or one made here.
async fn new_hash(server: &EtcdServer, password: String, hashed: String) -> Result<Vec<u8>> {
    match hashed.is_empty() {
        false => Ok(hashed.into_bytes()),
        true => hash(server, password).await,
    }
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn auth_enable(
        &self,
        req: Request<AuthEnableRequest>,
    ) -> Result<Response<AuthEnableResponse>, Status> {
        let creds = Credentials::of_request(&req);
        self.change(&creds, Change::Enable(Empty {}), |header| {
            AuthEnableResponse { header }
        })
        .await
    }

    async fn auth_disable(
        &self,
        req: Request<AuthDisableRequest>,
    ) -> Result<Response<AuthDisableResponse>, Status> {
        let creds = Credentials::of_request(&req);
        self.change(&creds, Change::Disable(Empty {}), |header| {
            AuthDisableResponse { header }
        })
        .await
    }

    async fn auth_status(
        &self,
        req: Request<AuthStatusRequest>,
    ) -> Result<Response<AuthStatusResponse>, Status> {
        let creds = Credentials::of_request(&req);
        let (enabled, auth_revision) = self
            .read(
                &creds,
                |auth, ai| auth.check_admin(ai),
                |auth| Ok((auth.enabled(), auth.revision())),
            )
            .await?;
        Ok(Response::new(AuthStatusResponse {
            header: Some(self.server.current_header()),
            enabled,
            auth_revision,
        }))
    }

    /// Checks the password here, then proposes the login so every member knows the token.
    /// A password or role change applied in between makes the check stale: it is redone.
    async fn authenticate(
        &self,
        req: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        let creds = Credentials::of_request(&req);
        let req = req.into_inner();
        self.server.linearizable_read().await?;
        loop {
            let (hash, checked_at) = self.server.state.auth.read().password_hash(&req.name)?;
            let password = req.password.clone();
            let matches = tokio::task::spawn_blocking(move || password::matches(&password, &hash))
                .await
                .map_err(|e| EtcdError::Internal(e.to_string()))?;
            if !matches {
                tracing::info!(target: "auth", "authentication failed, invalid password for user {}", req.name);
                return Err(EtcdError::AuthFailed.into());
            }
            let change = Change::Authenticate(Authenticate {
                name: req.name.clone(),
                simple_token_prefix: SimpleTokens::new_prefix(),
            });
            let (token, header) = self.propose(&creds, change).await?;
            if checked_at == self.server.state.auth.read().revision() {
                return Ok(Response::new(AuthenticateResponse {
                    header,
                    token: token.unwrap_or_default(),
                }));
            }
            tracing::info!(target: "auth", "revision when password checked became stale; retrying");
        }
    }

    async fn user_add(
        &self,
        req: Request<AuthUserAddRequest>,
    ) -> Result<Response<AuthUserAddResponse>, Status> {
        let creds = Credentials::of_request(&req);
        let req = req.into_inner();
        let no_password = req.options.is_some_and(|o| o.no_password);
        let password_hash = match no_password {
            true => Vec::new(),
            false => new_hash(&self.server, req.password, req.hashed_password).await?,
        };
        let change = Change::UserAdd(UserAdd {
            name: req.name,
            password_hash,
            options: req.options,
        });
        self.change(&creds, change, |header| AuthUserAddResponse { header })
            .await
    }

    async fn user_get(
        &self,
        req: Request<AuthUserGetRequest>,
    ) -> Result<Response<AuthUserGetResponse>, Status> {
        let creds = Credentials::of_request(&req);
        let name = req.into_inner().name;
        let roles = self
            .read(
                &creds,
                |auth, ai| match ai.username == name {
                    true => Ok(()),
                    false => auth.check_admin(ai),
                },
                |auth| auth.user_roles(&name),
            )
            .await?;
        Ok(Response::new(AuthUserGetResponse {
            header: Some(self.server.current_header()),
            roles,
        }))
    }

    async fn user_list(
        &self,
        req: Request<AuthUserListRequest>,
    ) -> Result<Response<AuthUserListResponse>, Status> {
        let creds = Credentials::of_request(&req);
        let users = self
            .read(
                &creds,
                |auth, ai| auth.check_admin(ai),
                |auth| Ok(auth.user_names()),
            )
            .await?;
        Ok(Response::new(AuthUserListResponse {
            header: Some(self.server.current_header()),
            users,
        }))
    }

    async fn user_delete(
        &self,
        req: Request<AuthUserDeleteRequest>,
    ) -> Result<Response<AuthUserDeleteResponse>, Status> {
        let creds = Credentials::of_request(&req);
        let change = Change::UserDelete(req.into_inner());
        self.change(&creds, change, |header| AuthUserDeleteResponse { header })
            .await
    }

    async fn user_change_password(
        &self,
        req: Request<AuthUserChangePasswordRequest>,
    ) -> Result<Response<AuthUserChangePasswordResponse>, Status> {
        let creds = Credentials::of_request(&req);
        let req = req.into_inner();
        let password_hash = new_hash(&self.server, req.password, req.hashed_password).await?;
        let change = Change::UserChangePassword(UserChangePassword {
            name: req.name,
            password_hash,
        });
        self.change(&creds, change, |header| AuthUserChangePasswordResponse {
            header,
        })
        .await
    }

    async fn user_grant_role(
        &self,
        req: Request<AuthUserGrantRoleRequest>,
    ) -> Result<Response<AuthUserGrantRoleResponse>, Status> {
        let creds = Credentials::of_request(&req);
        let change = Change::UserGrantRole(req.into_inner());
        self.change(&creds, change, |header| AuthUserGrantRoleResponse {
            header,
        })
        .await
    }

    async fn user_revoke_role(
        &self,
        req: Request<AuthUserRevokeRoleRequest>,
    ) -> Result<Response<AuthUserRevokeRoleResponse>, Status> {
        let creds = Credentials::of_request(&req);
        let change = Change::UserRevokeRole(req.into_inner());
        self.change(&creds, change, |header| AuthUserRevokeRoleResponse {
            header,
        })
        .await
    }

    async fn role_add(
        &self,
        req: Request<AuthRoleAddRequest>,
    ) -> Result<Response<AuthRoleAddResponse>, Status> {
        let creds = Credentials::of_request(&req);
        let change = Change::RoleAdd(req.into_inner());
        self.change(&creds, change, |header| AuthRoleAddResponse { header })
            .await
    }

    async fn role_get(
        &self,
        req: Request<AuthRoleGetRequest>,
    ) -> Result<Response<AuthRoleGetResponse>, Status> {
        let creds = Credentials::of_request(&req);
        let role = req.into_inner().role;
        let perm = self
            .read(
                &creds,
                |auth, ai| match auth.has_role(&ai.username, &role) {
                    true => Ok(()),
                    false => auth.check_admin(ai),
                },
                |auth| auth.role_permissions(&role),
            )
            .await?;
        Ok(Response::new(AuthRoleGetResponse {
            header: Some(self.server.current_header()),
            perm,
        }))
    }

    async fn role_list(
        &self,
        req: Request<AuthRoleListRequest>,
    ) -> Result<Response<AuthRoleListResponse>, Status> {
        let creds = Credentials::of_request(&req);
        let roles = self
            .read(
                &creds,
                |auth, ai| auth.check_admin(ai),
                |auth| Ok(auth.role_names()),
            )
            .await?;
        Ok(Response::new(AuthRoleListResponse {
            header: Some(self.server.current_header()),
            roles,
        }))
    }

    async fn role_delete(
        &self,
        req: Request<AuthRoleDeleteRequest>,
    ) -> Result<Response<AuthRoleDeleteResponse>, Status> {
        let creds = Credentials::of_request(&req);
        let change = Change::RoleDelete(req.into_inner());
        self.change(&creds, change, |header| AuthRoleDeleteResponse { header })
            .await
    }

    async fn role_grant_permission(
        &self,
        req: Request<AuthRoleGrantPermissionRequest>,
    ) -> Result<Response<AuthRoleGrantPermissionResponse>, Status> {
        let creds = Credentials::of_request(&req);
        let change = Change::RoleGrantPermission(req.into_inner());
        self.change(&creds, change, |header| AuthRoleGrantPermissionResponse {
            header,
        })
        .await
    }

    async fn role_revoke_permission(
        &self,
        req: Request<AuthRoleRevokePermissionRequest>,
    ) -> Result<Response<AuthRoleRevokePermissionResponse>, Status> {
        let creds = Credentials::of_request(&req);
        let change = Change::RoleRevokePermission(req.into_inner());
        self.change(&creds, change, |header| AuthRoleRevokePermissionResponse {
            header,
        })
        .await
    }
}
