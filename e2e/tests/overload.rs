//! An overloaded leader refuses new writes with etcd's `too many requests` instead of
//! queueing them without bound. Both followers of a three-member cluster are paused
//! (SIGSTOP), so nothing commits and the leader's proposal queue only grows; a burst of
//! writes larger than the queue must see some refused at once, and no refused write may
//! ever be applied.

use std::time::Duration;

use etcd_client::Client;
use etcd_e2e::cluster::Cluster;
use etcd_e2e::{wait, Flavor};

/// Connections and writes per connection: more writes than the leader's batches in flight
/// (4 of up to 1024) and its queue (4096) hold together.
const CONNECTIONS: usize = 64;
const PER_CONNECTION: usize = 160;

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Outcome {
    Applied,
    Refused,
    TimedOut,
}

#[test]
fn a_full_proposal_queue_refuses_with_too_many_requests() {
    // A long election timeout keeps the leader leading while its followers are paused.
    let flags = ["--heartbeat-interval=500", "--election-timeout=15000"];
    let cluster = Cluster::start(Flavor::Ours, 3, &flags);
    let leader = cluster.leader(Duration::from_secs(20));
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let signal_followers = |sig| {
        for &i in &followers {
            assert!(cluster.members[i].signal(sig), "signal {sig} to m{i}");
        }
    };
    let endpoint = cluster.members[leader].endpoint();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let clients: Vec<Client> = rt.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..CONNECTIONS {
            clients.push(Client::connect([endpoint.clone()], None).await.unwrap());
        }
        clients
    });

    signal_followers(libc::SIGSTOP);
    let outcomes: Vec<(String, Outcome)> = rt.block_on(async {
        let mut tasks = Vec::new();
        for (c, client) in clients.into_iter().enumerate() {
            for i in 0..PER_CONNECTION {
                let mut client = client.clone();
                let key = format!("burst/{c}/{i}");
                tasks.push(tokio::spawn(async move {
                    let outcome = match client.put(key.as_str(), "v", None).await {
                        Ok(_) => Outcome::Applied,
                        Err(etcd_client::Error::GRpcStatus(s))
                            if s.message() == "etcdserver: too many requests" =>
                        {
                            assert_eq!(s.code(), tonic::Code::ResourceExhausted);
                            Outcome::Refused
                        }
                        Err(etcd_client::Error::GRpcStatus(s))
                            if s.message() == "etcdserver: request timed out" =>
                        {
                            Outcome::TimedOut
                        }
                        Err(e) => panic!("unexpected answer to {key}: {e:?}"),
                    };
                    (key, outcome)
                }));
            }
        }
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap());
        }
        outcomes
    });
    signal_followers(libc::SIGCONT);

    let refused: Vec<&String> = outcomes
        .iter()
        .filter(|(_, o)| *o == Outcome::Refused)
        .map(|(k, _)| k)
        .collect();
    assert!(
        !refused.is_empty(),
        "no write was refused out of {}",
        outcomes.len()
    );
    assert!(
        outcomes.iter().all(|(_, o)| *o != Outcome::Applied),
        "nothing can commit while both followers are paused"
    );
    // Once the followers are back, what was queued commits; nothing refused ever does.
    let member = &cluster.members[leader];
    // The leader may have stepped down meanwhile (check-quorum); the put goes through once
    // a leader commits again.
    wait::until(Duration::from_secs(30), "the cluster commits again", || {
        member
            .etcdctl(&["put", "after", "burst", "--command-timeout=3s"])
            .status
            .success()
    });
    let out = member.ctl_ok(&["get", "burst/", "--prefix", "--keys-only"]);
    for key in refused {
        assert!(
            !out.lines().any(|l| l == key),
            "the refused write {key} was applied"
        );
    }
}
