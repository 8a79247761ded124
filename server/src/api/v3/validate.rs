//! Stateless request checks done before anything is proposed, with etcd's errors.

use std::collections::HashSet;

use etcd_proto::etcdserverpb::request_op::Request;
use etcd_proto::etcdserverpb::{
    DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};

use crate::error::{EtcdError, Result};
use crate::mvcc::index::KeyRange;

pub fn range(r: &RangeRequest) -> Result<()> {
    if r.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    Ok(())
}

pub fn put(r: &PutRequest) -> Result<()> {
    if r.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    if r.ignore_value && !r.value.is_empty() {
        return Err(EtcdError::ValueProvided);
    }
    if r.ignore_lease && r.lease != 0 {
        return Err(EtcdError::LeaseProvided);
    }
    Ok(())
}

pub fn delete(r: &DeleteRangeRequest) -> Result<()> {
    if r.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    Ok(())
}

/// Checks a txn tree: op counts, every op's own checks, and that no key is written twice.
pub fn txn(r: &TxnRequest, max_ops: usize) -> Result<()> {
    let ops = r.compare.len().max(r.success.len()).max(r.failure.len());
    if ops > max_ops {
        return Err(EtcdError::TooManyOps);
    }
    if r.compare.iter().any(|c| c.key.is_empty()) {
        return Err(EtcdError::EmptyKey);
    }
    for op in r.success.iter().chain(&r.failure) {
        match &op.request {
            Some(Request::RequestRange(x)) => range(x)?,
            Some(Request::RequestPut(x)) => put(x)?,
            Some(Request::RequestDeleteRange(x)) => delete(x)?,
            Some(Request::RequestTxn(x)) => txn(x, max_ops)?,
            None => {}
        }
    }
    intervals(&r.success)?;
    intervals(&r.failure)?;
    Ok(())
}

/// A deleted range, with etcd's range-end conventions (see [`KeyRange`]).
struct Deleted {
    start: Vec<u8>,
    end: Vec<u8>,
}

impl Deleted {
    /// Whether a put of `k` would overlap the delete. A delete to the end of the keyspace
    /// (`end` = `[0]`) covers every key from `start` on: etcd 3.4 checks plain byte-string
    /// intervals, where that range is empty, lets the put through and then panics applying
    /// a put with `ignore_value` of a key the delete removed; upstream's fix treats it as
    /// the range it is, and so do we.
    fn covers(&self, k: &[u8]) -> bool {
        KeyRange::new(&self.start, &self.end).contains(k)
    }
}

/// etcd's `checkIntervals`: within one level, a key may be put once and not inside a
/// deleted range; puts in the two branches of a nested txn may overlap each other (only one
/// branch runs) but not anything else.
fn intervals(ops: &[RequestOp]) -> Result<(HashSet<Vec<u8>>, Vec<Deleted>)> {
    let mut dels: Vec<Deleted> = ops
        .iter()
        .filter_map(|op| match &op.request {
            Some(Request::RequestDeleteRange(d)) => Some(Deleted {
                start: d.key.clone(),
                end: d.range_end.clone(),
            }),
            _ => None,
        })
        .collect();
    let mut puts: HashSet<Vec<u8>> = HashSet::new();
    for op in ops {
        let Some(Request::RequestTxn(t)) = &op.request else {
            continue;
        };
        let (puts_then, dels_then) = intervals(&t.success)?;
        let (puts_else, dels_else) = intervals(&t.failure)?;
        for k in &puts_then {
            if puts.contains(k) || dels.iter().any(|d| d.covers(k)) {
                return Err(EtcdError::DuplicateKey);
            }
            puts.insert(k.clone());
        }
        for k in puts_else {
            if (puts.contains(&k) && !puts_then.contains(&k)) || dels.iter().any(|d| d.covers(&k)) {
                return Err(EtcdError::DuplicateKey);
            }
            puts.insert(k);
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in ops {
        let Some(Request::RequestPut(p)) = &op.request else {
            continue;
        };
        if puts.contains(&p.key) || dels.iter().any(|d| d.covers(&p.key)) {
            return Err(EtcdError::DuplicateKey);
        }
        puts.insert(p.key.clone());
    }
    Ok((puts, dels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put_op(k: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestPut(PutRequest {
                key: k.into(),
                ..Default::default()
            })),
        }
    }
    fn del_op(k: &str, end: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
                key: k.into(),
                range_end: end.into(),
                ..Default::default()
            })),
        }
    }
    fn txn_op(success: Vec<RequestOp>, failure: Vec<RequestOp>) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestTxn(TxnRequest {
                success,
                failure,
                ..Default::default()
            })),
        }
    }

    #[test]
    fn duplicate_puts_are_rejected() {
        let t = TxnRequest {
            success: vec![put_op("a"), put_op("a")],
            ..Default::default()
        };
        assert_eq!(txn(&t, 128), Err(EtcdError::DuplicateKey));
    }

    #[test]
    fn put_inside_deleted_range_is_rejected() {
        let t = TxnRequest {
            success: vec![del_op("a", "c"), put_op("b")],
            ..Default::default()
        };
        assert_eq!(txn(&t, 128), Err(EtcdError::DuplicateKey));
        let t = TxnRequest {
            success: vec![del_op("a", "c"), put_op("c")],
            ..Default::default()
        };
        assert_eq!(txn(&t, 128), Ok(()));
    }

    #[test]
    fn deleting_from_a_key_covers_every_key_after_it() {
        let keep_value = |k: &str| RequestOp {
            request: Some(Request::RequestPut(PutRequest {
                key: k.into(),
                ignore_value: true,
                ..Default::default()
            })),
        };
        for success in [
            vec![del_op("k", "\0"), keep_value("k")],
            vec![del_op("k", "\0"), put_op("l")],
            vec![del_op("\0", "\0"), put_op("a")],
            vec![del_op("a", "\0"), txn_op(vec![put_op("b")], vec![])],
        ] {
            let t = TxnRequest {
                success,
                ..Default::default()
            };
            assert_eq!(txn(&t, 128), Err(EtcdError::DuplicateKey), "{t:?}");
        }
        let t = TxnRequest {
            success: vec![del_op("k", "\0"), put_op("b"), keep_value("a")],
            ..Default::default()
        };
        assert_eq!(txn(&t, 128), Ok(()));
    }

    #[test]
    fn nested_branches_may_share_keys() {
        let t = TxnRequest {
            success: vec![txn_op(vec![put_op("k")], vec![put_op("k")])],
            ..Default::default()
        };
        assert_eq!(txn(&t, 128), Ok(()));
        let t = TxnRequest {
            success: vec![put_op("k"), txn_op(vec![put_op("k")], vec![])],
            ..Default::default()
        };
        assert_eq!(txn(&t, 128), Err(EtcdError::DuplicateKey));
    }

    #[test]
    fn op_limits_and_empty_keys() {
        let t = TxnRequest {
            success: (0..3).map(|i| put_op(&i.to_string())).collect(),
            ..Default::default()
        };
        assert_eq!(txn(&t, 2), Err(EtcdError::TooManyOps));
        assert_eq!(put(&PutRequest::default()), Err(EtcdError::EmptyKey));
        let p = PutRequest {
            key: "k".into(),
            value: "v".into(),
            ignore_value: true,
            ..Default::default()
        };
        assert_eq!(put(&p), Err(EtcdError::ValueProvided));
    }
}
