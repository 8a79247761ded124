//! Joining an existing cluster (`--initial-cluster-state existing`): the member list is
//! read from the other members' peer URLs, checked against `--initial-cluster` the way
//! etcd checks it, and this member takes the ID the cluster assigned at `member add`.

use std::collections::BTreeMap;
use std::time::Duration;

use etcd_proto::etcdserverpb::cluster_client::ClusterClient;
use etcd_proto::etcdserverpb::{Member, MemberListRequest};

use super::bootstrap::{
    advertised, members_by_name, persist_identity, Bootstrap, BootstrapError, InitialCluster,
};
use crate::peer::PeerDialer;
use crate::storage::Backend;

/// Asks the listed members (other than this one) for the cluster's members.
async fn remote_members(
    init: &InitialCluster<'_>,
    dialer: &PeerDialer,
) -> Option<(u64, Vec<Member>)> {
    let mine = advertised(init);
    for (_, url) in init.initial_cluster {
        let url = super::ids::url_string(url);
        if mine.contains(&url) {
            continue;
        }
        let Ok((endpoint, tls)) = dialer.endpoint(&url) else {
            continue;
        };
        let endpoint = endpoint
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(5));
        let Ok(channel) = PeerDialer::connect(endpoint, tls).await else {
            continue;
        };
        if let Ok(resp) = ClusterClient::new(channel)
            .member_list(MemberListRequest {
                linearizable: false,
            })
            .await
        {
            let resp = resp.into_inner();
            return Some((
                resp.header.map(|h| h.cluster_id).unwrap_or_default(),
                resp.members,
            ));
        }
    }
    None
}

/// etcd's `ValidateClusterAndAssignIDs`: the local configuration must list the same
/// members with the same peer URLs as the cluster; returns this member's ID.
fn validate(init: &InitialCluster<'_>, remote: &[Member]) -> Result<u64, BootstrapError> {
    let local = members_by_name(init);
    if local.len() != remote.len() {
        return Err(BootstrapError::Validate("member count is unequal".into()));
    }
    let remote_urls: BTreeMap<u64, Vec<String>> = remote
        .iter()
        .map(|m| {
            let mut urls = m.peer_ur_ls.clone();
            urls.sort();
            (m.id, urls)
        })
        .collect();
    for urls in local.values() {
        if !remote_urls.values().any(|r| r == urls) {
            let all: Vec<String> = remote_urls.values().map(|u| u.join(",")).collect();
            return Err(BootstrapError::Validate(format!(
                "unmatched member while checking PeerURLs ({:?} not in {:?})",
                urls.join(","),
                all
            )));
        }
    }
    let mine = advertised(init);
    remote_urls
        .iter()
        .find(|(_, urls)| **urls == mine)
        .map(|(id, _)| *id)
        .ok_or_else(|| BootstrapError::NameNotInCluster(init.name.to_string()))
}

/// Joins an existing cluster, persisting the identity it assigns.
pub async fn join(
    backend: &Backend,
    init: &InitialCluster<'_>,
    dialer: &PeerDialer,
) -> Result<Bootstrap, BootstrapError> {
    let (cluster_id, remote) = remote_members(init, dialer)
        .await
        .ok_or(BootstrapError::NoRemote)?;
    let member_id = validate(init, &remote)?;
    persist_identity(backend, member_id, cluster_id, &BTreeMap::new())?;
    Ok(Bootstrap {
        member_id,
        cluster_id,
        restarted: false,
        members: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, url: &str) -> Member {
        Member {
            id,
            peer_ur_ls: vec![url.into()],
            ..Default::default()
        }
    }

    #[test]
    fn validation_follows_etcd() {
        let cluster = vec![
            (
                "a".to_string(),
                url::Url::parse("http://127.0.0.1:1").unwrap(),
            ),
            (
                "b".to_string(),
                url::Url::parse("http://127.0.0.1:2").unwrap(),
            ),
        ];
        let apurls = [url::Url::parse("http://127.0.0.1:2").unwrap()];
        let init = InitialCluster {
            name: "b",
            token: "t",
            initial_cluster: &cluster,
            advertise_peer_urls: &apurls,
            advertise_client_urls: &[],
        };
        let remote = [
            member(1, "http://127.0.0.1:1"),
            member(2, "http://127.0.0.1:2"),
        ];
        assert_eq!(validate(&init, &remote).unwrap(), 2);
        assert_eq!(
            validate(&init, &remote[..1]).unwrap_err().to_string(),
            "error validating peerURLs: member count is unequal"
        );
        let other = [
            member(1, "http://127.0.0.1:1"),
            member(2, "http://127.0.0.1:3"),
        ];
        assert!(validate(&init, &other)
            .unwrap_err()
            .to_string()
            .contains("unmatched member while checking PeerURLs"));
    }
}
