//! Requests a follower hands to the leader, on three of our members whose peer URLs are
//! each behind a proxy (`cutproxy`): a forwarded compare-and-swap whose answer is lost
//! after the leader received it applies once and is reported as etcd reports a lost
//! connection; and the leader serves proposals on its peer URL for current members only.

use std::net::SocketAddr;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};
use etcd_e2e::cluster::Cluster;
use etcd_e2e::cutproxy::{CutProxy, PROXY_WAIT};
use etcd_e2e::wait;
use etcd_e2e::{Flavor, Member, Ports};
use etcd_proto::etcdserverpb::PutRequest;
use etcd_proto::raftpeerpb::raft_peer_client::RaftPeerClient;
use etcd_proto::raftrequestpb::raft_request::Request;
use etcd_proto::raftrequestpb::RaftRequest;

/// Three members, each advertising a proxy in front of its peer listener.
fn cluster_behind_proxies() -> (Cluster, Vec<CutProxy>) {
    let ports: Vec<Ports> = (0..3).map(|_| Ports::free()).collect();
    let proxies: Vec<CutProxy> = ports
        .iter()
        .map(|p| CutProxy::start(SocketAddr::from((p.host, p.peer))))
        .collect();
    let initial = (0..3)
        .map(|i| format!("m{i}={}", proxies[i].url()))
        .collect::<Vec<_>>()
        .join(",");
    let members = ports
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let advertise = format!("--initial-advertise-peer-urls={}", proxies[i].url());
            Member::spawn_in_cluster(Flavor::Ours, &format!("m{i}"), p, &initial, &[&advertise])
        })
        .collect();
    (Cluster::of_spawned(members), proxies)
}

/// `(value, version)` of `key` on `member` alone (serializable), None when absent.
fn key_on(member: &Member, key: &str) -> Option<(String, i64)> {
    let out = member.ctl_ok(&["get", key, "--consistency=s", "-w", "json"]);
    let json: serde_json::Value = serde_json::from_str(&out).expect("etcdctl json");
    let kv = json["kvs"].get(0)?;
    let value = kv["value"].as_str().expect("value");
    let value = String::from_utf8(base64_decode(value)).expect("utf-8 value");
    Some((value, kv["version"].as_i64().expect("version")))
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}

#[test]
fn a_forwarded_cas_whose_answer_is_lost_applies_once() {
    let (cluster, proxies) = cluster_behind_proxies();
    let leader = cluster.leader(Duration::from_secs(10));
    let follower = (leader + 1) % 3;
    const KEY: &str = "forwarded-once";
    proxies[leader].withhold_after(KEY.as_bytes());

    let rt = tokio::runtime::Runtime::new().unwrap();
    let endpoint = cluster.members[follower].endpoint();
    let mut client = rt
        .block_on(Client::connect([endpoint], None))
        .expect("connect to the follower");
    // Applied twice, the second application would take the else branch.
    let cas = Txn::new()
        .when([Compare::version(KEY, CompareOp::Equal, 0)])
        .and_then([TxnOp::put(KEY, "first", None)])
        .or_else([TxnOp::put(KEY, "applied twice", None)]);
    let call = rt.spawn(async move { client.txn(cas).await });

    wait::until(PROXY_WAIT, "the forwarded txn reached the leader", || {
        proxies[leader].armed()
    });
    let leader_member = &cluster.members[leader];
    wait::until(PROXY_WAIT, "the leader applied the txn", || {
        key_on(leader_member, KEY).is_some()
    });
    proxies[leader].cut();
    let answer = rt.block_on(call).expect("the txn task");
    match answer {
        Err(etcd_client::Error::GRpcStatus(s)) => {
            assert_eq!(s.code(), tonic::Code::Unavailable, "{s:?}");
            assert_eq!(
                s.message(),
                "etcdserver: request timed out, possibly due to connection lost"
            );
        }
        other => panic!("a lost answer must not be reported as an outcome: {other:?}"),
    }

    // Once on every member, and the follower forwards again afterwards.
    cluster.members[follower].ctl_ok(&["put", "after-cut", "x"]);
    for m in &cluster.members {
        wait::until(PROXY_WAIT, "every member applied the later put", || {
            key_on(m, "after-cut").is_some()
        });
        assert_eq!(key_on(m, KEY), Some(("first".to_string(), 1)), "{}", m.name);
    }
}

/// The cluster ID (hex) and member IDs (hex) as `member list` gives them.
fn ids(member: &Member) -> (String, Vec<String>) {
    let out = member.ctl_ok(&["member", "list", "-w", "json"]);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    let cluster = format!("{:x}", json["header"]["cluster_id"].as_u64().unwrap());
    let members = json["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{:x}", m["ID"].as_u64().unwrap()))
        .collect();
    (cluster, members)
}

/// A put proposed directly on `member`'s peer URL, as a member named `from` (hex).
async fn propose_as(
    member: &Member,
    cluster_id: &str,
    from: Option<&str>,
    key: &str,
) -> Result<(), tonic::Status> {
    let mut peer = RaftPeerClient::connect(member.ports.peer_url())
        .await
        .expect("connect to the peer URL");
    let mut req = tonic::Request::new(RaftRequest {
        request: Some(Request::Put(PutRequest {
            key: key.as_bytes().to_vec(),
            value: b"v".to_vec(),
            ..Default::default()
        })),
        header: None,
    });
    req.metadata_mut()
        .insert("x-etcd-cluster-id", cluster_id.parse().unwrap());
    if let Some(from) = from {
        req.metadata_mut()
            .insert("x-etcd-from", from.parse().unwrap());
    }
    peer.propose(req).await.map(|_| ())
}

/// The kind of refusal a refused proposal names.
fn refusal(answer: Result<(), tonic::Status>) -> String {
    let status = answer.expect_err("the proposal is refused");
    let kind = status.metadata().get("x-etcd-refusal");
    let kind = kind.unwrap_or_else(|| panic!("no refusal kind in {status:?}"));
    kind.to_str().expect("ascii").to_string()
}

#[test]
fn the_leader_serves_proposals_for_current_members_only() {
    let (cluster, _proxies) = cluster_behind_proxies();
    let leader = cluster.leader(Duration::from_secs(10));
    let follower = (leader + 1) % 3;
    let (cluster_id, members) = ids(&cluster.members[leader]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let on_leader = &cluster.members[leader];

    let stranger = rt.block_on(propose_as(on_leader, &cluster_id, Some("1234"), "stranger"));
    assert_eq!(refusal(stranger), "removed", "a stranger, on the leader");
    let anonymous = rt.block_on(propose_as(on_leader, &cluster_id, None, "anonymous"));
    assert_eq!(refusal(anonymous), "not-member", "naming no member");
    let on_follower = &cluster.members[follower];
    let stranger = rt.block_on(propose_as(
        on_follower,
        &cluster_id,
        Some("1234"),
        "stranger",
    ));
    assert_eq!(refusal(stranger), "not-member", "a stranger, on a follower");
    let other_cluster = rt.block_on(propose_as(on_leader, "abc", Some(&members[0]), "other"));
    assert_eq!(
        refusal(other_cluster),
        "cluster-mismatch",
        "another cluster"
    );

    // A member's proposal is served, and nothing refused was written.
    let follower_id = format!("{:x}", Cluster::status(on_follower).unwrap().member_id);
    assert!(members.contains(&follower_id));
    rt.block_on(propose_as(
        on_leader,
        &cluster_id,
        Some(&follower_id),
        "member",
    ))
    .expect("a member's proposal is served");
    wait::until(PROXY_WAIT, "the member's put is applied", || {
        key_on(on_leader, "member").is_some()
    });
    for key in ["stranger", "anonymous", "other"] {
        assert_eq!(key_on(on_leader, key), None, "{key} was written");
    }
}
