//! `watch [key [range_end]] [--prefix] [--rev] [--prev-kv] [-- command args...]` and the
//! interactive form (`-i`), which reads `watch ...` lines from stdin.

use std::io::BufRead;

use clap::{Args, Parser};
use etcd_proto::etcdserverpb::watch_client::WatchClient;
use etcd_proto::etcdserverpb::watch_request::RequestUnion;
use etcd_proto::etcdserverpb::{WatchCreateRequest, WatchRequest, WatchResponse};
use tokio::sync::mpsc;

use super::kv::prefix_end;
use super::words::argify;
use crate::etcdctl::display::go_quote;
use crate::etcdctl::error::{CtlError, RpcError};
use crate::etcdctl::strconv::{go_bool, go_i64};
use crate::etcdctl::Ctx;

const BAD_ARGS_NUM: &str = "bad number of arguments";

/// What one watch covers.
#[derive(Debug, Clone, Args)]
pub struct WatchOpts {
    /// Watch on a prefix if prefix is set
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    prefix: bool,
    /// Revision to start watching
    #[arg(long, default_value = "0", value_parser = go_i64, allow_hyphen_values = true)]
    rev: i64,
    /// get the previous key-value pair before the event happens
    #[arg(long = "prev-kv", num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    prev_kv: bool,
    /// [key or prefix] [range_end]
    args: Vec<String>,
    /// A command to run for every event, after `--`
    #[arg(last = true)]
    exec: Vec<String>,
}

/// `etcdctl watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Interactive mode
    #[arg(short = 'i', long, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    interactive: bool,
    #[command(flatten)]
    opts: WatchOpts,
}

/// One interactive line: `watch [options] key ...`.
#[derive(Debug, Parser)]
#[command(no_binary_name = true)]
struct Line {
    #[command(subcommand)]
    watch: LineCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LineCommand {
    Watch(WatchOpts),
}

impl WatchOpts {
    /// The create request, with `ETCDCTL_WATCH_KEY`/`ETCDCTL_WATCH_RANGE_END` applied.
    fn request(&self, env_key: &str, env_range: &str) -> Result<WatchCreateRequest, CtlError> {
        if !env_key.is_empty() && !self.args.is_empty() {
            return Err(CtlError::BadArgs(
                "bad number of arguments (found conflicting environment key)".into(),
            ));
        }
        let mut args = self.args.clone();
        if !env_key.is_empty() {
            args.insert(0, env_key.to_string());
            if !env_range.is_empty() {
                args.insert(1, env_range.to_string());
            }
        }
        let Some(key) = args.first() else {
            return Err(CtlError::BadArgs(BAD_ARGS_NUM.into()));
        };
        let mut key = key.clone().into_bytes();
        let mut range_end = Vec::new();
        if args.len() == 2 {
            if self.prefix {
                return Err(CtlError::BadArgs(
                    "`range_end` and `--prefix` are mutually exclusive".into(),
                ));
            }
            range_end = args[1].clone().into_bytes();
        }
        if self.prefix {
            if key.is_empty() {
                key = vec![0];
                range_end = vec![0];
            } else {
                range_end = prefix_end(&key);
            }
        }
        Ok(WatchCreateRequest {
            key,
            range_end,
            start_revision: self.rev,
            prev_kv: self.prev_kv,
            ..Default::default()
        })
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

impl WatchArgs {
    /// Runs `watch`.
    pub async fn run(self, ctx: &Ctx) -> Result<(), CtlError> {
        let (env_key, env_range) = (env("ETCDCTL_WATCH_KEY"), env("ETCDCTL_WATCH_RANGE_END"));
        if env_key.is_empty() && !env_range.is_empty() {
            return Err(CtlError::BadArgs(format!(
                "ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END={env_range:?}"
            )));
        }
        if self.interactive {
            return interactive(ctx, &env_key, &env_range).await;
        }
        if std::env::args().next_back().as_deref() == Some("--") {
            return Err(CtlError::BadArgs(
                "bad number of arguments (found separator --, but no commands)".into(),
            ));
        }
        let req = self.opts.request(&env_key, &env_range)?;
        watch(ctx, req, &self.opts.exec).await?;
        Err(CtlError::Interrupted(
            "watch is canceled by the server".into(),
        ))
    }
}

/// Reads `watch ...` lines and starts each watch next to the others, until stdin ends.
async fn interactive(ctx: &Ctx, env_key: &str, env_range: &str) -> Result<(), CtlError> {
    let (lines_tx, mut lines) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut running = futures::stream::FuturesUnordered::new();
    loop {
        use futures::StreamExt;
        let line = tokio::select! {
            line = lines.recv() => line,
            Some(_) = running.next(), if !running.is_empty() => continue,
        };
        let Some(Ok(line)) = line else {
            return Err(CtlError::InvalidInput(
                "Error reading watch request line: EOF".into(),
            ));
        };
        let words = argify(&line);
        if words.len() < 2 && env_key.is_empty() {
            eprintln!("Invalid command {line} (command type or key is not provided)");
            continue;
        }
        if words.first().map(String::as_str) != Some("watch") {
            eprintln!("Invalid command {line} (only support watch)");
            continue;
        }
        let LineCommand::Watch(opts) = Line::try_parse_from(&words)
            .map_err(|e| CtlError::BadArgs(e.kind().to_string()))?
            .watch;
        match opts.request(env_key, env_range) {
            Ok(req) => running.push(async move { watch(ctx, req, &opts.exec).await }),
            Err(e) => eprintln!("Invalid command {line} ({e})"),
        }
    }
}

/// Streams one watch, printing every response (and running `exec` per event) until the
/// server cancels it.
async fn watch(ctx: &Ctx, req: WatchCreateRequest, exec: &[String]) -> Result<(), CtlError> {
    let printer = ctx.printer();
    let create = WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(req)),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let _ = tx.send(create);
    let mut request = tonic::Request::new(tokio_stream_from(rx));
    request.metadata_mut().insert(
        "hasleader",
        tonic::metadata::MetadataValue::from_static("true"),
    );
    let mut stream = WatchClient::new(ctx.client.connection().await?)
        .watch(request)
        .await
        .map_err(RpcError::from)?
        .into_inner();
    while let Some(resp) = stream.message().await.map_err(RpcError::from)? {
        if resp.canceled {
            eprintln!("watch was canceled ({})", cancel_error(&resp));
        } else if resp.events.is_empty() {
            continue;
        }
        ctx.show(printer.watch(&resp))?;
        run_exec(exec, &resp)?;
        if resp.canceled {
            break;
        }
    }
    drop(tx);
    Ok(())
}

/// Adapts a channel receiver into the request stream tonic wants.
fn tokio_stream_from(
    mut rx: mpsc::UnboundedReceiver<WatchRequest>,
) -> impl futures::Stream<Item = WatchRequest> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Why the server cancelled a watch, as etcd's client words it.
fn cancel_error(resp: &WatchResponse) -> RpcError {
    if resp.compact_revision != 0 {
        return RpcError::Server("etcdserver: mvcc: required revision has been compacted".into());
    }
    if resp.cancel_reason.is_empty() {
        return RpcError::Server("etcdserver: mvcc: required revision is a future revision".into());
    }
    // A watch refused as it is created (permission denied) fails its whole stream with
    // the reason as the error, word for word.
    if resp.created {
        return RpcError::Server(resp.cancel_reason.clone());
    }
    RpcError::from(tonic::Status::failed_precondition(
        resp.cancel_reason.clone(),
    ))
}

/// Runs the `-- command` once per event with etcdctl's `ETCD_WATCH_*` variables.
fn run_exec(exec: &[String], resp: &WatchResponse) -> Result<(), CtlError> {
    let Some((program, args)) = exec.split_first() else {
        return Ok(());
    };
    let revision = resp.header.as_ref().map_or(0, |h| h.revision);
    for ev in &resp.events {
        let kv = ev.kv.clone().unwrap_or_default();
        let kind = crate::etcdctl::display::event_type_name(ev.r#type);
        let status = std::process::Command::new(program)
            .args(args)
            .env("ETCD_WATCH_REVISION", revision.to_string())
            .env("ETCD_WATCH_EVENT_TYPE", go_quote(kind.as_bytes()))
            .env("ETCD_WATCH_KEY", go_quote(&kv.key))
            .env("ETCD_WATCH_VALUE", go_quote(&kv.value))
            .status();
        let failure = match status {
            Ok(s) if s.success() => continue,
            Ok(s) => match s.code() {
                Some(code) => format!("exit status {code}"),
                None => "signal: killed".to_string(),
            },
            Err(e) => e.to_string(),
        };
        let quoted: Vec<String> = exec.iter().map(|a| go_quote(a.as_bytes())).collect();
        eprintln!("command [{}] error ({failure})", quoted.join(" "));
        return Err(CtlError::Silent);
    }
    Ok(())
}
