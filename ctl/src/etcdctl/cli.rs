//! The command tree and its parsing: clap errors are reported in pflag's words
//! (`unknown flag: --x`, `invalid argument "v" for "--flag" flag: ...`).

use std::error::Error as _;
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Parser, Subcommand};

use super::client::Client;
use super::command::{
    auth, check, compaction, concurrency, endpoint, kv, lease, maintenance, member, mirror, role,
    snapshot, txn, user, version, watch,
};
use super::error::{exit, CtlError};
use super::global::GlobalFlags;
use super::Ctx;

/// etcdctl's command line.
#[derive(Debug, Parser)]
#[command(
    name = "etcdctl",
    about = "A simple command line client for etcd3.",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalFlags,
    #[command(subcommand)]
    pub command: Command,
}

/// etcdctl's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Gets the key or a range of keys
    Get(kv::GetArgs),
    /// Puts the given key into the store
    Put(kv::PutArgs),
    /// Removes the specified key or range of keys [key, range_end)
    Del(kv::DelArgs),
    /// Txn processes all the requests in one transaction
    Txn(txn::TxnArgs),
    /// Watches events stream on keys or prefixes
    Watch(watch::WatchArgs),
    /// Compacts the event history in etcd
    Compaction(compaction::CompactionArgs),
    /// Lease related commands
    #[command(subcommand)]
    Lease(lease::LeaseCommand),
    /// Acquires a named lock
    Lock(concurrency::LockArgs),
    /// Observes and participates in leader election
    Elect(concurrency::ElectArgs),
    /// Membership related commands
    #[command(subcommand)]
    Member(member::MemberCommand),
    /// Endpoint related commands
    #[command(subcommand)]
    Endpoint(endpoint::EndpointCommand),
    /// Alarm related commands
    #[command(subcommand)]
    Alarm(maintenance::AlarmCommand),
    /// Defragments the storage of the etcd members with given endpoints
    Defrag(maintenance::DefragArgs),
    /// Manages etcd node snapshots
    #[command(subcommand)]
    Snapshot(snapshot::SnapshotCommand),
    /// Transfers leadership to another etcd cluster member.
    #[command(name = "move-leader")]
    MoveLeader(maintenance::MoveLeaderArgs),
    /// Makes a mirror at the destination etcd cluster
    #[command(name = "make-mirror")]
    MakeMirror(mirror::MirrorArgs),
    /// Commands for checking properties of the etcd cluster
    #[command(subcommand)]
    Check(check::CheckCommand),
    /// Enable or disable authentication
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// User related commands
    #[command(subcommand)]
    User(user::UserCommand),
    /// Role related commands
    #[command(subcommand)]
    Role(role::RoleCommand),
    /// Prints the version of etcdctl
    Version,
}

impl Cli {
    /// Runs the command.
    pub async fn run(mut self) -> Result<(), CtlError> {
        if let Command::Version = self.command {
            return version::run();
        }
        self.global.discover_endpoints().await?;
        let ctx = Ctx {
            format: self.global.format()?,
            client: Client::new(&self.global)?,
            flags: self.global,
        };
        match self.command {
            Command::Get(a) => a.run(&ctx).await,
            Command::Put(a) => a.run(&ctx).await,
            Command::Del(a) => a.run(&ctx).await,
            Command::Txn(a) => a.run(&ctx).await,
            Command::Watch(a) => a.run(&ctx).await,
            Command::Compaction(a) => a.run(&ctx).await,
            Command::Lease(c) => c.run(&ctx).await,
            Command::Lock(a) => a.run(&ctx).await,
            Command::Elect(a) => a.run(&ctx).await,
            Command::Member(c) => c.run(&ctx).await,
            Command::Endpoint(c) => c.run(&ctx).await,
            Command::Alarm(c) => c.run(&ctx).await,
            Command::Defrag(a) => a.run(&ctx).await,
            Command::Snapshot(c) => c.run(&ctx).await,
            Command::MoveLeader(a) => a.run(&ctx).await,
            Command::MakeMirror(a) => a.run(&ctx).await,
            Command::Check(c) => c.run(&ctx).await,
            Command::Auth(c) => c.run(&ctx).await,
            Command::User(c) => c.run(&ctx).await,
            Command::Role(c) => c.run(&ctx).await,
            Command::Version => version::run(),
        }
    }
}

/// Parses the command line; on failure prints what etcdctl prints and gives the status.
pub fn parse(args: Vec<String>) -> Result<Cli, ExitCode> {
    Cli::try_parse_from(args).map_err(|e| match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        kind => {
            // cobra reports the error, then etcdctl reports it again.
            let message = pflag_message(&e);
            let hint = match kind {
                ErrorKind::InvalidSubcommand => "Run 'etcdctl --help' for usage.",
                _ => "",
            };
            eprint!("Error: {message}\n{hint}\nError: {message}\n");
            ExitCode::from(exit::ERROR)
        }
    })
}

/// A clap error in the words pflag and cobra use.
fn pflag_message(e: &clap::Error) -> String {
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.join(" "),
        _ => String::new(),
    };
    match e.kind() {
        ErrorKind::UnknownArgument => {
            let arg = context(ContextKind::InvalidArg);
            let flag = arg.split('=').next().unwrap_or(&arg).to_string();
            match flag.strip_prefix("--") {
                Some(_) => format!("unknown flag: {flag}"),
                None => format!(
                    "unknown shorthand flag: '{}' in {arg}",
                    flag.trim_start_matches('-').chars().next().unwrap_or('-')
                ),
            }
        }
        ErrorKind::InvalidSubcommand => format!(
            "unknown command \"{}\" for \"etcdctl\"",
            context(ContextKind::InvalidSubcommand)
        ),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            let flag = context(ContextKind::InvalidArg);
            let flag = flag.split([' ', '=', '<']).next().unwrap_or_default();
            let why = e
                .source()
                .map(ToString::to_string)
                .unwrap_or_else(|| "invalid value".into());
            format!(
                "invalid argument \"{}\" for \"{flag}\" flag: {why}",
                context(ContextKind::InvalidValue)
            )
        }
        _ => e
            .kind()
            .as_str()
            .map(|s| s.to_string())
            .unwrap_or_else(|| e.to_string()),
    }
}
