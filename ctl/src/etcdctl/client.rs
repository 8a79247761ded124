//! Connections to the cluster as etcdctl makes them: endpoints are dialled lazily and
//! every short command runs under `--command-timeout`; an endpoint that cannot be reached
//! is retried until that timeout runs out, which then reads `context deadline exceeded`
//! (etcd 3.4's client dials without blocking, so a dead endpoint fails the same way).
//!
//! With `--user`, the client authenticates as clientv3 does while it is created: once,
//! under `--dial-timeout` (its failure is a failure to create the client), carrying on
//! without a token if the server has authentication disabled. The token then goes with
//! every request, and a request refused because the token is stale is retried once after
//! authenticating again.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use etcd_proto::etcdserverpb::auth_client::AuthClient;
use etcd_proto::etcdserverpb::AuthenticateRequest;
use tokio::sync::OnceCell;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use super::credentials::{Credentials, Login};
use super::error::{CtlError, RpcError};
use super::global::GlobalFlags;
use super::tls::{self, TlsSettings};
use super::token::{self, Token};
use crate::endpoints::normalize;

/// How long to wait before another round of connection attempts.
const REDIAL_PAUSE: Duration = Duration::from_millis(100);

/// What the server answers `Authenticate` with when authentication is disabled; clientv3
/// then goes on without a token.
const AUTH_NOT_ENABLED: &str = "etcdserver: authentication is not enabled";

/// A connection that sends the client's token with every request.
pub type Conn = InterceptedService<Channel, Token>;

/// A client for one or more endpoints; connects on first use to the first endpoint that
/// answers.
pub struct Client {
    endpoints: Vec<String>,
    targets: Vec<Endpoint>,
    dial_timeout: Duration,
    command_timeout: Duration,
    /// The TLS configuration the flags make.
    configured_tls: Option<TlsSettings>,
    /// What this client's endpoints are dialled with.
    tls: Option<TlsSettings>,
    channel: OnceCell<Channel>,
    credentials: Option<Arc<Credentials>>,
    /// The login a token was obtained with (`None`: requests go without one).
    login: OnceCell<Option<Login>>,
    token: Token,
}

impl Client {
    /// A client for the endpoints and timeouts of the global flags.
    pub fn new(flags: &GlobalFlags) -> Result<Client, CtlError> {
        let configured_tls = TlsSettings::from_flags(flags)?;
        let tls = TlsSettings::for_endpoints(configured_tls.as_ref(), &flags.endpoints);
        let targets = target_list(&flags.endpoints, flags.dial_timeout, tls.as_ref())?;
        Ok(Client {
            endpoints: flags.endpoints.clone(),
            targets,
            dial_timeout: flags.dial_timeout,
            command_timeout: flags.command_timeout,
            configured_tls,
            tls,
            channel: OnceCell::new(),
            credentials: Credentials::from_flags(&flags.user, &flags.password),
            login: OnceCell::new(),
            token: Token::default(),
        })
    }

    /// A client with the same settings for one endpoint only.
    pub fn for_endpoint(&self, endpoint: &str) -> Result<Client, CtlError> {
        let endpoints = vec![endpoint.to_string()];
        let tls = TlsSettings::for_endpoints(self.configured_tls.as_ref(), &endpoints);
        let targets = target_list(&endpoints, self.dial_timeout, tls.as_ref())?;
        Ok(Client {
            endpoints,
            targets,
            tls,
            ..self.another()
        })
    }

    /// Another client for the same endpoints and settings with a connection (and a token)
    /// of its own (etcd's `check perf` opens one client, so one connection, per simulated
    /// client). The password is not asked for again.
    pub fn another(&self) -> Client {
        Client {
            endpoints: self.endpoints.clone(),
            targets: self.targets.clone(),
            dial_timeout: self.dial_timeout,
            command_timeout: self.command_timeout,
            configured_tls: self.configured_tls.clone(),
            tls: self.tls.clone(),
            channel: OnceCell::new(),
            credentials: self.credentials.clone(),
            login: OnceCell::new(),
            token: Token::default(),
        }
    }

    /// The endpoints as given on the command line.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// `--command-timeout`.
    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    /// The connection for streams, connecting (and authenticating) first if needed; the
    /// connection itself waits as long as it takes (callers bound it with a timeout when
    /// they need one).
    pub async fn connection(&self) -> Result<Conn, RpcError> {
        self.logged_in().await?;
        Ok(self.conn().await)
    }

    async fn conn(&self) -> Conn {
        InterceptedService::new(self.channel().await, self.token.clone())
    }

    async fn channel(&self) -> Channel {
        self.channel.get_or_init(|| self.connect()).await.clone()
    }

    /// Authenticates once if there are credentials, as creating clientv3's client does:
    /// under `--dial-timeout`, failing as a client that could not be created.
    async fn logged_in(&self) -> Result<(), RpcError> {
        let Some(credentials) = &self.credentials else {
            return Ok(());
        };
        self.login
            .get_or_try_init(|| async {
                let login = credentials
                    .login()
                    .await
                    .map_err(|e| RpcError::Prompt(e.to_string()))?;
                let Some(login) = login else {
                    return Ok(None);
                };
                let authenticated =
                    tokio::time::timeout(self.dial_timeout, self.authenticate(&login))
                        .await
                        .unwrap_or(Err(RpcError::DeadlineExceeded));
                match authenticated {
                    Ok(()) => Ok(Some(login)),
                    Err(RpcError::Server(e)) if e == AUTH_NOT_ENABLED => Ok(None),
                    Err(e) => Err(RpcError::Dial(Box::new(e))),
                }
            })
            .await
            .map(|_| ())
    }

    /// Gets a token for `login` and sends it from now on.
    async fn authenticate(&self, login: &Login) -> Result<(), RpcError> {
        let request = AuthenticateRequest {
            name: login.name.clone(),
            password: login.password.clone(),
        };
        let response = AuthClient::new(self.channel().await)
            .authenticate(request)
            .await?;
        self.token.set(&response.into_inner().token);
        Ok(())
    }

    async fn connect(&self) -> Channel {
        loop {
            for target in &self.targets {
                if let Ok(channel) = tls::connect(target, self.tls.as_ref()).await {
                    return channel;
                }
            }
            tokio::time::sleep(REDIAL_PAUSE).await;
        }
    }

    /// Runs one short RPC (connecting first if needed) under `--command-timeout`.
    pub async fn unary<T, F, Fut>(&self, call: F) -> Result<T, RpcError>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.unary_within(self.command_timeout, call).await
    }

    /// Runs one RPC (connecting first if needed) with no time limit, as etcd 3.4's
    /// `user` and `role` commands send theirs.
    pub async fn unary_unbounded<T, F, Fut>(&self, call: F) -> Result<T, RpcError>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.logged_in().await?;
        self.call_once_more_if_stale(call).await
    }

    /// Runs one RPC (connecting first if needed) under `timeout`, for the commands that
    /// set their own instead of `--command-timeout`. Authenticating first is bounded by
    /// `--dial-timeout` instead, as it is part of creating etcdctl's client.
    pub async fn unary_within<T, F, Fut>(&self, timeout: Duration, call: F) -> Result<T, RpcError>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.logged_in().await?;
        tokio::time::timeout(timeout, self.call_once_more_if_stale(call))
            .await
            .unwrap_or(Err(RpcError::DeadlineExceeded))
    }

    /// Runs `call`; if the server refuses the token as stale, authenticates again and runs
    /// it once more, as clientv3's retry interceptor does.
    async fn call_once_more_if_stale<T, F, Fut>(&self, call: F) -> Result<T, RpcError>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let conn = self.conn().await;
        let answer = match call(conn.clone()).await {
            Err(status) if token::is_stale(&status) => match self.login.get() {
                Some(Some(login)) => {
                    self.authenticate(login).await?;
                    call(conn).await
                }
                _ => Err(status),
            },
            answer => answer,
        };
        answer
            .map(tonic::Response::into_inner)
            .map_err(RpcError::from)
    }
}

/// The tonic endpoints for `--endpoints`.
fn target_list(
    endpoints: &[String],
    dial_timeout: Duration,
    tls: Option<&TlsSettings>,
) -> Result<Vec<Endpoint>, CtlError> {
    endpoints
        .iter()
        .map(|e| target(e, dial_timeout, tls))
        .collect()
}

/// The tonic endpoint for one `--endpoints` entry.
fn target(
    endpoint: &str,
    dial_timeout: Duration,
    tls: Option<&TlsSettings>,
) -> Result<Endpoint, CtlError> {
    let url = normalize(endpoint);
    // Every endpoint of a client is dialled as its first one is.
    let url = match tls {
        Some(_) => url.replacen("http://", "https://", 1),
        None => url.replacen("https://", "http://", 1),
    };
    let ep = Endpoint::from_shared(url)
        .map_err(|_| CtlError::BadArgs(format!("invalid endpoint {endpoint:?}")))?;
    let ep = match tls {
        Some(tls) => tls.apply(ep, endpoint)?,
        None => ep,
    };
    Ok(ep.connect_timeout(dial_timeout).tcp_nodelay(true))
}
