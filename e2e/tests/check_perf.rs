//! `etcdctl check perf`: our etcdctl runs etcd's 60-second write check against our server
//! and against Debian's etcd, Debian's etcdctl against Debian's etcd beside them (the three
//! run at once). Each must print pb's progress frames, the same clean-up lines and etcd's
//! verdict (PASS or FAIL, a matter of the machine's speed at the time), exit accordingly
//! and leave nothing under the prefix. Both etcdctls refuse a prefix that has keys
//! with etcd's words.

use std::path::{Path, PathBuf};
use std::process::Output;

use etcd_e2e::{etcdctl_with, our_binary, raw_transcript, Flavor, Member, DEBIAN_ETCDCTL};
use regex::Regex;

const PREFIX: &str = "/etcdctl-check-perf/";

fn run(ctl: &Path, member: &Member, args: &[&str]) -> Output {
    etcdctl_with(ctl, &member.endpoint(), args, None, &[])
}

/// Checks stdout of a run — frames counting the seconds 0 to 60 after `\r`s, the finished
/// frame, then the clean-up and the verdict — and returns the clean-up lines with every
/// number blanked, and whether the verdict was PASS. Debian's etcdctl finishes its bar from a goroutine of its
/// own, so the clean-up lines may come before the last frames; ours finishes the bar first
/// (`bar_first`).
fn verdict_shape(stdout: &str, bar_first: bool) -> (String, bool) {
    let frame = Regex::new(r"\r (\d+) / 60 +(\d+\.\d\d)%( \d\dm\d\ds| 1m[01]s)?").expect("regex");
    let mut seen = 0;
    let mut finished = None;
    for c in frame.captures_iter(stdout) {
        let count: u64 = c[1].parse().expect("count");
        assert!(
            count == seen || count == seen + 1,
            "{:?} after {seen}",
            &c[0]
        );
        assert_eq!(
            c[2],
            format!("{:.2}", count as f64 / 60.0 * 100.0),
            "{:?}",
            &c[0]
        );
        assert!(
            finished.is_none(),
            "a frame after the finished one: {:?}",
            &c[0]
        );
        if c.get(3).is_some_and(|t| t.as_str().starts_with(" 1m")) {
            finished = Some(c.get(0).expect("match").end());
        }
        seen = count;
    }
    let end = finished.unwrap_or_else(|| panic!("no finished frame:\n{stdout}"));
    assert_eq!(seen, 60, "{stdout}");
    assert_eq!(&stdout[end..end + 1], "\n", "the bar ends its line");
    if bar_first {
        assert_eq!(
            stdout.find('\n'),
            Some(end),
            "the bar comes first:\n{stdout}"
        );
    }
    let rest: String = frame
        .replace_all(stdout, "")
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    // The last four lines are the verdict. Whether the run met etcd's thresholds depends on
    // the machine's speed at the time (a benchmark, not a test): either form of each line
    // is accepted, the final word consistent with them; errors are never accepted.
    let lines: Vec<&str> = rest.lines().collect();
    let split = lines.len().saturating_sub(4);
    let verdict = format!("{}\n", lines[split..].join("\n"));
    let form = Regex::new(
        r"^(PASS: Throughput is|FAIL: Throughput too low:) \d+ writes/s\n(PASS: Slowest request took|Slowest request took too long:) \d\.\d{6}s\n(PASS: Stddev is|Stddev too high:) \d\.\d{6}s\n(PASS|FAIL)\n$",
    )
    .expect("regex");
    let found = form
        .captures(&verdict)
        .unwrap_or_else(|| panic!("verdict:\n{rest}"));
    let passed = (1..=3).all(|i| found[i].starts_with("PASS"));
    assert_eq!(&found[4] == "PASS", passed, "verdict:\n{rest}");
    let cleanup = lines[..split].join("\n");
    let shape = Regex::new(r"\d+")
        .expect("regex")
        .replace_all(&cleanup, "N")
        .into_owned();
    (shape, passed)
}

/// Runs `check perf` with compaction and defragmentation; asserts its output has etcd's
/// shape and exit code and that it left no key and no old revision behind; returns the
/// shape of its clean-up lines.
fn check_perf(ctl: &Path, member: &Member) -> String {
    let out = run(
        ctl,
        member,
        &["check", "perf", "--auto-compact", "--auto-defrag"],
    );
    let text = raw_transcript(&out);
    assert!(out.stderr.is_empty(), "{text}");
    let bar_first = ctl != Path::new(DEBIAN_ETCDCTL);
    let (shape, passed) = verdict_shape(&String::from_utf8_lossy(&out.stdout), bar_first);
    assert_eq!(
        out.status.code(),
        Some(if passed { 0 } else { 1 }),
        "{ctl:?} on {:?}:\n{text}",
        member.flavor
    );
    let left = member.ctl_ok(&["get", "--prefix", PREFIX, "--keys-only"]);
    assert_eq!(left, "", "keys left under the prefix");
    let old = member.etcdctl(&["get", "--rev=2", PREFIX]);
    assert!(
        String::from_utf8_lossy(&old.stderr).contains("required revision has been compacted"),
        "{}",
        raw_transcript(&old)
    );
    shape
}

#[test]
fn check_perf_reports_like_etcd_and_cleans_up() {
    let ours = our_binary("etcdctl");
    let debian = PathBuf::from(DEBIAN_ETCDCTL);
    let our_etcd = Member::start(Flavor::Ours, &[]);
    let debian_etcd = Member::start(Flavor::Reference, &[]);
    let reference_etcd = Member::start(Flavor::Reference, &[]);
    let (on_ours, on_debian, reference) = std::thread::scope(|s| {
        let a = s.spawn(|| check_perf(&ours, &our_etcd));
        let b = s.spawn(|| check_perf(&ours, &debian_etcd));
        let c = s.spawn(|| check_perf(&debian, &reference_etcd));
        let join = |h: std::thread::ScopedJoinHandle<String>| h.join().expect("check perf");
        (join(a), join(b), join(c))
    });
    assert_eq!(on_ours, reference, "ours on our etcd vs Debian's etcdctl");
    assert_eq!(
        on_debian, reference,
        "ours on Debian's etcd vs Debian's etcdctl"
    );
}

#[test]
fn a_prefix_with_keys_and_unknown_loads_are_refused() {
    let ours = our_binary("etcdctl");
    let debian = PathBuf::from(DEBIAN_ETCDCTL);
    for flavor in [Flavor::Ours, Flavor::Reference] {
        let member = Member::start(flavor, &[]);
        member.ctl_ok(&["put", "/etcdctl-check-perf/k", "v"]);
        member.ctl_ok(&["put", "/my perf/k", "v"]);
        for args in [
            &["check", "perf"][..],
            &["check", "perf", "--prefix=/my perf/", "--load=xLarge"],
            &["check", "perf", "--load=q"],
        ] {
            let theirs = raw_transcript(&run(&debian, &member, args));
            let mine = raw_transcript(&run(&ours, &member, args));
            assert_eq!(mine, theirs, "{args:?} on {flavor:?} (left: ours)");
        }
        let refused = raw_transcript(&run(&ours, &member, &["check", "perf"]));
        assert_eq!(
            refused,
            "exit=3\nError: prefix \"/etcdctl-check-perf/\" has keys. \
             Delete with etcdctl del --prefix /etcdctl-check-perf/ first\n"
        );
        assert_eq!(
            member
                .ctl_ok(&["get", "--prefix", "/", "--keys-only"])
                .lines()
                .count(),
            4
        );
    }
}
