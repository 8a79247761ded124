//! `snapshot save <file>`: streams the backend snapshot of one member to `<file>.part`,
//! syncs it and renames it into place, with a progress bar on a terminal.
//!
//! `snapshot status` and `snapshot restore` join this group as further variants of
//! [`SnapshotCommand`] once the server's snapshot file format is settled.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;

use clap::{Args, Subcommand};
use etcd_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use etcd_proto::etcdserverpb::SnapshotRequest;
use indicatif::{ProgressBar, ProgressStyle};

use crate::etcdctl::error::{CtlError, RpcError};
use crate::etcdctl::Ctx;

/// `etcdctl snapshot ...`.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Stores an etcd node backend snapshot to a given file
    Save(SaveArgs),
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
        let mut stream = MaintenanceClient::new(ctx.client.channel().await)
            .snapshot(SnapshotRequest {})
            .await?
            .into_inner();
        while let Some(chunk) = stream.message().await? {
            bar.set_length(bar.position() + chunk.blob.len() as u64 + chunk.remaining_bytes);
            bar.inc(chunk.blob.len() as u64);
            file.write_all(&chunk.blob)
                .map_err(|e| tonic::Status::data_loss(e.to_string()))?;
        }
        Ok::<(), tonic::Status>(())
    };
    let result = tokio::time::timeout(ctx.client.command_timeout(), download)
        .await
        .unwrap_or(Err(tonic::Status::deadline_exceeded("")));
    bar.finish_and_clear();
    result.map_err(|s| interrupted(RpcError::from(s)))?;
    file.sync_all().map_err(interrupted)?;
    std::fs::rename(&part, path).map_err(interrupted)?;
    println!("Snapshot saved at {path}");
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
