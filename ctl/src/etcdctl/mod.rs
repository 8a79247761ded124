//! `etcdctl`: etcd's v3 command-line client, printing what etcd 3.4's `etcdctl` prints
//! (same flags, `ETCDCTL_*` variables, output formats, error texts and exit codes).
//!
//! `cli` holds the command tree; each command group lives in `command/`, printers for the
//! output formats in `display/`.

mod cli;
mod client;
mod command;
mod credentials;
mod display;
mod duration;
mod error;
mod global;
mod password;
mod progress;
mod strconv;
mod tls;
mod token;

use std::io::Write;
use std::process::ExitCode;

pub use cli::Cli;
use client::Client;
use display::{Format, KvStyle, Print, Printer};
pub use error::CtlError;
use global::GlobalFlags;

/// What every command gets: the global flags, a client for `--endpoints` and the format.
pub struct Ctx {
    pub flags: GlobalFlags,
    pub client: Client,
    pub format: Format,
}

impl Ctx {
    /// The printer for `--write-out` and `--hex`.
    pub fn printer(&self) -> Box<dyn Printer> {
        self.printer_with(false)
    }

    /// Like [`Ctx::printer`], printing only values when `value_only` (`get`).
    pub fn printer_with(&self, value_only: bool) -> Box<dyn Printer> {
        display::printer(
            self.format,
            KvStyle {
                hex: self.flags.hex,
                value_only,
            },
        )
    }

    /// Writes what a printer produced (or returns its error).
    pub fn show(&self, printed: Print) -> Result<(), CtlError> {
        let printed = printed?;
        write_all(&mut std::io::stdout().lock(), &printed.stdout);
        write_all(&mut std::io::stderr().lock(), &printed.stderr);
        Ok(())
    }
}

fn write_all(out: &mut impl Write, bytes: &[u8]) {
    if !bytes.is_empty() {
        let _ = out.write_all(bytes);
        let _ = out.flush();
    }
}

/// Runs etcdctl with `args` (the program name first) and returns its exit status.
pub async fn main(args: Vec<String>) -> ExitCode {
    let cli = match cli::parse(args) {
        Ok(cli) => cli,
        Err(exit) => return exit,
    };
    match cli.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(CtlError::Silent) => ExitCode::from(error::exit::ERROR),
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
