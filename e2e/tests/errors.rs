//! Differential tests of bad input against Debian's etcd and ours: empty keys, requests
//! over the 1.5 MiB limit (values fed on stdin, and a txn of several large values), put
//! flags that contradict the stored key, unknown leases, compacted and future revisions,
//! and malformed or rejected txns. Each must fail with etcd's exit code and message, and
//! both servers must keep serving afterwards.

use etcd_e2e::Pair;

/// Runs `args` (with `input` on stdin) on both members, asserts the same transcript
/// containing `expected`, then that both still take a write and serve it back.
fn same_then_serving(pair: &Pair, args: &[&str], input: Option<&str>, expected: &str) {
    let printed = pair.same_with(args, input);
    assert!(printed.contains(expected), "{args:?}: {printed}");
    pair.same(&["put", "alive", "yes"]);
    assert_eq!(pair.same(&["get", "alive"]), "exit=0\nalive\nyes\n");
}

/// A value of `n` bytes.
fn value(n: usize) -> String {
    "x".repeat(n)
}

#[test]
fn empty_keys_and_contradicting_put_flags() {
    let pair = Pair::start(&[]);
    let no_key = "Error: etcdserver: key is not provided";
    for (args, expected) in [
        (&["put", "", "v"][..], no_key),
        (&["get", ""], no_key),
        (&["del", ""], no_key),
        (&["get", "", "z"], no_key),
        (
            &["put", "nokey", "--ignore-value"],
            "etcdserver: key not found",
        ),
        (
            &["put", "nokey", "v", "--ignore-lease"],
            "etcdserver: key not found",
        ),
        (
            &["put", "k", "v", "--ignore-lease", "--lease=12"],
            "etcdserver: lease is provided",
        ),
        (
            &["put", "k", "v", "--lease=1234abcd"],
            "etcdserver: requested lease not found",
        ),
    ] {
        same_then_serving(&pair, args, None, expected);
    }
}

#[test]
fn requests_over_the_size_limit() {
    let pair = Pair::start(&[]);
    let too_large = "Error: etcdserver: request is too large";
    // Under the limit the value is stored.
    same_then_serving(
        &pair,
        &["put", "big", "-w", "json"],
        Some(&value(1_570_000)),
        "",
    );
    let stored = pair.same(&["get", "big", "--print-value-only"]);
    assert_eq!(stored.len(), "exit=0\n\n".len() + 1_570_000);
    // etcd cuts at the size of its raft entry: the value, key and request framing plus a
    // request header of 13 or 14 bytes (depending on the member ID).
    same_then_serving(&pair, &["put", "big"], Some(&value(1_572_837)), "OK");
    for n in [1_572_840, 1_572_900, 2_000_000] {
        same_then_serving(&pair, &["put", "big"], Some(&value(n)), too_large);
    }
    // Over gRPC's limit etcdctl refuses to send it at all.
    same_then_serving(
        &pair,
        &["put", "big"],
        Some(&value(3_000_000)),
        "trying to send message larger than max",
    );
    // Two values that are small alone but too large together in one txn.
    let half = value(800_000);
    let input = format!("\nput a {half}\nput b {half}\n\n\n");
    same_then_serving(&pair, &["txn"], Some(&input), too_large);
    // The stored value is the one under the limit.
    let (ours, reference) = pair.run(&["get", "big", "-w", "json", "--keys-only"]);
    assert_eq!(ours, reference);
    assert!(ours.contains(r#""version":2"#), "{ours}");
}

#[test]
fn compacted_future_and_malformed_requests() {
    let pair = Pair::start(&[]);
    for v in ["1", "2", "3"] {
        pair.same(&["put", "k", v]);
    }
    pair.same(&["compaction", "3"]);
    let compacted = "etcdserver: mvcc: required revision has been compacted";
    let future = "etcdserver: mvcc: required revision is a future revision";
    for (args, input, expected) in [
        (&["get", "k", "--rev", "2"][..], None, compacted),
        (&["get", "k", "--prefix", "--rev", "1"], None, compacted),
        (&["compaction", "2"], None, compacted),
        (&["get", "k", "--rev", "100"], None, future),
        (&["compaction", "100"], None, future),
        (
            &["txn"],
            Some("value(k) = \"1\"\n\nput k 9\n\n\n"),
            "malformed comparison",
        ),
        (
            &["txn"],
            Some("\nput k 8\nput k 9\n\n\n"),
            "etcdserver: duplicate key given in txn request",
        ),
        (
            &["txn", "-w", "json"],
            Some("\nget k\nput \"\" 9\n\n\n"),
            "etcdserver: key is not provided",
        ),
        (&["txn"], Some("\nget k --rev=2\n\n\n"), compacted),
    ] {
        same_then_serving(&pair, args, input, expected);
    }
    // None of the rejected writes took effect.
    assert_eq!(pair.same(&["get", "k"]), "exit=0\nk\n3\n");
}
