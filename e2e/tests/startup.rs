//! Start-up like etcd: no flags means localhost:2379 and `default.etcd`; bad flags, bad
//! URLs, bad env vars and unusable data dirs end with etcd's one-line error and status 1,
//! compared against Debian's etcd; `--config-file` and `ETCD_*` variables configure a member.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use etcd_e2e::{etcdctl, failing_start, Flavor, Member, Ports};

/// Held by the tests whose members bind etcd's default ports (2379, 2380): run side by side
/// (two test threads), one's etcd found the other's port taken and failed differently.
static DEFAULT_PORTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Arguments and environment of one start attempt.
type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>);

#[test]
fn configuration_errors_match_etcd() {
    let _ports = DEFAULT_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "").unwrap();
    let client = format!(
        "--listen-client-urls=http://127.0.0.1:{}",
        etcd_e2e::free_port()
    );
    let cases: Vec<Case> = vec![
        (vec!["extra-arg"], vec![]),
        (vec!["--debug", "false"], vec![]),
        (vec!["--config-file=/nonexistent/etcd.yml"], vec![]),
        (vec!["--auto-compaction-mode=hourly"], vec![]),
        (vec!["--logger=fancy"], vec![]),
        (vec![&client], vec![]),
        (vec!["--election-timeout=300"], vec![]),
        (vec!["--heartbeat-interval=0"], vec![]),
        (vec!["--election-timeout=60000"], vec![]),
        (
            vec![
                "--listen-client-urls=http://example.com:2379",
                "--advertise-client-urls=http://127.0.0.1:2379",
            ],
            vec![],
        ),
        (vec!["--initial-cluster=foo"], vec![]),
        (vec![], vec![("ETCD_SNAPSHOT_COUNT", "abc")]),
        (vec!["--data-dir=file"], vec![]),
    ];
    for (args, env) in cases {
        let ours = failing_start(Flavor::Ours, &args, &env, dir.path());
        let reference = failing_start(Flavor::Reference, &args, &env, dir.path());
        assert_eq!(ours.0, 1, "{args:?} {env:?}: {:?}", ours.1);
        assert_eq!(reference.0, 1, "reference {args:?} {env:?}");
        assert_eq!(ours.1.len(), 1, "one error line: {:?}", ours.1);
        if args == ["--data-dir=file"] {
            // etcd: "C | etcdmain: error listing data dir: file"; we add the member dir and cause.
            assert!(
                ours.1[0].starts_with("E | etcdmain: error listing data dir: file"),
                "{:?}",
                ours.1
            );
        } else {
            // etcd sometimes adds a hint line after the error; ours must be one of its lines.
            assert!(
                reference.1.contains(&ours.1[0]),
                "{args:?} {env:?}: ours {:?}, etcd {:?}",
                ours.1,
                reference.1
            );
        }
    }
}

#[test]
fn go_flag_parse_errors_are_one_line_with_status_1() {
    // etcd prints Go's flag error plus the whole usage and exits 2; we print the same error
    // as one etcd-style line and exit 1, as the issue asks.
    let dir = tempfile::tempdir().unwrap();
    for (args, text) in [
        (&["--no-such-flag"][..], "flag provided but not defined: -no-such-flag"),
        (&["--name"], "flag needs an argument: -name"),
        (&["--snapshot-count=abc"], "invalid value \"abc\" for flag -snapshot-count: parse error"),
        (&["--listen-client-urls=foo"], "invalid value \"foo\" for flag -listen-client-urls: URL scheme must be http, https, unix, or unixs: foo"),
        (&["--initial-cluster-state=bogus"], "invalid value \"bogus\" for flag -initial-cluster-state: invalid value"),
    ] {
        let (code, lines) = failing_start(Flavor::Ours, args, &[], dir.path());
        assert_eq!(code, 1);
        assert_eq!(lines, vec![format!("E | etcdmain: error verifying flags, {text}. See 'etcd --help'.")]);
        let reference = Command::new(Flavor::Reference.binary()).args(args).output().unwrap();
        assert!(String::from_utf8_lossy(&reference.stderr).starts_with(text), "reference etcd says otherwise for {args:?}");
    }
}

#[test]
fn no_flags_serves_localhost_2379_with_default_etcd() {
    let _ports = DEFAULT_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(Flavor::Ours.binary())
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !etcdctl("http://localhost:2379", &["endpoint", "health"], None)
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "no member on localhost:2379");
        std::thread::sleep(Duration::from_millis(100));
    }
    let put = etcdctl("http://localhost:2379", &["put", "k", "v"], None);
    assert!(put.status.success());
    child.kill().unwrap();
    let log = String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr).into_owned();
    assert!(
        dir.path().join("default.etcd/member").is_dir(),
        "data not in default.etcd"
    );
    for line in [
        "I | embed: name = default",
        "I | embed: data dir = default.etcd",
        "starting member 8e9e05c52164694d in cluster cdf818194e3a8c32",
        "I | embed: ready to serve client requests",
    ] {
        assert!(log.contains(line), "start-up log lacks {line:?}:\n{log}");
    }
}

#[test]
fn config_file_and_env_configure_a_member() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let yaml = format!(
        "name: from-file\ndata-dir: {}\nlisten-client-urls: {c}\nadvertise-client-urls: {c}\nlisten-peer-urls: {p}\n\
         initial-advertise-peer-urls: {p}\ninitial-cluster: from-file={p}\ninitial-cluster-token: file-token\n",
        dir.path().join("data").display(),
        c = ports.client_url(),
        p = ports.peer_url()
    );
    let conf = dir.path().join("etcd.yml");
    std::fs::write(&conf, yaml).unwrap();
    let mut from_file = Command::new(Flavor::Ours.binary())
        .arg(format!("--config-file={}", conf.display()))
        .arg("--name=ignored")
        .env("ETCD_NAME", "ignored-too")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let name = wait_member_name(&ports.client_url());
    from_file.kill().unwrap();
    from_file.wait().unwrap();
    assert_eq!(name, "from-file");

    // The same member from ETCD_* variables alone.
    let mut from_env = Command::new(Flavor::Ours.binary())
        .env("ETCD_NAME", "from-env")
        .env("ETCD_DATA_DIR", dir.path().join("env-data"))
        .env("ETCD_LISTEN_CLIENT_URLS", ports.client_url())
        .env("ETCD_ADVERTISE_CLIENT_URLS", ports.client_url())
        .env("ETCD_LISTEN_PEER_URLS", ports.peer_url())
        .env("ETCD_INITIAL_ADVERTISE_PEER_URLS", ports.peer_url())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let name = wait_member_name(&ports.client_url());
    from_env.kill().unwrap();
    from_env.wait().unwrap();
    assert_eq!(name, "from-env");
}

/// Polls `member list` until it answers and returns the first member's name.
fn wait_member_name(endpoint: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = etcdctl(endpoint, &["member", "list", "-w", "simple"], None);
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            return text.split(", ").nth(2).unwrap_or_default().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "member on {endpoint} never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_restarted_member_keeps_its_data_and_identity() {
    let mut m = Member::start(Flavor::Ours, &[]);
    m.ctl_ok(&["put", "persist", "me"]);
    let status = m.ctl_ok(&["endpoint", "status", "-w", "json"]);
    m.restart();
    assert_eq!(m.ctl_ok(&["get", "persist", "--print-value-only"]), "me\n");
    let again = m.ctl_ok(&["endpoint", "status", "-w", "json"]);
    let ids = |s: &str| {
        s.split("\"revision\"")
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        ids(&status),
        ids(&again),
        "member/cluster IDs changed across restart"
    );
    assert!(m.log().contains("restarting member"));
}
