//! `etcdctl`: etcd's command-line client (v3 API), output-compatible with etcd 3.4's.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    etcd_ctl::etcdctl::main(std::env::args().collect()).await
}
