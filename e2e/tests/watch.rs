//! Differential tests of `etcdctl watch`: the same watchers (a key, a range, a prefix, with
//! `--prev-kv`, `--rev` replays and `-w json`) run against Debian's etcd and ours while the
//! same writes go to both; what each printed must be the same once normalised. A watch from
//! a compacted revision must be cancelled with the same message.

use std::time::Duration;

use base64::Engine;
use etcd_e2e::watcher::Watcher;
use etcd_e2e::{normalise, Pair};

/// How long a watcher may take to print an event it should see.
const EVENT_LIMIT: Duration = Duration::from_secs(10);

/// Where the line printing `value` (plain, or base64 in JSON) ends in `out`, once complete.
fn marker_end(out: &str, value: &str) -> Option<usize> {
    let json = format!(
        r#""value":"{}""#,
        base64::engine::general_purpose::STANDARD.encode(value)
    );
    let mut start = 0;
    for line in out.split_inclusive('\n') {
        start += line.len();
        let text = line.trim_end_matches('\n');
        if line.ends_with('\n') && (text == value || text.contains(&json)) {
            return Some(start);
        }
    }
    None
}

/// The same `etcdctl` watch command running against both members.
struct Watchers {
    args: Vec<String>,
    ours: Watcher,
    reference: Watcher,
    /// How much of each one's stdout (ours, reference) precedes what is compared.
    skip: (usize, usize),
}

impl Watchers {
    fn spawn(pair: &Pair, args: &[&str]) -> Watchers {
        Watchers {
            args: args.iter().map(|s| s.to_string()).collect(),
            ours: Watcher::spawn(&pair.ours, args),
            reference: Watcher::spawn(&pair.reference, args),
            skip: (0, 0),
        }
    }

    /// Waits until both have printed the event that set `value`; returns whether they did.
    fn saw(&self, value: &str, limit: Duration) -> bool {
        [&self.ours, &self.reference]
            .iter()
            .all(|w| w.wait_for(limit, |out| marker_end(out, value).is_some()))
    }

    /// Stops both (waiting up to `limit` for them to exit on their own) and asserts they
    /// printed the same, ignoring the skipped start of stdout.
    fn assert_same(self, limit: Duration) -> String {
        let finish = |w: Watcher, skip: usize| {
            let mut done = w.finish(limit);
            done.stdout.drain(..skip);
            done.transcript()
        };
        let ours = finish(self.ours, self.skip.0);
        let reference = finish(self.reference, self.skip.1);
        assert_eq!(
            ours, reference,
            "etcdctl {:?} printed differently (left: ours, right: Debian etcd)",
            self.args
        );
        ours
    }
}

/// Starts watchers for every command in `commands`.
fn spawn_all(pair: &Pair, commands: &[&[&str]]) -> Vec<Watchers> {
    commands.iter().map(|c| Watchers::spawn(pair, c)).collect()
}

/// Makes sure every watcher is registered on both servers before the test's writes: puts
/// `sync-<n>` to `key` on both, round after round, until all have printed the latest one,
/// and skips what they printed so far. Both servers get the same writes, so their
/// revisions stay equal.
fn sync(pair: &Pair, watchers: &mut [Watchers], key: &str) {
    for round in 1..=50 {
        let value = format!("sync-{round}");
        pair.same(&["put", key, &value]);
        if watchers
            .iter()
            .all(|w| w.saw(&value, Duration::from_millis(300)))
        {
            for w in watchers.iter_mut() {
                let end = |x: &Watcher| marker_end(&x.stdout(), &value).expect("marker seen");
                w.skip = (end(&w.ours), end(&w.reference));
            }
            return;
        }
    }
    panic!("watchers did not start on both servers");
}

/// Runs each etcdctl command on both members (asserting the same transcript).
fn run_all(pair: &Pair, commands: &[&[&str]]) {
    for args in commands {
        pair.same(args);
    }
}

/// Writes touching keys inside and outside `b`, `[a, c)` and the prefix `b`: puts,
/// overwrites, single and range deletes, and a txn writing several keys in one revision.
fn writes(pair: &Pair) {
    run_all(
        pair,
        &[
            &["put", "a", "1"],
            &["put", "b", "2"],
            &["put", "b1", "3"],
            &["put", "c", "4"],
            &["put", "b", "5"],
            &["put", "ab", "6"],
            &["del", "b"],
            &["put", "b2", "7"],
            &["del", "b1", "c"],
            &["put", "d", "8"],
        ],
    );
    pair.same_with(
        &["txn"],
        Some("\nput b x\nput b9 y\nput a z\nput zz w\n\n\n"),
    );
}

/// Waits until every watcher printed the event that set `b` to `value`.
fn wait_saw(watchers: &[Watchers], value: &str) {
    for w in watchers {
        assert!(
            w.saw(value, EVENT_LIMIT),
            "etcdctl {:?} did not print the last write:\nours: {}\nreference: {}",
            w.args,
            w.ours.stdout(),
            w.reference.stdout()
        );
    }
}

/// Spawns watchers that replay history (already ending with `put b end`), waits until they
/// caught up, and asserts they printed the same. A replay is sent in one response, so no
/// write may happen while it runs.
fn assert_replays(pair: &Pair, commands: &[&[&str]]) -> Vec<String> {
    let watchers = spawn_all(pair, commands);
    wait_saw(&watchers, "end");
    watchers
        .into_iter()
        .map(|w| w.assert_same(Duration::ZERO))
        .collect()
}

#[test]
fn live_watchers_on_keys_ranges_and_prefixes() {
    let pair = Pair::start(&[]);
    let mut watchers = spawn_all(
        &pair,
        &[
            &["watch", "b"],
            &["watch", "a", "c"],
            &["watch", "--prefix", "b"],
            &["watch", "--prev-kv", "--prefix", "b"],
            &["watch", "-w", "json", "a", "c"],
            &["watch", "-w", "json", "--prev-kv", "b"],
        ],
    );
    sync(&pair, &mut watchers, "b");
    writes(&pair);
    pair.same(&["put", "b", "end"]);
    wait_saw(&watchers, "end");
    let printed: Vec<String> = watchers
        .into_iter()
        .map(|w| w.assert_same(Duration::ZERO))
        .collect();
    // The plain key watcher saw exactly the writes to `b`, in order.
    assert_eq!(
        printed[0],
        "exit=killed\nPUT\nb\n2\nPUT\nb\n5\nDELETE\nb\n\nPUT\nb\nx\nPUT\nb\nend\n"
    );
    // The txn's writes inside [a, c) came in one response (one JSON line).
    assert!(
        printed[4]
            .lines()
            .any(|l| l.matches(r#""kv":"#).count() == 3),
        "{}",
        printed[4]
    );
}

#[test]
fn watch_from_a_revision_replays_history() {
    let pair = Pair::start(&[]);
    writes(&pair);
    pair.same(&["put", "b", "end"]);
    let printed = assert_replays(
        &pair,
        &[
            &["watch", "--rev", "2", "b"],
            &["watch", "--rev", "1", "a", "c"],
            &["watch", "--rev", "4", "--prefix", "b", "-w", "json"],
            &["watch", "--rev", "3", "--prev-kv", "a", "c"],
            &[
                "watch",
                "--rev",
                "9",
                "--prev-kv",
                "--prefix",
                "b",
                "-w",
                "json",
            ],
        ],
    );
    assert!(printed[0].starts_with("exit=killed\nPUT\nb\n2\nPUT\nb\n5\nDELETE\nb\n"));
}

#[test]
fn watch_from_a_compacted_revision_is_cancelled() {
    let pair = Pair::start(&[]);
    writes(&pair);
    // Revision 8 deleted `b`: compaction drops that tombstone too.
    pair.same(&["compaction", "8"]);
    // Below the compacted revision the server cancels the watch and etcdctl exits.
    for args in [
        &["watch", "--rev", "1", "b"][..],
        &["watch", "--rev", "7", "--prefix", "b", "-w", "json"],
    ] {
        let w = Watchers::spawn(&pair, args);
        let printed = w.assert_same(EVENT_LIMIT);
        assert!(printed.contains("compacted"), "{printed}");
    }
    // At the compacted revision and above, what is left of history is replayed.
    pair.same(&["put", "b", "end"]);
    assert_replays(
        &pair,
        &[
            &["watch", "--rev", "8", "b"],
            &["watch", "--rev", "8", "a", "c", "-w", "json"],
            &["watch", "--rev", "9", "--prev-kv", "a", "c"],
        ],
    );
    // The server still serves watches and writes.
    let after = pair.same(&["get", "b"]);
    assert_eq!(after, normalise("exit=0\nb\nend\n"));
}
