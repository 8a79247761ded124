//! Differential tests of transactions: `etcdctl txn` reading compares, success ops and
//! failure ops from stdin (each block ended by a blank line), in simple and JSON output,
//! against Debian's etcd and ours. Covers compares on value, version, create and mod
//! revision (and missing keys), both branches with puts, deletes and gets with flags, and
//! rejected txns (duplicate keys, too many ops, malformed compares), after which both
//! servers must still serve. etcdctl 3.4 panics on `lease(..)` compares, so lease and range
//! compares are driven through the `etcd-client` crate instead.

use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp, TxnOpResponse};
use etcd_e2e::{Member, Pair};

/// etcdctl's txn input: compares, a blank line, success ops, a blank line, failure ops and
/// a blank line.
fn txn_input(compares: &[&str], success: &[&str], failure: &[&str]) -> String {
    [compares, success, failure]
        .iter()
        .map(|block| block.iter().map(|l| format!("{l}\n")).collect::<String>() + "\n")
        .collect()
}

/// Runs the txn on both members, in simple and JSON output (both are applied, so the
/// txn must be read-only or its effect idempotent for the second run to match the first
/// branch); returns the simple transcript.
fn same_txn(pair: &Pair, compares: &[&str], success: &[&str], failure: &[&str]) -> String {
    let input = txn_input(compares, success, failure);
    let simple = pair.same_with(&["txn"], Some(&input));
    pair.same_with(&["txn", "-w", "json"], Some(&input));
    simple
}

/// Writes `a` (versions 1 and 2) and `b`: a has create 2, mod 4, version 2, value 11; b has
/// create 3, mod 3, version 1, value 2.
fn seed(pair: &Pair) {
    for (k, v) in [("a", "1"), ("b", "2"), ("a", "11")] {
        pair.same(&["put", k, v]);
    }
}

#[test]
fn compares_pick_the_branch() {
    let pair = Pair::start(&[]);
    seed(&pair);
    for (compares, taken) in [
        (&[][..], "SUCCESS"),
        (&[r#"value("a") = "11""#], "SUCCESS"),
        (&[r#"val("a") > "10""#, r#"value("a") < "2""#], "SUCCESS"),
        (&[r#"value("a") != "11""#], "FAILURE"),
        (&[r#"version("a") = "2""#, r#"ver("b") = "1""#], "SUCCESS"),
        (&[r#"ver("b") > "1""#], "FAILURE"),
        (&[r#"create("a") = "2""#, r#"c("b") != "2""#], "SUCCESS"),
        (&[r#"c("b") < "3""#], "FAILURE"),
        (&[r#"mod("a") > "3""#, r#"m("b") = "3""#], "SUCCESS"),
        (&[r#"mod("a") < "4""#], "FAILURE"),
        // A missing key has version and revisions 0, but no value to compare.
        (
            &[r#"version("nope") = "0""#, r#"mod("nope") = "0""#],
            "SUCCESS",
        ),
        (&[r#"value("nope") = """#], "FAILURE"),
        (&[r#"value("nope") != "x""#], "FAILURE"),
        // Every compare must hold.
        (
            &[r#"value("a") = "11""#, r#"version("b") = "7""#],
            "FAILURE",
        ),
    ] {
        let printed = same_txn(&pair, compares, &["get a"], &["get b"]);
        assert!(
            printed.starts_with(&format!("exit=0\n{taken}\n")),
            "{compares:?}: {printed}"
        );
    }
}

#[test]
fn branches_run_puts_deletes_and_gets() {
    let pair = Pair::start(&[]);
    seed(&pair);
    pair.same(&["put", "c1", "x"]);
    pair.same(&["put", "c2", "y"]);
    let success = [
        "put a 12",
        "put d new --prev-kv",
        "del b --prev-kv",
        "get a --prefix",
        "get --rev=2 a",
        "del c --prefix",
        "get  --from-key  --keys-only  a",
    ];
    // The failure branch's put lies below its delete to the end of the keyspace: a put
    // inside it is refused as a duplicate key (upstream's fix; see txn_atomic.rs).
    let failure = [
        "put b failed",
        "get a --limit 1 --from-key",
        "del --from-key c",
    ];
    let compares = [r#"mod("a") = "4""#];
    let input = txn_input(&compares, &success, &failure);
    // The first run takes the success branch, the second (mod("a") changed) the failure one.
    let first = pair.same_with(&["txn"], Some(&input));
    assert!(first.starts_with("exit=0\nSUCCESS\n"), "{first}");
    let second = pair.same_with(&["txn", "-w", "json"], Some(&input));
    assert!(!second.contains(r#""succeeded":true"#), "{second}");
    pair.same(&["get", "", "--from-key", "-w", "json"]);
    // The failure branch put b again and deleted everything from c on (d).
    let rerun = same_txn(
        &pair,
        &compares,
        &success,
        &["get --from-key a --keys-only"],
    );
    assert_eq!(rerun, "exit=0\nFAILURE\n\na\n\nb\n\n");
}

#[test]
fn rejected_txns_leave_the_server_serving() {
    let pair = Pair::start(&[]);
    seed(&pair);
    let too_many: Vec<String> = (0..129).map(|i| format!("put k{i} v")).collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    for (compares, success, failure, error) in [
        (
            &[][..],
            &["put k 1", "put k 2"][..],
            &[][..],
            "duplicate key given in txn request",
        ),
        (
            &[r#"value("a") = "x""#],
            &[],
            &["put k 1", "put k 1"],
            "duplicate key given in txn request",
        ),
        (
            &[],
            &["del a c", "put b 1"],
            &[],
            "duplicate key given in txn request",
        ),
        (&[], &too_many, &[], "too many operations in txn request"),
        (
            &[r#"value(a) = "11""#],
            &["get a"],
            &[],
            "malformed comparison",
        ),
        (
            &[r#"version("a") = "x""#],
            &["get a"],
            &[],
            "invalid txn compare",
        ),
        (
            &[r#"foo("a") = "11""#],
            &["get a"],
            &[],
            "unknown target foo",
        ),
        (&[], &["bogus a"], &[], "Error"),
    ] {
        let input = txn_input(compares, success, failure);
        let printed = pair.same_with(&["txn"], Some(&input));
        assert!(printed.contains(error), "{input}: {printed}");
        assert!(!printed.starts_with("exit=0"), "{input}: {printed}");
        pair.same(&["put", "alive", "yes"]);
        pair.same(&["get", "", "--from-key"]);
    }
    // The same key in both branches is fine: only one runs.
    let printed = same_txn(&pair, &[r#"value("a") = "x""#], &["put k 1"], &["put k 2"]);
    assert_eq!(printed, "exit=0\nFAILURE\n\nOK\n");
}

/// What a txn returned, reduced to what both servers must agree on.
fn summary(r: &etcd_client::TxnResponse) -> (bool, Vec<String>) {
    let ops = r
        .op_responses()
        .into_iter()
        .map(|op| match op {
            TxnOpResponse::Get(g) => format!(
                "get {:?}",
                g.kvs()
                    .iter()
                    .map(|kv| (kv.key_str().unwrap().to_string(), kv.lease() != 0))
                    .collect::<Vec<_>>()
            ),
            TxnOpResponse::Put(_) => "put".to_string(),
            TxnOpResponse::Delete(d) => format!("del {}", d.deleted()),
            TxnOpResponse::Txn(t) => format!("txn {}", t.succeeded()),
        })
        .collect();
    (r.succeeded(), ops)
}

/// Grants a lease, attaches `leased` to it, and runs lease and range compares; returns one
/// summary per txn.
async fn lease_and_range_compares(member: &Member) -> Vec<(bool, Vec<String>)> {
    let mut c = Client::connect([member.endpoint()], None)
        .await
        .expect("connect");
    let lease = c.lease_grant(60, None).await.expect("grant").id();
    let put = etcd_client::PutOptions::new().with_lease(lease);
    c.put("leased", "v", Some(put)).await.expect("put");
    c.put("plain", "v", None).await.expect("put");
    let get = || TxnOp::get("leased", None);
    let mut out = Vec::new();
    for compares in [
        vec![Compare::lease("leased", CompareOp::Equal, lease)],
        vec![Compare::lease("leased", CompareOp::Equal, 0)],
        vec![Compare::lease("leased", CompareOp::Greater, 0)],
        vec![Compare::lease("plain", CompareOp::Equal, 0)],
        vec![Compare::lease("plain", CompareOp::NotEqual, lease)],
        vec![Compare::lease("missing", CompareOp::Equal, 0)],
        // A compare over a range holds only if it holds for every key in it.
        vec![Compare::version("l", CompareOp::Equal, 1).with_range("q")],
        vec![Compare::version("a", CompareOp::Greater, 0).with_range([0u8])],
        vec![Compare::lease("a", CompareOp::Equal, 0).with_range([0u8])],
        // Compares need a key, even over a range.
        vec![Compare::version("", CompareOp::Greater, 0).with_prefix()],
        vec![Compare::value("p", CompareOp::Equal, "v").with_prefix()],
    ] {
        let txn = Txn::new()
            .when(compares)
            .and_then([get()])
            .or_else([TxnOp::delete("nothing", None)]);
        out.push(match c.txn(txn).await {
            Ok(r) => summary(&r),
            Err(e) => (false, vec![e.to_string()]),
        });
    }
    out
}

#[tokio::test]
async fn lease_and_range_compares_through_the_client() {
    let pair = Pair::start(&[]);
    let ours = lease_and_range_compares(&pair.ours).await;
    let reference = lease_and_range_compares(&pair.reference).await;
    assert_eq!(ours, reference, "left: ours, right: Debian etcd");
    let taken: Vec<bool> = ours.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        taken,
        [true, false, true, true, true, true, true, true, false, false, true]
    );
}
