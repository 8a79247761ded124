//! Differential tests of `etcdctl lease`: grant, `put --lease`, timetolive (with and
//! without `--keys`, simple and JSON), list, keep-alive (once and streaming), revoke,
//! expiry, and unknown lease IDs, against Debian's etcd and ours.
//!
//! Lease IDs are chosen by each server, so every member gets its own IDs substituted into
//! the commands, and its IDs are replaced by `<lease-N>` (N = grant order) in what it
//! printed. The remaining TTL depends on timing: it is checked to lie between the granted
//! TTL and that minus the time since the test started (plus a second), then blanked. etcd lists a lease's keys in
//! random order, so they are sorted.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use etcd_e2e::watcher::Watcher;
use etcd_e2e::{normalise, raw_transcript, Member, Pair};
use regex::{Captures, Regex};

/// Both members and the lease IDs each has granted, in order.
struct Leases {
    pair: Pair,
    ours: Vec<i64>,
    reference: Vec<i64>,
    /// When the test started, before any grant: bounds how far a TTL may have run down.
    started: Instant,
}

/// `remaining(Ns)` after `TTL(Gs)` in simple output, `"ttl":N,"granted-ttl":G` in JSON.
static REMAINING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"TTL\((\d+)s\), remaining\((-?\d+)s\)|"ttl":(-?\d+),"granted-ttl":(\d+)"#)
        .expect("valid regex")
});

/// Checks every remaining TTL of a live lease is at most its granted TTL and has run down
/// by no more than `elapsed` (plus a second of rounding), and blanks it.
fn blank_remaining(text: &str, elapsed: Duration) -> String {
    let ran_down = elapsed.as_secs() as i64 + 2;
    REMAINING
        .replace_all(text, |c: &Captures| {
            let num = |i: usize| c.get(i).map(|m| m.as_str().parse::<i64>().expect("number"));
            let (granted, remaining, json) = match (num(1), num(2)) {
                (Some(g), Some(r)) => (g, r, false),
                _ => (num(4).expect("granted"), num(3).expect("ttl"), true),
            };
            if granted == 0 {
                // An unknown or expired lease: `ttl` is -1, nothing to blank.
                return c[0].to_string();
            }
            assert!(
                (granted - ran_down..=granted).contains(&remaining),
                "remaining TTL {remaining} is not within {ran_down}s under the granted {granted}: {text}"
            );
            if json {
                format!(r#""ttl":<ttl>,"granted-ttl":{granted}"#)
            } else {
                format!("TTL({granted}s), remaining(<ttl>)")
            }
        })
        .into_owned()
}

/// etcd lists a lease's keys in Go map order (random): sorts them, in simple
/// (`attached keys([a b])`) and JSON (`"keys":["YQ==","Yg=="]`) output.
fn sort_attached_keys(text: &str) -> String {
    static KEYS: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"(attached keys\(\[|"keys":\[)([^\]]*)\]"#).expect("valid regex")
    });
    KEYS.replace_all(text, |c: &Captures| {
        let sep = if c[1].starts_with('"') { "," } else { " " };
        let mut keys: Vec<&str> = c[2].split(sep).collect();
        keys.sort_unstable();
        format!("{}{}]", &c[1], keys.join(sep))
    })
    .into_owned()
}

/// Replaces `{N}` in `arg` by the hex form of the member's N-th lease ID.
fn substitute(arg: &str, ids: &[i64]) -> String {
    ids.iter()
        .enumerate()
        .fold(arg.to_string(), |acc, (n, id)| {
            acc.replace(&format!("{{{n}}}"), &format!("{id:x}"))
        })
}

/// Replaces the member's lease IDs (hex, zero-padded hex, decimal) by `<lease-N>`.
fn symbolic(text: &str, ids: &[i64]) -> String {
    ids.iter()
        .enumerate()
        .fold(text.to_string(), |acc, (n, id)| {
            let re = Regex::new(&format!(r"\b(0*{id:x}|{id})\b")).expect("valid regex");
            re.replace_all(&acc, format!("<lease-{n}>")).into_owned()
        })
}

/// The lease ID a `lease grant` printed: `lease <hex> granted with TTL(..)`, or `"ID":<n>`.
fn granted_id(transcript: &str) -> Option<i64> {
    static GRANTED: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"lease ([0-9a-f]+) granted with|"ID":(\d+)"#).expect("valid regex")
    });
    let c = GRANTED.captures(transcript)?;
    match (c.get(1), c.get(2)) {
        (Some(hex), _) => i64::from_str_radix(hex.as_str(), 16).ok(),
        (_, Some(dec)) => dec.as_str().parse().ok(),
        _ => None,
    }
}

impl Leases {
    fn start() -> Leases {
        Leases {
            pair: Pair::start(&[]),
            ours: Vec::new(),
            reference: Vec::new(),
            started: Instant::now(),
        }
    }

    fn members(&self) -> [(&Member, &[i64]); 2] {
        [
            (&self.pair.ours, &self.ours),
            (&self.pair.reference, &self.reference),
        ]
    }

    /// Runs `args` (with `{N}` standing for the N-th lease) on one member; its transcript
    /// with lease IDs made symbolic, TTLs checked and blanked, and the rest normalised.
    fn run_on(&self, member: &Member, ids: &[i64], args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|a| substitute(a, ids)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let raw = raw_transcript(&member.etcdctl(&args));
        let elapsed = self.started.elapsed();
        normalise(&sort_attached_keys(&blank_remaining(
            &symbolic(&raw, ids),
            elapsed,
        )))
    }

    /// Asserts `args` prints the same on both members; returns the transcript.
    fn same(&self, args: &[&str]) -> String {
        let [ours, reference] = self.members().map(|(m, ids)| self.run_on(m, ids, args));
        assert_eq!(
            ours, reference,
            "etcdctl {args:?} differs (left: ours, right: Debian etcd)"
        );
        ours
    }

    /// Like [`Leases::same`], also asserting the transcript contains `expected`.
    fn expect(&self, args: &[&str], expected: &str) -> String {
        let printed = self.same(args);
        assert!(printed.contains(expected), "{args:?}: {printed}");
        printed
    }

    /// Grants a lease on both members and records its IDs; returns the transcript.
    fn grant(&mut self, args: &[&str]) -> String {
        let args: Vec<&str> = ["lease", "grant"].iter().chain(args).copied().collect();
        let outputs = self
            .members()
            .map(|(m, _)| raw_transcript(&m.etcdctl(&args)));
        let ids = outputs.each_ref().map(|t| granted_id(t));
        if let [Some(ours), Some(reference)] = ids {
            self.ours.push(ours);
            self.reference.push(reference);
        }
        let [ours, reference] = outputs.map(|t| normalise(&t));
        assert_eq!(ours, reference, "etcdctl {args:?} differs");
        ours
    }

    /// Polls until `get <key>` prints nothing on both members.
    fn wait_gone(&self, key: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        for (m, _) in self.members() {
            while !m.ctl_ok(&["get", key]).is_empty() {
                assert!(
                    Instant::now() < deadline,
                    "{key} still there on {:?}",
                    m.flavor
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

#[test]
fn grant_attach_inspect_keep_alive_and_revoke() {
    let mut l = Leases::start();
    assert_eq!(
        l.grant(&["60"]),
        "exit=0\nlease <hexid> granted with TTL(60s)\n"
    );
    l.grant(&["100", "-w", "json"]);
    l.grant(&["30"]);
    for args in [
        &["put", "foo", "bar", "--lease={0}"][..],
        &["put", "foo2", "bar2", "--lease={0}"],
        &["put", "zoo", "zed", "--lease={2}"],
        &["get", "foo", "-w", "json"],
        &["lease", "timetolive", "{0}"],
        &["lease", "timetolive", "{0}", "--keys"],
        &["lease", "timetolive", "{1}", "--keys"],
        &["lease", "timetolive", "{0}", "--keys", "-w", "json"],
        &["lease", "timetolive", "{2}", "-w", "json"],
        // Listed in expiry order: 30s, 60s, then 100s.
        &["lease", "list"],
        &["lease", "list", "-w", "json"],
        &["lease", "keep-alive", "--once", "{0}"],
        &["lease", "keep-alive", "--once", "{1}", "-w", "json"],
        &["lease", "revoke", "{0}"],
        &["get", "foo", "--prefix"],
        &["get", "", "--from-key"],
        &["lease", "timetolive", "{0}", "--keys"],
        &["lease", "revoke", "{0}"],
        &["lease", "list"],
    ] {
        l.same(args);
    }
    let listed = l.same(&["lease", "list"]);
    assert_eq!(listed, "exit=0\nfound 2 leases\n<lease-2>\n<lease-1>\n");
    let gone = l.same(&["get", "foo", "--prefix"]);
    assert_eq!(gone, "exit=0\n");
}

#[test]
fn unknown_and_out_of_range_leases() {
    let mut l = Leases::start();
    let not_found = "etcdserver: requested lease not found";
    for (args, expected) in [
        (&["put", "k", "v", "--lease=1234abcd"][..], not_found),
        (&["lease", "revoke", "1234abcd"], not_found),
        (&["lease", "timetolive", "1234abcd"], "already expired"),
        (
            &["lease", "timetolive", "1234abcd", "--keys", "-w", "json"],
            r#""ttl":-1"#,
        ),
        (&["lease", "keep-alive", "--once", "1234abcd"], not_found),
        (&["lease", "list"], "found 0 leases"),
        (&["get", "k"], "exit=0"),
    ] {
        l.expect(args, expected);
    }
    // Too large a TTL is refused; a TTL below the minimum is raised to it.
    let refused = l.grant(&["9000000001"]);
    assert!(refused.contains("too large lease TTL"), "{refused}");
    assert!(l.grant(&["1"]).contains("TTL(2s)"));
    l.grant(&["0"]);
    assert_eq!(l.ours.len(), 2, "two leases granted");
    // The server still serves.
    l.same(&["put", "k", "v"]);
    assert_eq!(l.same(&["get", "k"]), "exit=0\nk\nv\n");
}

#[test]
fn expired_lease_takes_its_keys() {
    let mut l = Leases::start();
    l.grant(&["2"]);
    l.same(&["put", "short", "lived", "--lease={0}"]);
    l.same(&["put", "stays", "here"]);
    l.wait_gone("short", Duration::from_secs(10));
    for (args, expected) in [
        (&["get", "", "--from-key"][..], "exit=0\nstays\nhere\n"),
        (&["lease", "timetolive", "{0}"], "<lease-0> already expired"),
        (&["lease", "list"], "found 0 leases"),
        (
            &["lease", "keep-alive", "--once", "{0}"],
            "requested lease not found",
        ),
        (
            &["put", "again", "v", "--lease={0}"],
            "requested lease not found",
        ),
    ] {
        l.expect(args, expected);
    }
}

#[test]
fn streaming_keep_alive_ends_when_the_lease_is_revoked() {
    let mut l = Leases::start();
    // etcdctl renews every third of the TTL and notices the revocation on the next renewal.
    l.grant(&["3"]);
    let [ours, reference] = l.members().map(|(m, ids)| {
        let id = substitute("{0}", ids);
        Watcher::spawn(m, &["lease", "keep-alive", &id])
    });
    for w in [&ours, &reference] {
        assert!(
            w.wait_for(Duration::from_secs(10), |out| out.contains("keepalived")),
            "no keep-alive printed: {}",
            w.stdout()
        );
    }
    l.same(&["lease", "revoke", "{0}"]);
    // How many renewals happened before that is timing: repeated lines are collapsed.
    let [ours, reference] = [(ours, &l.ours), (reference, &l.reference)].map(|(w, ids)| {
        let raw = w.finish(Duration::from_secs(10)).raw_transcript();
        let mut lines: Vec<&str> = raw.lines().collect();
        lines.dedup();
        normalise(&symbolic(&lines.join("\n"), ids))
    });
    assert_eq!(ours, reference, "keep-alive differs (left: ours)");
    assert!(ours.contains("expired or revoked"), "{ours}");
}
