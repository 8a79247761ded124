//! A txn that cannot apply changes nothing: not the keys, not the revision, not the watch
//! stream, on no member, and not after every member is killed and restarted.
//!
//! The txn is "delete everything from `k` on, then put `k` keeping its value"
//! (`ignore_value`): its put names a key its own delete removes. etcd 3.4.23 panics on it
//! when `k` exists (its duplicate-key check misses a delete to the end of the keyspace, whose
//! range end is `"\0"`); upstream's fix refuses it as a duplicate key, and so do we. When the
//! put names a missing key, etcd 3.4.23 refuses it with "key not found" before applying
//! anything: that shape is compared against Debian's etcd directly.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use etcd_client::{
    Client, DeleteOptions, Error, EventType, GetOptions, PutOptions, Txn, TxnOp, WatchOptions,
    WatchStream,
};
use etcd_e2e::cluster::Cluster;
use etcd_e2e::{Flavor, Pair};

const DUPLICATE_KEY: &str = "etcdserver: duplicate key given in txn request";
const KEY_NOT_FOUND: &str = "etcdserver: key not found";

/// etcdctl's txn input with no compares, `success` ops and no failure ops.
fn txn_input(success: &[&str]) -> String {
    format!("\n{}\n\n", success.join("\n") + "\n")
}

#[test]
fn refused_like_etcd_and_nothing_changes() {
    let pair = Pair::start(&[]);
    for (k, v) in [("a", "1"), ("k", "2"), ("m", "3")] {
        pair.same(&["put", k, v]);
    }
    let everything = ["get", "", "--from-key", "-w", "json"];
    let before = pair.same(&everything);

    // The put names a missing key below the deleted range: both refuse it before applying
    // anything, with the same words.
    for put in ["put b --ignore-value", "put b v --ignore-lease"] {
        let input = txn_input(&["del k --from-key", put]);
        let printed = pair.same_with(&["txn"], Some(&input));
        assert!(printed.starts_with("exit=1\n"), "{input}: {printed}");
        assert!(printed.contains(KEY_NOT_FOUND), "{input}: {printed}");
        assert_eq!(pair.same(&everything), before, "{input} changed the keys");
    }

    // The put names a missing key inside the deleted range: etcd 3.4.23 refuses it as a
    // missing key, we as a put overlapping the delete (upstream's fix). Neither applies it.
    let input = txn_input(&["del k --from-key", "put l --ignore-value"]);
    let (ours, reference) = pair.run_with(&["txn"], Some(&input));
    assert!(reference.contains(KEY_NOT_FOUND), "{reference}");
    assert!(ours.contains(DUPLICATE_KEY), "{ours}");
    assert!(ours.starts_with("exit=1\n"), "{ours}");
    assert_eq!(pair.same(&everything), before, "{input} changed the keys");

    // The next write gets the next revision on both.
    pair.same(&["put", "next", "v", "-w", "json"]);
}

/// A key as every member must hold it: value, create and mod revision, version, lease.
type Held = BTreeMap<String, (String, i64, i64, i64, i64)>;

/// The txn of the issue: delete everything from `from` on, then put `key` with `put`'s
/// options (`ignore_value` or `ignore_lease`).
fn delete_then_put(from: &str, key: &str, value: &str, put: PutOptions) -> Txn {
    Txn::new().and_then([
        TxnOp::delete(from, Some(DeleteOptions::new().with_from_key())),
        TxnOp::put(key, value, Some(put)),
    ])
}

/// The gRPC code and message a call failed with.
fn refusal<T: std::fmt::Debug>(result: Result<T, Error>) -> (tonic::Code, String) {
    match result {
        Err(Error::GRpcStatus(s)) => (s.code(), s.message().to_string()),
        other => panic!("expected the txn to be refused, got {other:?}"),
    }
}

async fn connect(endpoint: String) -> Client {
    Client::connect([endpoint], None).await.expect("connect")
}

/// Every key a member holds in its own state (a serializable read), and its revision.
async fn held_by(endpoint: String) -> (Held, i64) {
    let mut c = connect(endpoint).await;
    let all = GetOptions::new().with_all_keys().with_serializable();
    let resp = c.get("", Some(all)).await.expect("read every key");
    let held = resp
        .kvs()
        .iter()
        .map(|kv| {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            let facts = (
                text(kv.value()),
                kv.create_revision(),
                kv.mod_revision(),
                kv.version(),
                kv.lease(),
            );
            (text(kv.key()), facts)
        })
        .collect();
    (held, resp.header().expect("header").revision())
}

/// Puts `key` and records it in `acked` as acknowledged at the answered revision.
async fn put_acked(c: &mut Client, acked: &mut Held, key: &str, value: &str, lease: i64) -> i64 {
    let opts = (lease != 0).then(|| PutOptions::new().with_lease(lease));
    let resp = c.put(key, value, opts).await.expect("put");
    let rev = resp.header().expect("header").revision();
    acked.insert(key.to_string(), (value.to_string(), rev, rev, 1, lease));
    rev
}

/// The events a watch delivers until one at `revision` or later arrives (within `limit`).
async fn events_through(stream: &mut WatchStream, revision: i64, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, stream.message())
            .await
            .unwrap_or_else(|_| {
                panic!("no event at revision {revision} within {limit:?}: {seen:?}")
            })
            .expect("watch stream")
            .expect("watch stream open");
        let mut last = 0;
        for ev in msg.events() {
            let kv = ev.kv().expect("event key-value");
            let kind = match ev.event_type() {
                EventType::Put => "PUT",
                EventType::Delete => "DELETE",
            };
            seen.push(format!(
                "{kind} {} @{}",
                kv.key_str().unwrap(),
                kv.mod_revision()
            ));
            last = kv.mod_revision();
        }
        if last >= revision {
            return seen;
        }
    }
}

/// Waits until every member serves revision `rev`, then checks that each holds exactly
/// `acked` and the same HashKV at `rev`.
async fn every_member_holds(cluster: &Cluster, acked: &Held, rev: i64, when: &str) {
    let mut hashes = Vec::new();
    for (i, m) in cluster.members.iter().enumerate() {
        cluster.wait_revision(i, rev, Duration::from_secs(15));
        let (held, at) = held_by(m.endpoint()).await;
        assert_eq!(at, rev, "{when}: member {i} is at another revision");
        assert_eq!(&held, acked, "{when}: member {i} holds other keys");
        let mut c = connect(m.endpoint()).await;
        hashes.push(c.hash_kv(rev).await.expect("hashkv").hash());
    }
    assert!(
        hashes.windows(2).all(|w| w[0] == w[1]),
        "{when}: HashKV at {rev} differs between members: {hashes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_txn_changes_nothing_on_any_member_across_a_crash() {
    let mut cluster = Cluster::start(Flavor::Ours, 3, &[]);
    let leader = cluster.leader(Duration::from_secs(30));
    // Requests go through a follower (forwarded to the leader); the watch is on a third member.
    let via = (leader + 1) % 3;
    let watched = (leader + 2) % 3;
    let mut c = connect(cluster.members[via].endpoint()).await;

    let lease = c.lease_grant(600, None).await.expect("lease").id();
    let mut acked = Held::new();
    for (key, value) in [("a", "1"), ("k", "2"), ("m", "3")] {
        put_acked(&mut c, &mut acked, key, value, 0).await;
    }
    let mut rev = put_acked(&mut c, &mut acked, "n", "leased", lease).await;
    every_member_holds(&cluster, &acked, rev, "after the writes").await;

    let mut w = connect(cluster.members[watched].endpoint()).await;
    let from_next = WatchOptions::new()
        .with_all_keys()
        .with_start_revision(rev + 1);
    let (_watcher, mut stream) = w.watch("", Some(from_next)).await.expect("watch");

    let duplicate = (tonic::Code::InvalidArgument, DUPLICATE_KEY.to_string());
    let not_found = (tonic::Code::InvalidArgument, KEY_NOT_FOUND.to_string());
    let keep_value = || PutOptions::new().with_ignore_value();
    let keep_lease = || PutOptions::new().with_ignore_lease();
    for (txn, expected) in [
        // The exact txn: `k` exists.
        (delete_then_put("k", "k", "", keep_value()), &duplicate),
        (delete_then_put("k", "m", "v", keep_lease()), &duplicate),
        // A missing key inside the range.
        (delete_then_put("k", "l", "", keep_value()), &duplicate),
        // A missing key below the range: refused while applying, before any change.
        (delete_then_put("k", "b", "", keep_value()), &not_found),
        (delete_then_put("k", "b", "v", keep_lease()), &not_found),
    ] {
        let described = format!("{txn:?}");
        assert_eq!(&refusal(c.txn(txn).await), expected, "{described}");
    }

    // The next acknowledged write gets the next revision, and it is all the watch sees.
    let next = put_acked(&mut c, &mut acked, "marker", "1", 0).await;
    assert_eq!(next, rev + 1, "the refused txns moved the revision");
    rev = next;
    let seen = events_through(&mut stream, rev, Duration::from_secs(10)).await;
    assert_eq!(seen, vec![format!("PUT marker @{rev}")]);
    every_member_holds(&cluster, &acked, rev, "after the refused txns").await;

    // Right after: kill -9 every member, start them all again.
    cluster.kill9_and_restart_all();
    every_member_holds(&cluster, &acked, rev, "after the restart").await;

    let mut c = connect(cluster.members[via].endpoint()).await;
    let after = put_acked(&mut c, &mut acked, "after", "1", 0).await;
    assert_eq!(after, rev + 1, "the restart moved the revision");
    every_member_holds(&cluster, &acked, after, "after the next write").await;
}
