//! The end-to-end harness: starts real `etcd` processes — ours, or Debian's etcd 3.4 as the
//! reference — on free 127.0.0.1 ports with their own data dirs, and drives them with
//! Debian's `etcdctl`. Differential tests run the same commands against both flavours and
//! compare the outputs after [`normalise`] has blanked what legitimately differs.

pub mod auth;
pub mod cgroup;
pub mod cluster;
pub mod cutproxy;
pub mod dns;
pub mod docker;
pub mod gateway;
pub mod grpc;
pub mod history;
pub mod kv_model;
pub mod load;
pub mod lossyfs;
pub mod nemesis;
pub mod netns;
pub mod normalise;
pub mod pki;
pub mod verdict;
pub mod wait;
pub mod watch_log;
pub mod watcher;
pub mod wgl;
pub mod workload;

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use normalise::normalise;

/// Which implementation a member runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// This project's `etcd` binary, built in the same target dir as the tests.
    Ours,
    /// Debian's etcd 3.4 (`/usr/bin/etcd`).
    Reference,
}

impl Flavor {
    /// The binary to run.
    pub fn binary(self) -> PathBuf {
        match self {
            Flavor::Ours => our_binary("etcd"),
            Flavor::Reference => PathBuf::from("/usr/bin/etcd"),
        }
    }
}

/// A binary of this workspace, found beside the running test executable
/// (`target/<profile>/deps/<test>` → `target/<profile>/<name>`).
pub fn our_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// Where [`free_port`] looks: below Linux's ephemeral range (32768 and up), which the
/// kernel hands to outgoing connections and to `bind(0)`; a port found free there was
/// often taken again by a client connection or by another test before the member bound
/// it ("Address already in use" at start-up).
const PORTS: std::ops::Range<usize> = 10_000..32_000;

/// A port nobody listens on right now, never the same twice in one process; each process
/// walks the range from its own starting point, so parallel test binaries rarely meet.
/// A whole number from environment variable `name` (a test's size or length knob), or
/// `default` when it is unset; a value that is not one fails the test.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number"))
    })
}

pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let start = std::process::id() as usize * 7919;
    (0..PORTS.len())
        .map(|_| NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
        .map(|n| (PORTS.start + (start + n) % PORTS.len()) as u16)
        .find(|&port| TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("free port")
}

/// Addresses of one member.
#[derive(Debug, Clone)]
pub struct Ports {
    pub host: Ipv4Addr,
    pub client: u16,
    pub peer: u16,
    /// `http`, or `https` for a member serving clients over TLS.
    pub client_scheme: &'static str,
    /// `http`, or `https` for a member talking to its peers over TLS.
    pub peer_scheme: &'static str,
}

impl Ports {
    /// Free ports on 127.0.0.1.
    pub fn free() -> Self {
        Ports {
            host: Ipv4Addr::LOCALHOST,
            client: free_port(),
            peer: free_port(),
            client_scheme: "http",
            peer_scheme: "http",
        }
    }
    /// etcd's default ports on `host` (an address of a host of its own, see [`netns`]).
    pub fn on(host: Ipv4Addr) -> Self {
        Ports {
            host,
            client: 2379,
            peer: 2380,
            client_scheme: "http",
            peer_scheme: "http",
        }
    }
    pub fn client_url(&self) -> String {
        format!("{}://{}:{}", self.client_scheme, self.host, self.client)
    }
    pub fn peer_url(&self) -> String {
        format!("{}://{}:{}", self.peer_scheme, self.host, self.peer)
    }
}

/// A running (or stopped) member process with its own data dir.
pub struct Member {
    pub flavor: Flavor,
    pub name: String,
    pub ports: Ports,
    pub data_dir: PathBuf,
    /// Command prefix the binary runs under (empty, or e.g. `ip netns exec <ns>`).
    launcher: Vec<String>,
    /// Flags etcdctl needs to reach the member (TLS files), before every command.
    ctl_flags: Vec<String>,
    args: Vec<String>,
    dir: tempfile::TempDir,
    child: Option<Child>,
    starts: u32,
}

impl Member {
    /// Starts a single-member cluster with `extra` flags appended.
    pub fn start(flavor: Flavor, extra: &[&str]) -> Member {
        let ports = Ports::free();
        let cluster = format!("m0={}", ports.peer_url());
        Member::start_in_cluster(flavor, "m0", ports, &cluster, extra)
    }

    /// Starts a single-member cluster serving clients over `https://`: `extra` holds the
    /// server's TLS flags, `ctl_flags` those etcdctl needs to reach it (`--cacert`, ...).
    pub fn start_https(flavor: Flavor, extra: &[&str], ctl_flags: &[&str]) -> Member {
        let ports = Ports {
            client_scheme: "https",
            ..Ports::free()
        };
        let cluster = format!("m0={}", ports.peer_url());
        let mut m = Member::spawn_in_cluster(flavor, "m0", ports, &cluster, extra);
        m.ctl_flags = ctl_flags.iter().map(|s| s.to_string()).collect();
        m.wait_healthy(Duration::from_secs(30));
        m
    }

    /// Sets the flags etcdctl needs to reach the member (`--cacert`, ...), e.g. before
    /// waiting for a member spawned with TLS flags.
    pub fn set_ctl_flags(&mut self, flags: &[&str]) {
        self.ctl_flags = flags.iter().map(|s| s.to_string()).collect();
    }

    /// Starts one member of a statically configured cluster and waits until it is healthy.
    pub fn start_in_cluster(
        flavor: Flavor,
        name: &str,
        ports: Ports,
        initial_cluster: &str,
        extra: &[&str],
    ) -> Member {
        let mut m = Member::spawn_in_cluster(flavor, name, ports, initial_cluster, extra);
        m.wait_healthy(Duration::from_secs(30));
        m
    }

    /// Starts one member of a statically configured cluster without waiting for it (a
    /// member of a new cluster becomes healthy only once a quorum has started).
    pub fn spawn_in_cluster(
        flavor: Flavor,
        name: &str,
        ports: Ports,
        initial_cluster: &str,
        extra: &[&str],
    ) -> Member {
        Member::spawn_under(&[], flavor, name, ports, initial_cluster, extra)
    }

    /// Like [`Member::spawn_in_cluster`], running the binary under `launcher` (a command
    /// prefix such as [`netns::Network::launcher`]).
    pub fn spawn_under(
        launcher: &[String],
        flavor: Flavor,
        name: &str,
        ports: Ports,
        initial_cluster: &str,
        extra: &[&str],
    ) -> Member {
        let advertise_peer = ports.peer_url();
        let mut flags = vec![format!("--initial-cluster={initial_cluster}")];
        flags.extend(extra.iter().map(|s| s.to_string()));
        Member::spawn_with(launcher, flavor, name, ports, &advertise_peer, flags)
    }

    /// A member of a new cluster that finds its initial members itself (`extra` holds
    /// `--discovery-srv` or `--discovery`), advertising `advertise_peer` to them.
    pub fn spawn_discovering(
        launcher: &[String],
        flavor: Flavor,
        name: &str,
        ports: Ports,
        advertise_peer: &str,
        extra: &[&str],
    ) -> Member {
        let flags = extra.iter().map(|s| s.to_string()).collect();
        Member::spawn_with(launcher, flavor, name, ports, advertise_peer, flags)
    }

    fn spawn_with(
        launcher: &[String],
        flavor: Flavor,
        name: &str,
        ports: Ports,
        advertise_peer: &str,
        flags: Vec<String>,
    ) -> Member {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join(format!("{name}.etcd"));
        let mut args: Vec<String> = vec![
            format!("--name={name}"),
            format!("--data-dir={}", data_dir.display()),
            format!("--listen-client-urls={}", ports.client_url()),
            format!("--advertise-client-urls={}", ports.client_url()),
            format!("--listen-peer-urls={}", ports.peer_url()),
            format!("--initial-advertise-peer-urls={advertise_peer}"),
        ];
        args.extend(flags);
        let mut m = Member {
            flavor,
            name: name.to_string(),
            ports,
            data_dir,
            launcher: launcher.to_vec(),
            ctl_flags: Vec::new(),
            args,
            dir,
            child: None,
            starts: 0,
        };
        m.spawn();
        m
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("{}.log", self.name))
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let child = command_under(&self.launcher, self.flavor.binary())
            .args(&self.args)
            .current_dir(self.dir.path())
            .env_remove("ETCD_LOG_FILTER")
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("spawn etcd");
        self.child = Some(child);
    }

    /// The member's log so far (stdout and stderr of every start).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The client URL.
    pub fn endpoint(&self) -> String {
        self.ports.client_url()
    }

    /// Waits until `etcdctl endpoint health` succeeds; panics with the log otherwise.
    pub fn wait_healthy(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "{:?} member {} exited with {status} during start-up:\n{}",
                    self.flavor,
                    self.name,
                    self.log()
                );
            }
            let out = self.etcdctl(&["endpoint", "health", "--command-timeout=2s"]);
            if out.status.success() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{:?} member {} not healthy after {limit:?}:\n{}",
                    self.flavor,
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILLs the process (no chance to flush anything).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again on the same data dir and waits until it is healthy.
    pub fn restart(&mut self) {
        self.start_again();
        self.wait_healthy(Duration::from_secs(30));
    }

    /// GETs `path` from the member's client URL with curl; the body, or None on failure.
    pub fn http_get(&self, path: &str) -> Option<String> {
        let url = format!("{}{path}", self.endpoint());
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "2", &url])
            .output()
            .expect("run curl");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Restarts on the same data dir with `extra` flags added to every later start
    /// (e.g. `--force-new-cluster`), without waiting.
    pub fn start_again_with(&mut self, extra: &[&str]) {
        self.args.extend(extra.iter().map(|s| s.to_string()));
        self.start_again();
    }

    /// Starts the process again on the same data dir without waiting.
    pub fn start_again(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Waits up to `limit` for the process to exit on its own; returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The process ID while running (to pause it with SIGSTOP, for instance).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `sig` to the process (SIGSTOP pauses it, SIGCONT resumes it); false when it
    /// is not running or the signal could not be sent.
    pub fn signal(&self, sig: libc::c_int) -> bool {
        // SAFETY: kill(2) on the pid of a child this harness started and has not reaped.
        self.pid()
            .is_some_and(|pid| unsafe { libc::kill(pid as libc::pid_t, sig) } == 0)
    }

    /// Whether the process has been started and not killed.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Runs Debian's `etcdctl` (API v3) against this member.
    pub fn etcdctl(&self, args: &[&str]) -> Output {
        self.etcdctl_input(args, None)
    }

    /// Runs `etcdctl` with `input` on its stdin (for `txn`).
    pub fn etcdctl_stdin(&self, args: &[&str], input: &str) -> Output {
        self.etcdctl_input(args, Some(input))
    }

    fn etcdctl_input(&self, args: &[&str], input: Option<&str>) -> Output {
        let flags = self.ctl_flags.iter().map(String::as_str);
        let args: Vec<&str> = flags.chain(args.iter().copied()).collect();
        etcdctl(&self.endpoint(), &args, input)
    }

    /// Runs `etcdctl` and returns stdout, panicking with stderr when it fails.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.etcdctl(args);
        assert!(
            out.status.success(),
            "etcdctl {args:?} failed on {:?}: {}",
            self.flavor,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Debian's etcdctl 3.4, the reference client.
pub const DEBIAN_ETCDCTL: &str = "/usr/bin/etcdctl";

/// Runs Debian's `etcdctl` against `endpoints`.
pub fn etcdctl(endpoints: &str, args: &[&str], input: Option<&str>) -> Output {
    etcdctl_with(Path::new(DEBIAN_ETCDCTL), endpoints, args, input, &[])
}

/// Runs the etcdctl at `binary` (API v3) against `endpoints`, with `env` set and `input` on
/// its stdin.
pub fn etcdctl_with(
    binary: &Path,
    endpoints: &str,
    args: &[&str],
    input: Option<&str>,
    env: &[(&str, &str)],
) -> Output {
    let mut cmd = Command::new(binary);
    cmd.env("ETCDCTL_API", "3")
        .envs(env.iter().copied())
        .arg(format!("--endpoints={endpoints}"))
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn etcdctl");
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        use std::io::Write;
        stdin
            .write_all(text.as_bytes())
            .expect("write etcdctl stdin");
    }
    child.wait_with_output().expect("etcdctl output")
}

/// The "exit status + stdout + stderr" of an etcdctl run, as printed.
pub fn raw_transcript(out: &Output) -> String {
    format!(
        "exit={}\n{}{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// [`raw_transcript`] without the JSON log lines Go's etcdctl writes to stderr (clientv3's
/// retry warnings, which ours does not print).
pub fn quiet_transcript(out: &Output) -> String {
    let stderr: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("{\"level\""))
        .map(|l| format!("{l}\n"))
        .collect();
    format!(
        "exit={}\n{}{stderr}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
    )
}

/// The normalised "exit status + stdout + stderr" of an etcdctl run.
pub fn transcript(out: &Output) -> String {
    normalise(&raw_transcript(out))
}

/// One reference member and one of ours, for differential tests.
pub struct Pair {
    pub ours: Member,
    pub reference: Member,
}

impl Pair {
    pub fn start(extra: &[&str]) -> Pair {
        Pair {
            ours: Member::start(Flavor::Ours, extra),
            reference: Member::start(Flavor::Reference, extra),
        }
    }

    /// Runs the same etcdctl command on both and returns (ours, reference) as normalised
    /// "exit status + stdout + stderr" transcripts.
    pub fn run(&self, args: &[&str]) -> (String, String) {
        self.run_with(args, None)
    }

    /// Like [`Pair::run`], feeding `input` on stdin.
    pub fn run_with(&self, args: &[&str], input: Option<&str>) -> (String, String) {
        let run = |m: &Member| transcript(&etcdctl(&m.endpoint(), args, input));
        (run(&self.ours), run(&self.reference))
    }

    /// Asserts that a command gives the same normalised transcript on both.
    pub fn same(&self, args: &[&str]) -> String {
        self.same_with(args, None)
    }

    /// Like [`Pair::same`], feeding `input` on stdin.
    pub fn same_with(&self, args: &[&str], input: Option<&str>) -> String {
        let (ours, reference) = self.run_with(args, input);
        assert_eq!(
            ours, reference,
            "etcdctl {args:?} differs (left: ours, right: Debian etcd)"
        );
        ours
    }
}

/// Runs a binary to completion (it must fail fast) and returns (status, its error lines
/// without timestamps).
pub fn failing_start(
    flavor: Flavor,
    args: &[&str],
    env: &[(&str, &str)],
    cwd: &Path,
) -> (i32, Vec<String>) {
    let mut child = Command::new(flavor.binary())
        .args(args)
        .envs(env.iter().copied())
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "{flavor:?} {args:?} did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // "2026-11-23 07:04:22.959694 E | etcdmain: ..." -> "E | etcdmain: ..."
    let lines = stderr
        .lines()
        .filter(|l| l.contains(" E | ") || l.contains(" C | "))
        .map(|l| l.splitn(3, ' ').nth(2).unwrap_or_default().to_string())
        .collect();
    (out.status.code().unwrap_or(-1), lines)
}

/// A command running `program` under `launcher` (a command prefix such as
/// [`netns::Network::launcher`]; empty runs it directly).
pub fn command_under(launcher: &[String], program: impl AsRef<std::ffi::OsStr>) -> Command {
    match launcher.split_first() {
        Some((first, rest)) => {
            let mut cmd = Command::new(first);
            cmd.args(rest).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}
