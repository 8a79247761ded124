//! Differential tests of the KV commands: Debian's etcdctl against Debian's etcd and ours.

use etcd_e2e::Pair;

#[test]
fn put_and_get_in_every_output_format() {
    let pair = Pair::start(&[]);
    for (k, v) in [
        ("foo", "bar"),
        ("foo1", "bar1"),
        ("foo2", "bar2"),
        ("zoo", "zed"),
    ] {
        pair.same(&["put", k, v]);
    }
    let prev = pair.same(&["put", "foo", "bar-again", "--prev-kv"]);
    assert_eq!(prev, "exit=0\nOK\nfoo\nbar\n");
    for args in [
        &["get", "foo"][..],
        &["get", "foo", "-w", "json"],
        &["get", "foo", "-w", "table"],
        &["get", "foo", "-w", "simple"],
        &["get", "foo", "--prefix"],
        &["get", "foo", "--prefix", "--limit", "2", "-w", "json"],
        &["get", "foo", "--rev", "2"],
        &["get", "foo", "--prefix", "--print-value-only"],
        &["get", "foo", "--hex"],
        &["get", "foo", "--prefix", "--keys-only"],
        &["get", "foo1", "--from-key"],
        &["get", "foo", "foo2"],
        &["get", "", "--from-key", "--count-only", "-w", "json"],
        &[
            "get",
            "foo",
            "--prefix",
            "--sort-by",
            "MODIFY",
            "--order",
            "DESCEND",
        ],
        &["get", "nothing"],
        &["get", "nothing", "-w", "json"],
    ] {
        pair.same(args);
    }
}

#[test]
fn delete_forms() {
    let pair = Pair::start(&[]);
    for k in ["a", "a1", "a2", "b", "c"] {
        pair.same(&["put", k, "v"]);
    }
    pair.same(&["del", "a", "--prev-kv"]);
    pair.same(&["del", "a", "--prefix", "-w", "json"]);
    pair.same(&["del", "b", "d"]);
    pair.same(&["put", "e", "v"]);
    pair.same(&["del", "missing"]);
    // [b, d) took c with it; only e is left.
    let left = pair.same(&["get", "", "--from-key"]);
    assert_eq!(left, "exit=0\ne\nv\n");
}
