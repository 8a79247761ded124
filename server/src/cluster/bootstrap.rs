//! Who this member is: read back from the data dir on restart, or derived from the
//! initial-cluster configuration on first start (with etcd's checks and messages).

use std::collections::BTreeMap;

use super::ids::{cluster_id, member_id, url_string};
use crate::raft::types::{decode, encode, MemberNode};
use crate::storage::keys::{CLUSTER_ID, MEMBER_ID, PENDING_MEMBERS};
use crate::storage::Backend;

/// Errors bootstrapping, with etcd's texts.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("couldn't find local name {0:?} in the initial cluster configuration")]
    NameNotInCluster(String),
    #[error("--initial-cluster has {name}={cluster_urls} but missing from --initial-advertise-peer-urls={advertised} (failed to resolve {advertised} to match --initial-cluster={name}={cluster_urls} (\"{advertised}\"(resolved from {advertised}) != \"{cluster_urls}\"(resolved from {cluster_urls})))")]
    AdvertiseMismatch {
        name: String,
        cluster_urls: String,
        advertised: String,
    },
    #[error("error validating peerURLs: {0}")]
    Validate(String),
    #[error("cannot fetch cluster info from peer urls: could not retrieve cluster information from the given URLs")]
    NoRemote,
    #[error("backend: {0}")]
    Backend(#[from] sled::Error),
    #[error("{0}")]
    State(#[from] crate::storage::BackendError),
    #[error("backend: corrupt pending membership: {0}")]
    Pending(String),
}

/// The identity and the initial membership of a member.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub member_id: u64,
    pub cluster_id: u64,
    /// Whether the data dir already held this member.
    pub restarted: bool,
    /// Initial raft membership (first start only).
    pub members: BTreeMap<u64, MemberNode>,
}

/// What the configuration says about the cluster to bootstrap.
pub struct InitialCluster<'a> {
    pub name: &'a str,
    pub token: &'a str,
    pub initial_cluster: &'a [(String, url::Url)],
    pub advertise_peer_urls: &'a [url::Url],
    pub advertise_client_urls: &'a [url::Url],
}

fn read_u64(backend: &Backend, key: &[u8]) -> Result<Option<u64>, sled::Error> {
    Ok(backend
        .state()
        .get(key)?
        .and_then(|v| Some(u64::from_be_bytes(v.as_ref().try_into().ok()?))))
}

/// The identity persisted by an earlier start, if any, with the membership raft still has
/// to be initialized with when the data dir was restored or forced into a new cluster.
pub fn load_identity(backend: &Backend) -> Result<Option<Bootstrap>, BootstrapError> {
    if let (Some(member_id), Some(cluster_id)) = (
        read_u64(backend, MEMBER_ID)?,
        read_u64(backend, CLUSTER_ID)?,
    ) {
        let members = match backend.state().get(PENDING_MEMBERS)? {
            Some(raw) => decode(&raw).map_err(|e| BootstrapError::Pending(e.to_string()))?,
            None => BTreeMap::new(),
        };
        return Ok(Some(Bootstrap {
            member_id,
            cluster_id,
            restarted: true,
            members,
        }));
    }
    Ok(None)
}

/// Records the membership raft is to be initialized with on the next start (after a
/// restore, or `--force-new-cluster`).
pub fn set_pending_members(
    backend: &Backend,
    members: &BTreeMap<u64, MemberNode>,
) -> Result<(), BootstrapError> {
    let raw = encode(members).map_err(|e| BootstrapError::Pending(e.to_string()))?;
    backend.state().insert(PENDING_MEMBERS, raw)?;
    backend.sync_state()?;
    Ok(())
}

/// Forgets the pending membership once raft has been initialized with it.
pub fn clear_pending_members(backend: &Backend) -> Result<(), BootstrapError> {
    backend.state().remove(PENDING_MEMBERS)?;
    backend.sync_state()?;
    Ok(())
}

/// Persists a new member's identity before anything else is written, together with the
/// membership raft is to be initialized with (if any), in one durable batch: a crash
/// before raft has been initialized leaves a member that initializes it on its next start
/// instead of one that knows who it is but never starts.
pub fn persist_identity(
    backend: &Backend,
    member_id: u64,
    cluster_id: u64,
    members: &BTreeMap<u64, MemberNode>,
) -> Result<(), BootstrapError> {
    let mut batch = sled::Batch::default();
    batch.insert(MEMBER_ID, &member_id.to_be_bytes()[..]);
    batch.insert(CLUSTER_ID, &cluster_id.to_be_bytes()[..]);
    if !members.is_empty() {
        let raw = encode(members).map_err(|e| BootstrapError::Pending(e.to_string()))?;
        batch.insert(PENDING_MEMBERS, raw);
    }
    backend.state().apply_batch(batch)?;
    backend.sync_state()?;
    Ok(())
}

/// The initial cluster's members grouped by name, each with its sorted peer URLs.
pub fn members_by_name<'a>(init: &InitialCluster<'a>) -> BTreeMap<&'a str, Vec<String>> {
    let mut by_name: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, url) in init.initial_cluster {
        by_name
            .entry(name.as_str())
            .or_default()
            .push(url_string(url));
    }
    by_name.values_mut().for_each(|urls| urls.sort());
    by_name
}

/// This member's advertised peer URLs, sorted.
pub fn advertised(init: &InitialCluster<'_>) -> Vec<String> {
    let mut urls: Vec<String> = init.advertise_peer_urls.iter().map(url_string).collect();
    urls.sort();
    urls
}

/// Determines the member's identity for a new cluster (`--initial-cluster-state new`),
/// persisting it on first start; a restarted member reads it back.
pub fn bootstrap(
    backend: &Backend,
    init: &InitialCluster<'_>,
) -> Result<Bootstrap, BootstrapError> {
    if let Some(boot) = load_identity(backend)? {
        return Ok(boot);
    }
    let by_name = members_by_name(init);
    let mine = by_name
        .get(init.name)
        .ok_or_else(|| BootstrapError::NameNotInCluster(init.name.to_string()))?;
    let advertised = advertised(init);
    let expected = mine.clone();
    if advertised != expected {
        return Err(BootstrapError::AdvertiseMismatch {
            name: init.name.to_string(),
            cluster_urls: expected.join(","),
            advertised: advertised.join(","),
        });
    }
    let mut members = BTreeMap::new();
    for (name, urls) in &by_name {
        let id = member_id(urls, init.token, None);
        let client_urls = if *name == init.name {
            init.advertise_client_urls.iter().map(url_string).collect()
        } else {
            Vec::new()
        };
        members.insert(
            id,
            MemberNode {
                name: name.to_string(),
                peer_urls: urls.clone(),
                client_urls,
                voter: true,
            },
        );
    }
    let ids: Vec<u64> = members.keys().copied().collect();
    let me = member_id(mine, init.token, None);
    let cid = cluster_id(&ids);
    persist_identity(backend, me, cid, &members)?;
    Ok(Bootstrap {
        member_id: me,
        cluster_id: cid,
        restarted: false,
        members,
    })
}
