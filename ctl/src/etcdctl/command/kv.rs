//! `get`, `put` and `del`: their flags, the requests they build (shared with `txn`, whose
//! operations use the same syntax) and their checks, with etcdctl's error texts.

use std::io::Read;

use clap::Args;
use etcd_proto::etcdserverpb::kv_client::KvClient;
use etcd_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use etcd_proto::etcdserverpb::{DeleteRangeRequest, PutRequest, RangeRequest};

use crate::etcdctl::display::Format;
use crate::etcdctl::error::CtlError;
use crate::etcdctl::strconv::{go_bool, go_i64, hex_i64};
use crate::etcdctl::Ctx;

const PREFIX_AND_FROM_KEY: &str =
    "`--prefix` and `--from-key` cannot be set at the same time, choose one";
const TOO_MANY_WITH_PREFIX: &str =
    "too many arguments, only accept one argument when `--prefix` or `--from-key` is set";
const PUT_ARGS: &str = "put command needs 1 argument and input from stdin or 2 arguments";

/// `etcdctl get`.
#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    /// Linearizable(l) or Serializable(s)
    #[arg(long, default_value = "l")]
    consistency: String,
    /// Order of results; ASCEND or DESCEND (ASCEND by default)
    #[arg(long, default_value = "")]
    order: String,
    /// Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION
    #[arg(long = "sort-by", default_value = "")]
    sort_by: String,
    /// Maximum number of results
    #[arg(long, default_value = "0", value_parser = go_i64, allow_hyphen_values = true)]
    limit: i64,
    /// Get keys with matching prefix
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    prefix: bool,
    /// Get keys that are greater than or equal to the given key using byte compare
    #[arg(long = "from-key", num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    from_key: bool,
    /// Specify the kv revision
    #[arg(long, default_value = "0", value_parser = go_i64, allow_hyphen_values = true)]
    rev: i64,
    /// Get only the keys
    #[arg(long = "keys-only", num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    keys_only: bool,
    /// Only write values when using the "simple" output format
    #[arg(long = "print-value-only", num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    print_value_only: bool,
    /// <key> [range_end]
    args: Vec<String>,
}

/// The range end that selects every key with `key` as prefix (etcd's `GetPrefixRangeEnd`).
pub fn prefix_end(key: &[u8]) -> Vec<u8> {
    let mut end = key.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// Key and range end for `key [range_end]` with `--prefix`/`--from-key`.
fn key_range(
    args: &[String],
    prefix: bool,
    from_key: bool,
) -> Result<(Vec<u8>, Vec<u8>), CtlError> {
    if prefix && from_key {
        return Err(CtlError::BadArgs(PREFIX_AND_FROM_KEY.into()));
    }
    let mut key = args[0].clone().into_bytes();
    let mut end = Vec::new();
    if args.len() > 1 {
        if prefix || from_key {
            return Err(CtlError::BadArgs(TOO_MANY_WITH_PREFIX.into()));
        }
        end = args[1].clone().into_bytes();
    }
    if (prefix || from_key) && key.is_empty() {
        key = vec![0];
        end = vec![0];
    } else if prefix {
        end = prefix_end(&key);
    } else if from_key {
        end = vec![0];
    }
    Ok((key, end))
}

impl GetArgs {
    /// The Range request these flags describe.
    pub fn request(&self) -> Result<RangeRequest, CtlError> {
        if self.args.is_empty() {
            return Err(CtlError::BadArgs(
                "get command needs one argument as key and an optional argument as range_end"
                    .into(),
            ));
        }
        if self.prefix && self.from_key {
            return Err(CtlError::BadArgs(PREFIX_AND_FROM_KEY.into()));
        }
        let serializable = match self.consistency.as_str() {
            "s" => true,
            "l" => false,
            other => {
                return Err(CtlError::BadFeature(format!(
                    "unknown consistency flag {other:?}"
                )))
            }
        };
        let (key, range_end) = key_range(&self.args, self.prefix, self.from_key)?;
        let order = match self.order.to_uppercase().as_str() {
            "ASCEND" => SortOrder::Ascend,
            "DESCEND" => SortOrder::Descend,
            "" => SortOrder::None,
            _ => {
                return Err(CtlError::BadFeature(format!(
                    "bad sort order {}",
                    self.order
                )))
            }
        };
        let target = match self.sort_by.to_uppercase().as_str() {
            "CREATE" => SortTarget::Create,
            "KEY" | "" => SortTarget::Key,
            "MODIFY" => SortTarget::Mod,
            "VALUE" => SortTarget::Value,
            "VERSION" => SortTarget::Version,
            _ => {
                return Err(CtlError::BadFeature(format!(
                    "bad sort target {}",
                    self.sort_by
                )))
            }
        };
        // etcd's client drops an ascending sort by key: that is the natural order.
        let order = match (target, order) {
            (SortTarget::Key, SortOrder::Ascend) => SortOrder::None,
            (_, order) => order,
        };
        Ok(RangeRequest {
            key,
            range_end,
            limit: self.limit,
            revision: self.rev.max(0),
            sort_order: order as i32,
            sort_target: target as i32,
            serializable,
            keys_only: self.keys_only,
            ..Default::default()
        })
    }

    /// Runs `get`.
    pub async fn run(self, ctx: &Ctx) -> Result<(), CtlError> {
        let req = self.request()?;
        let req = &req;
        let resp = ctx
            .client
            .unary(|ch| async move { KvClient::new(ch).range(req.clone()).await })
            .await?;
        if self.print_value_only && ctx.format != Format::Simple {
            return Err(CtlError::BadArgs(
                "print-value-only is only for `--write-out=simple`".into(),
            ));
        }
        ctx.show(ctx.printer_with(self.print_value_only).get(&resp))
    }
}

/// `etcdctl put`.
#[derive(Debug, Clone, Args)]
pub struct PutArgs {
    /// lease ID (in hexadecimal) to attach to the key
    #[arg(long, default_value = "0")]
    lease: String,
    /// return the previous key-value pair before modification
    #[arg(long = "prev-kv", num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    prev_kv: bool,
    /// updates the key using its current value
    #[arg(long = "ignore-value", num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    ignore_value: bool,
    /// updates the key using its current lease
    #[arg(long = "ignore-lease", num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    ignore_lease: bool,
    /// <key> <value>
    args: Vec<String>,
}

impl PutArgs {
    /// The Put request; a missing value comes from `stdin` (when given).
    pub fn request(&self, stdin: Option<&mut dyn Read>) -> Result<PutRequest, CtlError> {
        let Some(key) = self.args.first() else {
            return Err(CtlError::BadArgs(PUT_ARGS.into()));
        };
        if self.ignore_value && self.args.len() > 1 {
            return Err(CtlError::BadArgs(
                "put command needs only 1 argument when 'ignore-value' is set".into(),
            ));
        }
        let value = match (self.ignore_value, self.args.get(1), stdin) {
            (true, _, _) => Vec::new(),
            (false, Some(v), _) => v.clone().into_bytes(),
            (false, None, Some(input)) => {
                let mut buf = Vec::new();
                let _ = input.read_to_end(&mut buf);
                if buf.is_empty() {
                    return Err(CtlError::BadArgs(PUT_ARGS.into()));
                }
                buf
            }
            (false, None, None) => return Err(CtlError::BadArgs(PUT_ARGS.into())),
        };
        let lease = hex_i64(&self.lease)
            .map_err(|e| CtlError::BadArgs(format!("bad lease ID ({e}), expecting ID in Hex")))?;
        Ok(PutRequest {
            key: key.clone().into_bytes(),
            value,
            lease,
            prev_kv: self.prev_kv,
            ignore_value: self.ignore_value,
            ignore_lease: self.ignore_lease,
        })
    }

    /// Runs `put`.
    pub async fn run(self, ctx: &Ctx) -> Result<(), CtlError> {
        let req = self.request(Some(&mut std::io::stdin()))?;
        let req = &req;
        let resp = ctx
            .client
            .unary(|ch| async move { KvClient::new(ch).put(req.clone()).await })
            .await?;
        ctx.show(ctx.printer().put(&resp))
    }
}

/// `etcdctl del`.
#[derive(Debug, Clone, Args)]
pub struct DelArgs {
    /// delete keys with matching prefix
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    prefix: bool,
    /// return deleted key-value pairs
    #[arg(long = "prev-kv", num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    prev_kv: bool,
    /// delete keys that are greater than or equal to the given key using byte compare
    #[arg(long = "from-key", num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    from_key: bool,
    /// <key> [range_end]
    args: Vec<String>,
}

impl DelArgs {
    /// The DeleteRange request these flags describe.
    pub fn request(&self) -> Result<DeleteRangeRequest, CtlError> {
        if self.args.is_empty() || self.args.len() > 2 {
            return Err(CtlError::BadArgs(
                "del command needs one argument as key and an optional argument as range_end"
                    .into(),
            ));
        }
        let (key, range_end) = key_range(&self.args, self.prefix, self.from_key)?;
        Ok(DeleteRangeRequest {
            key,
            range_end,
            prev_kv: self.prev_kv,
        })
    }

    /// Runs `del`.
    pub async fn run(self, ctx: &Ctx) -> Result<(), CtlError> {
        let req = self.request()?;
        let req = &req;
        let resp = ctx
            .client
            .unary(|ch| async move { KvClient::new(ch).delete_range(req.clone()).await })
            .await?;
        ctx.show(ctx.printer().del(&resp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"foo"), b"fop");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
    }

    #[test]
    fn ranges_from_flags() {
        let args = vec!["k".to_string()];
        assert_eq!(key_range(&args, true, false).unwrap().1, b"l");
        assert_eq!(key_range(&args, false, true).unwrap().1, b"\0");
        let empty = vec![String::new()];
        assert_eq!(
            key_range(&empty, true, false).unwrap(),
            (b"\0".to_vec(), b"\0".to_vec())
        );
        let two = vec!["a".to_string(), "c".to_string()];
        assert!(key_range(&two, true, false).is_err());
        assert!(key_range(&args, true, true).is_err());
    }
}
