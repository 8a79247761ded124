//! The initial cluster of a new member started with `--discovery-srv` (etcd's DNS
//! discovery): the SRV records of the domain name the members, and this member must be
//! among them.

use url::Url;

use crate::config::Config;

/// Why DNS discovery gave no initial cluster; main ends the process with
/// `error setting up initial cluster: ...`, as etcd does.
#[derive(Debug, thiserror::Error)]
pub enum SrvBootstrapError {
    #[error("{0}")]
    Lookup(#[from] etcd_discovery::SrvError),
    #[error("cannot find local etcd member {0:?} in SRV records")]
    NotListed(String),
    #[error("{0}")]
    BadUrl(String),
}

/// Looks the initial cluster up in DNS, logging each member found as etcd does.
pub async fn initial_cluster(cfg: &Config) -> Result<Vec<(String, Url)>, SrvBootstrapError> {
    let found = lookup(cfg).await.inspect_err(|e| {
        tracing::error!(target: "embed", "couldn't resolve during SRV discovery ({e})");
    })?;
    let mut cluster = Vec::with_capacity(found.len());
    for entry in found {
        tracing::info!(target: "embed", "got bootstrap from DNS for etcd-server at {}={}", entry.name, entry.url);
        let url = Url::parse(&entry.url)
            .map_err(|e| SrvBootstrapError::BadUrl(format!("{}: {e}", entry.url)))?;
        cluster.push((entry.name, url));
    }
    if !cluster.iter().any(|(name, _)| *name == cfg.name) {
        return Err(SrvBootstrapError::NotListed(cfg.name.clone()));
    }
    Ok(cluster)
}

async fn lookup(cfg: &Config) -> Result<Vec<etcd_discovery::ClusterEntry>, SrvBootstrapError> {
    let resolver = etcd_discovery::Resolver::from_system()?;
    // Without a CA of its own, TLS can only show that a peer holds a certificate for its
    // name, so the name must at least lie in the domain the operator chose.
    let https_targets_in_domain = cfg.peer_tls.trusted_ca_file.is_empty();
    Ok(etcd_discovery::server_cluster(
        &resolver,
        &cfg.name,
        &cfg.discovery_srv,
        &cfg.discovery_srv_name,
        &cfg.initial_advertise_peer_urls,
        https_targets_in_domain,
    )
    .await?)
}
