//! Short builders for the requests the gRPC tests send, so a test reads as its requests.

use etcd_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use etcd_proto::etcdserverpb::request_op::Request;
use etcd_proto::etcdserverpb::{
    Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};

pub fn put(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    }
}

/// `key` alone when `end` is empty, `[key, end)` otherwise (`"\0"`: every key from `key`).
pub fn range(key: &str, end: &str) -> RangeRequest {
    RangeRequest {
        key: key.into(),
        range_end: end.into(),
        ..Default::default()
    }
}

pub fn delete(key: &str, end: &str) -> DeleteRangeRequest {
    DeleteRangeRequest {
        key: key.into(),
        range_end: end.into(),
        ..Default::default()
    }
}

/// A compare of `key`'s `target` (holding `value`) with `result`.
pub fn compare(key: &str, result: CompareResult, value: TargetUnion) -> Compare {
    let target = match value {
        TargetUnion::Version(_) => CompareTarget::Version,
        TargetUnion::CreateRevision(_) => CompareTarget::Create,
        TargetUnion::ModRevision(_) => CompareTarget::Mod,
        TargetUnion::Value(_) => CompareTarget::Value,
        TargetUnion::Lease(_) => CompareTarget::Lease,
    };
    Compare {
        result: result as i32,
        target: target as i32,
        key: key.into(),
        target_union: Some(value),
        ..Default::default()
    }
}

pub fn txn(compare: Vec<Compare>, success: Vec<RequestOp>, failure: Vec<RequestOp>) -> TxnRequest {
    TxnRequest {
        compare,
        success,
        failure,
    }
}

/// Any request that can be an operation of a txn.
pub fn op(request: impl Into<Op>) -> RequestOp {
    RequestOp {
        request: Some(request.into().0),
    }
}

/// A txn operation (see [`op`]).
pub struct Op(Request);

impl From<RangeRequest> for Op {
    fn from(r: RangeRequest) -> Op {
        Op(Request::RequestRange(r))
    }
}
impl From<PutRequest> for Op {
    fn from(r: PutRequest) -> Op {
        Op(Request::RequestPut(r))
    }
}
impl From<DeleteRangeRequest> for Op {
    fn from(r: DeleteRangeRequest) -> Op {
        Op(Request::RequestDeleteRange(r))
    }
}
impl From<TxnRequest> for Op {
    fn from(r: TxnRequest) -> Op {
        Op(Request::RequestTxn(r))
    }
}
