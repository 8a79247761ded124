//! Who a client request speaks for (etcd's AuthInfoFromCtx): the user its token names, or
//! with `--client-cert-auth` and no token, the common name of its verified certificate.
//!
//! The token travels as gRPC metadata `token` (clientv3) or `authorization` (the JSON
//! gateway's name for it). A token that is present but not valid fails the request with
//! `etcdserver: invalid auth token`, even while auth is off, as in etcd.

use std::time::Duration;

use etcd_proto::raftrequestpb::RequestHeader;
use tonic::metadata::MetadataMap;

use crate::auth::AuthInfo;
use crate::error::{EtcdError, Result};
use crate::server::EtcdServer;

/// The common name of the certificate a TLS client presented and the listener verified,
/// put into every request of its connection by the listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCommonName(pub String);

/// What identifies a request's caller, taken from the request before its body is read
/// (a watch stream keeps it for every watch it creates).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    token: Option<String>,
    common_name: Option<String>,
}

impl Credentials {
    /// The credentials of a request with `metadata` and `extensions`.
    pub fn of(metadata: &MetadataMap, extensions: &tonic::Extensions) -> Credentials {
        let token = ["token", "authorization"]
            .iter()
            .find_map(|k| metadata.get(*k))
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let common_name = extensions.get::<ClientCommonName>().map(|cn| cn.0.clone());
        Credentials { token, common_name }
    }

    /// The credentials of `req`.
    pub fn of_request<T>(req: &tonic::Request<T>) -> Credentials {
        Credentials::of(req.metadata(), req.extensions())
    }

    /// Who the request speaks for; `None` for an anonymous request.
    pub async fn resolve(&self, server: &EtcdServer) -> Result<Option<AuthInfo>> {
        if let Some(token) = &self.token {
            return resolve_token(server, token).await.map(Some);
        }
        match &self.common_name {
            Some(cn) if server.auth_settings.client_cert_auth => Ok(Some(AuthInfo {
                username: cn.clone(),
                revision: server.state.auth.read().revision(),
            })),
            _ => Ok(None),
        }
    }

    /// The header a proposal of this request carries, for the state machine's checks.
    pub async fn header(&self, server: &EtcdServer) -> Result<Option<RequestHeader>> {
        Ok(self.resolve(server).await?.map(|ai| RequestHeader {
            username: ai.username,
            auth_revision: ai.revision,
        }))
    }
}

impl Credentials {
    /// etcd's IsAdminPermitted for the caller: root, or anyone while auth is off.
    pub async fn check_admin(&self, server: &EtcdServer) -> Result<AuthInfo> {
        let ai = self.resolve(server).await?.unwrap_or_default();
        server.state.auth.read().check_admin(&ai)?;
        Ok(ai)
    }

    /// [`check_admin`](Self::check_admin) as etcd 3.4's maintenance service answers it:
    /// the auth package's own error, which gRPC turns into `Unknown` with the text
    /// `auth: ...`.
    pub async fn check_admin_maintenance(&self, server: &EtcdServer) -> Result<(), tonic::Status> {
        self.check_admin(server)
            .await
            .map(drop)
            .map_err(auth_package_error)
    }
}

/// An auth error as etcd 3.4's maintenance service lets it through: untranslated, so
/// gRPC answers `Unknown` with the auth package's text (`auth: permission denied`).
pub fn auth_package_error(e: EtcdError) -> tonic::Status {
    let text = e.to_string();
    let bare = text.strip_prefix("etcdserver: ").unwrap_or(&text);
    tonic::Status::unknown(format!("auth: {bare}"))
}

/// An error as Go's gRPC prints a status: how etcd words the reason a watch was refused.
pub fn go_status_text(e: &EtcdError) -> String {
    format!("rpc error: code = {:?} desc = {e}", e.code())
}

async fn resolve_token(server: &EtcdServer, token: &str) -> Result<AuthInfo> {
    // A token issued by an entry this member has not applied yet is judged once it has.
    let issued_at = server.state.auth.read().tokens().issued_at(token);
    if let Some(index) = issued_at {
        wait_applied(server, index, server.limits.request_timeout).await;
    }
    let auth = server.state.auth.read();
    auth.tokens()
        .info(token, auth.revision())
        .ok_or(EtcdError::InvalidAuthToken)
}

/// Waits until this member has applied raft index `index`, at most `limit`.
async fn wait_applied(server: &EtcdServer, index: u64, limit: Duration) {
    let mut metrics = server.raft.metrics();
    let applied =
        |m: &openraft::RaftMetrics<u64, _>| m.last_applied.is_some_and(|l| l.index >= index);
    let _ = tokio::time::timeout(limit, metrics.wait_for(applied)).await;
}
