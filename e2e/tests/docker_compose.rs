//! `deploy/docker-compose.yml`: three members configured by ETCD_* variables and the
//! gateway in front of them start with `docker compose up` (or Debian's `docker-compose`),
//! answer Debian's etcdctl on their published ports, and a member stopped (SIGTERM, exit 0)
//! and started again keeps its data.
//! The project is named after the test process and taken down with its volumes at the end,
//! panicking or not.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use etcd_e2e::docker::{self, docker_ok};
use etcd_e2e::{etcdctl, free_port, wait};

/// `docker compose` when the plugin is there, else Debian's `docker-compose`.
fn compose_program() -> Vec<String> {
    let plugin = Command::new("docker")
        .args(["compose", "version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if plugin {
        vec!["docker".into(), "compose".into()]
    } else {
        vec!["docker-compose".into()]
    }
}

/// One compose project of the deploy file, taken down (`down -v`) on drop.
struct Project {
    program: Vec<String>,
    name: String,
    file: PathBuf,
    env: Vec<(String, String)>,
}

impl Project {
    fn run(&self, args: &[&str]) -> Output {
        let (program, prefix) = self.program.split_first().expect("program");
        Command::new(program)
            .args(prefix)
            .args(["-p", &self.name, "-f"])
            .arg(&self.file)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "compose {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.run(&["down", "-v", "--remove-orphans", "-t", "10"]);
    }
}

#[test]
fn compose_file_starts_three_members() {
    let image = docker::require();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let gateway_port = free_port();
    let mut env = vec![
        ("ETCD_IMAGE".to_string(), image),
        ("GATEWAY_PORT".to_string(), gateway_port.to_string()),
    ];
    for (i, p) in ports.iter().enumerate() {
        env.push((format!("ETCD{}_PORT", i + 1), p.to_string()));
    }
    let project = Project {
        program: compose_program(),
        name: docker::unique("compose"),
        file: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/docker-compose.yml"),
        env,
    };
    project.ok(&["up", "-d"]);
    let endpoint = |i: usize| format!("http://127.0.0.1:{}", ports[i]);
    for i in 0..3 {
        wait::until(
            Duration::from_secs(60),
            &format!("member {} healthy", i + 1),
            || {
                etcdctl(&endpoint(i), &["endpoint", "health"], None)
                    .status
                    .success()
            },
        );
    }
    let ctl = |i: usize, args: &[&str]| {
        let out = etcdctl(&endpoint(i), args, None);
        assert!(
            out.status.success(),
            "etcdctl {args:?} on member {} failed: {}",
            i + 1,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(ctl(0, &["put", "foo", "bar"]), "OK\n");
    assert_eq!(ctl(1, &["get", "foo"]), "foo\nbar\n");
    assert_eq!(ctl(2, &["get", "foo"]), "foo\nbar\n");
    let members = ctl(2, &["member", "list"]);
    for name in ["etcd1", "etcd2", "etcd3"] {
        assert!(
            members.contains(&format!("{name}, http://{name}:2380, http://{name}:2379")),
            "{name} missing:\n{members}"
        );
    }

    // The gateway reaches the same cluster.
    let gateway = format!("http://127.0.0.1:{gateway_port}");
    wait::until(Duration::from_secs(30), "the gateway serving", || {
        etcdctl(&gateway, &["get", "foo", "--print-value-only"], None).stdout == b"bar\n"
    });
    let put = etcdctl(&gateway, &["put", "through", "gateway"], None);
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    assert_eq!(
        ctl(2, &["get", "through", "--print-value-only"]),
        "gateway\n"
    );

    // A member stopped through compose exits 0 on SIGTERM and comes back with its data.
    project.ok(&["stop", "-t", "10", "etcd2"]);
    let id = project.ok(&["ps", "-q", "etcd2"]);
    let code = docker_ok(&["inspect", "--format", "{{.State.ExitCode}}", &id]);
    assert_eq!(code, "0", "etcd2 did not exit 0 on SIGTERM");
    assert_eq!(ctl(0, &["put", "while", "stopped"]), "OK\n");
    project.ok(&["start", "etcd2"]);
    wait::until(Duration::from_secs(60), "etcd2 healthy again", || {
        etcdctl(&endpoint(1), &["endpoint", "health"], None)
            .status
            .success()
    });
    assert_eq!(ctl(1, &["get", "while", "--print-value-only"]), "stopped\n");
    assert_eq!(ctl(1, &["get", "foo", "--print-value-only"]), "bar\n");
}
