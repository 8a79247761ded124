//! Nothing acknowledged is lost: writers hammer our member through the `etcd-client` crate,
//! the process is SIGKILLed mid-stream, restarted, and every acknowledged key, the revision
//! counter and a lease must be back.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, GetOptions, PutOptions};
use etcd_e2e::wait::until_async;
use etcd_e2e::{Flavor, Member};

const WRITERS: usize = 16;

/// Writes `w/<writer>/<n>` keys until the server stops answering, recording each
/// acknowledged key with the revision the server reported.
async fn write_until_failure(
    endpoint: String,
    writer: usize,
    acked: Arc<Mutex<BTreeMap<String, i64>>>,
) {
    let Ok(mut client) = Client::connect([endpoint], None).await else {
        return;
    };
    for n in 0.. {
        let key = format!("w/{writer:02}/{n:08}");
        match client.put(key.as_str(), format!("value-{n}"), None).await {
            Ok(resp) => {
                let rev = resp.header().map(|h| h.revision()).unwrap_or_default();
                acked.lock().unwrap().insert(key, rev);
            }
            Err(_) => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_mid_write_loses_no_acknowledged_write() {
    let mut member = Member::start(Flavor::Ours, &[]);
    let endpoint = member.endpoint();
    let mut client = Client::connect([endpoint.clone()], None).await.unwrap();
    let lease = client.lease_grant(600, None).await.unwrap().id();
    client
        .put("leased", "v", Some(PutOptions::new().with_lease(lease)))
        .await
        .unwrap();

    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    for round in 0..3 {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                tokio::spawn(write_until_failure(
                    endpoint.clone(),
                    w + round * WRITERS,
                    acked.clone(),
                ))
            })
            .collect();
        // Killed mid-stream, once this round has had its share of acknowledged writes.
        let wanted = 100 * (round + 1) + 50;
        let enough = || acked.lock().unwrap().len() > wanted;
        until_async(Duration::from_secs(30), "writes before the kill", enough).await;
        member.kill9();
        for w in writers {
            w.await.unwrap();
        }

        member.restart();
        let mut client = Client::connect([endpoint.clone()], None).await.unwrap();
        let resp = client
            .get("w/", Some(GetOptions::new().with_prefix()))
            .await
            .unwrap();
        let found: BTreeMap<String, i64> = resp
            .kvs()
            .iter()
            .map(|kv| (kv.key_str().unwrap().to_string(), kv.mod_revision()))
            .collect();
        let acked_now = acked.lock().unwrap().clone();
        for (key, rev) in acked_now.iter() {
            assert_eq!(
                found.get(key),
                Some(rev),
                "round {round}: acknowledged {key} at revision {rev} is missing or changed"
            );
        }
        let max_acked = acked_now.values().max().copied().unwrap_or_default();
        let revision = resp.header().unwrap().revision();
        assert!(
            revision >= max_acked,
            "revision went back from {max_acked} to {revision}"
        );

        let ttl = client.lease_time_to_live(lease, None).await.unwrap();
        assert!(
            ttl.ttl() > 0 && ttl.ttl() <= 600,
            "lease lost or wrong after restart: ttl {}",
            ttl.ttl()
        );
        let leased = client.get("leased", None).await.unwrap();
        assert_eq!(leased.kvs().len(), 1, "leased key lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_lease_stays_expired_across_restart() {
    let mut member = Member::start(Flavor::Ours, &[]);
    let mut client = Client::connect([member.endpoint()], None).await.unwrap();
    let lease = client.lease_grant(3, None).await.unwrap().id();
    client
        .put("short", "v", Some(PutOptions::new().with_lease(lease)))
        .await
        .unwrap();
    member.kill9();
    tokio::time::sleep(Duration::from_secs(1)).await;
    member.restart();
    // The lease's TTL is honoured after the restart: within a few seconds (etcd extends the
    // remaining TTL to at least the election timeout on recovery) the key is gone.
    let mut client = Client::connect([member.endpoint()], None).await.unwrap();
    let mut gone = false;
    for _ in 0..100 {
        if client.get("short", None).await.unwrap().kvs().is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "a 3s lease attached key survived 10s after restart");
}
