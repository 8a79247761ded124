//! Several members of one statically bootstrapped cluster on 127.0.0.1 ports.

use std::time::{Duration, Instant};

use crate::{etcdctl, Flavor, Member, Ports};

/// A running cluster.
pub struct Cluster {
    pub members: Vec<Member>,
}

/// One member's `endpoint status`, as much as the tests need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub member_id: u64,
    pub leader: u64,
    pub raft_term: u64,
    pub raft_index: u64,
    pub revision: i64,
}

/// `--initial-cluster` for members m0..m{n-1} on `ports`.
pub fn initial_cluster(ports: &[Ports]) -> String {
    ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("m{i}={}", p.peer_url()))
        .collect::<Vec<_>>()
        .join(",")
}

impl Cluster {
    /// Starts `n` members named m0..m{n-1} and waits until every one is healthy.
    pub fn start(flavor: Flavor, n: usize, extra: &[&str]) -> Cluster {
        let ports: Vec<Ports> = (0..n).map(|_| Ports::free()).collect();
        let initial = initial_cluster(&ports);
        Cluster::start_on(flavor, ports, &initial, extra)
    }

    /// Starts members on the given ports with the given `--initial-cluster`.
    pub fn start_on(
        flavor: Flavor,
        ports: Vec<Ports>,
        initial_cluster: &str,
        extra: &[&str],
    ) -> Cluster {
        let members = ports
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                Member::spawn_in_cluster(flavor, &format!("m{i}"), p, initial_cluster, extra)
            })
            .collect();
        Cluster::of_spawned(members)
    }

    /// Members of `flavor`, one on each host of `net` (see [`crate::netns`]), with `extra`
    /// flags, once every one is healthy.
    pub fn on_network(
        net: &crate::netns::Network,
        n: usize,
        flavor: Flavor,
        extra: &[&str],
    ) -> Cluster {
        let ports: Vec<Ports> = (0..n).map(|i| Ports::on(net.host(i))).collect();
        let initial = initial_cluster(&ports);
        let members = ports
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                Member::spawn_under(
                    &net.launcher(i),
                    flavor,
                    &format!("m{i}"),
                    p,
                    &initial,
                    extra,
                )
            })
            .collect();
        Cluster::of_spawned(members)
    }

    /// A cluster of members already spawned, once every one is healthy.
    pub fn of_spawned(members: Vec<Member>) -> Cluster {
        let mut cluster = Cluster { members };
        for m in &mut cluster.members {
            m.wait_healthy(Duration::from_secs(30));
        }
        cluster
    }

    /// Client URLs of the running members, comma-separated (etcdctl's `--endpoints`).
    pub fn endpoints(&self) -> String {
        self.running()
            .map(|m| m.endpoint())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The running members.
    pub fn running(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.is_running())
    }

    /// `endpoint status` of one member, or None when it does not answer.
    pub fn status(member: &Member) -> Option<Status> {
        let out = etcdctl(
            &member.endpoint(),
            &["endpoint", "status", "-w", "json", "--command-timeout=2s"],
            None,
        );
        if !out.status.success() {
            return None;
        }
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let s = &json[0]["Status"];
        Some(Status {
            member_id: s["header"]["member_id"].as_u64()?,
            leader: s["leader"].as_u64()?,
            raft_term: s["raftTerm"].as_u64()?,
            raft_index: s["raftIndex"].as_u64()?,
            revision: s["header"]["revision"].as_i64()?,
        })
    }

    /// Index of the member every running member agrees is the leader, waiting up to
    /// `limit` for them to agree.
    pub fn leader(&self, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        loop {
            let statuses: Vec<(usize, Option<Status>)> = self
                .members
                .iter()
                .enumerate()
                .filter(|(_, m)| m.is_running())
                .map(|(i, m)| (i, Cluster::status(m)))
                .collect();
            let leaders: Vec<u64> = statuses
                .iter()
                .filter_map(|(_, s)| s.as_ref().map(|s| s.leader))
                .collect();
            if leaders.len() == statuses.len()
                && leaders.windows(2).all(|w| w[0] == w[1])
                && leaders[0] != 0
            {
                let found = statuses
                    .iter()
                    .find(|(_, s)| s.as_ref().map(|s| s.member_id) == Some(leaders[0]));
                if let Some((i, _)) = found {
                    return *i;
                }
            }
            assert!(
                Instant::now() < deadline,
                "members did not agree on a leader within {limit:?}: {statuses:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills every member with SIGKILL at once, starts them all again on their data dirs
    /// and waits until each is healthy (none can be before a quorum has started).
    pub fn kill9_and_restart_all(&mut self) {
        for m in &mut self.members {
            m.kill9();
        }
        for m in &mut self.members {
            m.start_again();
        }
        for m in &mut self.members {
            m.wait_healthy(Duration::from_secs(30));
        }
    }

    /// Waits until member `i` has applied at least `revision`.
    pub fn wait_revision(&self, i: usize, revision: i64, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Cluster::status(&self.members[i])
            .map(|s| s.revision)
            .unwrap_or(0)
            < revision
        {
            assert!(
                Instant::now() < deadline,
                "member {i} did not reach revision {revision} within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Adds a member through `via` with etcdctl and starts it with the printed settings: a
/// member of `via`'s flavour, reached by etcdctl with `via`'s etcdctl flags (a user to
/// sign in as, for instance).
pub fn add_and_start(via: &Member, name: &str, extra_add: &[&str]) -> Member {
    let ports = Ports::free();
    let peer = ports.peer_url();
    let mut args = vec!["member", "add", name, "--peer-urls", peer.as_str()];
    args.extend_from_slice(extra_add);
    // etcd refuses a new member ("unhealthy cluster") until its peers have been
    // connected for 5 s, which a cluster that just started may not have been.
    let mut out = via.etcdctl(&args);
    crate::wait::until(Duration::from_secs(20), "the new member accepted", || {
        let refused =
            String::from_utf8_lossy(&out.stderr).contains("etcdserver: unhealthy cluster");
        if refused {
            out = via.etcdctl(&args);
        }
        !refused
    });
    assert!(
        out.status.success(),
        "etcdctl {args:?} failed on {:?}: {}",
        via.flavor,
        String::from_utf8_lossy(&out.stderr)
    );
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    let setting = |key: &str| {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {out}"));
        line.split_once('=')
            .unwrap()
            .1
            .trim_matches('"')
            .to_string()
    };
    assert_eq!(setting("ETCD_NAME"), name);
    assert_eq!(setting("ETCD_INITIAL_CLUSTER_STATE"), "existing");
    assert_eq!(setting("ETCD_INITIAL_ADVERTISE_PEER_URLS"), peer);
    let mut m = Member::spawn_in_cluster(
        via.flavor,
        name,
        ports,
        &setting("ETCD_INITIAL_CLUSTER"),
        &["--initial-cluster-state=existing"],
    );
    m.ctl_flags = via.ctl_flags.clone();
    m.wait_healthy(Duration::from_secs(30));
    m
}

/// The ID of the member with `peer_url`, from `member list -w json`.
pub fn member_id(via: &Member, peer_url: &str) -> String {
    let out = via.ctl_ok(&["member", "list", "-w", "json"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let m = json["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["peerURLs"][0] == peer_url)
        .expect("member listed");
    format!("{:x}", m["ID"].as_u64().unwrap())
}
