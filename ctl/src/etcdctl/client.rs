//! Connections to the cluster as etcdctl makes them: endpoints are dialled lazily and
//! every short command runs under `--command-timeout`; an endpoint that cannot be reached
//! is retried until that timeout runs out, which then reads `context deadline exceeded`
//! (etcd 3.4's client dials without blocking, so a dead endpoint fails the same way).

use std::future::Future;
use std::time::Duration;

use tokio::sync::OnceCell;
use tonic::transport::{Channel, Endpoint};

use super::error::{CtlError, RpcError};
use super::global::GlobalFlags;
use super::tls::TlsSettings;
use crate::endpoints::normalize;

/// How long to wait before another round of connection attempts.
const REDIAL_PAUSE: Duration = Duration::from_millis(100);

/// A client for one or more endpoints; connects on first use to the first endpoint that
/// answers.
pub struct Client {
    endpoints: Vec<String>,
    targets: Vec<Endpoint>,
    dial_timeout: Duration,
    command_timeout: Duration,
    tls: Option<TlsSettings>,
    channel: OnceCell<Channel>,
}

impl Client {
    /// A client for the endpoints and timeouts of the global flags.
    pub fn new(flags: &GlobalFlags) -> Result<Client, CtlError> {
        let tls = TlsSettings::from_flags(flags)?;
        Client::build(
            flags.endpoints.clone(),
            flags.dial_timeout,
            flags.command_timeout,
            tls,
        )
    }

    fn build(
        endpoints: Vec<String>,
        dial_timeout: Duration,
        command_timeout: Duration,
        tls: Option<TlsSettings>,
    ) -> Result<Client, CtlError> {
        let targets = endpoints
            .iter()
            .map(|e| target(e, dial_timeout, tls.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Client {
            endpoints,
            targets,
            dial_timeout,
            command_timeout,
            tls,
            channel: OnceCell::new(),
        })
    }

    /// A client with the same settings for one endpoint only.
    pub fn for_endpoint(&self, endpoint: &str) -> Result<Client, CtlError> {
        Client::build(
            vec![endpoint.to_string()],
            self.dial_timeout,
            self.command_timeout,
            self.tls.clone(),
        )
    }

    /// Another client for the same endpoints and settings with a connection of its own
    /// (etcd's `check perf` opens one client, so one connection, per simulated client).
    pub fn another(&self) -> Client {
        Client {
            endpoints: self.endpoints.clone(),
            targets: self.targets.clone(),
            dial_timeout: self.dial_timeout,
            command_timeout: self.command_timeout,
            tls: self.tls.clone(),
            channel: OnceCell::new(),
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

    /// The channel, connecting first if needed; waits as long as it takes (callers bound
    /// it with a timeout when they need one).
    pub async fn channel(&self) -> Channel {
        self.channel.get_or_init(|| self.connect()).await.clone()
    }

    async fn connect(&self) -> Channel {
        loop {
            for target in &self.targets {
                if let Ok(channel) = target.connect().await {
                    return channel;
                }
            }
            tokio::time::sleep(REDIAL_PAUSE).await;
        }
    }

    /// Runs one short RPC (connecting first if needed) under `--command-timeout`.
    pub async fn unary<T, F, Fut>(&self, call: F) -> Result<T, RpcError>
    where
        F: FnOnce(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.unary_within(self.command_timeout, call).await
    }

    /// Runs one RPC (connecting first if needed) under `timeout`, for the commands that
    /// set their own instead of `--command-timeout`.
    pub async fn unary_within<T, F, Fut>(&self, timeout: Duration, call: F) -> Result<T, RpcError>
    where
        F: FnOnce(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let attempt = async {
            call(self.channel().await)
                .await
                .map(tonic::Response::into_inner)
                .map_err(RpcError::from)
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .unwrap_or(Err(RpcError::DeadlineExceeded))
    }
}

/// The tonic endpoint for one `--endpoints` entry.
fn target(
    endpoint: &str,
    dial_timeout: Duration,
    tls: Option<&TlsSettings>,
) -> Result<Endpoint, CtlError> {
    let url = normalize(endpoint);
    let url = match tls {
        Some(_) => url.replacen("http://", "https://", 1),
        None => url,
    };
    let ep = Endpoint::from_shared(url)
        .map_err(|_| CtlError::BadArgs(format!("invalid endpoint {endpoint:?}")))?
        .connect_timeout(dial_timeout)
        .tcp_nodelay(true);
    match tls {
        Some(tls) => tls.apply(ep, endpoint),
        None => Ok(ep),
    }
}
