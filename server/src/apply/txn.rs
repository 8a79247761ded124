//! Txn semantics: compares, branch choice, validation and execution as one revision.
//!
//! As in etcd, every compare in the request tree (nested txns included) is evaluated
//! against the state before the txn runs; that fixes the branch taken at every level (the
//! "path"). Validation of the chosen ops (leases exist, `ignore_value`/`ignore_lease` keys
//! exist, read revisions not compacted) happens before the first write. An op that still
//! fails while executing (a put keeping the value of a key an earlier op deleted, which the
//! API layer refuses but an entry in the log may hold) drops the staged write with every
//! change of the txn, so a txn applies whole or not at all.

use etcd_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use etcd_proto::etcdserverpb::request_op::Request;
use etcd_proto::etcdserverpb::response_op::Response;
use etcd_proto::etcdserverpb::{
    Compare, RangeRequest, RangeResponse, RequestOp, ResponseHeader, ResponseOp, TxnRequest,
    TxnResponse,
};
use etcd_proto::mvccpb::KeyValue;

use super::{check_put, exec_delete, exec_put};
use crate::error::Result;
use crate::lease::Lessor;
use crate::mvcc::{MvccStore, WriteTxn};

/// Read access a txn needs: implemented by the committed store and by a write in progress.
pub trait KvRead {
    fn range(&self, req: &RangeRequest) -> Result<RangeResponse>;
    fn revision(&self) -> i64;
}

impl KvRead for MvccStore {
    fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        MvccStore::range(self, req)
    }
    fn revision(&self) -> i64 {
        self.current_revision()
    }
}

impl KvRead for WriteTxn<'_> {
    fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        WriteTxn::range(self, req)
    }
    fn revision(&self) -> i64 {
        self.read_revision()
    }
}

/// Which branch each txn in the tree takes, in depth-first order of the txns visited.
#[derive(Debug, Default)]
pub struct Path(Vec<bool>);

/// Evaluates every compare of the tree against `view`.
pub fn path(view: &impl KvRead, req: &TxnRequest) -> Result<Path> {
    let mut p = Path::default();
    walk(view, req, &mut p)?;
    Ok(p)
}

fn walk(view: &impl KvRead, req: &TxnRequest, p: &mut Path) -> Result<()> {
    let mut ok = true;
    for c in &req.compare {
        if !compare(view, c)? {
            ok = false;
            break;
        }
    }
    p.0.push(ok);
    for op in branch(req, ok) {
        if let Some(Request::RequestTxn(t)) = &op.request {
            walk(view, t, p)?;
        }
    }
    Ok(())
}

fn branch(req: &TxnRequest, succeeded: bool) -> &[RequestOp] {
    if succeeded {
        &req.success
    } else {
        &req.failure
    }
}

fn compare(view: &impl KvRead, c: &Compare) -> Result<bool> {
    let rr = view.range(&RangeRequest {
        key: c.key.clone(),
        range_end: c.range_end.clone(),
        ..Default::default()
    })?;
    let target = CompareTarget::try_from(c.target).unwrap_or(CompareTarget::Version);
    if rr.kvs.is_empty() {
        // A missing key has no value to compare; every other target compares as zero.
        return Ok(target != CompareTarget::Value && compare_kv(c, target, &KeyValue::default()));
    }
    Ok(rr.kvs.iter().all(|kv| compare_kv(c, target, kv)))
}

fn compare_kv(c: &Compare, target: CompareTarget, kv: &KeyValue) -> bool {
    use std::cmp::Ordering;
    let ord: Ordering = match (target, &c.target_union) {
        (CompareTarget::Value, Some(TargetUnion::Value(v))) => {
            kv.value.as_slice().cmp(v.as_slice())
        }
        (CompareTarget::Value, _) => kv.value.as_slice().cmp(&[]),
        (CompareTarget::Version, Some(TargetUnion::Version(v))) => kv.version.cmp(v),
        (CompareTarget::Create, Some(TargetUnion::CreateRevision(v))) => kv.create_revision.cmp(v),
        (CompareTarget::Mod, Some(TargetUnion::ModRevision(v))) => kv.mod_revision.cmp(v),
        (CompareTarget::Lease, Some(TargetUnion::Lease(v))) => kv.lease.cmp(v),
        (CompareTarget::Version, _) => kv.version.cmp(&0),
        (CompareTarget::Create, _) => kv.create_revision.cmp(&0),
        (CompareTarget::Mod, _) => kv.mod_revision.cmp(&0),
        (CompareTarget::Lease, _) => kv.lease.cmp(&0),
    };
    match CompareResult::try_from(c.result).unwrap_or(CompareResult::Equal) {
        CompareResult::Equal => ord == Ordering::Equal,
        CompareResult::NotEqual => ord != Ordering::Equal,
        CompareResult::Greater => ord == Ordering::Greater,
        CompareResult::Less => ord == Ordering::Less,
    }
}

/// Whether the txn tree contains no put or delete at all (then it needs no raft round).
pub fn is_read_only(req: &TxnRequest) -> bool {
    req.success
        .iter()
        .chain(&req.failure)
        .all(|op| match &op.request {
            Some(Request::RequestRange(_)) | None => true,
            Some(Request::RequestTxn(t)) => is_read_only(t),
            Some(_) => false,
        })
}

/// Puts among `ops` and in the txns nested in them (either branch): what makes a txn
/// grow the store.
pub fn puts(ops: &[RequestOp]) -> Vec<&etcd_proto::etcdserverpb::PutRequest> {
    let mut out = Vec::new();
    for op in ops {
        match &op.request {
            Some(Request::RequestPut(p)) => out.push(p),
            Some(Request::RequestTxn(t)) => {
                out.extend(puts(&t.success));
                out.extend(puts(&t.failure));
            }
            _ => {}
        }
    }
    out
}

/// Checks the ops the path selects, before anything is written.
pub fn validate(lessor: &Lessor, txn: &WriteTxn<'_>, req: &TxnRequest, path: &Path) -> Result<()> {
    let mut i = 0;
    validate_at(lessor, txn, req, path, &mut i)
}

fn validate_at(
    lessor: &Lessor,
    txn: &WriteTxn<'_>,
    req: &TxnRequest,
    path: &Path,
    i: &mut usize,
) -> Result<()> {
    let ok = path.0[*i];
    *i += 1;
    for op in branch(req, ok) {
        match &op.request {
            Some(Request::RequestPut(p)) => check_put(lessor, txn, p)?,
            Some(Request::RequestRange(r)) if r.revision > 0 => {
                txn.check_revision(r.revision)?;
            }
            Some(Request::RequestTxn(t)) => validate_at(lessor, txn, t, path, i)?,
            _ => {}
        }
    }
    Ok(())
}

/// Runs a read-only txn against committed state.
pub fn execute_read_only(view: &impl KvRead, req: &TxnRequest) -> Result<TxnResponse> {
    let p = path(view, req)?;
    let mut i = 0;
    read_only_at(view, req, &p, &mut i)
}

fn read_only_at(
    view: &impl KvRead,
    req: &TxnRequest,
    path: &Path,
    i: &mut usize,
) -> Result<TxnResponse> {
    let succeeded = path.0[*i];
    *i += 1;
    let mut responses = Vec::new();
    for op in branch(req, succeeded) {
        let response = match &op.request {
            Some(Request::RequestRange(r)) => Response::ResponseRange(nested_range(view, r)?),
            Some(Request::RequestTxn(t)) => {
                let mut resp = read_only_at(view, t, path, i)?;
                resp.header = Some(rev_header(view.revision()));
                Response::ResponseTxn(resp)
            }
            _ => continue,
        };
        responses.push(ResponseOp {
            response: Some(response),
        });
    }
    Ok(TxnResponse {
        header: None,
        succeeded,
        responses,
    })
}

fn nested_range(view: &impl KvRead, r: &RangeRequest) -> Result<RangeResponse> {
    let mut resp = view.range(r)?;
    resp.header = Some(rev_header(view.revision()));
    Ok(resp)
}

/// Header of a response nested in a txn: etcd fills in only the revision.
pub fn rev_header(revision: i64) -> ResponseHeader {
    ResponseHeader {
        revision,
        ..Default::default()
    }
}

/// Executes the ops `path` selects inside `txn`.
pub fn execute(txn: &mut WriteTxn<'_>, req: &TxnRequest, path: &Path) -> Result<TxnResponse> {
    let mut i = 0;
    execute_at(txn, req, path, &mut i)
}

fn execute_at(
    txn: &mut WriteTxn<'_>,
    req: &TxnRequest,
    path: &Path,
    i: &mut usize,
) -> Result<TxnResponse> {
    let succeeded = path.0[*i];
    *i += 1;
    let mut responses = Vec::new();
    for op in branch(req, succeeded) {
        let response = match &op.request {
            Some(Request::RequestRange(r)) => Response::ResponseRange(nested_range(&*txn, r)?),
            Some(Request::RequestPut(p)) => {
                let mut resp = exec_put(txn, p)?;
                resp.header = Some(rev_header(KvRead::revision(&*txn)));
                Response::ResponsePut(resp)
            }
            Some(Request::RequestDeleteRange(d)) => {
                let mut resp = exec_delete(txn, d)?;
                resp.header = Some(rev_header(KvRead::revision(&*txn)));
                Response::ResponseDeleteRange(resp)
            }
            Some(Request::RequestTxn(t)) => {
                let mut resp = execute_at(txn, t, path, i)?;
                resp.header = Some(rev_header(KvRead::revision(&*txn)));
                Response::ResponseTxn(resp)
            }
            None => continue,
        };
        responses.push(ResponseOp {
            response: Some(response),
        });
    }
    Ok(TxnResponse {
        header: None,
        succeeded,
        responses,
    })
}
