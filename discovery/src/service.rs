//! The discovery service (`--discovery URL`): etcd's v2 discovery protocol against a v2
//! keys store (Debian's etcd with `--enable-v2`, or a public discovery service).
//!
//! The URL's path is the token directory. A member reads `<dir>/_config/size`, checks the
//! cluster is not full, registers itself as `<dir>/<member id hex>` holding its
//! `name=peerURL,...`, waits (watching the directory) until `size` members have
//! registered, and builds its initial cluster from the first `size` by creation order.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpStream;

/// A failed discovery, in etcd's words (`discovery: ...`).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("discovery: size key is bad")]
    BadSizeKey,
    #[error("discovery: found duplicate id")]
    DuplicateId,
    #[error("discovery: found duplicate name")]
    DuplicateName,
    #[error("discovery: cluster is full")]
    FullCluster,
    #[error("discovery: invalid URL")]
    InvalidUrl,
    #[error("discovery: bad discovery endpoint")]
    BadEndpoint,
    #[error("invalid proxy address {0:?}")]
    BadProxy(String),
    #[error("{0}")]
    Unsupported(String),
    /// The store answered with a v2 error (`{"errorCode":..,"message":..}`). A missing
    /// size key shows as the store's `100: Key not found`, as etcd 3.4 shows it.
    #[error("{code}: {message} ({cause}) [{index}]")]
    Store {
        code: u64,
        message: String,
        cause: String,
        index: u64,
    },
}

/// Why a request did not get an answer; retried with etcd's backoff.
#[derive(Debug)]
struct Unreachable(String);

#[derive(Debug, Deserialize)]
struct Node {
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    nodes: Vec<Node>,
    #[serde(rename = "createdIndex", default)]
    created_index: u64,
}

#[derive(Debug, Deserialize)]
struct Answer {
    node: Option<Node>,
    #[serde(rename = "errorCode")]
    error_code: Option<u64>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    cause: String,
    #[serde(default)]
    index: u64,
}

/// What the store said, with its `X-Etcd-Index`.
struct Reply {
    answer: Answer,
    etcd_index: u64,
}

/// A discovery token directory on a store.
pub struct Discovery {
    /// `host:port` to connect to (the proxy's, with `--discovery-proxy`).
    connect: String,
    /// `http://host:port` of the store, for absolute request targets through a proxy.
    origin: String,
    through_proxy: bool,
    /// The token directory's path (`/v2/keys/discovery/<token>`).
    dir: String,
    /// This member's ID as etcd prints it (hex, no padding).
    self_name: String,
    retries: u32,
}

/// Delays between attempts grow 1 s, 2 s, ... up to 256 s, as etcd's do.
const MAX_EXPONENTIAL_RETRIES: u32 = 8;

impl Discovery {
    /// A discovery for member `member_id` on `url` (optionally through an HTTP proxy).
    pub fn new(url: &str, proxy: &str, member_id: u64) -> Result<Discovery, ServiceError> {
        let parsed = url::Url::parse(url).map_err(|_| ServiceError::InvalidUrl)?;
        if parsed.scheme() != "http" {
            return Err(ServiceError::Unsupported(format!(
                "discovery: only http:// discovery URLs are supported by this build ({url})"
            )));
        }
        let host = parsed.host_str().ok_or(ServiceError::InvalidUrl)?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        let store = format!("{host}:{port}");
        let (connect, through_proxy) = if proxy.is_empty() {
            (store.clone(), false)
        } else {
            let p = url::Url::parse(proxy)
                .ok()
                .filter(|u| u.scheme().starts_with("http") && u.host_str().is_some())
                .or_else(|| url::Url::parse(&format!("http://{proxy}")).ok())
                .ok_or_else(|| ServiceError::BadProxy(proxy.to_string()))?;
            let host = p.host_str().unwrap_or_default();
            (
                format!("{host}:{}", p.port_or_known_default().unwrap_or(80)),
                true,
            )
        };
        Ok(Discovery {
            connect,
            origin: format!("http://{store}"),
            through_proxy,
            dir: parsed.path().trim_end_matches('/').to_string(),
            self_name: format!("{member_id:x}"),
            retries: 0,
        })
    }

    /// Registers `config` (`name=peerURL,...`) and returns the initial cluster once
    /// `size` members have registered.
    pub async fn join_cluster(&mut self, config: &str) -> Result<String, ServiceError> {
        // Fast path: a full cluster is refused before registering.
        self.check_cluster().await?;
        self.create_self(config).await?;
        let (nodes, size, index) = self.check_cluster().await?;
        let all = self.wait_nodes(nodes, size, index).await?;
        nodes_to_cluster(&all, size)
    }

    async fn create_self(&mut self, config: &str) -> Result<(), ServiceError> {
        let key = format!("{}/{}", self.dir, self.self_name);
        let body = format!("value={}", form_encode(config));
        loop {
            match self
                .request(
                    Method::PUT,
                    &format!("{key}?prevExist=false"),
                    Some(body.clone()),
                )
                .await
            {
                Ok(Reply {
                    answer:
                        Answer {
                            error_code: Some(105),
                            ..
                        },
                    ..
                }) => return Err(ServiceError::DuplicateId),
                Ok(reply) => return store_error(reply.answer).map(drop),
                Err(e) => self.backoff("register", &e).await,
            }
        }
    }

    /// The registered members (creation order), the size, and the store's index.
    async fn check_cluster(&mut self) -> Result<(Vec<Node>, u64, u64), ServiceError> {
        let size_key = format!("{}/_config/size", self.dir);
        let size = loop {
            match self.request(Method::GET, &size_key, None).await {
                Ok(reply) => {
                    let node = store_error(reply.answer)?;
                    break node
                        .value
                        .parse::<u64>()
                        .map_err(|_| ServiceError::BadSizeKey)?;
                }
                Err(e) => self.backoff("cluster status check", &e).await,
            }
        };
        let (dir, index) = loop {
            match self.request(Method::GET, &self.dir.clone(), None).await {
                Ok(reply) => break (store_error(reply.answer)?, reply.etcd_index),
                Err(e) => self.backoff("cluster status check", &e).await,
            }
        };
        let mut nodes: Vec<Node> = dir
            .nodes
            .into_iter()
            .filter(|n| base(&n.key) != "_config")
            .collect();
        nodes.sort_by_key(|n| n.created_index);
        for (i, n) in nodes.iter().enumerate() {
            if base(&n.key) == self.self_name {
                break;
            }
            if i as u64 >= size.saturating_sub(1) {
                return Err(ServiceError::FullCluster);
            }
        }
        Ok((nodes, size, index))
    }

    async fn wait_nodes(
        &mut self,
        mut all: Vec<Node>,
        size: u64,
        mut index: u64,
    ) -> Result<Vec<Node>, ServiceError> {
        all.truncate(size as usize);
        for n in &all {
            if base(&n.key) == self.self_name {
                tracing::info!(target: "discovery", "found self {} in the cluster", self.self_name);
            } else {
                tracing::info!(target: "discovery", "found peer {} in the cluster", base(&n.key));
            }
        }
        while (all.len() as u64) < size {
            tracing::info!(target: "discovery", "found {} peer(s), waiting for {} more", all.len(), size - all.len() as u64);
            let target = format!(
                "{}?wait=true&recursive=true&waitIndex={}",
                self.dir,
                index + 1
            );
            match self.request(Method::GET, &target, None).await {
                Ok(reply) => {
                    let node = store_error(reply.answer)?;
                    index = node.created_index.max(index + 1);
                    if base(&node.key) != "_config" && !all.iter().any(|n| n.key == node.key) {
                        tracing::info!(target: "discovery", "found peer {} in the cluster", base(&node.key));
                        all.push(node);
                    }
                }
                Err(e) => {
                    self.backoff("waiting for other nodes", &e).await;
                    let (nodes, _, fresh_index) = self.check_cluster().await?;
                    all = nodes;
                    all.truncate(size as usize);
                    index = fresh_index;
                }
            }
        }
        tracing::info!(target: "discovery", "found {} needed peer(s)", all.len());
        Ok(all)
    }

    async fn backoff(&mut self, step: &str, why: &Unreachable) {
        self.retries += 1;
        let delay = Duration::from_secs(1 << self.retries.min(MAX_EXPONENTIAL_RETRIES));
        tracing::info!(target: "discovery", "{step}: {}; retrying in {delay:?}", why.0);
        tokio::time::sleep(delay).await;
    }

    /// One HTTP/1.1 request on a connection of its own.
    async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        form: Option<String>,
    ) -> Result<Reply, Unreachable> {
        let unreachable = |e: &dyn std::fmt::Display| Unreachable(e.to_string());
        let tcp = TcpStream::connect(&self.connect)
            .await
            .map_err(|e| unreachable(&e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| unreachable(&e))?;
        tokio::spawn(conn);
        let target = if self.through_proxy {
            format!("{}{path_and_query}", self.origin)
        } else {
            path_and_query.to_string()
        };
        let mut req = Request::builder()
            .method(method)
            .uri(target)
            .header("host", self.origin.trim_start_matches("http://"));
        if form.is_some() {
            req = req.header("content-type", "application/x-www-form-urlencoded");
        }
        let req = req
            .body(Full::new(Bytes::from(form.unwrap_or_default())))
            .map_err(|e| unreachable(&e))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| unreachable(&e))?;
        let status = resp.status();
        let etcd_index = resp
            .headers()
            .get("x-etcd-index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(&e))?
            .to_bytes();
        if status.is_server_error() || status == StatusCode::BAD_GATEWAY {
            return Err(Unreachable(format!("{status}")));
        }
        let answer: Answer = serde_json::from_slice(&body)
            .map_err(|_| Unreachable("discovery: bad discovery endpoint".into()))?;
        Ok(Reply { answer, etcd_index })
    }
}

/// The node of an answer, or the store's error.
fn store_error(answer: Answer) -> Result<Node, ServiceError> {
    match (answer.error_code, answer.node) {
        (Some(code), _) => Err(ServiceError::Store {
            code,
            message: answer.message,
            cause: answer.cause,
            index: answer.index,
        }),
        (None, Some(node)) => Ok(node),
        (None, None) => Err(ServiceError::BadEndpoint),
    }
}

fn base(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// The initial cluster from the registered values; a name registered twice is refused.
fn nodes_to_cluster(nodes: &[Node], size: u64) -> Result<String, ServiceError> {
    let joined = nodes
        .iter()
        .map(|n| n.value.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let mut names = std::collections::BTreeSet::new();
    for pair in joined.split(',') {
        let (name, url) = pair.split_once('=').ok_or(ServiceError::InvalidUrl)?;
        url::Url::parse(url).map_err(|_| ServiceError::InvalidUrl)?;
        names.insert(name);
    }
    if names.len() as u64 != size {
        return Err(ServiceError::DuplicateName);
    }
    Ok(joined)
}

fn form_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(key: &str, value: &str, created: u64) -> Node {
        Node {
            key: key.into(),
            value: value.into(),
            nodes: Vec::new(),
            created_index: created,
        }
    }

    #[test]
    fn the_cluster_is_the_registered_values_in_order() {
        let nodes = [
            node("/d/a1", "infra0=http://10.0.0.1:2380", 5),
            node(
                "/d/b2",
                "infra1=http://10.0.0.2:2380,infra1=http://10.0.0.9:2380",
                6,
            ),
        ];
        assert_eq!(
            nodes_to_cluster(&nodes, 2).unwrap(),
            "infra0=http://10.0.0.1:2380,infra1=http://10.0.0.2:2380,infra1=http://10.0.0.9:2380"
        );
        let dup = [
            node("/d/a1", "infra0=http://10.0.0.1:2380", 5),
            node("/d/b2", "infra0=http://10.0.0.2:2380", 6),
        ];
        assert_eq!(
            nodes_to_cluster(&dup, 2).unwrap_err().to_string(),
            "discovery: found duplicate name"
        );
    }

    #[test]
    fn urls_and_proxies_are_checked() {
        let d = Discovery::new("http://store:2379/v2/keys/discovery/tok", "", 0xabc).unwrap();
        assert_eq!(
            (d.connect.as_str(), d.dir.as_str(), d.self_name.as_str()),
            ("store:2379", "/v2/keys/discovery/tok", "abc")
        );
        let p = Discovery::new("http://store:2379/t", "proxy:3128", 1).unwrap();
        assert!(p.through_proxy);
        assert_eq!(p.connect, "proxy:3128");
        assert!(Discovery::new("https://store/t", "", 1).is_err());
    }
}
