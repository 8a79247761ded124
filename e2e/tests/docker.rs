//! The etcd-rs image under Docker (`scripts/images.sh` builds it; `ETCD_E2E_IMAGE` names
//! another): one member from the image's defaults (non-root, health check, SIGTERM, its
//! volume), the image's configuration and size, a 3-member cluster on a user-defined network
//! as etcd's documentation runs one (compared with Debian's etcd running the same commands),
//! a member killed and started again, the leader cut off with `docker network disconnect`
//! under write load, a rolling upgrade to another image tag, a snapshot saved to a host
//! directory and restored into a new cluster of containers, and the gateway container in
//! front of a cluster.
//!
//! Docker is required: without a daemon or the image every test here fails saying so.
//! Containers, networks, volumes and tags are named after the test process and removed when
//! a test ends, panicking or not; client ports are published on ephemeral 127.0.0.1 ports.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_e2e::cluster::Cluster;
use etcd_e2e::docker::{
    self, assert_has_all, docker, docker_ok, Container, DockerCluster, Tag, Volume,
};
use etcd_e2e::load::Load;
use etcd_e2e::{etcdctl, transcript, wait, Flavor};

/// The user the image runs as.
const USER: &str = "65532";

/// `docker top`'s column `field` for the container's main process (`uid`, `rss`, ...).
fn top(c: &Container, field: &str) -> String {
    let pid = c.pid().to_string();
    let out = docker_ok(&["top", &c.name, "-o", &format!("pid,{field}")]);
    out.lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&pid.as_str()))
        .and_then(|cols| cols.get(1).map(|s| s.to_string()))
        .unwrap_or_else(|| panic!("no {field} of pid {pid} in docker top: {out}"))
}

/// GETs `url` with curl: the body, or None.
fn http_get(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "2", url])
        .output()
        .expect("run curl");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Debian's etcdctl on the host against `endpoints`, panicking when it fails.
fn host_ctl(endpoints: &str, args: &[&str]) -> String {
    let out = etcdctl(endpoints, args, None);
    assert!(
        out.status.success(),
        "etcdctl {args:?} against {endpoints} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `docker run etcd-rs:dev` with nothing but a published port and a volume: a working
/// one-member cluster reached from the host, running as the image's user, healthy by its
/// HEALTHCHECK, stopped by SIGTERM with exit 0 within 10 s, and its data kept in the volume
/// across a restart. Prints the start-up time and the idle member's RSS (the README's
/// figures).
#[test]
fn image_defaults_make_a_member_that_runs_as_non_root_and_stops_on_sigterm() {
    let image = docker::require();
    let volume = Volume::new();
    let started = Instant::now();
    let c = Container::run(
        &docker::unique("alone"),
        &[
            "-p".into(),
            "127.0.0.1::2379".into(),
            "-v".into(),
            format!("{}:/var/lib/etcd", volume.name),
            image.clone(),
        ],
    );
    let health_url = format!("{}/health", c.endpoint());
    wait::until(
        Duration::from_secs(30),
        "/health on the published port",
        || http_get(&health_url).is_some_and(|b| b.contains("\"health\":\"true\"")),
    );
    let healthy_after = started.elapsed();

    // Not root: the member's process, and the image's configuration.
    assert_eq!(top(&c, "uid"), USER, "the member runs as another user");
    assert_eq!(c.inspect("{{.Config.User}}"), format!("{USER}:{USER}"));

    let ep = c.endpoint();
    assert_eq!(host_ctl(&ep, &["put", "greeting", "hello"]), "OK\n");
    assert_eq!(
        host_ctl(&ep, &["get", "greeting", "--print-value-only"]),
        "hello\n"
    );
    // The image's own etcdctl reaches the member on its default endpoint.
    assert_eq!(
        c.ctl_ok(&["get", "greeting", "--print-value-only"]),
        "hello\n"
    );

    // Docker's HEALTHCHECK (etcdctl endpoint health every 5 s) reports it healthy.
    wait::until(
        Duration::from_secs(40),
        "Docker's health status healthy",
        || c.health() == "healthy",
    );
    let docker_healthy_after = started.elapsed();
    let rss_kib: u64 = top(&c, "rss").parse().expect("rss");

    // SIGTERM (docker stop sends it, then SIGKILL after 10 s): a clean exit 0, in time.
    let stopping = Instant::now();
    docker_ok(&["stop", "-t", "10", &c.name]);
    let stopped_after = stopping.elapsed();
    assert_eq!(
        c.exit_code(),
        0,
        "the member did not exit 0 on SIGTERM:\n{}",
        c.logs()
    );
    assert!(
        stopped_after < Duration::from_secs(10),
        "docker stop took {stopped_after:?}"
    );

    // The volume keeps the data: the same container started again still has the key.
    docker_ok(&["start", &c.name]);
    c.wait_healthy(Duration::from_secs(30));
    assert_eq!(
        host_ctl(&c.endpoint(), &["get", "greeting", "--print-value-only"]),
        "hello\n"
    );
    eprintln!(
        "image {image}: /health answered {healthy_after:?} after docker run, Docker's \
         health check healthy after {docker_healthy_after:?}, idle RSS {:.1} MiB, docker \
         stop (SIGTERM) took {stopped_after:?}",
        rss_kib as f64 / 1024.0
    );
}

/// The image's configuration: entrypoint, user, volume, ports, health check, OCI labels,
/// the binaries it carries, and its compressed size under 40 MB.
#[test]
fn image_is_labelled_configured_and_small() {
    let image = docker::require();
    let field = |f: &str| docker_ok(&["image", "inspect", "--format", f, &image]);
    assert_eq!(field("{{json .Config.Entrypoint}}"), r#"["etcd"]"#);
    assert_eq!(field("{{.Config.User}}"), format!("{USER}:{USER}"));
    assert!(field("{{json .Config.Volumes}}").contains("\"/var/lib/etcd\""));
    let ports = field("{{json .Config.ExposedPorts}}");
    assert!(
        ports.contains("2379/tcp") && ports.contains("2380/tcp"),
        "{ports}"
    );
    assert!(field("{{json .Config.Healthcheck.Test}}").contains("etcdctl"));
    assert!(field("{{json .Config.Env}}").contains("ETCD_DATA_DIR=/var/lib/etcd"));
    for label in ["version", "revision", "source"] {
        let value = field(&format!(
            "{{{{index .Config.Labels \"org.opencontainers.image.{label}\"}}}}"
        ));
        assert!(
            !value.is_empty() && value != "<no value>",
            "label {label} missing"
        );
    }
    // Every binary answers from inside the image (its libraries are there).
    for (bin, arg) in [
        ("etcd", "--version"),
        ("etcdctl", "version"),
        ("etcd-benchmark", "--help"),
        ("etcd-gateway", "--help"),
    ] {
        let out = docker(&["run", "--rm", "--entrypoint", bin, &image, arg]);
        assert!(
            out.status.success(),
            "{bin} {arg} in the image failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let saved = Command::new("sh")
        .args(["-c", &format!("docker save '{image}' | gzip | wc -c")])
        .output()
        .expect("docker save");
    let compressed: u64 = String::from_utf8_lossy(&saved.stdout)
        .trim()
        .parse()
        .expect("size");
    let size: u64 = field("{{.Size}}").parse().expect("size");
    eprintln!(
        "image {image}: {:.1} MB unpacked, {:.1} MB compressed (docker save | gzip)",
        size as f64 / 1e6,
        compressed as f64 / 1e6
    );
    assert!(
        compressed < 40_000_000,
        "the image is {compressed} bytes compressed"
    );
}

/// The commands etcd's Docker walkthrough and the README run against a fresh cluster; their
/// normalised transcripts from Debian's etcdctl on the host must be the same against the
/// containers as against Debian's etcd members.
const SCENARIO: &[&[&str]] = &[
    &["put", "foo", "bar"],
    &["get", "foo"],
    &["put", "foo", "baz", "--prev-kv"],
    &["get", "foo", "-w", "json"],
    &["put", "fop", "1"],
    &["get", "fo", "--prefix", "--keys-only"],
    &["del", "fo", "--prefix", "--prev-kv"],
    &["get", "foo"],
    &["lease", "grant", "600"],
];

#[test]
fn three_members_on_a_user_network_answer_like_etcd_and_keep_writes_across_a_kill() {
    let image = docker::require();
    let cluster = DockerCluster::start(&image, 3);
    let [e1, e2, e3] = [0, 1, 2].map(|i| &cluster.members[i]);

    // As in etcd's docs: a write through one member's etcdctl, read through the others.
    assert_eq!(e1.ctl_ok(&["put", "foo", "bar"]), "OK\n");
    for m in [e2, e3] {
        assert_eq!(m.ctl_ok(&["get", "foo"]), "foo\nbar\n", "{}", m.name);
    }
    e1.ctl_ok(&["del", "foo"]);
    let members = e2.ctl_ok(&["member", "list"]);
    for name in &cluster.names {
        assert!(
            members.contains(&format!("{name}, http://{name}:2380, http://{name}:2379")),
            "{name} missing from member list:\n{members}"
        );
    }

    // The same commands through Debian's etcdctl on the host: the containers (through their
    // published ports) answer as Debian's etcd does.
    let reference = Cluster::start(Flavor::Reference, 3, &[]);
    let ours_ep = cluster.endpoints(&[0, 1, 2]);
    let theirs_ep = reference.endpoints();
    // Bring revisions level first: ours wrote and deleted foo above.
    etcdctl(&theirs_ep, &["put", "foo", "bar"], None);
    etcdctl(&theirs_ep, &["del", "foo"], None);
    for args in SCENARIO {
        let ours = transcript(&etcdctl(&ours_ep, args, None));
        let theirs = transcript(&etcdctl(&theirs_ep, args, None));
        assert_eq!(
            ours, theirs,
            "etcdctl {args:?} differs (left: containers, right: Debian etcd)"
        );
    }
    drop(reference);

    // docker kill the leader while writes go on through the other two, docker start it
    // again with its volume: it catches up and every acknowledged write is everywhere.
    let leader = cluster.leader(Duration::from_secs(20));
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let load = Load::start(Arc::new(Mutex::new(cluster.endpoints(&others))));
    load.wait_acked(10, Duration::from_secs(20));
    docker_ok(&["kill", &cluster.members[leader].name]);
    load.wait_acked(load.acked() + 20, Duration::from_secs(30));
    docker_ok(&["start", &cluster.members[leader].name]);
    cluster.members[leader].wait_healthy(Duration::from_secs(30));
    load.wait_acked(load.acked() + 10, Duration::from_secs(20));
    let acked = load.finish();
    cluster.converged(Duration::from_secs(30));
    let data = cluster.members[0].everything_local();
    for m in &cluster.members {
        assert_has_all(m, "load/", &acked);
        assert_eq!(m.everything_local(), data, "{} differs", m.name);
    }
    eprintln!("kill/start: {} acknowledged writes kept", acked.len());
}

/// `docker network disconnect` of the leader under write load: the other two elect a new
/// leader and keep acknowledging writes, the old one steps down and refuses writes, and
/// after `docker network connect` every member converges with every acknowledged write.
#[test]
fn leader_disconnected_from_the_network_steps_down_and_the_rest_go_on() {
    let image = docker::require();
    let cluster = DockerCluster::start(&image, 3);
    let old = cluster.leader(Duration::from_secs(20));
    let majority: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    let old_member = &cluster.members[old];
    let old_term = old_member.status().expect("leader status").raft_term;

    let load = Load::start(Arc::new(Mutex::new(cluster.endpoints(&majority))));
    load.wait_acked(10, Duration::from_secs(20));
    docker_ok(&["network", "disconnect", &cluster.net.name, &old_member.name]);
    let cut = Instant::now();

    let mut new_leader = 0;
    wait::until(
        Duration::from_secs(15),
        "a new leader among the rest",
        || {
            let statuses: Option<Vec<_>> = majority
                .iter()
                .map(|&i| cluster.members[i].status())
                .collect();
            let Some(s) = statuses else { return false };
            new_leader = s[0].leader;
            s.iter()
                .all(|s| s.leader == new_leader && s.raft_term > old_term)
                && s.iter().any(|s| s.member_id == new_leader)
        },
    );
    let elected_after = cut.elapsed();
    // The old leader (reached with docker exec: it has no network) stops naming itself
    // leader: its status has no leader.
    wait::until(
        Duration::from_secs(10),
        "the old leader stepping down",
        || old_member.status().is_some_and(|s| s.leader == 0),
    );
    let stepped_down_after = cut.elapsed();
    let put = old_member.ctl(&["put", "isolated", "x", "--command-timeout=15s"]);
    assert!(!put.status.success(), "the cut-off old leader took a write");
    load.wait_acked(load.acked() + 10, Duration::from_secs(20));

    docker_ok(&["network", "connect", &cluster.net.name, &old_member.name]);
    load.wait_acked(load.acked() + 10, Duration::from_secs(20));
    let acked = load.finish();
    cluster.leader(Duration::from_secs(30));
    cluster.converged(Duration::from_secs(30));
    let data = cluster.members[0].everything_local();
    for m in &cluster.members {
        assert_has_all(m, "load/", &acked);
        assert_eq!(
            m.everything_local(),
            data,
            "{} differs after reconnecting",
            m.name
        );
        assert_eq!(
            m.ctl_ok(&["get", "isolated", "--consistency=s"]),
            "",
            "{}: the refused write was applied",
            m.name
        );
    }
    eprintln!(
        "disconnect: new leader after {elected_after:?}, old stepped down after \
         {stepped_down_after:?}, {} acknowledged writes kept",
        acked.len()
    );
}

/// Each container replaced by one of a newer tag (the same binaries, another version label)
/// on the same volume, one at a time, while writes go on through the others.
#[test]
fn rolling_upgrade_to_a_new_tag_keeps_every_write() {
    let image = docker::require();
    let next = Tag::relabel(&image, &[("org.opencontainers.image.version", "next")]);
    let mut cluster = DockerCluster::start(&image, 3);
    let endpoints = Arc::new(Mutex::new(cluster.endpoints(&[0, 1, 2])));
    let load = Load::start(endpoints.clone());
    load.wait_acked(10, Duration::from_secs(20));
    for i in 0..3 {
        let others: Vec<usize> = (0..3).filter(|&j| j != i).collect();
        *endpoints.lock().unwrap() = cluster.endpoints(&others);
        cluster.replace(i, &next.name);
        *endpoints.lock().unwrap() = cluster.endpoints(&[0, 1, 2]);
        load.wait_acked(load.acked() + 10, Duration::from_secs(30));
    }
    let acked = load.finish();
    cluster.converged(Duration::from_secs(30));
    let data = cluster.members[0].everything_local();
    for m in &cluster.members {
        let label = m.inspect("{{index .Config.Labels \"org.opencontainers.image.version\"}}");
        assert_eq!(label, "next", "{} runs the old image", m.name);
        assert_has_all(m, "load/", &acked);
        assert_eq!(m.everything_local(), data, "{} differs", m.name);
    }
    eprintln!("rolling upgrade: {} acknowledged writes kept", acked.len());
}

/// `etcdctl snapshot save` inside a container onto a mounted host directory, then
/// `etcdctl snapshot restore` in containers into the volumes of a new 3-member cluster,
/// which starts with the same keys, values and revisions.
#[test]
fn snapshot_saved_to_the_host_restores_into_a_new_cluster() {
    let image = docker::require();
    let backup = tempfile::tempdir().expect("tempdir");
    // The member's user writes there.
    std::fs::set_permissions(
        backup.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    let mount = format!("{}:/backup", backup.path().display());
    let mut old = DockerCluster::new(3, &["-v", &mount]);
    old.start_members(&image);
    let ep = old.endpoints(&[0, 1, 2]);
    for i in 0..50 {
        host_ctl(&ep, &["put", &format!("k{i:02}"), &format!("v{i}")]);
    }
    host_ctl(&ep, &["del", "k07"]);
    old.members[0].ctl_ok(&["snapshot", "save", "/backup/snap.db"]);
    assert!(
        backup
            .path()
            .join("snap.db")
            .metadata()
            .expect("snapshot")
            .len()
            > 0
    );
    let status = old.members[1].ctl_ok(&["snapshot", "status", "/backup/snap.db", "-w", "json"]);
    let expected = old.members[0].everything_local();
    drop(old);

    // A new cluster: each member's volume filled by `etcdctl snapshot restore` in a
    // container of the image, then the members started on the restored data.
    let mut new = DockerCluster::new(
        3,
        &["-v", &mount, "-e", "ETCD_DATA_DIR=/var/lib/etcd/restored"],
    );
    for i in 0..3 {
        let name = &new.names[i];
        let out = docker(&[
            "run",
            "--rm",
            "-v",
            &format!("{}:/var/lib/etcd", new.volumes[i].name),
            "-v",
            &mount,
            "--entrypoint",
            "etcdctl",
            &image,
            "snapshot",
            "restore",
            "/backup/snap.db",
            &format!("--name={name}"),
            &format!("--initial-cluster={}", new.initial_cluster()),
            &format!("--initial-cluster-token={}", new.token),
            &format!("--initial-advertise-peer-urls=http://{name}:2380"),
            "--data-dir=/var/lib/etcd/restored",
        ]);
        assert!(
            out.status.success(),
            "snapshot restore for {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    new.start_members(&image);
    new.converged(Duration::from_secs(30));
    for m in &new.members {
        assert_eq!(
            m.everything_local(),
            expected,
            "{} differs from the backup",
            m.name
        );
    }
    let ep = new.endpoints(&[0, 1, 2]);
    host_ctl(&ep, &["put", "after", "restore"]);
    let members = host_ctl(&ep, &["member", "list"]);
    assert_eq!(members.lines().count(), 3, "{members}");
    eprintln!("snapshot status: {}", status.trim());
}

/// `etcd-gateway` from the same image, in a container on the cluster's network in front of
/// the three members: Debian's etcdctl on the host works through its published port, goes
/// on working with a member killed (the gateway dials another), Docker's health check
/// passes through it (`ETCDCTL_ENDPOINTS` set to the gateway), and SIGTERM stops it with
/// exit 0.
#[test]
fn gateway_container_in_front_of_the_cluster() {
    let image = docker::require();
    let cluster = DockerCluster::start(&image, 3);
    let endpoints = cluster
        .names
        .iter()
        .map(|n| format!("{n}:2379"))
        .collect::<Vec<_>>()
        .join(",");
    let gateway = Container::run(
        &format!("{}-gateway", cluster.net.name.trim_end_matches("-net")),
        &[
            "--network".into(),
            cluster.net.name.clone(),
            "-p".into(),
            "127.0.0.1::23790".into(),
            "-e".into(),
            "ETCDCTL_ENDPOINTS=http://127.0.0.1:23790".into(),
            "--entrypoint".into(),
            "etcd-gateway".into(),
            image.clone(),
            "start".into(),
            format!("--endpoints={endpoints}"),
            "--listen-addr=0.0.0.0:23790".into(),
            "--retry-delay=1s".into(),
        ],
    );
    let ep = format!("http://127.0.0.1:{}", gateway.host_port(23790));
    wait::until(
        Duration::from_secs(30),
        "the cluster through the gateway",
        || etcdctl(&ep, &["endpoint", "health"], None).status.success(),
    );
    assert_eq!(host_ctl(&ep, &["put", "via", "gateway"]), "OK\n");
    for m in &cluster.members {
        assert_eq!(m.ctl_ok(&["get", "via", "--print-value-only"]), "gateway\n");
    }
    // Each etcdctl run is a new connection, which the gateway gives to a member it can
    // dial: with one member killed, every one still succeeds.
    docker_ok(&["kill", &cluster.members[0].name]);
    for i in 0..10 {
        let key = format!("after-kill-{i}");
        assert_eq!(host_ctl(&ep, &["put", &key, "x"]), "OK\n");
    }
    assert_eq!(
        host_ctl(&ep, &["get", "after-kill-", "--prefix", "--keys-only"])
            .lines()
            .filter(|l| !l.is_empty())
            .count(),
        10
    );
    wait::until(
        Duration::from_secs(40),
        "the gateway container healthy",
        || gateway.health() == "healthy",
    );
    docker_ok(&["stop", "-t", "10", &gateway.name]);
    assert_eq!(
        gateway.exit_code(),
        0,
        "the gateway did not exit 0 on SIGTERM:\n{}",
        gateway.logs()
    );
}
