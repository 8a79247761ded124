//! A TLS listener for `axum::serve`. Handshakes run in their own tasks, so a client that
//! stalls mid-handshake holds up nobody else; only finished handshakes are handed to the
//! server. A refused handshake is logged as etcd logs it ("rejected connection from ...").
//! On peer URLs the client certificate is then checked against the connection's address
//! (see [`super::san`]), as etcd's listener does after its handshake.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Longest a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepted connections whose TLS handshake succeeded.
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    /// Starts accepting on `tcp`; stops when the listener is dropped. `check_san`: check
    /// client certificates against the address they connect from.
    pub fn new(
        tcp: TcpListener,
        config: Arc<ServerConfig>,
        check_san: bool,
    ) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: etcd (Go's server) backs off too.
                        tracing::warn!(target: "embed", "accept error: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                drop(stream.set_nodelay(true));
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let refused = match tokio::time::timeout(
                        HANDSHAKE_TIMEOUT,
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(tls)) => match admit(&tls, peer, check_san).await {
                            Ok(()) => return drop(tx.send((tls, peer)).await),
                            Err(e) => e.to_string(),
                        },
                        Ok(Err(e)) => e.to_string(),
                        Err(_) => "handshake timed out".to_string(),
                    };
                    tracing::warn!(target: "embed", "rejected connection from \"{peer}\" (error \"{refused}\")");
                });
            }
        });
        Ok(TlsListener { local, ready })
    }
}

/// The checks after a completed handshake: the client certificate's names against `peer`.
async fn admit(
    tls: &TlsStream<TcpStream>,
    peer: SocketAddr,
    check_san: bool,
) -> Result<(), super::san::SanError> {
    let shown = tls.get_ref().1.peer_certificates();
    match shown.and_then(|certs| certs.first()) {
        Some(cert) if check_san => super::san::check(cert, peer.ip()).await,
        _ => Ok(()),
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accepting task only ends once this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
