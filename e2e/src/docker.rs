//! Containers of the etcd-rs image (`scripts/images.sh`): networks, volumes and containers
//! that remove themselves when dropped (even when a test panics), named after the test
//! process so parallel runs never share one, with client ports published on ephemeral
//! 127.0.0.1 ports that the tests read back from Docker.
//!
//! Docker is required: without it (or without the image) a test fails saying so.

use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::cluster::Status;

/// The image under test: `ETCD_E2E_IMAGE`, or `etcd-rs:dev`.
pub fn image() -> String {
    std::env::var("ETCD_E2E_IMAGE").unwrap_or_else(|_| "etcd-rs:dev".to_string())
}

/// Checks that Docker answers and the image exists; returns the image's name. Panics with
/// what is missing otherwise: the container tests do not skip.
pub fn require() -> String {
    let version = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    match version {
        Err(e) => panic!(
            "the container tests need Docker: cannot run `docker` ({e}); install Docker and \
             start its daemon"
        ),
        Ok(out) if !out.status.success() => panic!(
            "the container tests need a running Docker daemon: `docker version` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Ok(_) => {}
    }
    let image = image();
    let found = docker(&["image", "inspect", "--format", "{{.Id}}", &image]);
    assert!(
        found.status.success(),
        "image {image} is missing: build it with `bash scripts/images.sh` ({})",
        String::from_utf8_lossy(&found.stderr).trim()
    );
    image
}

/// Runs `docker` with `args`.
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run docker")
}

/// Runs `docker` and returns its trimmed stdout, panicking with stderr when it fails.
pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A name no other test process and no other object of this one uses:
/// `e2e<pid>x<n>-<what>`.
pub fn unique(what: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "e2e{}x{}-{what}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A user-defined bridge network, removed on drop.
pub struct Network {
    pub name: String,
}

impl Network {
    pub fn new() -> Network {
        let name = unique("net");
        docker_ok(&["network", "create", &name]);
        Network { name }
    }
}

impl Default for Network {
    fn default() -> Self {
        Network::new()
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = docker(&["network", "rm", &self.name]);
    }
}

/// A named volume, removed on drop (after the containers using it: declare it first).
pub struct Volume {
    pub name: String,
}

impl Volume {
    pub fn new() -> Volume {
        let name = unique("data");
        docker_ok(&["volume", "create", &name]);
        Volume { name }
    }
}

impl Default for Volume {
    fn default() -> Self {
        Volume::new()
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = docker(&["volume", "rm", "-f", &self.name]);
    }
}

/// An image tag made for one test (`docker tag`), removed on drop.
pub struct Tag {
    pub name: String,
}

impl Tag {
    /// Builds `FROM base` with `labels` as a new tag: the same binaries, another image.
    pub fn relabel(base: &str, labels: &[(&str, &str)]) -> Tag {
        let name = format!("etcd-rs:{}", unique("tag"));
        let mut dockerfile = format!("FROM {base}\n");
        for (k, v) in labels {
            dockerfile.push_str(&format!("LABEL {k}=\"{v}\"\n"));
        }
        let mut child = Command::new("docker")
            .args(["build", "-q", "-t", &name, "-"])
            .env("DOCKER_BUILDKIT", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run docker build");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(dockerfile.as_bytes()).expect("dockerfile");
        }
        let out = child.wait_with_output().expect("docker build");
        assert!(
            out.status.success(),
            "docker build of {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tag { name }
    }
}

impl Drop for Tag {
    fn drop(&mut self) {
        let _ = docker(&["image", "rm", "-f", &self.name]);
    }
}

/// A container (running or stopped), removed with its anonymous volumes on drop.
pub struct Container {
    pub name: String,
}

impl Container {
    /// `docker run -d --name <name> <args...>`; `args` holds docker's options, the image
    /// and the command's arguments.
    pub fn run(name: &str, args: &[String]) -> Container {
        let mut all = vec!["run", "-d", "--name", name];
        all.extend(args.iter().map(String::as_str));
        // Owned from here on, so a failed start still removes what `docker run` created.
        let c = Container {
            name: name.to_string(),
        };
        docker_ok(&all);
        c
    }

    /// `docker exec` of `args` in the container.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut all = vec!["exec", self.name.as_str()];
        all.extend_from_slice(args);
        docker(&all)
    }

    /// The image's `etcdctl` inside the container, against the member's own client URL.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let mut all = vec!["etcdctl"];
        all.extend_from_slice(args);
        self.exec(&all)
    }

    /// [`Container::ctl`]'s stdout, panicking with stderr and the log when it fails.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "etcdctl {args:?} in {} failed: {}\n{}",
            self.name,
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `docker inspect --format <format>` of the container.
    pub fn inspect(&self, format: &str) -> String {
        docker_ok(&["inspect", "--format", format, &self.name])
    }

    /// Whether the container's process is running.
    pub fn running(&self) -> bool {
        self.inspect("{{.State.Running}}") == "true"
    }

    /// The exit code Docker recorded.
    pub fn exit_code(&self) -> i32 {
        self.inspect("{{.State.ExitCode}}")
            .parse()
            .expect("exit code")
    }

    /// The HEALTHCHECK's status (`starting`, `healthy`, `unhealthy`).
    pub fn health(&self) -> String {
        self.inspect("{{if .State.Health}}{{.State.Health.Status}}{{end}}")
    }

    /// The main process's ID as the host sees it.
    pub fn pid(&self) -> u32 {
        self.inspect("{{.State.Pid}}").parse().expect("pid")
    }

    /// The host port (on 127.0.0.1) published for `port/tcp`.
    pub fn host_port(&self, port: u16) -> u16 {
        let out = docker_ok(&["port", &self.name, &format!("{port}/tcp")]);
        let first = out.lines().next().unwrap_or_default();
        first
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no host port for {port} of {}: {out:?}", self.name))
    }

    /// The client URL as the host reaches it (the published 2379).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.host_port(2379))
    }

    /// What the container printed so far.
    pub fn logs(&self) -> String {
        let out = docker(&["logs", "--tail", "60", &self.name]);
        format!(
            "--- last lines of {}:\n{}{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Waits until `etcdctl endpoint health` inside the container succeeds.
    pub fn wait_healthy(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if self
                .ctl(&["endpoint", "health", "--command-timeout=2s"])
                .status
                .success()
            {
                return;
            }
            if Instant::now() > deadline || !self.running() {
                panic!(
                    "{} not healthy after {limit:?} (running: {}):\n{}",
                    self.name,
                    self.running(),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `endpoint status` of the member through its own etcdctl, or None. A member without
    /// a leader answers without the field (it is 0): its leader is 0 here.
    pub fn status(&self) -> Option<Status> {
        let out = self.ctl(&["endpoint", "status", "-w", "json", "--command-timeout=2s"]);
        if !out.status.success() {
            return None;
        }
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let s = &json[0]["Status"];
        Some(Status {
            member_id: s["header"]["member_id"].as_u64()?,
            leader: s["leader"].as_u64().unwrap_or(0),
            raft_term: s["raftTerm"].as_u64()?,
            raft_index: s["raftIndex"].as_u64()?,
            revision: s["header"]["revision"].as_i64()?,
        })
    }

    /// The keys under `prefix` this member alone holds (a serializable read).
    pub fn keys_local(&self, prefix: &str) -> BTreeSet<String> {
        self.ctl_ok(&["get", prefix, "--prefix", "--keys-only", "--consistency=s"])
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Every key-value with its revisions on this member alone, as etcdctl's JSON, without
    /// the header (which names the member).
    pub fn everything_local(&self) -> serde_json::Value {
        let out = self.ctl_ok(&["get", "", "--prefix", "--consistency=s", "-w", "json"]);
        let json: serde_json::Value = serde_json::from_str(&out).expect("etcdctl json");
        json["kvs"].clone()
    }
}

impl Container {
    /// Forgets the container without removing it (another value owns it now).
    pub fn disarm(mut self) {
        self.name.clear();
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.name.is_empty() {
            return;
        }
        let _ = docker(&["rm", "-f", "-v", &self.name]);
    }
}

/// A statically bootstrapped cluster of containers on one user-defined network, as etcd's
/// documentation runs it: member `i` is the container `<prefix>-etcd<i>`, its peer and
/// client URLs name the container, `--initial-cluster` lists them all, its data is in a
/// named volume, and its client port is published on an ephemeral 127.0.0.1 port.
pub struct DockerCluster {
    // Dropped in this order: containers before the volumes and network they use.
    pub members: Vec<Container>,
    pub volumes: Vec<Volume>,
    pub net: Network,
    pub names: Vec<String>,
    pub token: String,
    docker_opts: Vec<String>,
}

impl DockerCluster {
    /// Starts `n` members of `image` and waits until every one is healthy.
    pub fn start(image: &str, n: usize) -> DockerCluster {
        let mut cluster = DockerCluster::new(n, &[]);
        cluster.start_members(image);
        cluster
    }

    /// The network, volumes and names of `n` members, none started yet; `docker_opts`
    /// (a bind mount, an environment variable) are given to every member's `docker run`.
    pub fn new(n: usize, docker_opts: &[&str]) -> DockerCluster {
        let net = Network::new();
        let prefix = net.name.trim_end_matches("-net").to_string();
        let names: Vec<String> = (1..=n).map(|i| format!("{prefix}-etcd{i}")).collect();
        DockerCluster {
            members: Vec::new(),
            volumes: (0..n).map(|_| Volume::new()).collect(),
            net,
            token: format!("{prefix}-token"),
            names,
            docker_opts: docker_opts.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Starts every member of `image` (a new cluster, or one whose volumes hold restored
    /// data) and waits until every one is healthy.
    pub fn start_members(&mut self, image: &str) {
        for i in 0..self.names.len() {
            let c = Container::run(&self.names[i], &self.member_args(i, image, "new"));
            self.members.push(c);
        }
        self.wait_healthy(Duration::from_secs(60));
    }

    /// `--initial-cluster` naming every member's container.
    pub fn initial_cluster(&self) -> String {
        self.names
            .iter()
            .map(|n| format!("{n}=http://{n}:2380"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `docker run`'s arguments for member `i`: options, image, then etcd's flags.
    pub fn member_args(&self, i: usize, image: &str, state: &str) -> Vec<String> {
        let name = &self.names[i];
        let mut args = self.docker_opts.clone();
        args.extend(
            [
                "--network",
                &self.net.name,
                "-v",
                &format!("{}:/var/lib/etcd", self.volumes[i].name),
                "-p",
                "127.0.0.1::2379",
                image,
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        args.extend(DockerCluster::member_flags(
            name,
            &self.initial_cluster(),
            &self.token,
            state,
        ));
        args
    }

    /// etcd's flags for a member `name` whose container has the same name.
    pub fn member_flags(name: &str, initial: &str, token: &str, state: &str) -> Vec<String> {
        vec![
            format!("--name={name}"),
            format!("--initial-advertise-peer-urls=http://{name}:2380"),
            "--listen-peer-urls=http://0.0.0.0:2380".to_string(),
            format!("--advertise-client-urls=http://{name}:2379"),
            "--listen-client-urls=http://0.0.0.0:2379".to_string(),
            format!("--initial-cluster={initial}"),
            format!("--initial-cluster-token={token}"),
            format!("--initial-cluster-state={state}"),
        ]
    }

    /// Waits until every member is healthy.
    pub fn wait_healthy(&self, limit: Duration) {
        for m in &self.members {
            m.wait_healthy(limit);
        }
    }

    /// The published client URLs of members `which`, comma-separated.
    pub fn endpoints(&self, which: &[usize]) -> String {
        which
            .iter()
            .map(|&i| self.members[i].endpoint())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Index of the member every member in `among` names as leader, once they agree.
    pub fn leader_among(&self, among: &[usize], limit: Duration) -> usize {
        let mut found = None;
        crate::wait::until(limit, "members agreeing on a leader", || {
            let statuses: Option<Vec<Status>> =
                among.iter().map(|&i| self.members[i].status()).collect();
            let Some(statuses) = statuses else {
                return false;
            };
            let leader = statuses[0].leader;
            if leader == 0 || statuses.iter().any(|s| s.leader != leader) {
                return false;
            }
            found = among
                .iter()
                .zip(&statuses)
                .find(|(_, s)| s.member_id == leader)
                .map(|(&i, _)| i);
            found.is_some()
        });
        found.expect("leader")
    }

    /// [`DockerCluster::leader_among`] all members.
    pub fn leader(&self, limit: Duration) -> usize {
        let all: Vec<usize> = (0..self.members.len()).collect();
        self.leader_among(&all, limit)
    }

    /// Waits until every member has applied the same revision, and returns it.
    pub fn converged(&self, limit: Duration) -> i64 {
        let mut rev = 0;
        crate::wait::until(limit, "every member at the same revision", || {
            let revs: Option<Vec<i64>> = self
                .members
                .iter()
                .map(|m| m.status().map(|s| s.revision))
                .collect();
            match revs {
                Some(r) if r.windows(2).all(|w| w[0] == w[1]) => {
                    rev = r[0];
                    true
                }
                _ => false,
            }
        });
        rev
    }

    /// Replaces member `i`'s container by a new one of `image` on the same volume (SIGTERM,
    /// remove, run), as a rolling upgrade does.
    pub fn replace(&mut self, i: usize, image: &str) {
        docker_ok(&["stop", "-t", "10", &self.members[i].name]);
        let code = self.members[i].exit_code();
        assert_eq!(code, 0, "{} exited with {code} on SIGTERM", self.names[i]);
        docker_ok(&["rm", &self.members[i].name]);
        let args = self.member_args(i, image, "new");
        let new = Container::run(&self.names[i], &args);
        // The old value names the new container now: it must not remove it when dropped.
        std::mem::replace(&mut self.members[i], new).disarm();
        self.members[i].wait_healthy(Duration::from_secs(60));
    }
}

/// Asserts that `member` alone holds every key in `acked`.
pub fn assert_has_all(member: &Container, prefix: &str, acked: &BTreeSet<String>) {
    let keys = member.keys_local(prefix);
    let missing: Vec<&String> = acked.difference(&keys).collect();
    assert!(
        missing.is_empty(),
        "{} lacks {} acknowledged keys: {missing:?}",
        member.name,
        missing.len()
    );
}
