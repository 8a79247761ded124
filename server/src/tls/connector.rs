//! Dialing another member's `https://` peer URL for tonic: TCP, then the TLS handshake with
//! the peer key pair as client certificate. tonic is given the URL with `http://` so its own
//! TLS (enabled in the workspace for etcdctl) stays out of the way; this connector decides.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::Uri;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connects to the host and port of the URI it is called with, over TLS.
#[derive(Clone)]
pub struct TlsDialer {
    config: Arc<ClientConfig>,
}

impl TlsDialer {
    pub fn new(config: Arc<ClientConfig>) -> Self {
        TlsDialer { config }
    }
}

impl tower_service::Service<Uri> for TlsDialer {
    type Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connector = TlsConnector::from(self.config.clone());
        Box::pin(async move {
            let host = uri.host().ok_or("peer URL without host")?;
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let port = uri.port_u16().unwrap_or(2380);
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let name = ServerName::try_from(host)?;
            let tls = connector.connect(name, tcp).await?;
            Ok(TokioIo::new(tls))
        })
    }
}
