//! The Lease service at the gRPC level against Debian's etcd 3.4: Grant (chosen and
//! server-made IDs, minimum and maximum TTLs), Revoke (attached keys go with the lease),
//! KeepAlive, TimeToLive with keys, Leases, and the errors a client can provoke.

use etcd_e2e::grpc::requests::{put, range};
use etcd_e2e::grpc::{Answer, Clients, GrpcPair};
use etcd_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseLeasesRequest, LeaseRevokeRequest, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
    PutRequest,
};
use tonic::Code;

/// Every lease ID this test chooses is below this; the server's are (almost surely) not.
const CHOSEN_IDS_BELOW: i64 = 0x1000;

/// Stands for a lease ID the server made.
const SERVER_MADE: i64 = -1;

async fn grant(pair: &mut GrpcPair, ttl: i64, id: i64) -> Answer<LeaseGrantResponse> {
    let r = LeaseGrantRequest { ttl, id };
    pair.same(r, |mut c, r| async move { c.lease.lease_grant(r).await })
        .await
}

/// TimeToLive; etcd lists a lease's keys in Go map order, so they are compared sorted.
async fn time_to_live(pair: &mut GrpcPair, id: i64, keys: bool) -> Answer<LeaseTimeToLiveResponse> {
    let r = LeaseTimeToLiveRequest { id, keys };
    let call = |mut c: Clients, r| async move {
        let mut resp = c.lease.lease_time_to_live(r).await?;
        resp.get_mut().keys.sort();
        Ok(resp)
    };
    pair.same(r, call).await
}

/// What a KeepAlive stream answered to each request: a response, the status that ended
/// the stream, or None when it ended cleanly.
type KeptAlive = Vec<Option<Answer<LeaseKeepAliveResponse>>>;

/// One KeepAlive stream carrying `ids`, each request sent after the previous answer.
async fn keep_alive(
    mut c: Clients,
    ids: Vec<i64>,
) -> Result<tonic::Response<KeptAlive>, tonic::Status> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let requests = tokio_stream::wrappers::ReceiverStream::new(rx);
    let answers = tokio::spawn(async move { c.lease.lease_keep_alive(requests).await });
    let mut seen = Vec::new();
    tx.send(LeaseKeepAliveRequest { id: ids[0] })
        .await
        .expect("stream open");
    let mut stream = answers.await.expect("keep-alive task")?.into_inner();
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            tx.send(LeaseKeepAliveRequest { id: *id })
                .await
                .expect("stream open");
        }
        seen.push(match stream.message().await {
            Ok(Some(r)) => Some(Answer::Ok(r)),
            Ok(None) => None,
            Err(s) => Some(Answer::from_result(Err(s))),
        });
    }
    Ok(tonic::Response::new(seen))
}

#[tokio::test]
async fn grant_keep_alive_time_to_live_and_revoke() {
    let mut pair = GrpcPair::start(&[]).await;
    // Chosen IDs; TTLs below etcd's minimum are raised to it.
    for (ttl, id) in [(600, 0x10), (300, 0x20), (1, 0x30), (0, 0x40)] {
        grant(&mut pair, ttl, id).await.ok();
    }
    // A server-made ID is random: its presence and the rest are compared.
    let (ours, reference) = pair
        .call(
            LeaseGrantRequest { ttl: 60, id: 0 },
            |mut c, r| async move { c.lease.lease_grant(r).await },
        )
        .await;
    let (mut ours, mut reference) = (ours.ok(), reference.ok());
    assert!(ours.id > 0 && reference.id > 0, "{ours:?} {reference:?}");
    (ours.id, reference.id) = (0, 0);
    assert_eq!(ours, reference);

    for (k, lease) in [("k1", 0x10), ("k2", 0x10), ("k3", 0x20)] {
        let r = PutRequest {
            lease,
            ..put(k, "v")
        };
        pair.same(r, |mut c, r| async move { c.kv.put(r).await })
            .await
            .ok();
    }
    for (id, keys) in [
        (0x10, true),
        (0x10, false),
        (0x20, true),
        (0x40, true),
        (0x99, true),
    ] {
        time_to_live(&mut pair, id, keys).await.ok();
    }
    // The server-made ID is shown as SERVER_MADE; the list is sorted, as etcd lists
    // leases in Go map order.
    let leases = |mut c: Clients, r| async move {
        let mut resp = c.lease.lease_leases(r).await?;
        for l in &mut resp.get_mut().leases {
            if l.id >= CHOSEN_IDS_BELOW {
                l.id = SERVER_MADE;
            }
        }
        resp.get_mut().leases.sort_by_key(|l| l.id);
        Ok(resp)
    };
    let listed = pair.same(LeaseLeasesRequest {}, leases).await.ok();
    assert_eq!(listed.leases.len(), 5);
    pair.same(vec![0x10, 0x99, 0x20, 0x10], keep_alive)
        .await
        .ok();

    let revoke = |mut c: Clients, r| async move { c.lease.lease_revoke(r).await };
    pair.same(LeaseRevokeRequest { id: 0x10 }, revoke)
        .await
        .ok();
    pair.same(
        range("k", "l"),
        |mut c, r| async move { c.kv.range(r).await },
    )
    .await
    .ok();
    time_to_live(&mut pair, 0x10, true).await.ok();
    pair.same(vec![0x10], keep_alive).await.ok();
    pair.same(LeaseLeasesRequest {}, leases).await.ok();

    let not_found = Answer::error(Code::NotFound, "etcdserver: requested lease not found");
    assert_eq!(
        pair.same(LeaseRevokeRequest { id: 0x10 }, revoke).await,
        not_found
    );
    assert_eq!(
        pair.same(LeaseRevokeRequest { id: 0 }, revoke).await,
        not_found
    );
    let exists = Answer::error(Code::FailedPrecondition, "etcdserver: lease already exists");
    assert_eq!(grant(&mut pair, 60, 0x20).await, exists);
    let too_large = Answer::error(Code::OutOfRange, "etcdserver: too large lease TTL");
    assert_eq!(grant(&mut pair, 9_000_000_001, 0x50).await, too_large);
    grant(&mut pair, 9_000_000_000, 0x50).await.ok();
    grant(&mut pair, -5, 0x60).await.ok();
}
