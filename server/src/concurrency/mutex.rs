//! concurrency.Mutex.Lock as etcd 3.4's Lock service runs it: the caller's key
//! `<name>/<lease hex>` joins the queue of keys under `<name>/`; the key created first
//! holds the lock, and each waiter waits for every key created before its own to go.

use etcd_proto::etcdserverpb::range_request::SortOrder;
use etcd_proto::etcdserverpb::{ResponseHeader, TxnRequest};
use tonic::Status;

use super::{created_at, key_only, put_op, range_op, ranged, session_key, under};
use super::{Cleanup, Local};

/// Takes the lock `name` for `lease`; answers the key that holds it and the header of
/// the read that found it held.
pub async fn lock(
    local: &Local,
    name: &[u8],
    lease: i64,
) -> Result<(Vec<u8>, ResponseHeader), Status> {
    let mut prefix = name.to_vec();
    prefix.push(b'/');
    let key = session_key(&prefix, lease);
    // Joins the queue, or finds the key this lease already queued (a lease re-locking the
    // same name holds it once), and reads the holder in the same txn.
    let owner = range_op(under(&prefix, SortOrder::Ascend));
    let resp = local
        .txn(TxnRequest {
            compare: vec![created_at(&key, 0)],
            success: vec![put_op(&key, b"", lease), owner.clone()],
            failure: vec![range_op(key_only(&key)), owner],
        })
        .await?;
    let header = resp.header.unwrap_or_default();
    let my_rev = match resp.succeeded {
        true => header.revision,
        false => ranged(&resp, 0).first().map_or(0, |kv| kv.create_revision),
    };
    let holder = ranged(&resp, 1);
    if holder.first().is_none_or(|kv| kv.create_revision == my_rev) {
        return Ok((key, header));
    }
    // etcd 3.4.23 answers once the queue ahead is gone, even if the caller's own key went
    // with its lease meanwhile (later releases answer `mutex: session is expired`).
    let cleanup = Cleanup::delete_if_created(local, &key, my_rev);
    match local.wait_deletes(&prefix, my_rev - 1).await {
        Ok(header) => {
            cleanup.disarm();
            Ok((key, header))
        }
        Err(e) => {
            cleanup.run().await;
            Err(e)
        }
    }
}
