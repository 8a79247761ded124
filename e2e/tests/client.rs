//! The Rust `etcd-client` crate, an independent client, drives our member through the
//! KV, Watch, Lease and Maintenance services, including etcd's error codes and texts.

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, Error, EventType, GetOptions, PutOptions, SortOrder,
    SortTarget, Txn, TxnOp, WatchOptions,
};
use etcd_e2e::{Flavor, Member};

async fn client(member: &Member) -> Client {
    Client::connect([member.endpoint()], None)
        .await
        .expect("connect")
}

/// The gRPC status an operation failed with.
fn status_of<T: std::fmt::Debug>(result: Result<T, Error>) -> (tonic::Code, String) {
    match result {
        Err(Error::GRpcStatus(s)) => (s.code(), s.message().to_string()),
        other => panic!("expected a gRPC error, got {other:?}"),
    }
}

#[tokio::test]
async fn kv_ranges_revisions_and_deletes() {
    let member = Member::start(Flavor::Ours, &[]);
    let mut c = client(&member).await;
    for (i, k) in ["a", "b", "c", "d"].iter().enumerate() {
        let r = c.put(*k, format!("v{i}"), None).await.unwrap();
        assert_eq!(r.header().unwrap().revision(), i as i64 + 2);
    }
    let r = c
        .put("a", "again", Some(PutOptions::new().with_prev_key()))
        .await
        .unwrap();
    assert_eq!(r.prev_key().unwrap().value(), b"v0");

    let all = c
        .get("", Some(GetOptions::new().with_from_key()))
        .await
        .unwrap();
    assert_eq!(all.count(), 4);
    let a = &all.kvs()[0];
    assert_eq!(
        (a.create_revision(), a.mod_revision(), a.version()),
        (2, 6, 2)
    );

    let page = c
        .get("a", Some(GetOptions::new().with_range("d").with_limit(2)))
        .await
        .unwrap();
    assert_eq!(page.kvs().len(), 2);
    assert!(page.more());
    assert_eq!(page.count(), 3);

    let sorted = c
        .get(
            "",
            Some(
                GetOptions::new()
                    .with_all_keys()
                    .with_sort(SortTarget::Mod, SortOrder::Descend),
            ),
        )
        .await
        .unwrap();
    assert_eq!(sorted.kvs()[0].key(), b"a");

    let old = c
        .get("a", Some(GetOptions::new().with_revision(2)))
        .await
        .unwrap();
    assert_eq!(old.kvs()[0].value(), b"v0");
    let serializable = c
        .get("b", Some(GetOptions::new().with_serializable()))
        .await
        .unwrap();
    assert_eq!(serializable.kvs()[0].value(), b"v1");
    let keys_only = c
        .get("c", Some(GetOptions::new().with_keys_only()))
        .await
        .unwrap();
    assert!(keys_only.kvs()[0].value().is_empty());

    let del = c
        .delete(
            "b",
            Some(DeleteOptions::new().with_range("d").with_prev_key()),
        )
        .await
        .unwrap();
    assert_eq!(del.deleted(), 2);
    assert_eq!(del.prev_kvs().len(), 2);
    assert_eq!(
        del.header().unwrap().revision(),
        7,
        "one revision for a range delete"
    );
}

#[tokio::test]
async fn txn_compares_and_branches() {
    let member = Member::start(Flavor::Ours, &[]);
    let mut c = client(&member).await;
    c.put("k", "1", None).await.unwrap();
    let txn = Txn::new()
        .when([
            Compare::value("k", CompareOp::Equal, "1"),
            Compare::version("k", CompareOp::Greater, 0),
        ])
        .and_then([TxnOp::put("k", "2", None), TxnOp::put("other", "x", None)])
        .or_else([TxnOp::get("k", None)]);
    let r = c.txn(txn).await.unwrap();
    assert!(r.succeeded());
    assert_eq!(r.header().unwrap().revision(), 3, "one revision per txn");

    let failing = Txn::new()
        .when([Compare::value("k", CompareOp::Equal, "1")])
        .or_else([TxnOp::get("k", None)]);
    let r = c.txn(failing).await.unwrap();
    assert!(!r.succeeded());

    let dup = Txn::new().and_then([TxnOp::put("x", "1", None), TxnOp::put("x", "2", None)]);
    assert_eq!(
        status_of(c.txn(dup).await),
        (
            tonic::Code::InvalidArgument,
            "etcdserver: duplicate key given in txn request".into()
        )
    );
}

#[tokio::test]
async fn errors_carry_etcds_codes_and_texts() {
    let member = Member::start(Flavor::Ours, &[]);
    let mut c = client(&member).await;
    assert_eq!(
        status_of(c.put("", "v", None).await),
        (
            tonic::Code::InvalidArgument,
            "etcdserver: key is not provided".into()
        )
    );
    let big = vec![b'x'; 1_700_000];
    assert_eq!(
        status_of(c.put("big", big, None).await),
        (
            tonic::Code::InvalidArgument,
            "etcdserver: request is too large".into()
        )
    );
    // Past the gRPC limit (request limit + 512 KiB) grpc-go's own rejection, as etcd gives it.
    let huge = vec![b'x'; 2 * 1024 * 1024];
    assert_eq!(
        status_of(c.put("big", huge, None).await),
        (
            tonic::Code::ResourceExhausted,
            "grpc: received message larger than max (2097162 vs. 2097152)".into()
        )
    );
    assert_eq!(
        status_of(
            c.put("k", "v", Some(PutOptions::new().with_lease(0x1234)))
                .await
        ),
        (
            tonic::Code::NotFound,
            "etcdserver: requested lease not found".into()
        )
    );
    for i in 0..5 {
        c.put("k", format!("{i}"), None).await.unwrap();
    }
    c.compact(4, None).await.unwrap();
    assert_eq!(
        status_of(c.get("k", Some(GetOptions::new().with_revision(2))).await),
        (
            tonic::Code::OutOfRange,
            "etcdserver: mvcc: required revision has been compacted".into()
        )
    );
    assert_eq!(
        status_of(c.compact(100, None).await),
        (
            tonic::Code::OutOfRange,
            "etcdserver: mvcc: required revision is a future revision".into()
        )
    );
    // Still serving.
    assert_eq!(c.get("k", None).await.unwrap().kvs()[0].value(), b"4");
}

#[tokio::test]
async fn watch_streams_history_and_live_events() {
    let member = Member::start(Flavor::Ours, &[]);
    let mut c = client(&member).await;
    c.put("w/1", "a", None).await.unwrap();
    c.put("w/2", "b", None).await.unwrap();
    let (_watcher, mut stream) = c
        .watch(
            "w/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(2)
                    .with_prev_key(),
            ),
        )
        .await
        .unwrap();
    c.delete("w/1", None).await.unwrap();

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let resp = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        for e in resp.events() {
            let kv = e.kv().unwrap();
            seen.push((
                e.event_type(),
                kv.key_str().unwrap().to_string(),
                e.prev_kv().map(|p| p.value().to_vec()),
            ));
        }
    }
    assert_eq!(
        seen,
        vec![
            (EventType::Put, "w/1".into(), None),
            (EventType::Put, "w/2".into(), None),
            (EventType::Delete, "w/1".into(), Some(b"a".to_vec())),
        ]
    );
}

#[tokio::test]
async fn leases_keep_alive_and_revoke() {
    let member = Member::start(Flavor::Ours, &[]);
    let mut c = client(&member).await;
    let lease = c.lease_grant(10, None).await.unwrap();
    assert!(lease.id() > 0, "server picks an ID");
    c.put("l/1", "v", Some(PutOptions::new().with_lease(lease.id())))
        .await
        .unwrap();
    c.put("l/2", "v", Some(PutOptions::new().with_lease(lease.id())))
        .await
        .unwrap();

    let (mut keeper, mut responses) = c.lease_keep_alive(lease.id()).await.unwrap();
    keeper.keep_alive().await.unwrap();
    let ka = responses.message().await.unwrap().unwrap();
    assert_eq!((ka.id(), ka.ttl()), (lease.id(), 10));

    let ttl = c
        .lease_time_to_live(
            lease.id(),
            Some(etcd_client::LeaseTimeToLiveOptions::new().with_keys()),
        )
        .await
        .unwrap();
    assert_eq!(ttl.keys().len(), 2);
    assert_eq!(c.leases().await.unwrap().leases().len(), 1);

    let before = c
        .get("l/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    let revoked = c.lease_revoke(lease.id()).await.unwrap();
    assert_eq!(
        revoked.header().unwrap().revision(),
        before + 1,
        "revoke deletes all keys in one revision"
    );
    assert!(c
        .get("l/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap()
        .kvs()
        .is_empty());
    assert_eq!(
        status_of(c.lease_revoke(lease.id()).await),
        (
            tonic::Code::NotFound,
            "etcdserver: requested lease not found".into()
        )
    );
}

#[tokio::test]
async fn status_reports_api_level_and_headers() {
    let member = Member::start(Flavor::Ours, &[]);
    let mut c = client(&member).await;
    let put = c.put("x", "y", None).await.unwrap();
    let h = put.header().unwrap();
    assert!(h.cluster_id() != 0 && h.member_id() != 0 && h.raft_term() > 0);
    let status = c.status().await.unwrap();
    assert_eq!(status.version(), "3.5.0");
    assert_eq!(status.leader(), h.member_id());
    assert!(status.raft_index() > 0 && status.db_size() > 0);
}
