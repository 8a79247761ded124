//! `compaction <revision> [--physical]`.

use clap::Args;
use etcd_proto::etcdserverpb::kv_client::KvClient;
use etcd_proto::etcdserverpb::CompactionRequest;

use crate::etcdctl::error::CtlError;
use crate::etcdctl::strconv::{dec_i64, go_bool};
use crate::etcdctl::Ctx;

/// `etcdctl compaction`.
#[derive(Debug, Args)]
pub struct CompactionArgs {
    /// 'true' to wait for compaction to physically remove all old revisions
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    physical: bool,
    args: Vec<String>,
}

impl CompactionArgs {
    /// Runs `compaction`.
    pub async fn run(self, ctx: &Ctx) -> Result<(), CtlError> {
        if self.args.len() != 1 {
            return Err(CtlError::BadArgs(
                "compaction command needs 1 argument".into(),
            ));
        }
        let revision = dec_i64(&self.args[0]).map_err(CtlError::Failed)?;
        let req = CompactionRequest {
            revision,
            physical: self.physical,
        };
        ctx.client
            .unary(|ch| async move { KvClient::new(ch).compact(req).await })
            .await?;
        println!("compacted revision {revision}");
        Ok(())
    }
}
