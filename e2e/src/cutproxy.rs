//! A TCP proxy that loses an answer on purpose: it passes traffic through, and once told
//! to watch for a marker ([`CutProxy::withhold_after`]), until a connection carries it (some bytes of a request, such as its key) towards the
//! server; from then on it withholds everything the server sends back on that connection,
//! and on [`CutProxy::cut`] resets it. The request has reached the server, its answer
//! never reaches the client: the case where a client cannot know whether its request was
//! applied. Connections opened later pass through untouched.
//!
//! The proxy runs on its own thread and runtime, so blocking tests can use it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy; it stops with its process.
pub struct CutProxy {
    addr: SocketAddr,
    /// Set once a connection has forwarded the marker to the server.
    armed: Arc<AtomicBool>,
    marker: Arc<Mutex<Option<Vec<u8>>>>,
    cut: watch::Sender<bool>,
}

impl CutProxy {
    /// Listens on a free 127.0.0.1 port, forwarding to `target`.
    pub fn start(target: SocketAddr) -> CutProxy {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("proxy address");
        let armed = Arc::new(AtomicBool::new(false));
        let (cut, cut_rx) = watch::channel(false);
        let marker: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
        let (watched, flag) = (marker.clone(), armed.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("proxy listener");
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        return;
                    };
                    let conn = Connection {
                        target,
                        marker: watched.clone(),
                        armed: flag.clone(),
                        cut: cut_rx.clone(),
                    };
                    tokio::spawn(conn.run(client));
                }
            });
        });
        CutProxy {
            addr,
            armed,
            marker,
            cut,
        }
    }

    /// From now on, withholds the answers on the first connection that carries `marker`
    /// to the server.
    pub fn withhold_after(&self, marker: &[u8]) {
        *self.marker.lock().expect("marker") = Some(marker.to_vec());
    }

    /// The proxy's address as an `http://` URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether a connection has carried the marker to the server.
    pub fn armed(&self) -> bool {
        self.armed.load(Ordering::SeqCst)
    }

    /// Resets the connection that carried the marker, its answer unsent.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }
}

/// One proxied connection.
struct Connection {
    target: SocketAddr,
    marker: Arc<Mutex<Option<Vec<u8>>>>,
    armed: Arc<AtomicBool>,
    cut: watch::Receiver<bool>,
}

impl Connection {
    async fn run(self, client: TcpStream) {
        let Ok(server) = TcpStream::connect(self.target).await else {
            return;
        };
        // Every close by the proxy is a reset (RST), as when a peer's process dies.
        let _ = (client.set_zero_linger(), server.set_zero_linger());
        let _ = (client.set_nodelay(true), server.set_nodelay(true));
        let (mut client_rx, mut client_tx) = client.into_split();
        let (mut server_rx, mut server_tx) = server.into_split();
        // Whether this connection carried the marker: its answers are withheld.
        let (hold, held) = watch::channel(false);
        let (mut held_down, mut held_cut) = (held.clone(), held);
        let (marker, armed) = (self.marker, self.armed);
        let upstream = async move {
            let mut buf = vec![0u8; 64 * 1024];
            // The end of the previous read, so a marker split across reads is found.
            let mut tail: Vec<u8> = Vec::new();
            loop {
                let n = match client_rx.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let watched = marker.lock().expect("marker").clone();
                if let (false, Some(marker)) = (armed.load(Ordering::SeqCst), watched) {
                    tail.extend_from_slice(&buf[..n]);
                    if tail.windows(marker.len()).any(|w| w == marker.as_slice()) {
                        // Withhold answers before the request can reach the server.
                        hold.send_replace(true);
                        armed.store(true, Ordering::SeqCst);
                    }
                    let keep = tail.len().saturating_sub(marker.len());
                    tail.drain(..keep);
                }
                if server_tx.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        };
        let downstream = async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match server_rx.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if *held_down.borrow_and_update() {
                    // Swallow answers from now on, until the cut.
                    continue;
                }
                if client_tx.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        };
        let mut cut = self.cut;
        let cut_if_held = async move {
            let _ = cut.wait_for(|c| *c).await;
            // A connection that never carried the marker is never cut.
            let _ = held_cut.wait_for(|h| *h).await;
        };
        // Whichever ends first, both sockets are dropped: reset.
        tokio::select! {
            _ = upstream => {}
            _ = downstream => {}
            _ = cut_if_held => {}
        }
    }
}

/// How long a test waits for the proxy's events.
pub const PROXY_WAIT: Duration = Duration::from_secs(10);
