//! Positional arguments, and etcdctl's check of how many a command got: the count is
//! checked by the command itself (not by the parser), so a wrong count is reported in the
//! command's own words with exit status 128.

use clap::Args;

use crate::etcdctl::error::CtlError;

/// The positional arguments of a subcommand that has no flags of its own.
#[derive(Debug, Args)]
pub struct Positional {
    pub args: Vec<String>,
}

/// Exactly `N` arguments, or `complaint`.
pub fn exactly<'a, const N: usize>(
    args: &'a [String],
    complaint: &str,
) -> Result<&'a [String; N], CtlError> {
    args.try_into()
        .map_err(|_| CtlError::BadArgs(complaint.into()))
}
