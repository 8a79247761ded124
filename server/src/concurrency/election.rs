//! concurrency.Election as etcd 3.4's Election service runs it. A candidate's key is
//! `<name>/<lease hex>` holding its proposal; the key created first under `<name>/` is
//! the leader, and a candidate's campaign ends once every key created before its own is
//! gone.

use etcd_proto::etcdserverpb::range_request::SortOrder;
use etcd_proto::etcdserverpb::request_op::Request as Op;
use etcd_proto::etcdserverpb::{
    DeleteRangeRequest, RangeResponse, RequestOp, ResponseHeader, TxnRequest,
};
use etcd_proto::mvccpb::event::EventType;
use etcd_proto::mvccpb::{Event, KeyValue};
use tonic::Status;

use super::{created_at, key_only, plain, put_op, range_op, ranged, session_key, under};
use super::{Cleanup, Local};

pub const NOT_LEADER: &str = "election: not leader";
pub const NO_LEADER: &str = "election: no leader";

/// One candidate's claim: its key, that key's create revision and its lease.
#[derive(Debug, Clone)]
pub struct Claim {
    pub key: Vec<u8>,
    pub rev: i64,
    pub lease: i64,
}

fn prefix_of(name: &[u8]) -> Vec<u8> {
    let mut prefix = name.to_vec();
    prefix.push(b'/');
    prefix
}

/// Campaigns in `name` with `lease` and `value` until elected; answers the claim and the
/// header of the txn that made it.
pub async fn campaign(
    local: &Local,
    name: &[u8],
    lease: i64,
    value: &[u8],
) -> Result<(Claim, ResponseHeader), Status> {
    let prefix = prefix_of(name);
    let key = session_key(&prefix, lease);
    let resp = local
        .txn(TxnRequest {
            compare: vec![created_at(&key, 0)],
            success: vec![put_op(&key, value, lease)],
            failure: vec![range_op(key_only(&key))],
        })
        .await?;
    let header = resp.header.unwrap_or_default();
    let mut claim = Claim {
        key,
        rev: header.revision,
        lease,
    };
    if !resp.succeeded {
        // This lease already campaigns: it keeps its place and proposes the new value.
        let existing = ranged(&resp, 0);
        let kv = existing.first().cloned().unwrap_or_default();
        claim.rev = kv.create_revision;
        if kv.value != value {
            if let Err(e) = proclaim(local, &claim, value).await {
                let _ = resign(local, &claim).await;
                return Err(e);
            }
        }
    }
    // Withdraws the candidacy should the caller go away while waiting; a failed read
    // leaves it, as etcd does.
    let cleanup = Cleanup::delete_if_created(local, &claim.key, claim.rev);
    let waited = local.wait_deletes(&prefix, claim.rev - 1).await;
    cleanup.disarm();
    waited?;
    Ok((claim, header))
}

/// Sets the claim's value if its key is still the one the claim made.
pub async fn proclaim(
    local: &Local,
    claim: &Claim,
    value: &[u8],
) -> Result<ResponseHeader, Status> {
    let resp = local
        .txn(TxnRequest {
            compare: vec![created_at(&claim.key, claim.rev)],
            success: vec![put_op(&claim.key, value, claim.lease)],
            failure: vec![],
        })
        .await?;
    if !resp.succeeded {
        return Err(plain(NOT_LEADER));
    }
    Ok(resp.header.unwrap_or_default())
}

/// Deletes the claim's key if it is still the one the claim made.
pub async fn resign(local: &Local, claim: &Claim) -> Result<ResponseHeader, Status> {
    let resp = local
        .txn(TxnRequest {
            compare: vec![created_at(&claim.key, claim.rev)],
            success: vec![RequestOp {
                request: Some(Op::RequestDeleteRange(DeleteRangeRequest {
                    key: claim.key.clone(),
                    ..Default::default()
                })),
            }],
            failure: vec![],
        })
        .await?;
    Ok(resp.header.unwrap_or_default())
}

/// The current leader's key, with the header of the read.
pub async fn leader(local: &Local, name: &[u8]) -> Result<(KeyValue, ResponseHeader), Status> {
    let resp = local
        .get(under(&prefix_of(name), SortOrder::Ascend))
        .await?;
    first(resp).ok_or_else(|| plain(NO_LEADER))
}

fn first(resp: RangeResponse) -> Option<(KeyValue, ResponseHeader)> {
    let kv = resp.kvs.into_iter().next()?;
    Some((kv, resp.header.unwrap_or_default()))
}

/// Follows the leadership of `name` (concurrency's Election.Observe): sends the leader,
/// then each new value it proclaims; once its key is gone, the next leader. Ends when a
/// read fails or `send` answers false (the observer went away).
pub async fn observe<F, Fut>(local: &Local, name: &[u8], mut send: F)
where
    F: FnMut(KeyValue, ResponseHeader) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let prefix = prefix_of(name);
    let server = local.server().clone();
    loop {
        let Ok(resp) = local.get(under(&prefix, SortOrder::Ascend)).await else {
            return;
        };
        let read_at = resp.header.as_ref().map_or(0, |h| h.revision);
        let (kv, header) = match first(resp) {
            Some(found) => found,
            None => {
                // Nobody leads: the first key put under the prefix after the read does
                // (etcd watches from the read's revision, whose puts the read saw).
                let Some(kv) = next_event(local, read_at, |e| {
                    e.r#type == EventType::Put as i32
                        && e.kv.as_ref().is_some_and(|kv| kv.key.starts_with(&prefix))
                })
                .await
                .and_then(|(e, _)| e.kv) else {
                    return;
                };
                let header = server.header(kv.mod_revision);
                (kv, header)
            }
        };
        let mut seen = header.revision;
        let key = kv.key.clone();
        if !send(kv, header).await {
            return;
        }
        // The leader's key: each put is a new proclamation, its delete ends the term.
        loop {
            let Some((e, at)) = next_event(local, seen, |e| {
                e.kv.as_ref().is_some_and(|kv| kv.key == key)
            })
            .await
            else {
                return;
            };
            seen = e.kv.as_ref().map_or(at, |kv| kv.mod_revision);
            if e.r#type == EventType::Delete as i32 {
                break;
            }
            let Some(kv) = e.kv else { return };
            if !send(kv, server.header(at)).await {
                return;
            }
        }
    }
}

/// The first event after revision `after` that `wanted` picks, with the latest published
/// revision when it was found; `None` once the member stops publishing or the events are
/// no longer in the hub's window (compacted history ends a watch the same way).
async fn next_event(
    local: &Local,
    mut after: i64,
    wanted: impl Fn(&Event) -> bool,
) -> Option<(Event, i64)> {
    let hub = &local.server().state.hub;
    let mut published = hub.subscribe();
    loop {
        let latest = *published.borrow_and_update();
        if latest > after {
            for rev in hub.recent(after + 1, latest)? {
                if let Some(e) = rev.events.iter().find(|e| wanted(e)) {
                    return Some((e.clone(), latest));
                }
            }
            after = latest;
        }
        published.changed().await.ok()?;
    }
}
