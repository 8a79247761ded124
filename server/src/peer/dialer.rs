//! How a peer URL is dialed: `http://` as plain HTTP/2, `https://` through TLS with the peer
//! key pair (`--peer-cert-file`, `--peer-key-file`) and the peer CA. Used by raft, request
//! forwarding and joining alike, so every member-to-member connection is made the same way.

use std::sync::Arc;

use rustls::ClientConfig;
use tonic::transport::{Channel, Endpoint};

use crate::tls::connector::TlsDialer;

/// The peer TLS client configuration, if this member has one. Cheap to clone.
#[derive(Clone, Default)]
pub struct PeerDialer {
    tls: Option<Arc<ClientConfig>>,
}

impl PeerDialer {
    pub fn new(tls: Option<Arc<ClientConfig>>) -> Self {
        PeerDialer { tls }
    }

    /// The endpoint for `url` and the TLS dialer to reach it with. tonic sees `http://`
    /// (see [`TlsDialer`]); an `https://` URL without peer TLS files is dialed in plain text
    /// and fails as etcd's would, at the handshake.
    pub fn endpoint(
        &self,
        url: &str,
    ) -> Result<(Endpoint, Option<TlsDialer>), tonic::transport::Error> {
        match (url.strip_prefix("https://"), &self.tls) {
            (Some(rest), Some(tls)) => Ok((
                Endpoint::from_shared(format!("http://{rest}"))?,
                Some(TlsDialer::new(tls.clone())),
            )),
            _ => Ok((Endpoint::from_shared(url.to_string())?, None)),
        }
    }

    /// A channel that connects on first use.
    pub fn lazy(endpoint: Endpoint, tls: Option<TlsDialer>) -> Channel {
        match tls {
            Some(dialer) => endpoint.connect_with_connector_lazy(dialer),
            None => endpoint.connect_lazy(),
        }
    }

    /// A channel connected now.
    pub async fn connect(
        endpoint: Endpoint,
        tls: Option<TlsDialer>,
    ) -> Result<Channel, tonic::transport::Error> {
        match tls {
            Some(dialer) => endpoint.connect_with_connector(dialer).await,
            None => endpoint.connect().await,
        }
    }
}
