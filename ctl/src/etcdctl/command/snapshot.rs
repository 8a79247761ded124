//! `snapshot save <file>`: streams the backend snapshot of one member to `<file>.part`,
//! syncs it and renames it into place, with a progress bar on a terminal.
//! `snapshot status` and `snapshot restore` read the file offline, with the server's own
//! snapshot code (see the server's `snapshot` module for the format).

use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use etcd_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use etcd_proto::etcdserverpb::SnapshotRequest;
use indicatif::{ProgressBar, ProgressStyle};

use etcd_server::config::values;
use etcd_server::snapshot::restore;

use crate::etcdctl::error::{CtlError, RpcError};
use crate::etcdctl::strconv::go_bool;
use crate::etcdctl::Ctx;

/// `etcdctl snapshot ...`.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Stores an etcd node backend snapshot to a given file
    Save(SaveArgs),
    /// Gets backend snapshot status of a given file
    Status(StatusArgs),
    /// Restores an etcd member snapshot to an etcd directory
    Restore(RestoreArgs),
}

/// `snapshot status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    args: Vec<String>,
}

/// `snapshot restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Path to the data directory
    #[arg(long, default_value = "")]
    data_dir: String,
    /// Path to the WAL directory (use --data-dir if none given)
    #[arg(long, default_value = "")]
    wal_dir: String,
    /// Initial cluster configuration for restore bootstrap
    #[arg(long, default_value = "default=http://localhost:2380")]
    initial_cluster: String,
    /// Initial cluster token for the etcd cluster during restore bootstrap
    #[arg(long, default_value = "etcd-cluster")]
    initial_cluster_token: String,
    /// List of this member's peer URLs to advertise to the rest of the cluster
    #[arg(long, default_value = "http://localhost:2380")]
    initial_advertise_peer_urls: String,
    /// Human-readable name for this member
    #[arg(long, default_value = "default")]
    name: String,
    /// Ignore snapshot integrity hash value (required if copied from data directory)
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", value_parser = go_bool)]
    skip_hash_check: bool,
    args: Vec<String>,
}

/// `snapshot save`.
#[derive(Debug, Args)]
pub struct SaveArgs {
    args: Vec<String>,
}

impl SnapshotCommand {
    /// Runs the snapshot command.
    pub async fn run(self, ctx: &Ctx) -> Result<(), CtlError> {
        match self {
            SnapshotCommand::Save(a) => save(ctx, a).await,
            SnapshotCommand::Status(a) => status(ctx, a),
            SnapshotCommand::Restore(a) => restore(a),
        }
    }
}

fn interrupted(e: impl std::fmt::Display) -> CtlError {
    CtlError::Interrupted(e.to_string())
}

/// A progress bar on stderr when it is a terminal, hidden otherwise.
fn progress() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) =
        ProgressStyle::with_template("{bytes}/{total_bytes} [{bar:40}] {bytes_per_sec} {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

async fn save(ctx: &Ctx, a: SaveArgs) -> Result<(), CtlError> {
    let [path] = &a.args[..] else {
        return Err(CtlError::BadArgs(
            "snapshot save expects one argument".into(),
        ));
    };
    let endpoints = ctx.client.endpoints();
    if endpoints.len() != 1 {
        return Err(interrupted(format!(
            "snapshot must be requested to one selected node, not multiple [{}]",
            endpoints.join(" ")
        )));
    }
    let part = format!("{path}.part");
    let _ = std::fs::remove_file(&part);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&part)
        .map_err(|e| interrupted(format!("could not open {part} ({})", io_text(&e, &part))))?;
    let bar = progress();
    let download = async {
        let mut stream = MaintenanceClient::new(ctx.client.connection().await?)
            .snapshot(SnapshotRequest {})
            .await?
            .into_inner();
        while let Some(chunk) = stream.message().await? {
            bar.set_length(bar.position() + chunk.blob.len() as u64 + chunk.remaining_bytes);
            bar.inc(chunk.blob.len() as u64);
            file.write_all(&chunk.blob)
                .map_err(|e| tonic::Status::data_loss(e.to_string()))?;
        }
        Ok::<(), RpcError>(())
    };
    let result = tokio::time::timeout(ctx.client.command_timeout(), download)
        .await
        .unwrap_or(Err(RpcError::DeadlineExceeded));
    bar.finish_and_clear();
    result.map_err(interrupted)?;
    file.sync_all().map_err(interrupted)?;
    std::fs::rename(&part, path).map_err(interrupted)?;
    println!("Snapshot saved at {path}");
    Ok(())
}

fn one_file<'a>(args: &'a [String], command: &str) -> Result<&'a Path, CtlError> {
    match args {
        [path] => Ok(Path::new(path)),
        _ => Err(CtlError::BadArgs(format!(
            "snapshot {command} requires exactly one argument"
        ))),
    }
}

fn failed(e: impl std::fmt::Display) -> CtlError {
    CtlError::Failed(e.to_string())
}

fn status(ctx: &Ctx, a: StatusArgs) -> Result<(), CtlError> {
    let path = one_file(&a.args, "status")?;
    let status = etcd_server::snapshot::status(path).map_err(failed)?;
    ctx.show(ctx.printer().snapshot_status(&status))
}

fn restore(a: RestoreArgs) -> Result<(), CtlError> {
    let path = one_file(&a.args, "restore")?;
    if !a.wal_dir.is_empty() {
        return Err(CtlError::BadFeature(
            "--wal-dir is not supported: the raft log lives in <data-dir>/member/wal".into(),
        ));
    }
    let initial_cluster = values::initial_cluster(&a.initial_cluster).map_err(failed)?;
    let peer_urls = values::urls(&a.initial_advertise_peer_urls).map_err(failed)?;
    let data_dir = match a.data_dir.as_str() {
        "" => PathBuf::from(format!("{}.etcd", a.name)),
        dir => PathBuf::from(dir),
    };
    let restored = restore::restore(&restore::RestoreOptions {
        snapshot: path,
        name: &a.name,
        initial_cluster: &initial_cluster,
        initial_cluster_token: &a.initial_cluster_token,
        initial_advertise_peer_urls: &peer_urls,
        data_dir: &data_dir,
        skip_hash_check: a.skip_hash_check,
    })
    .map_err(failed)?;
    eprintln!(
        "restored snapshot {} at revision {} into {} as member {:x} of cluster {:x}",
        path.display(),
        restored.revision,
        data_dir.display(),
        restored.member_id,
        restored.cluster_id
    );
    Ok(())
}

/// Go's wording of an `open` failure.
fn io_text(e: &std::io::Error, path: &str) -> String {
    let why = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    format!("open {path}: {why}")
}
