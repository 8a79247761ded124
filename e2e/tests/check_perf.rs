//! `etcdctl check perf`: our etcdctl runs etcd's 60-second write check against our server
//! and against Debian's etcd, Debian's etcdctl against Debian's etcd beside them (the three
//! run at once). Each must pass, print pb's progress frames and etcd's verdict in the same
//! shape, and leave nothing under the prefix. Both etcdctls refuse a prefix that has keys
//! with etcd's words.

use std::path::{Path, PathBuf};
use std::process::Output;

use etcd_e2e::{etcdctl_with, our_binary, raw_transcript, Flavor, Member, DEBIAN_ETCDCTL};
use regex::Regex;

const PREFIX: &str = "/etcdctl-check-perf/";

fn run(ctl: &Path, member: &Member, args: &[&str]) -> Output {
    etcdctl_with(ctl, &member.endpoint(), args, None, &[])
}

/// Checks stdout of a passing run — frames counting the seconds 0 to 60 after `\r`s, the
/// finished frame, then the clean-up and the verdict — and returns the lines besides the
/// bar with every number blanked. Debian's etcdctl finishes its bar from a goroutine of its
/// own, so the clean-up lines may come before the last frames; ours finishes the bar first
/// (`bar_first`).
fn verdict_shape(stdout: &str, bar_first: bool) -> String {
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
    let verdict = Regex::new(
        r"PASS: Throughput is \d+ writes/s\nPASS: Slowest request took \d\.\d{6}s\nPASS: Stddev is \d\.\d{6}s\nPASS\n$",
    )
    .expect("regex");
    assert!(verdict.is_match(&rest), "verdict:\n{rest}");
    Regex::new(r"\d+")
        .expect("regex")
        .replace_all(&rest, "N")
        .into_owned()
}

/// Runs `check perf` with compaction and defragmentation; asserts it passed and left no
/// key and no old revision behind; returns the verdict's shape.
fn check_perf(ctl: &Path, member: &Member) -> String {
    let out = run(
        ctl,
        member,
        &["check", "perf", "--auto-compact", "--auto-defrag"],
    );
    let text = raw_transcript(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{ctl:?} on {:?}:\n{text}",
        member.flavor
    );
    assert!(out.stderr.is_empty(), "{text}");
    let bar_first = ctl != Path::new(DEBIAN_ETCDCTL);
    let shape = verdict_shape(&String::from_utf8_lossy(&out.stdout), bar_first);
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
fn check_perf_passes_and_cleans_up() {
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
