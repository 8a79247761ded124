//! Bootstrapping through a discovery service (`--discovery URL`, etcd's v2 discovery
//! protocol) on Debian's etcd with `--enable-v2` as the store: ours and Debian's members
//! side by side, for the happy path and the documented failures.

use std::process::Command;
use std::time::Duration;

use etcd_e2e::cluster::Cluster;
use etcd_e2e::{Flavor, Member, Ports};

const LIMIT: Duration = Duration::from_secs(30);

/// A v2 keys store (Debian's etcd) holding discovery tokens.
struct Store(Member);

impl Store {
    fn start() -> Store {
        Store(Member::start(Flavor::Reference, &["--enable-v2"]))
    }

    /// A token directory URL, with `_config/size` set when `size` is given.
    fn token(&self, name: &str, size: Option<u32>) -> String {
        let url = format!("{}/v2/keys/discovery/{name}", self.0.endpoint());
        if let Some(size) = size {
            curl(&[
                "-XPUT",
                &format!("{url}/_config/size"),
                "-d",
                &format!("value={size}"),
            ]);
        }
        url
    }
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .arg("-sf")
        .args(args)
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A member of `flavor` named `name` registering with `token`.
fn spawn(flavor: Flavor, name: &str, token: &str, extra: &[&str]) -> Member {
    let ports = Ports::free();
    let peer = ports.peer_url();
    let mut flags = vec![format!("--discovery={token}")];
    flags.extend(extra.iter().map(|s| s.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Member::spawn_discovering(&[], flavor, name, ports, &peer, &flags)
}

#[test]
fn three_members_form_a_cluster_through_a_discovery_token_as_etcds_do() {
    let store = Store::start();
    for flavor in [Flavor::Reference, Flavor::Ours] {
        let token = store.token(&format!("{flavor:?}-three"), Some(3));
        let cluster = Cluster::of_spawned(
            (0..3)
                .map(|i| spawn(flavor, &format!("infra{i}"), &token, &[]))
                .collect(),
        );
        // Every member is registered under its own ID with `name=peerURL`.
        let dir: serde_json::Value = serde_json::from_str(&curl(&[&token])).unwrap();
        let mut registered: Vec<(String, String)> = dir["node"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| !n["key"].as_str().unwrap().ends_with("/_config"))
            .map(|n| {
                let key = n["key"].as_str().unwrap();
                (
                    key.rsplit('/').next().unwrap().to_string(),
                    n["value"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        registered.sort();
        let mut listed: Vec<(String, String)> = cluster.members[0]
            .ctl_ok(&["member", "list"])
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(", ").collect();
                (f[0].to_string(), format!("{}={}", f[2], f[3]))
            })
            .collect();
        listed.sort();
        assert_eq!(registered, listed, "{flavor:?}");
        for m in &cluster.members {
            assert!(
                m.log().contains("found 3 needed peer(s)"),
                "{flavor:?}: {}",
                m.log()
            );
        }
        assert_eq!(cluster.members[2].ctl_ok(&["put", "k", "v"]), "OK\n");
    }
}

#[test]
fn discovery_failures_end_start_up_as_in_etcd() {
    let store = Store::start();
    for flavor in [Flavor::Reference, Flavor::Ours] {
        let who = format!("{flavor:?}");
        // No size configured.
        let token = store.token(&format!("{who}-nosize"), None);
        let mut m = spawn(flavor, "a", &token, &[]);
        assert_eq!(m.wait_exit(LIMIT), Some(1), "{who}: {}", m.log());
        assert!(
            m.log()
                .contains("failed to join discovery cluster (100: Key not found ("),
            "{who}: {}",
            m.log()
        );
        assert!(
            m.log().contains(&format!(
                "discovery token {token} was used, but failed to bootstrap the cluster."
            )),
            "{who}: {}",
            m.log()
        );

        // A cluster of one forms; its member restarts with the token ignored.
        let token = store.token(&format!("{who}-one"), Some(1));
        let mut first = spawn(flavor, "first", &token, &[]);
        first.wait_healthy(LIMIT);
        first.kill9();
        first.restart();
        assert!(
            first.log().contains("discovery token ignored since a cluster has already been initialized. Valid log found at \""),
            "{who}: {}",
            first.log()
        );

        // The cluster is full: with --discovery-fallback=exit a second member stops.
        let mut second = spawn(flavor, "second", &token, &["--discovery-fallback=exit"]);
        assert_eq!(second.wait_exit(LIMIT), Some(1), "{who}: {}", second.log());
        assert!(
            second
                .log()
                .contains("failed to join discovery cluster (discovery: cluster is full)"),
            "{who}: {}",
            second.log()
        );

        // The first member, its data lost, finds itself registered already.
        first.kill9();
        std::fs::remove_dir_all(&first.data_dir).unwrap();
        first.start_again();
        assert_eq!(first.wait_exit(LIMIT), Some(1), "{who}: {}", first.log());
        assert!(
            first.log().contains(&format!(
                "member \"first\" has previously registered with discovery service token ({token})."
            )),
            "{who}: {}",
            first.log()
        );
    }
}
