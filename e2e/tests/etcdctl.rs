//! Differential tests of our `etcdctl` against Debian's `/usr/bin/etcdctl` 3.4: the same
//! command lines (flags, stdin, environment) run through both clients and must print the
//! same stdout and stderr and exit with the same status.
//!
//! Commands that write run on two fresh members (one per client) so both see the same
//! revisions; read-only commands whose output carries member IDs (protobuf, endpoint
//! status) run both clients on one member. [`normalise`] blanks IDs, ports and timings;
//! etcdctl's `{"level":"warn",...}` log lines and the usage text cobra prints after a flag
//! error are left out of the comparison (our etcdctl prints neither).
//!
//! Tests named `etcdctl_only_*` run both clients against our server: they compare the two
//! etcdctls only, as a difference of our server from etcd would show in both outputs
//! alike. The `*_against_debian_etcd` tests run them against etcd itself. Our server is
//! compared with etcd by the other differential test files (Debian's etcdctl against both
//! servers) and, field by field, by the `grpc_*` tests.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use etcd_e2e::watcher::Watcher;
use etcd_e2e::{etcdctl_with, free_port, normalise, our_binary, Flavor, Member, DEBIAN_ETCDCTL};

/// Which client runs a command.
#[derive(Debug, Clone, Copy)]
enum Ctl {
    Debian,
    Ours,
}

/// Runs one etcdctl with `env` set, `input` on stdin.
fn run(
    ctl: Ctl,
    endpoint: &str,
    args: &[&str],
    input: Option<&str>,
    env: &[(&str, &str)],
) -> Output {
    let binary = match ctl {
        Ctl::Debian => PathBuf::from(DEBIAN_ETCDCTL),
        Ctl::Ours => our_binary("etcdctl"),
    };
    etcdctl_with(&binary, endpoint, args, input, env)
}

/// Exit status, stdout and stderr without Go's log lines, normalised.
fn transcript(out: &Output) -> String {
    normalised(&etcd_e2e::quiet_transcript(out))
}

/// `text` with [`normalise`]'s rules and this file's: timings, IDs in `fields` output and
/// their padding, database sizes, table padding.
fn normalised(text: &str) -> String {
    let took = regex::Regex::new(r#"("Took" : |\| +)[0-9.]+(ns|µs|ms|s)\b"#).expect("regex");
    let ids = regex::Regex::new(r#"(?m)^"(ClusterID|MemberID|ID|Leader)" : \d+$"#).expect("regex");
    let text = normalise(text);
    let text = took.replace_all(&text, "$1<took>");
    let text = ids.replace_all(&text, "\"$1\" : <n>");
    // etcdctl pads IDs to 16 hex digits (`%16x`); IDs of different members have different
    // lengths, so the padding goes with the blanked ID.
    let padded = regex::Regex::new(r" +<hexid>").expect("regex");
    let text = padded.replace_all(&text, " <hexid>");
    // Our backend's size on disk moves while sled flushes in the background, also between
    // two status calls with no write in between.
    let size =
        regex::Regex::new(r#"\b\d+(\.\d+)? (B|kB|MB|GB)\b|("dbSize(InUse)?":|"DBSize" : )\d+"#)
            .expect("regex");
    let text = size.replace_all(&text, "$3<size>");
    // Column widths follow the blanked values (timings): compare tables without padding.
    let padding = regex::Regex::new(r"(?m)^([+|].*)$").expect("regex");
    let runs = regex::Regex::new(r" {2,}|-{2,}").expect("regex");
    padding
        .replace_all(&text, |c: &regex::Captures| {
            runs.replace_all(&c[1], |r: &regex::Captures| r[0][..1].to_string())
                .into_owned()
        })
        .into_owned()
}

/// Exit status and stderr only, without the usage text cobra prints after a flag error.
fn error_transcript(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let usage_end = stderr.rfind("\n\nError: ").map_or(0, |i| i + 2);
    let usage_start = stderr.find("Usage:").unwrap_or(usage_end);
    format!(
        "exit={}\n{}{}",
        out.status.code().unwrap_or(-1),
        &stderr[..usage_start.min(usage_end)],
        &stderr[usage_end.max(usage_start).min(stderr.len())..]
    )
}

/// Two members of one flavour: Debian's etcdctl talks to one, ours to the other.
struct Twin {
    debian: Member,
    ours: Member,
}

impl Twin {
    fn start(flavor: Flavor) -> Twin {
        Twin {
            debian: Member::start(flavor, &[]),
            ours: Member::start(flavor, &[]),
        }
    }

    fn pair(&self, args: &[&str], input: Option<&str>, env: &[(&str, &str)]) -> (Output, Output) {
        (
            run(Ctl::Debian, &self.debian.endpoint(), args, input, env),
            run(Ctl::Ours, &self.ours.endpoint(), args, input, env),
        )
    }

    /// Asserts both clients print the same for `args`; returns the transcript.
    fn same(&self, args: &[&str]) -> String {
        self.same_with(args, None, &[])
    }

    fn same_with(&self, args: &[&str], input: Option<&str>, env: &[(&str, &str)]) -> String {
        let (debian, ours) = self.pair(args, input, env);
        let (debian, ours) = (transcript(&debian), transcript(&ours));
        assert_eq!(
            ours, debian,
            "etcdctl {args:?} (left: ours, right: Debian's)"
        );
        ours
    }

    /// Like [`Twin::same`] comparing only exit status and stderr.
    fn same_error(&self, args: &[&str]) -> String {
        let (debian, ours) = self.pair(args, None, &[]);
        let (debian, ours) = (error_transcript(&debian), error_transcript(&ours));
        assert_eq!(
            ours, debian,
            "etcdctl {args:?} (left: ours, right: Debian's)"
        );
        ours
    }
}

/// Both clients against the same member, compared byte for byte after normalising.
fn same_on(member: &Member, args: &[&str]) -> String {
    let ep = member.endpoint();
    let debian = run(Ctl::Debian, &ep, args, None, &[]);
    let ours = run(Ctl::Ours, &ep, args, None, &[]);
    if args.contains(&"protobuf") {
        assert_eq!(ours.stdout, debian.stdout, "stdout of etcdctl {args:?}");
    }
    let (debian, ours) = (transcript(&debian), transcript(&ours));
    assert_eq!(
        ours, debian,
        "etcdctl {args:?} (left: ours, right: Debian's)"
    );
    ours
}

const FORMATS: [&str; 4] = ["simple", "json", "fields", "table"];

fn kv_commands(twin: &Twin) {
    for (k, v) in [
        ("foo", "bar"),
        ("foo2", "a&b<c>\"q\""),
        ("zed", "z"),
        ("foo", "bar2"),
    ] {
        twin.same(&["put", k, v]);
    }
    twin.same(&["put", "foo", "bar3", "--prev-kv"]);
    twin.same(&["put", "foo", "--ignore-value", "--prev-kv", "-w", "json"]);
    for f in FORMATS {
        twin.same(&["get", "foo", "--prefix", "-w", f]);
        twin.same(&["del", "nothing", "-w", f]);
        twin.same(&["put", "p", "v", "--prev-kv", "-w", f]);
    }
    for args in [
        &["get", "foo", "--hex"][..],
        &["get", "foo", "--print-value-only"],
        &["get", "foo", "--keys-only"],
        &["get", "foo", "--keys-only", "-w", "json"],
        &["get", "foo", "--print-value-only", "-w", "json"],
        &[
            "get",
            "",
            "--from-key",
            "--sort-by=value",
            "--order=descend",
        ],
        &["get", "", "--prefix", "--limit=2", "-w", "json"],
        &[
            "get",
            "foo",
            "--sort-by=create",
            "--order=ASCEND",
            "--prefix",
        ],
        &["get", "a", "g"],
        &["get", "foo", "--rev=2"],
        &["get", "foo", "--consistency=s", "-w", "fields"],
        &["--hex", "get", "foo2"],
        &["del", "foo2", "--prev-kv"],
        &["del", "f", "--from-key", "-w", "json"],
        &["get", "", "--prefix"],
        // Errors: arguments, flags, formats, the server's refusals.
        &["get"],
        &["get", "foo", "--prefix", "--from-key"],
        &["get", "a", "b", "--prefix"],
        &["get", "foo", "--sort-by=XX"],
        &["get", "foo", "--order=XX"],
        &["get", "foo", "--consistency=x"],
        &["get", "foo", "-w", "table"],
        &["-w", "xml", "get", "foo"],
        &["get", "foo", "--rev=100"],
        &["put"],
        &["put", "a"],
        &["put", "a", "b", "--ignore-value"],
        &["put", "a", "b", "--lease=zz"],
        &["put", "a", "b", "--lease=123"],
        &["put", "", "v"],
        &["del"],
        &["del", "a", "b", "c"],
        &["del", "a", "--prefix", "--from-key"],
        &["compaction"],
        &["compaction", "abc"],
        &["compaction", "3", "--physical"],
        &["compaction", "3"],
        &["get", "foo", "--rev=2"],
        &["bogus"],
    ] {
        twin.same(args);
    }
    for args in [
        &["get", "--bogus", "foo"][..],
        &["get", "foo", "--rev=abc"],
        &["put", "--limit=3", "a", "b"],
    ] {
        twin.same_error(args);
    }
    twin.same_with(&["put", "fromstdin"], Some("piped value"), &[]);
    twin.same(&["get", "fromstdin"]);
}

#[test]
fn kv_against_debian_etcd() {
    let twin = Twin::start(Flavor::Reference);
    kv_commands(&twin);
    for f in ["protobuf", "json", "simple"] {
        same_on(&twin.debian, &["get", "", "--prefix", "-w", f]);
    }
}

/// Both etcdctls against our server: compares the clients only (see the module doc).
#[test]
fn etcdctl_only_kv_against_our_etcd() {
    kv_commands(&Twin::start(Flavor::Ours));
}

fn txn_input(compares: &[&str], success: &[&str], failure: &[&str]) -> String {
    [compares, success, failure]
        .iter()
        .map(|b| b.iter().map(|l| format!("{l}\n")).collect::<String>() + "\n")
        .collect()
}

fn txn_commands(twin: &Twin) {
    twin.same(&["put", "k1", "x"]);
    let cases = [
        txn_input(
            &[r#"mod("k1") > "0""#],
            &["put k1 v2", "get k1"],
            &["get k2"],
        ),
        txn_input(
            &[r#"value("k1") = "nope""#],
            &["put k1 v3"],
            &["get k1 --prefix", "del k1 --prev-kv"],
        ),
        txn_input(
            &[r#"ver("k1") = "0""#, r#"c("k1") = "0""#],
            &[r#"put k1 "a b\tc""#],
            &[],
        ),
        txn_input(&[], &["put t1 1", "put t2 2"], &[]),
        txn_input(&["foo"], &[], &[]),
        txn_input(&[r#"mod("a")"#], &[], &[]),
        txn_input(&[r#"mod("a") > 1"#], &[], &[]),
        txn_input(&[r#"bad("a") > "1""#], &[], &[]),
        txn_input(&[r#"mod("a") > "x""#], &[], &[]),
        txn_input(&[], &["put"], &[]),
        txn_input(&[], &["put k"], &[]),
        txn_input(&[], &["foo k"], &[]),
        txn_input(&[], &["put d 1", "put d 2"], &[]),
        "\n\n".to_string(),
        String::new(),
    ];
    for input in &cases {
        for f in ["simple", "json", "fields"] {
            twin.same_with(&["txn", "-w", f], Some(input), &[]);
        }
    }
    twin.same_with(&["txn", "-i"], Some(&cases[0]), &[]);
    twin.same_with(&["txn", "extra"], Some(&cases[0]), &[]);
    let (debian, ours) = twin.pair(
        &["txn"],
        Some(&txn_input(&[], &["get k --bogus"], &[])),
        &[],
    );
    assert_eq!(error_transcript(&ours), error_transcript(&debian));
}

#[test]
fn txn_against_debian_etcd() {
    txn_commands(&Twin::start(Flavor::Reference));
}

/// Both etcdctls against our server: compares the clients only (see the module doc).
#[test]
fn etcdctl_only_txn_against_our_etcd() {
    txn_commands(&Twin::start(Flavor::Ours));
}

/// Grants a lease through each client's own member; returns the IDs (Debian's, ours).
fn grant(twin: &Twin, ttl: &str) -> (String, String) {
    let (debian, ours) = twin.pair(&["lease", "grant", ttl], None, &[]);
    assert_eq!(transcript(&ours), transcript(&debian));
    let id = |o: &Output| {
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .nth(1)
            .expect("lease ID")
            .to_string()
    };
    (id(&debian), id(&ours))
}

/// Runs `args` with `{id}` replaced by each side's lease ID.
fn same_for_lease(twin: &Twin, args: &[&str], ids: &(String, String)) -> String {
    let sub = |id: &str| -> Vec<String> { args.iter().map(|a| a.replace("{id}", id)).collect() };
    let (d, o) = (sub(&ids.0), sub(&ids.1));
    let d: Vec<&str> = d.iter().map(String::as_str).collect();
    let o: Vec<&str> = o.iter().map(String::as_str).collect();
    let mut debian = transcript(&run(Ctl::Debian, &twin.debian.endpoint(), &d, None, &[]));
    let mut ours = transcript(&run(Ctl::Ours, &twin.ours.endpoint(), &o, None, &[]));
    if args.contains(&"--keys") {
        // etcd lists a lease's keys in Go map order, which differs from run to run.
        let sorted = |t: &str| {
            let mut lines: Vec<&str> = t.lines().collect();
            lines.sort_unstable();
            lines.join("\n")
        };
        (debian, ours) = (sorted(&debian), sorted(&ours));
    }
    let (debian, ours) = same_remaining_ttls(&debian, &ours, args);
    assert_eq!(ours, debian, "etcdctl {args:?}");
    ours
}

/// Both outputs with their remaining TTLs blanked, once each pair is found within two
/// seconds of the other: the two commands run one after the other, on a loaded machine
/// seconds apart, so the remaining TTLs they see may differ by the time between them.
fn same_remaining_ttls(debian: &str, ours: &str, args: &[&str]) -> (String, String) {
    let ttl = regex::Regex::new(r#"(remaining\(|"TTL" : |"ttl":)(-?\d+)"#).expect("regex");
    let values = |t: &str| -> Vec<i64> {
        ttl.captures_iter(t)
            .map(|c| c[2].parse().expect("a TTL"))
            .collect()
    };
    let (d, o) = (values(debian), values(ours));
    assert_eq!(d.len(), o.len(), "etcdctl {args:?}: {debian} / {ours}");
    for (d, o) in d.iter().zip(&o) {
        assert!(
            (d - o).abs() <= 2,
            "etcdctl {args:?}: remaining TTL {d} vs {o}"
        );
    }
    let blank = |t: &str| ttl.replace_all(t, "${1}<ttl>").into_owned();
    (blank(debian), blank(ours))
}

fn lease_commands(twin: &Twin) {
    let ids = grant(twin, "600");
    for args in [
        &["put", "lk", "v", "--lease={id}"][..],
        &["put", "lk2", "v", "--lease={id}", "-w", "json"],
        &["lease", "timetolive", "{id}"],
        &["lease", "timetolive", "{id}", "--keys", "-w", "fields"],
        &["lease", "list"],
        &["lease", "list", "-w", "fields"],
        &["lease", "keep-alive", "--once", "{id}"],
        &["lease", "keep-alive", "--once", "{id}", "-w", "json"],
        &["lease", "grant", "60", "-w", "json"],
        &["lease", "grant", "60", "-w", "fields"],
        &["lease", "list", "-w", "table"],
        &["lease", "revoke", "{id}"],
        &["lease", "timetolive", "{id}"],
        &["lease", "timetolive", "{id}", "-w", "json"],
        &["lease", "revoke", "{id}"],
        &["lease", "keep-alive", "--once", "{id}"],
        &["lease", "keep-alive", "{id}"],
        &["get", "lk", "--prefix"],
        &["lease", "grant"],
        &["lease", "grant", "abc"],
        &["lease", "revoke"],
        &["lease", "revoke", "zz"],
        &["lease", "timetolive"],
        &["lease", "timetolive", "zz"],
        &["lease", "keep-alive"],
    ] {
        same_for_lease(twin, args, &ids);
    }
}

#[test]
fn lease_against_debian_etcd() {
    lease_commands(&Twin::start(Flavor::Reference));
}

/// Both etcdctls against our server: compares the clients only (see the module doc).
#[test]
fn etcdctl_only_lease_against_our_etcd() {
    lease_commands(&Twin::start(Flavor::Ours));
}

#[test]
fn cluster_and_maintenance_against_debian_etcd() {
    let twin = Twin::start(Flavor::Reference);
    let one = &twin.debian;
    for f in FORMATS.iter().chain(&["protobuf"]) {
        same_on(one, &["member", "list", "-w", f]);
        same_on(one, &["endpoint", "health", "-w", f]);
        same_on(one, &["endpoint", "hashkv", "-w", f]);
    }
    // etcdctl 3.4 dereferences the missing header of an empty alarm list in `fields`.
    for f in ["simple", "json", "table", "protobuf"] {
        same_on(one, &["alarm", "list", "-w", f]);
    }
    for f in FORMATS.iter().chain(&["protobuf"]) {
        same_on(one, &["endpoint", "status", "-w", f]);
    }
    for args in [
        &["endpoint", "health", "--cluster"][..],
        &["endpoint", "status", "--cluster"],
        &["alarm", "disarm"],
        &["alarm", "disarm", "-w", "json"],
        &["defrag"],
        &["defrag", "--cluster"],
        &["move-leader"],
        &["move-leader", "zz"],
        &["move-leader", "1234"],
        &["member", "remove"],
        &["member", "remove", "zz"],
        &["member", "remove", "1234"],
        &["member", "promote", "1234"],
        &["member", "add"],
        &["member", "add", "x"],
        &["member", "update"],
        &["member", "update", "12"],
        &["snapshot", "save"],
        &["snapshot", "save", "/nonexistent/dir/x.db"],
        &["version"],
    ] {
        same_on(one, args);
    }
    // Membership changes, each client on its own member.
    let peer = format!("--peer-urls=http://127.0.0.1:{}", free_port());
    let (debian_add, ours_add) = twin.pair(&["member", "add", "n1", "--learner", &peer], None, &[]);
    assert_eq!(
        sort_initial_cluster(&transcript(&ours_add)),
        sort_initial_cluster(&transcript(&debian_add))
    );
    let (debian, ours) = (learner_id(&twin.debian), learner_id(&twin.ours));
    let update = format!("--peer-urls=http://127.0.0.1:{}", free_port());
    for (args, f) in [
        (&["member", "promote"][..], "simple"),
        (&["member", "update"], "simple"),
        (&["member", "update"], "fields"),
        (&["member", "remove"], "json"),
        (&["member", "remove"], "simple"),
    ] {
        let with = |id: &str| -> Vec<String> {
            let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            if args.len() == 2 {
                v.push(id.to_string());
            }
            if args[1] == "update" {
                v.push(update.clone());
            }
            v.extend(["-w".to_string(), f.to_string()]);
            v
        };
        let (d, o) = (with(&debian), with(&ours));
        let d: Vec<&str> = d.iter().map(String::as_str).collect();
        let o: Vec<&str> = o.iter().map(String::as_str).collect();
        assert_eq!(
            transcript(&run(Ctl::Ours, &twin.ours.endpoint(), &o, None, &[])),
            transcript(&run(Ctl::Debian, &twin.debian.endpoint(), &d, None, &[])),
            "etcdctl {args:?} -w {f}"
        );
    }
    // Snapshots: same message, a file of the same size kind, written privately.
    let dir = tempfile::tempdir().expect("tempdir");
    for (ctl, name) in [(Ctl::Debian, "d.db"), (Ctl::Ours, "o.db")] {
        let path = dir.path().join(name);
        let out = run(
            ctl,
            &one.endpoint(),
            &["snapshot", "save", path.to_str().expect("path")],
            None,
            &[],
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("Snapshot saved at {}\n", path.display())
        );
        let meta = std::fs::metadata(&path).expect("snapshot file");
        assert!(meta.len() > 0);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert!(!dir.path().join(format!("{name}.part")).exists());
    }
}

/// Members are listed by ID, which is random: sorts `ETCD_INITIAL_CLUSTER`'s entries.
fn sort_initial_cluster(text: &str) -> String {
    let re = regex::Regex::new(r#"ETCD_INITIAL_CLUSTER="([^"]*)""#).expect("regex");
    re.replace(text, |c: &regex::Captures| {
        let mut entries: Vec<&str> = c[1].split(',').collect();
        entries.sort_unstable();
        format!("ETCD_INITIAL_CLUSTER=\"{}\"", entries.join(","))
    })
    .into_owned()
}

/// The ID of the (only) unstarted member.
fn learner_id(m: &Member) -> String {
    let list = m.ctl_ok(&["member", "list"]);
    list.lines()
        .find(|l| l.contains("unstarted"))
        .and_then(|l| l.split(',').next())
        .expect("unstarted member")
        .to_string()
}

/// What a watcher prints for a value: the value, or the value in base64 (`-w json`).
type Printable = [&'static str; 2];

/// The value written before the watchers start, which each of them prints first.
const WATCH_READY: Printable = ["old", "b2xk"];

/// The value written last.
const WATCH_END: Printable = ["end-marker", "ZW5kLW1hcmtlcg=="];

/// How a watcher's output is compared.
#[derive(Clone, Copy)]
enum Printed {
    /// Line for line.
    InOrder,
    /// As a set of lines: with a command to run for each event, etcdctl 3.4 prints the
    /// event and runs the command in a goroutine of its own, so their lines interleave
    /// in any order. A value is in both, so it must be seen twice.
    WithCommands,
}

impl Printed {
    /// Waits until `w` printed `value` (as often as this output shows it); whether it did.
    fn wait(self, w: &Watcher, value: Printable) -> bool {
        let times = match self {
            Printed::InOrder => 1,
            Printed::WithCommands => 2,
        };
        w.wait_for(Duration::from_secs(15), |out| {
            value.iter().map(|v| out.matches(v).count()).sum::<usize>() >= times
        })
    }
}

#[test]
fn watch_against_debian_etcd() {
    let twin = Twin::start(Flavor::Reference);
    twin.same(&["put", "w0", WATCH_READY[0]]);
    // Every watcher starts at or before that put, prints it first and is then caught up:
    // the writes made after it printed it reach it one revision at a time. (Writes made
    // while a watcher catches up come in one response or several, as etcd's timer for
    // catching up falls.) The last write is a marker: each output is compared once it
    // is there, so two outputs are never compared before the events arrived.
    let watches: [(&[&str], Printed); 4] = [
        (
            &["watch", "w", "--prefix", "--prev-kv", "--rev=2"],
            Printed::InOrder,
        ),
        (
            &["watch", "w", "--prefix", "-w", "json", "--rev=2"],
            Printed::InOrder,
        ),
        (
            &["watch", "w0", "-w", "fields", "--rev=2"],
            Printed::InOrder,
        ),
        (
            &[
                "watch",
                "w",
                "--prefix",
                "--rev=1",
                "--",
                "sh",
                "-c",
                "echo $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE",
            ],
            Printed::WithCommands,
        ),
    ];
    let ours = our_binary("etcdctl");
    let watchers: Vec<(Watcher, Watcher)> = watches
        .iter()
        .map(|(args, _)| {
            (
                Watcher::spawn_with(Path::new(DEBIAN_ETCDCTL), &twin.debian, args),
                Watcher::spawn_with(&ours, &twin.ours, args),
            )
        })
        .collect();
    for ((debian, ours), (args, printed)) in watchers.iter().zip(watches) {
        for w in [debian, ours] {
            assert!(
                printed.wait(w, WATCH_READY),
                "etcdctl {args:?} printed no first put"
            );
        }
    }
    for args in [
        &["put", "w0", "new"][..],
        &["put", "w1", "x"],
        &["del", "w", "--prefix"],
        &["put", "w0", WATCH_END[0]],
    ] {
        twin.same(args);
    }
    for ((debian, ours), (args, printed)) in watchers.into_iter().zip(watches) {
        let output = |w: Watcher| {
            let marked = printed.wait(&w, WATCH_END);
            let finished = w.finish(Duration::ZERO);
            assert!(
                marked,
                "etcdctl {args:?} never printed the marker: {finished:?}"
            );
            let text = normalised(&finished.stdout);
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            if let Printed::WithCommands = printed {
                lines.sort_unstable();
            }
            lines
        };
        assert_eq!(output(ours), output(debian), "watch {args:?}");
    }
    // A compacted start revision is cancelled by the server.
    twin.same(&["compaction", "3"]);
    twin.same(&["watch", "w", "--rev=1"]);
    twin.same(&["watch", "w", "--rev=1", "-w", "json"]);
    twin.same(&["watch"]);
    twin.same(&["watch", "a", "b", "--prefix"]);
}

#[test]
fn dead_endpoints_flags_and_environment() {
    let m = Member::start(Flavor::Reference, &[]);
    let dead = format!("127.0.0.1:{}", free_port());
    let both = |endpoint: &str, args: &[&str], env: &[(&str, &str)]| {
        let debian = transcript(&run(Ctl::Debian, endpoint, args, None, env));
        let ours = transcript(&run(Ctl::Ours, endpoint, args, None, env));
        assert_eq!(
            ours, debian,
            "etcdctl --endpoints={endpoint} {args:?} {env:?}"
        );
        ours
    };
    let printed = both(&dead, &["get", "a", "--command-timeout=1s"], &[]);
    assert!(
        printed.contains("Error: context deadline exceeded"),
        "{printed}"
    );
    both(&dead, &["put", "a", "b", "--command-timeout=1s"], &[]);
    let mixed = format!("{},{dead}", m.endpoint());
    both(&mixed, &["endpoint", "status", "--command-timeout=1s"], &[]);
    both(&mixed, &["defrag", "--command-timeout=1s"], &[]);
    both(
        &format!("{dead},{}", m.endpoint()),
        &["defrag", "--command-timeout=1s"],
        &[],
    );
    both(&mixed, &["endpoint", "hashkv", "--command-timeout=1s"], &[]);
    both(&mixed, &["snapshot", "save", "x.db"], &[]);
    // Variables set flags; a flag on the command line wins.
    both(&dead, &["get", "a"], &[("ETCDCTL_COMMAND_TIMEOUT", "1s")]);
    both(
        &m.endpoint(),
        &["member", "list"],
        &[("ETCDCTL_WRITE_OUT", "json")],
    );
    m.ctl_ok(&["put", "h", "v"]);
    both(
        &m.endpoint(),
        &["get", "h"],
        &[("ETCDCTL_WRITE_OUT", "fields")],
    );
    both(&m.endpoint(), &["get", "h"], &[("ETCDCTL_HEX", "true")]);
    both(
        &m.endpoint(),
        &[
            "get",
            "h",
            "--dial-timeout=1s",
            "--keepalive-time=3s",
            "--insecure-transport=true",
        ],
        &[],
    );
    // etcdctl 3.4 refuses a flag that is also set by its variable; ours lets the flag win.
    let ours = run(
        Ctl::Ours,
        &m.endpoint(),
        &["get", "h", "-w", "simple"],
        None,
        &[("ETCDCTL_WRITE_OUT", "json")],
    );
    assert_eq!(String::from_utf8_lossy(&ours.stdout), "h\nv\n");
    let ours = run(
        Ctl::Ours,
        "127.0.0.1:1",
        &["get", "h"],
        None,
        &[("ETCDCTL_ENDPOINTS", "127.0.0.1:2")],
    );
    assert_eq!(
        String::from_utf8_lossy(&ours.stderr),
        "Error: context deadline exceeded\n"
    );
}

/// Both etcdctls against our server: compares the clients only (see the module doc).
#[test]
fn etcdctl_only_maintenance_against_our_etcd() {
    let one = Member::start(Flavor::Ours, &[]);
    for f in FORMATS {
        same_on(&one, &["member", "list", "-w", f]);
        same_on(&one, &["endpoint", "health", "-w", f]);
        same_on(&one, &["endpoint", "hashkv", "-w", f]);
        same_on(&one, &["endpoint", "status", "-w", f]);
    }
    for args in [
        &["alarm", "list"][..],
        &["alarm", "list", "-w", "json"],
        &["alarm", "disarm"],
        &["defrag"],
        &["defrag", "--cluster"],
        &["defrag"],
        &["move-leader", "1234"],
        &["snapshot", "save", "/nonexistent/dir/x.db"],
    ] {
        same_on(&one, args);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ours.db");
    let out = run(
        Ctl::Ours,
        &one.endpoint(),
        &["snapshot", "save", path.to_str().expect("path")],
        None,
        &[],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("Snapshot saved at {}\n", path.display())
    );
    assert!(std::fs::metadata(&path).expect("snapshot").len() > 0);
}
