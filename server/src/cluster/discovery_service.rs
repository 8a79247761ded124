//! The initial cluster of a new member started with `--discovery URL`: it registers with
//! the discovery service and waits for the others (etcd's v2 discovery), then bootstraps
//! as with a static `--initial-cluster`. Failures end start-up with etcd's lines.

use url::Url;

use crate::cluster::ids::{member_id, url_string};
use crate::config::Config;
use etcd_discovery::{Discovery, ServiceError};

/// Discovery failed; the lines etcd prints have been logged, the process ends with 1.
#[derive(Debug, thiserror::Error)]
#[error("failed to join discovery cluster ({0})")]
pub struct DiscoveryFailed(pub ServiceError);

/// Registers this member under the discovery URL and returns the initial cluster.
pub async fn initial_cluster(cfg: &Config) -> Result<Vec<(String, Url)>, DiscoveryFailed> {
    let mut peer_urls: Vec<String> = cfg
        .initial_advertise_peer_urls
        .iter()
        .map(url_string)
        .collect();
    peer_urls.sort();
    // etcd names the member from its peer URLs and the discovery URL as the token.
    let id = member_id(&peer_urls, &cfg.discovery, None);
    let config = peer_urls
        .iter()
        .map(|u| format!("{}={u}", cfg.name))
        .collect::<Vec<_>>()
        .join(",");
    let joined = async {
        let mut discovery = Discovery::new(&cfg.discovery, &cfg.discovery_proxy, id)?;
        let cluster = discovery.join_cluster(&config).await?;
        crate::config::values::initial_cluster(&cluster).map_err(|_| ServiceError::InvalidUrl)
    }
    .await;
    joined.map_err(|e| {
        report(cfg, &e);
        DiscoveryFailed(e)
    })
}

/// Logs what etcd's `etcdmain` logs for each kind of failure.
fn report(cfg: &Config, e: &ServiceError) {
    let url = &cfg.discovery;
    match e {
        ServiceError::DuplicateId => {
            tracing::error!(target: "etcdmain", "member {:?} has previously registered with discovery service token ({url}).", cfg.name);
            tracing::error!(target: "etcdmain", "But etcd could not find valid cluster configuration in the given data dir ({}).", cfg.data_dir.display());
            tracing::info!(target: "etcdmain", "Please check the given data dir path if the previous bootstrap succeeded");
            tracing::info!(target: "etcdmain", "or use a new discovery token if the previous bootstrap failed.");
        }
        ServiceError::DuplicateName => {
            tracing::error!(target: "etcdmain", "member with duplicated name has registered with discovery service token({url}).");
            tracing::error!(target: "etcdmain", "please check (cURL) the discovery token for more information.");
            tracing::error!(target: "etcdmain", "please do not reuse the discovery token and generate a new one to bootstrap the cluster.");
        }
        ServiceError::FullCluster if cfg.discovery_fallback == "proxy" => {
            tracing::info!(target: "etcdmain", "discovery cluster full, falling back to proxy");
            tracing::error!(target: "etcdmain", "proxy mode (etcd's v2 proxy) is not built; start with --discovery-fallback=exit, or run `etcd gateway start` in front of the cluster");
        }
        e => {
            tracing::error!(target: "etcdmain", "failed to join discovery cluster ({e})");
            tracing::info!(target: "etcdmain", "discovery token {url} was used, but failed to bootstrap the cluster.");
            tracing::info!(target: "etcdmain", "please generate a new discovery token and try to bootstrap again.");
        }
    }
}
