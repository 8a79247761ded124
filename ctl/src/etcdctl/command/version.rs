//! `version`: the etcdctl and API versions this client is compatible with.

use crate::etcdctl::error::CtlError;

/// The etcdctl release whose output this one reproduces.
pub const ETCDCTL_VERSION: &str = "3.4.23";
/// The API version etcdctl 3.4 reports.
pub const API_VERSION: &str = "3.4";

/// Runs `version`.
pub fn run() -> Result<(), CtlError> {
    println!("etcdctl version: {ETCDCTL_VERSION}");
    println!("API version: {API_VERSION}");
    Ok(())
}
