//! Forwarding one HTTP/2 request (a gRPC call) to a member and its answer back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// How long a member that refused a connection is skipped.
const RETRY_DELAY: Duration = Duration::from_secs(5);

/// The members calls are forwarded to, in turn, over one HTTP/2 connection each.
pub struct Upstream {
    endpoints: Vec<String>,
    /// Until when a member that could not be reached is skipped.
    down_until: Vec<parking_lot::Mutex<Option<Instant>>>,
    next: AtomicUsize,
    client: Client<HttpConnector, Body>,
}

impl Upstream {
    /// `endpoints` as `host:port` or `http://host:port`.
    pub fn new(endpoints: &[String]) -> Result<Upstream, String> {
        let endpoints: Vec<String> = endpoints
            .iter()
            .map(|e| {
                let hostport = e.strip_prefix("http://").unwrap_or(e);
                if e.starts_with("https://") {
                    return Err(format!(
                        "{e}: TLS to the members is not built yet in this grpc-proxy"
                    ));
                }
                Ok(hostport.trim_end_matches('/').to_string())
            })
            .collect::<Result<_, _>>()?;
        if endpoints.is_empty() {
            return Err("no endpoints given".into());
        }
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http();
        Ok(Upstream {
            down_until: endpoints.iter().map(|_| Default::default()).collect(),
            endpoints,
            next: AtomicUsize::new(0),
            client,
        })
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Forwards `req` to the next member; a member that cannot be reached gets the call
    /// answered `UNAVAILABLE` (the client retries as it would against a member).
    pub async fn forward(&self, req: Request<Body>) -> Response<Body> {
        let i = self.pick();
        let (mut parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        parts.uri = match format!("http://{}{path}", self.endpoints[i]).parse::<Uri>() {
            Ok(uri) => uri,
            Err(e) => return unavailable(&e.to_string()),
        };
        match self.client.request(Request::from_parts(parts, body)).await {
            Ok(resp) => resp.map(Body::new),
            Err(e) => {
                if e.is_connect() {
                    *self.down_until[i].lock() = Some(Instant::now() + RETRY_DELAY);
                }
                unavailable(&format!("proxy: {}: {e}", self.endpoints[i]))
            }
        }
    }

    /// The next member in turn that is not marked down (any member when all are).
    fn pick(&self) -> usize {
        let n = self.endpoints.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| self.down_until[i].lock().is_none_or(|until| until <= now))
            .unwrap_or(start % n)
    }
}

/// A gRPC `UNAVAILABLE` answer with `message`.
fn unavailable(message: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/grpc")
        .header("grpc-status", "14")
        .header("grpc-message", message.replace(['\r', '\n'], " "))
        .body(Body::empty())
        .unwrap_or_default()
}
