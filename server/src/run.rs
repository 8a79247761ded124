//! Starting and stopping a member: the sequence etcd's `etcdmain` and `embed` follow,
//! with their log lines.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::api::require_leader::LeaderLoss;
use crate::auth::tokens::Tokens;
use crate::cluster::bootstrap::{bootstrap, load_identity, BootstrapError, InitialCluster};
use crate::cluster::ids::url_string;
use crate::config::{ClusterState, Config};
use crate::raft::types::MemberNode;
use crate::raft::{RaftSettings, RaftStartError};
use crate::serve::ConnSettings;
use crate::server::{EtcdServer, Identity, Limits};
use crate::state::KvState;
use crate::storage::{Backend, BackendError};
use crate::tls::listener::TlsListener;
use crate::tls::setup::{host_port, ListenerTls, Side};
use crate::tls::TlsError;
use crate::version::{API_VERSION, BUILD_VERSION};
use crate::wal::{Wal, WalError, WalOptions};
use etcd_proto::raftrequestpb::raft_request::Request;
use etcd_proto::raftrequestpb::{MemberAttributes, RaftRequest};

/// Why a member could not start (printed as one line before exiting with status 1).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Backend(#[from] BackendError),
    #[error("{0}")]
    Bootstrap(#[from] BootstrapError),
    #[error("{0}")]
    State(#[from] crate::error::EtcdError),
    #[error("{0}")]
    Raft(#[from] RaftStartError),
    #[error("{0}")]
    Wal(#[from] WalError),
    #[error("cannot finish an interrupted snapshot installation: {0}")]
    SnapshotInstall(crate::raft::types::StorageError),
    #[error("listen tcp {addr}: bind: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("{0}")]
    Tls(#[from] TlsError),
    #[error("{0}")]
    AuthToken(crate::auth::tokens::ProviderError),
    #[error("error setting up initial cluster: {0}")]
    DiscoverySrv(#[from] crate::cluster::srv::SrvBootstrapError),
    /// Logged where it happened, in etcd's words.
    #[error("{0}")]
    Discovery(#[from] crate::cluster::discovery_service::DiscoveryFailed),
}

/// etcd's minimum lease TTL: 1.5 election timeouts, rounded up to whole seconds.
fn min_lease_ttl(election: Duration) -> i64 {
    ((election.as_millis() as i64 * 3 / 2) + 999) / 1000
}

async fn bind(url: &url::Url) -> Result<TcpListener, StartError> {
    let host = url.host_str().unwrap_or("localhost");
    let port = url.port_or_known_default().unwrap_or(2379);
    let addr = format!("{host}:{port}");
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&addr)
        .await
        .map_err(|_| StartError::Resolve(addr.clone()))?
        .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| StartError::Resolve(addr.clone()))?;
    TcpListener::bind(first)
        .await
        .map_err(|source| StartError::Listen {
            addr: first.to_string(),
            source,
        })
}

fn urls(list: &[url::Url]) -> String {
    list.iter().map(url_string).collect::<Vec<_>>().join(",")
}

/// Runs a member until it is told to stop (SIGINT/SIGTERM).
pub async fn run(cfg: Config) -> Result<(), StartError> {
    tracing::info!(target: "etcdmain", "etcd Version: {API_VERSION} (etcd-rs {BUILD_VERSION})");
    tracing::info!(target: "etcdmain", "OS/Arch: {}/{}", std::env::consts::OS, std::env::consts::ARCH);
    let data_dir = cfg.data_dir.clone();
    let member_dir = data_dir.join("member");
    tracing::info!(target: "embed", "name = {}", cfg.name);
    tracing::info!(target: "embed", "data dir = {}", data_dir.display());
    tracing::info!(target: "embed", "member dir = {}", member_dir.display());
    tracing::info!(target: "embed", "heartbeat = {}ms", cfg.heartbeat_interval.as_millis());
    tracing::info!(target: "embed", "election = {}ms", cfg.election_timeout.as_millis());
    tracing::info!(target: "embed", "snapshot count = {}", cfg.snapshot_count);
    if !cfg.discovery.is_empty() {
        tracing::info!(target: "embed", "discovery URL= {}", cfg.discovery);
    }
    tracing::info!(target: "embed", "advertise client URLs = {}", urls(&cfg.advertise_client_urls));

    // TLS files are checked (and auto-TLS key pairs made) before anything listens, as etcd
    // does, so a bad file ends start-up before a port is taken.
    let tls = crate::tls::setup::prepare(&cfg)?;
    let dialer = crate::peer::PeerDialer::new(tls.dial.clone());

    // Bind first: a busy port must fail before anything is written to the data dir.
    let mut client_listeners = Vec::new();
    for u in &cfg.listen_client_urls {
        client_listeners.push((u.clone(), bind(u).await?));
    }
    let mut peer_listeners = Vec::new();
    for u in &cfg.listen_peer_urls {
        peer_listeners.push((u.clone(), bind(u).await?));
    }

    let backend = Backend::open_with_cache(&member_dir, cfg.backend_cache_bytes)?;
    let snap = crate::raft::state_machine::snap_dir(&backend);
    crate::raft::snapshot_install::finish_interrupted(&backend, &snap)
        .map_err(StartError::SnapshotInstall)?;
    let wal = Arc::new(Wal::open(&member_dir.join("wal"), WalOptions::default())?);
    let identity = load_identity(&backend)?;
    // A new member with --discovery-srv finds its initial cluster in DNS; a member that
    // has one already ignores the flag, as etcd does.
    let discovered;
    let initial_cluster = if identity.is_none() && !cfg.discovery_srv.is_empty() {
        discovered = crate::cluster::srv::initial_cluster(&cfg).await?;
        &discovered
    } else if identity.is_none() && !cfg.discovery.is_empty() {
        discovered = crate::cluster::discovery_service::initial_cluster(&cfg).await?;
        &discovered
    } else {
        if identity.is_some() && !cfg.discovery.is_empty() {
            tracing::warn!(target: "etcdserver", "discovery token ignored since a cluster has already been initialized. Valid log found at {:?}", member_dir.join("wal").display().to_string());
        }
        &cfg.initial_cluster
    };
    // With a discovery service, its URL is the cluster token (etcd's IDs depend on it).
    let token = if cfg.discovery.is_empty() {
        &cfg.initial_cluster_token
    } else {
        &cfg.discovery
    };
    let init = InitialCluster {
        name: &cfg.name,
        token,
        initial_cluster,
        advertise_peer_urls: &cfg.initial_advertise_peer_urls,
        advertise_client_urls: &cfg.advertise_client_urls,
    };
    let boot = match identity {
        Some(boot) if cfg.force_new_cluster => {
            let me = MemberNode {
                name: cfg.name.clone(),
                peer_urls: cfg
                    .initial_advertise_peer_urls
                    .iter()
                    .map(url_string)
                    .collect(),
                client_urls: cfg.advertise_client_urls.iter().map(url_string).collect(),
                voter: true,
            };
            crate::cluster::force_new::force_new_cluster(&backend, &wal, boot, me)?
        }
        Some(boot) => boot,
        None if cfg.initial_cluster_state == ClusterState::Existing => {
            crate::cluster::join::join(&backend, &init, &dialer).await?
        }
        None => bootstrap(&backend, &init)?,
    };
    let tokens = Tokens::from_flag(&cfg.auth_token, cfg.auth_token_ttl).map_err(|e| {
        if let Some(reason) = e.reason() {
            tracing::error!(target: "auth", "{reason}");
        }
        tracing::warn!(target: "etcdserver", "failed to create token provider,err is {e}");
        StartError::AuthToken(e)
    })?;
    let state = Arc::new(KvState::open(
        backend.clone(),
        min_lease_ttl(cfg.election_timeout),
        tokens,
    )?);
    if boot.restarted {
        tracing::info!(target: "etcdserver", "restarting member {:x} in cluster {:x} at revision {}", boot.member_id, boot.cluster_id, state.mvcc.read().current_revision());
    } else {
        tracing::info!(target: "etcdserver", "starting member {:x} in cluster {:x}", boot.member_id, boot.cluster_id);
    }

    let peers = crate::peer::Peers::new(boot.member_id, boot.cluster_id, dialer);
    let settings = RaftSettings {
        heartbeat: cfg.heartbeat_interval,
        election_timeout: cfg.election_timeout,
        snapshot_count: cfg.snapshot_count,
    };
    let raft = crate::raft::start(
        boot.member_id,
        &settings,
        wal.clone(),
        backend.clone(),
        state.clone(),
        peers.clone(),
    )
    .await?;
    if !boot.members.is_empty() {
        for (id, m) in &boot.members {
            tracing::info!(target: "etcdserver/membership", "added member {id:x} [{}] to cluster {:x}", m.peer_urls.join(","), boot.cluster_id);
        }
        if let Err(e) = raft.initialize(boot.members.clone()).await {
            tracing::warn!(target: "etcdserver", "raft already initialized: {e}");
        }
        // Raft's log now holds the membership (durably): it no longer needs to be kept.
        crate::cluster::bootstrap::clear_pending_members(&backend)?;
    }
    tracing::info!(target: "etcdserver", "starting server... [version: {API_VERSION}, cluster version: {API_VERSION}]");

    let limits = Limits {
        max_request_bytes: cfg.max_request_bytes as usize,
        max_txn_ops: cfg.max_txn_ops as usize,
        request_timeout: Duration::from_secs(5) + 2 * cfg.election_timeout,
        strict_reconfig_check: cfg.strict_reconfig_check,
        quota_bytes: cfg.quota_backend_bytes,
    };
    let identity = Identity {
        name: cfg.name.clone(),
        member_id: boot.member_id,
        cluster_id: boot.cluster_id,
    };
    let auth_settings = crate::server::AuthSettings {
        bcrypt_cost: crate::auth::password::cost(cfg.bcrypt_cost),
        client_cert_auth: cfg.client_tls.client_cert_auth,
    };
    let server = EtcdServer::new(
        identity,
        raft.clone(),
        state,
        limits,
        auth_settings,
        peers,
        wal,
    );
    let was_member = boot.restarted || !boot.members.is_empty();
    tokio::spawn(crate::tasks::follow_raft(
        server.clone(),
        cfg.election_timeout,
        was_member,
    ));
    tokio::spawn(crate::state::purge::run(server.state.clone()));
    tokio::spawn(crate::tasks::lease_duties(
        server.clone(),
        Duration::from_secs(300),
    ));
    if let Some(mode) = cfg.auto_compaction {
        tokio::spawn(crate::compactor::run(server.clone(), mode));
    }

    tokio::spawn(crate::cluster::reconfig::promote_caught_up(
        server.clone(),
        cfg.heartbeat_interval * 2,
    ));
    let peer_router = crate::peer::service::peer_router(server.clone());
    for (u, l) in peer_listeners {
        tracing::info!(target: "embed", "listening for peers on {}", url_string(&u));
        serve(
            l,
            peer_router.clone(),
            "peer",
            &u,
            tls.listener(&u, Side::Peer),
            ConnSettings::peer(),
        );
    }
    // Like etcd, clients are served once this member has published its name and client
    // URLs through raft, i.e. once it is part of a cluster with a working quorum.
    tokio::select! {
        _ = publish(&server, &cfg) => {}
        _ = stopping(&server) => {
            stop(&raft, &backend, boot.member_id).await;
            return Ok(());
        }
    }
    tracing::info!(target: "etcdserver", "published {{Name:{} ClientURLs:[{}]}} to cluster {:x}", cfg.name, urls(&cfg.advertise_client_urls), boot.cluster_id);
    let leader_loss = LeaderLoss::follow(server.subscribe_leader(), cfg.election_timeout);
    let router = crate::api::client_router(
        server.clone(),
        cfg.watch_progress_notify_interval,
        leader_loss,
    );
    for (u, l) in client_listeners {
        serve(
            l,
            router.clone(),
            "client",
            &u,
            tls.listener(&u, Side::Client),
            ConnSettings::client(&cfg),
        );
    }
    tracing::info!(target: "embed", "ready to serve client requests");
    for u in &cfg.listen_client_urls {
        if u.scheme() == "https" {
            tracing::info!(target: "embed", "serving client requests on {}", host_port(u));
        } else {
            tracing::info!(target: "embed", "serving insecure client requests on {}, this is strongly discouraged!", host_port(u));
        }
    }

    stopping(&server).await;
    stop(&raft, &backend, boot.member_id).await;
    Ok(())
}

/// Resolves when the member must stop: a signal, or its removal from the cluster.
async fn stopping(server: &EtcdServer) {
    tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!(target: "etcdmain", "received terminated signal, shutting down...");
        }
        _ = server.peers.removed() => {
            tracing::warn!(target: "etcdserver", "the member has been permanently removed from the cluster");
            tracing::warn!(target: "etcdmain", "the data-dir used by this member must be removed.");
        }
    }
}

/// Proposes this member's attributes until a quorum accepts them.
async fn publish(server: &EtcdServer, cfg: &Config) {
    let attributes = MemberAttributes {
        id: server.identity.member_id,
        name: cfg.name.clone(),
        client_urls: cfg.advertise_client_urls.iter().map(url_string).collect(),
    };
    loop {
        let req = RaftRequest {
            request: Some(Request::MemberAttributes(attributes.clone())),
            header: None,
        };
        match server.propose(req).await {
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(target: "etcdserver", "failed to publish local member to cluster through raft: {e}");
                tokio::time::sleep(cfg.election_timeout).await;
            }
        }
    }
}

/// Serves `router` on `listener` in the background, over TLS when `tls` is given.
fn serve(
    listener: TcpListener,
    router: axum::Router,
    what: &'static str,
    url: &url::Url,
    tls: Option<ListenerTls>,
    settings: ConnSettings,
) {
    let addr = url_string(url);
    tokio::spawn(async move {
        match tls {
            Some(tls) => match TlsListener::new(listener, tls.config, tls.check_san) {
                Ok(listener) => crate::serve::serve(listener, router, settings).await,
                Err(e) => {
                    tracing::error!(target: "embed", "serving {what} requests on {addr} failed: {e}")
                }
            },
            None => {
                let listener = listener.tap_io(|tcp| drop(tcp.set_nodelay(true)));
                crate::serve::serve(listener, router, settings).await
            }
        }
    });
}

/// Stops raft and flushes the backend, logging as etcd does.
async fn stop(raft: &crate::raft::types::Raft, backend: &Backend, member_id: u64) {
    let _ = raft.shutdown().await;
    // The log is synced by every write; the state is made durable so the next start
    // replays nothing.
    let _ = backend.sync_state();
    tracing::info!(target: "etcdserver", "stopped member {member_id:x}");
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
