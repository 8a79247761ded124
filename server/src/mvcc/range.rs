//! Range evaluation with etcd's options: limit/more, count, sorting, revision filters.

use etcd_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use etcd_proto::etcdserverpb::{RangeRequest, RangeResponse};
use etcd_proto::mvccpb::KeyValue;

use super::index::{KeyIndex, KeyRange};
use super::revision::Revision;
use crate::error::Result;

/// Evaluates `req` against the index at store revision `at`, fetching values with `fetch`.
///
/// Mirrors etcd's applier: filters and sorting force a full fetch; `count` is the number of
/// keys in the range before revision filters; `more` says the limit cut the result.
pub fn evaluate(
    index: &KeyIndex,
    at: i64,
    req: &RangeRequest,
    fetch: &dyn Fn(Revision) -> Result<KeyValue>,
) -> Result<RangeResponse> {
    let range = KeyRange::new(&req.key, &req.range_end);
    let visible: Vec<Revision> = index.visible_in_range(range, at).map(|(_, r)| r).collect();
    let count = visible.len() as i64;
    if req.count_only {
        return Ok(RangeResponse {
            count,
            ..Default::default()
        });
    }

    let order = SortOrder::try_from(req.sort_order).unwrap_or(SortOrder::None);
    let target = SortTarget::try_from(req.sort_target).unwrap_or(SortTarget::Key);
    let filtered = req.min_mod_revision != 0
        || req.max_mod_revision != 0
        || req.min_create_revision != 0
        || req.max_create_revision != 0;
    let fetch_all = order != SortOrder::None || filtered;
    let take = if req.limit > 0 && !fetch_all {
        (req.limit as usize).saturating_add(1)
    } else {
        usize::MAX
    };

    let mut kvs = Vec::with_capacity(visible.len().min(take));
    for rev in visible.into_iter().take(take) {
        kvs.push(fetch(rev)?);
    }
    if filtered {
        kvs.retain(|kv| passes_filters(req, kv));
    }

    let order = if target != SortTarget::Key && order == SortOrder::None {
        SortOrder::Ascend
    } else {
        order
    };
    sort(&mut kvs, order, target);

    let mut more = false;
    if req.limit > 0 && kvs.len() > req.limit as usize {
        kvs.truncate(req.limit as usize);
        more = true;
    }
    if req.keys_only {
        kvs.iter_mut().for_each(|kv| kv.value.clear());
    }
    Ok(RangeResponse {
        header: None,
        kvs,
        more,
        count,
    })
}

fn passes_filters(req: &RangeRequest, kv: &KeyValue) -> bool {
    !(req.max_mod_revision != 0 && kv.mod_revision > req.max_mod_revision
        || req.min_mod_revision != 0 && kv.mod_revision < req.min_mod_revision
        || req.max_create_revision != 0 && kv.create_revision > req.max_create_revision
        || req.min_create_revision != 0 && kv.create_revision < req.min_create_revision)
}

fn sort(kvs: &mut [KeyValue], order: SortOrder, target: SortTarget) {
    // Results come out of the index in ascending key order already.
    if order == SortOrder::None || (order == SortOrder::Ascend && target == SortTarget::Key) {
        return;
    }
    let cmp = |a: &KeyValue, b: &KeyValue| match target {
        SortTarget::Key => a.key.cmp(&b.key),
        SortTarget::Version => a.version.cmp(&b.version),
        SortTarget::Create => a.create_revision.cmp(&b.create_revision),
        SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
        SortTarget::Value => a.value.cmp(&b.value),
    };
    if order == SortOrder::Descend {
        kvs.sort_by(|a, b| cmp(b, a));
    } else {
        kvs.sort_by(cmp);
    }
}
