//! `txn`: reads compares, success operations and failure operations from stdin, each
//! block ended by a blank line, in etcdctl's syntax (`mod("k") > "3"`, `put k v`, ...).

use std::io::BufRead;

use clap::{Args, Parser, Subcommand};
use etcd_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use etcd_proto::etcdserverpb::kv_client::KvClient;
use etcd_proto::etcdserverpb::request_op::Request;
use etcd_proto::etcdserverpb::{Compare, RequestOp, TxnRequest};

use super::kv::{DelArgs, GetArgs, PutArgs};
use super::words::{argify, unquote};
use crate::etcdctl::display::go_quote;
use crate::etcdctl::error::CtlError;
use crate::etcdctl::strconv::{dec_i64, go_bool};
use crate::etcdctl::Ctx;

/// `etcdctl txn`.
#[derive(Debug, Args)]
pub struct TxnArgs {
    /// Input transaction in interactive mode
    #[arg(short = 'i', long, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    interactive: bool,
    args: Vec<String>,
}

/// One operation line of a txn, parsed with the flags of the command it names.
#[derive(Debug, Parser)]
#[command(no_binary_name = true)]
struct OpLine {
    #[command(subcommand)]
    op: Op,
}

#[derive(Debug, Subcommand)]
enum Op {
    Get(GetArgs),
    Put(PutArgs),
    Del(DelArgs),
}

impl TxnArgs {
    /// Runs `txn`.
    pub async fn run(self, ctx: &Ctx) -> Result<(), CtlError> {
        if !self.args.is_empty() {
            return Err(CtlError::BadArgs(
                "txn command does not accept argument".into(),
            ));
        }
        let req = read_txn(&mut std::io::stdin().lock(), self.interactive)?;
        let req = &req;
        let resp = ctx
            .client
            .unary(|ch| async move { KvClient::new(ch).txn(req.clone()).await })
            .await?;
        ctx.show(ctx.printer().txn(&resp))
    }
}

/// Reads a whole txn from `input`, printing etcdctl's prompts when `interactive`.
pub fn read_txn(input: &mut impl BufRead, interactive: bool) -> Result<TxnRequest, CtlError> {
    let prompt = |text: &str| {
        if interactive {
            println!("{text}");
        }
    };
    prompt("compares:");
    let compare = read_block(input)?
        .iter()
        .map(|l| parse_compare(l))
        .collect::<Result<_, _>>()?;
    prompt("success requests (get, put, del):");
    let success = read_ops(input)?;
    prompt("failure requests (get, put, del):");
    let failure = read_ops(input)?;
    Ok(TxnRequest {
        compare,
        success,
        failure,
    })
}

/// Trimmed lines up to a blank one; the input must not end before it.
fn read_block(input: &mut impl BufRead) -> Result<Vec<String>, CtlError> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = input
            .read_line(&mut line)
            .map_err(|e| CtlError::InvalidInput(e.to_string()))?;
        if n == 0 || !line.ends_with('\n') {
            return Err(CtlError::InvalidInput("EOF".into()));
        }
        let line = line.trim();
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line.to_string());
    }
}

fn read_ops(input: &mut impl BufRead) -> Result<Vec<RequestOp>, CtlError> {
    read_block(input)?.iter().map(|l| parse_op(l)).collect()
}

/// One `get`/`put`/`del` line.
fn parse_op(line: &str) -> Result<RequestOp, CtlError> {
    let words = argify(line);
    if words.len() < 2 {
        return Err(CtlError::InvalidInput(format!(
            "invalid txn compare request: {line}"
        )));
    }
    let parsed = OpLine::try_parse_from(&words)
        .map_err(|_| CtlError::InvalidInput(format!("invalid txn request: {line}")))?;
    let request = match parsed.op {
        Op::Get(a) => Request::RequestRange(a.request()?),
        Op::Put(a) => Request::RequestPut(a.request(None)?),
        Op::Del(a) => Request::RequestDeleteRange(a.request()?),
    };
    Ok(RequestOp {
        request: Some(request),
    })
}

/// What `fmt.Sscanf(rest, "%q) %s %q", ...)` reads from the text after `target(`:
/// how many values it got, and them.
fn scan_compare(rest: &str) -> (usize, String, String, String) {
    let mut got = (0, String::new(), String::new(), String::new());
    let Some((key, rest)) = unquote(rest.trim_start()) else {
        return got;
    };
    (got.0, got.1) = (1, key);
    let Some(rest) = rest.strip_prefix(')') else {
        return got;
    };
    let rest = rest.trim_start();
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if end == 0 {
        return got;
    }
    (got.0, got.2) = (2, rest[..end].to_string());
    if let Some((val, _)) = unquote(rest[end..].trim_start()) {
        (got.0, got.3) = (3, val);
    }
    got
}

/// One compare line, e.g. `mod("k") > "3"` or `value("k") = "v"`.
pub fn parse_compare(line: &str) -> Result<Compare, CtlError> {
    let malformed =
        |why: String| CtlError::InvalidInput(format!("malformed comparison: {line}{why}"));
    let Some((target, rest)) = line.split_once('(') else {
        return Err(malformed(String::new()));
    };
    let (n, key, op, val) = scan_compare(rest);
    if n != 3 {
        return Err(malformed(format!(
            "; got {target}({}) {op} {}",
            go_quote(key.as_bytes()),
            go_quote(val.as_bytes())
        )));
    }
    let invalid = || CtlError::InvalidInput(format!("invalid txn compare request: {line}"));
    let number = || dec_i64(&val).map_err(|_| invalid());
    let (target, union) = match target {
        "ver" | "version" => (CompareTarget::Version, TargetUnion::Version(number()?)),
        "c" | "create" => (
            CompareTarget::Create,
            TargetUnion::CreateRevision(number()?),
        ),
        "m" | "mod" => (CompareTarget::Mod, TargetUnion::ModRevision(number()?)),
        "val" | "value" => (
            CompareTarget::Value,
            TargetUnion::Value(val.clone().into_bytes()),
        ),
        "lease" => (CompareTarget::Lease, TargetUnion::Lease(number()?)),
        other => return Err(malformed(format!(" (unknown target {other})"))),
    };
    let result = match op.as_str() {
        "=" | "==" => CompareResult::Equal,
        "!=" => CompareResult::NotEqual,
        "<" => CompareResult::Less,
        ">" => CompareResult::Greater,
        other => return Err(malformed(format!(" (unknown result op {other})"))),
    };
    Ok(Compare {
        result: result as i32,
        target: target as i32,
        key: key.into_bytes(),
        range_end: Vec::new(),
        target_union: Some(union),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(line: &str) -> String {
        parse_compare(line).unwrap_err().to_string()
    }

    #[test]
    fn compares() {
        let c = parse_compare(r#"mod("k") > "3""#).unwrap();
        assert_eq!(c.target, CompareTarget::Mod as i32);
        assert_eq!(c.result, CompareResult::Greater as i32);
        assert_eq!(c.target_union, Some(TargetUnion::ModRevision(3)));
        let v = parse_compare(r#"value("k") != "a b""#).unwrap();
        assert_eq!(v.target_union, Some(TargetUnion::Value(b"a b".to_vec())));
        assert_eq!(err("foo"), "malformed comparison: foo");
        assert_eq!(
            err(r#"mod("a")"#),
            r#"malformed comparison: mod("a"); got mod("a")  """#
        );
        assert_eq!(
            err(r#"mod("a") > 1"#),
            r#"malformed comparison: mod("a") > 1; got mod("a") > """#
        );
        assert_eq!(
            err(r#"bad("a") > "1""#),
            r#"malformed comparison: bad("a") > "1" (unknown target bad)"#
        );
        assert_eq!(
            err(r#"mod("a") > "x""#),
            r#"invalid txn compare request: mod("a") > "x""#
        );
    }

    #[test]
    fn whole_txn() {
        let input = "mod(\"k\") > \"0\"\n\nput k v\nget k --prefix\n\ndel k\n\n";
        let txn = read_txn(&mut input.as_bytes(), false).unwrap();
        assert_eq!(
            (txn.compare.len(), txn.success.len(), txn.failure.len()),
            (1, 2, 1)
        );
        let eof = read_txn(&mut "\n\n".as_bytes(), false).unwrap_err();
        assert_eq!(eof.to_string(), "EOF");
        let bad = read_txn(&mut "\nput\n\n\n".as_bytes(), false).unwrap_err();
        assert_eq!(bad.to_string(), "invalid txn compare request: put");
        let flag = read_txn(&mut "\nget k --bogus\n\n\n".as_bytes(), false).unwrap_err();
        assert_eq!(flag.to_string(), "invalid txn request: get k --bogus");
    }
}
