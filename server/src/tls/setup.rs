//! The member's TLS as start-up settles it, in etcd's order and with its log lines: auto-TLS
//! key pairs first, then each side's description, then a check of every listen URL's scheme
//! against the files given.

use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};
use url::Url;

use super::{auto, client_config, server_config, TlsError, TlsInfo};
use crate::cluster::ids::url_string;
use crate::config::Config;

/// What the listeners and the peer dialer use.
pub struct MemberTls {
    /// For `https://` client URLs.
    pub client: Option<Arc<ServerConfig>>,
    /// For `https://` peer URLs.
    pub peer: Option<Arc<ServerConfig>>,
    /// For dialing `https://` peer URLs.
    pub dial: Option<Arc<ClientConfig>>,
    /// Whether the peer listeners check a member's certificate against its address.
    pub peer_check_san: bool,
}

/// Which listeners a URL belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Peer,
}

/// How one `https://` listener serves TLS.
pub struct ListenerTls {
    pub config: Arc<ServerConfig>,
    /// Check client certificates against the address they connect from (peer URLs).
    pub check_san: bool,
}

impl Side {
    /// The word etcd's log lines and the fixtures directory use.
    fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Peer => "peer",
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl MemberTls {
    /// The TLS of the listener on `url` (`None`: plain `http://`).
    pub fn listener(&self, url: &Url, side: Side) -> Option<ListenerTls> {
        if url.scheme() != "https" {
            return None;
        }
        let (config, check_san) = match side {
            Side::Client => (self.client.clone(), false),
            Side::Peer => (self.peer.clone(), self.peer_check_san),
        };
        config.map(|config| ListenerTls { config, check_san })
    }
}

/// `host:port` as etcd names a listener in its log lines.
pub fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    format!("{host}:{}", url.port_or_known_default().unwrap_or(0))
}

/// Hosts a self-signed certificate is made for: those of the listen and advertised URLs.
fn hosts(lists: &[&[Url]]) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for url in lists.iter().flat_map(|l| l.iter()) {
        if let Some(h) = url.host_str() {
            let h = h.trim_start_matches('[').trim_end_matches(']').to_string();
            if !hosts.contains(&h) {
                hosts.push(h);
            }
        }
    }
    hosts
}

/// One side's files: given, or made by auto-TLS when asked for and none are given.
fn side_info(
    cfg: &Config,
    given: &TlsInfo,
    auto_tls: bool,
    side: Side,
    urls: &[&[Url]],
) -> Result<TlsInfo, TlsError> {
    if !auto_tls {
        return Ok(given.clone());
    }
    if !given.is_empty() {
        tracing::warn!(target: "embed", "ignoring {side} auto TLS since certs given");
        return Ok(given.clone());
    }
    let dir = cfg.data_dir.join("fixtures").join(side.name());
    let made = auto::self_cert(&dir, &hosts(urls), cfg.self_signed_cert_validity)?;
    Ok(TlsInfo {
        client_cert_auth: given.client_cert_auth,
        trusted_ca_file: given.trusted_ca_file.clone(),
        crl_file: given.crl_file.clone(),
        check_client_san: given.check_client_san,
        ..made
    })
}

/// Warnings for `http://` URLs of a side with TLS files, the server configuration when any
/// URL is `https://` (an error without a key pair, from `missing`).
fn listener_config(
    info: &TlsInfo,
    urls: &[Url],
    cfg: &Config,
    side: Side,
    missing: impl Fn(&Url) -> TlsError,
) -> Result<Option<Arc<ServerConfig>>, TlsError> {
    let auth_flag = if side == Side::Peer {
        "--peer-client-cert-auth"
    } else {
        "--client-cert-auth"
    };
    let mut secure = false;
    for url in urls {
        if url.scheme() == "https" {
            if info.is_empty() {
                return Err(missing(url));
            }
            secure = true;
            continue;
        }
        let url = url_string(url);
        if !info.is_empty() {
            // etcd's own text, "peer" included for client URLs.
            let ignored = if side == Side::Peer {
                "peer key/cert files"
            } else {
                "key/cert files"
            };
            tracing::warn!(target: "embed", "The scheme of {side} url {url} is HTTP while peer key/cert files are presented. Ignored {ignored}.");
        }
        if info.client_cert_auth {
            tracing::warn!(target: "embed", "The scheme of {side} url {url} is HTTP while client cert auth ({auth_flag}) is enabled. Ignored client cert auth for this url.");
        }
    }
    if !secure {
        return Ok(None);
    }
    server_config(info, &cfg.cipher_suites).map(Some)
}

/// Makes the auto-TLS key pairs and builds the TLS configurations of a member.
pub fn prepare(cfg: &Config) -> Result<MemberTls, TlsError> {
    let peer_urls: [&[Url]; 2] = [&cfg.listen_peer_urls, &cfg.initial_advertise_peer_urls];
    let peer = side_info(
        cfg,
        &cfg.peer_tls,
        cfg.peer_auto_tls,
        Side::Peer,
        &peer_urls,
    )?;
    if !peer.is_empty() {
        tracing::info!(target: "embed", "peerTLS: {}", peer.describe());
    }
    let peer_server = listener_config(&peer, &cfg.listen_peer_urls, cfg, Side::Peer, |u| {
        TlsError::PeerUrlWithoutKeyPair(host_port(u))
    })?;
    let client_urls: [&[Url]; 2] = [&cfg.listen_client_urls, &cfg.advertise_client_urls];
    let client = side_info(
        cfg,
        &cfg.client_tls,
        cfg.client_auto_tls,
        Side::Client,
        &client_urls,
    )?;
    if !client.is_empty() {
        tracing::info!(target: "embed", "ClientTLS: {}", client.describe());
    }
    let client_server =
        listener_config(&client, &cfg.listen_client_urls, cfg, Side::Client, |u| {
            TlsError::ClientUrlWithoutKeyPair(url_string(u))
        })?;
    let dial = if peer.is_empty() {
        None
    } else {
        Some(client_config(&peer, &cfg.cipher_suites)?)
    };
    Ok(MemberTls {
        client: client_server,
        peer: peer_server,
        dial,
        peer_check_san: peer.check_client_san,
    })
}
