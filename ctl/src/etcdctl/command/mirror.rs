//! `make-mirror <destination>`: copies the keys under `--prefix` to another cluster, then
//! replays every later change there (one txn per source revision), printing how many
//! keys it has mirrored every 30 seconds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use etcd_proto::etcdserverpb::kv_client::KvClient;
use etcd_proto::etcdserverpb::request_op::Request;
use etcd_proto::etcdserverpb::watch_client::WatchClient;
use etcd_proto::etcdserverpb::watch_request::RequestUnion;
use etcd_proto::etcdserverpb::{
    DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest, WatchCreateRequest,
    WatchRequest,
};

use super::kv::prefix_end;
use crate::etcdctl::client::Client;
use crate::etcdctl::error::{CtlError, RpcError};
use crate::etcdctl::strconv::go_bool;
use crate::etcdctl::Ctx;

/// How often the mirrored-key count is printed.
const REPORT_EVERY: Duration = Duration::from_secs(30);

/// `etcdctl make-mirror`.
#[derive(Debug, Args)]
pub struct MirrorArgs {
    /// Key-value prefix to mirror
    #[arg(long, default_value = "")]
    prefix: String,
    /// destination prefix to mirror a prefix to a different prefix in the destination cluster
    #[arg(long = "dest-prefix", default_value = "")]
    dest_prefix: String,
    /// mirror key-values to the root of the destination cluster
    #[arg(long = "no-dest-prefix", num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    no_dest_prefix: bool,
    /// Verify certificates of TLS enabled secure servers using this CA bundle
    #[arg(long = "dest-cacert", default_value = "")]
    dest_cacert: String,
    /// Identify secure client using this TLS certificate file for the destination cluster
    #[arg(long = "dest-cert", default_value = "")]
    dest_cert: String,
    /// Identify secure client using this TLS key file
    #[arg(long = "dest-key", default_value = "")]
    dest_key: String,
    /// Disable transport security for client connections
    #[arg(long = "dest-insecure-transport", num_args = 0..=1, require_equals = true, default_value_t = true, default_missing_value = "true", value_parser = go_bool)]
    dest_insecure_transport: bool,
    args: Vec<String>,
}

impl MirrorArgs {
    /// Runs `make-mirror` until it fails.
    pub async fn run(self, ctx: &Ctx) -> Result<(), CtlError> {
        let [dest] = &self.args[..] else {
            return Err(CtlError::BadArgs(
                "make-mirror takes one destination argument".into(),
            ));
        };
        if self.no_dest_prefix && !self.dest_prefix.is_empty() {
            return Err(CtlError::BadArgs(
                "`--dest-prefix` and `--no-dest-prefix` cannot be set at the same time, choose one"
                    .into(),
            ));
        }
        let mut flags = ctx.flags.clone();
        flags.endpoints = vec![dest.clone()];
        flags.cacert = self.dest_cacert.clone();
        flags.cert = self.dest_cert.clone();
        flags.key = self.dest_key.clone();
        flags.insecure_transport = self.dest_insecure_transport;
        let dest = Client::new(&flags)?;
        let dest_prefix = if self.no_dest_prefix || !self.dest_prefix.is_empty() {
            self.dest_prefix.clone()
        } else {
            self.prefix.clone()
        };
        let mirror = Mirror {
            source: &ctx.client,
            dest: &dest,
            prefix: self.prefix.clone().into_bytes(),
            dest_prefix: dest_prefix.into_bytes(),
            total: Arc::new(AtomicU64::new(0)),
        };
        let total = mirror.total.clone();
        let reporter = tokio::spawn(async move {
            loop {
                tokio::time::sleep(REPORT_EVERY).await;
                println!("{}", total.load(Ordering::Relaxed));
            }
        });
        let result = mirror.run().await;
        reporter.abort();
        result.map_err(CtlError::Rpc)
    }
}

struct Mirror<'a> {
    source: &'a Client,
    dest: &'a Client,
    prefix: Vec<u8>,
    dest_prefix: Vec<u8>,
    total: Arc<AtomicU64>,
}

impl Mirror<'_> {
    /// The source key range: the prefix, or every key.
    fn range(&self) -> (Vec<u8>, Vec<u8>) {
        if self.prefix.is_empty() {
            (vec![0], vec![0])
        } else {
            (self.prefix.clone(), prefix_end(&self.prefix))
        }
    }

    /// `key` with the source prefix replaced by the destination prefix.
    fn dest_key(&self, key: &[u8]) -> Vec<u8> {
        let rest = key.strip_prefix(self.prefix.as_slice()).unwrap_or(key);
        [self.dest_prefix.as_slice(), rest].concat()
    }

    async fn run(&self) -> Result<(), RpcError> {
        let (key, range_end) = self.range();
        let req = RangeRequest {
            key: key.clone(),
            range_end: range_end.clone(),
            ..Default::default()
        };
        let req = &req;
        let base = self
            .source
            .unary(|ch| async move { KvClient::new(ch).range(req.clone()).await })
            .await?;
        for kv in &base.kvs {
            let put = PutRequest {
                key: self.dest_key(&kv.key),
                value: kv.value.clone(),
                ..Default::default()
            };
            let put = &put;
            self.dest
                .unary(|ch| async move { KvClient::new(ch).put(put.clone()).await })
                .await?;
            self.total.fetch_add(1, Ordering::Relaxed);
        }
        let revision = base.header.map_or(0, |h| h.revision);
        self.follow(key, range_end, revision + 1).await
    }

    /// Replays changes from `revision` on, one destination txn per source revision.
    async fn follow(
        &self,
        key: Vec<u8>,
        range_end: Vec<u8>,
        revision: i64,
    ) -> Result<(), RpcError> {
        let create = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key,
                range_end,
                start_revision: revision,
                ..Default::default()
            })),
        };
        let requests = futures::stream::iter([create]).chain(futures::stream::pending());
        let mut stream = WatchClient::new(self.source.connection().await?)
            .watch(requests)
            .await?
            .into_inner();
        while let Some(resp) = stream.message().await? {
            if resp.compact_revision != 0 {
                return Err(RpcError::Server(
                    "etcdserver: mvcc: required revision has been compacted".into(),
                ));
            }
            let mut ops = Vec::new();
            let mut last = 0;
            for ev in &resp.events {
                let kv = ev.kv.clone().unwrap_or_default();
                if last != 0 && kv.mod_revision > last {
                    self.commit(std::mem::take(&mut ops)).await?;
                }
                last = kv.mod_revision;
                let key = self.dest_key(&kv.key);
                ops.push(match ev.r#type {
                    0 => Request::RequestPut(PutRequest {
                        key,
                        value: kv.value,
                        ..Default::default()
                    }),
                    _ => Request::RequestDeleteRange(DeleteRangeRequest {
                        key,
                        ..Default::default()
                    }),
                });
                self.total.fetch_add(1, Ordering::Relaxed);
            }
            if !ops.is_empty() {
                self.commit(ops).await?;
            }
        }
        Ok(())
    }

    async fn commit(&self, ops: Vec<Request>) -> Result<(), RpcError> {
        let txn = TxnRequest {
            success: ops
                .into_iter()
                .map(|r| RequestOp { request: Some(r) })
                .collect(),
            ..Default::default()
        };
        let txn = &txn;
        self.dest
            .unary(|ch| async move { KvClient::new(ch).txn(txn.clone()).await })
            .await
            .map(|_| ())
    }
}

use futures::StreamExt;
