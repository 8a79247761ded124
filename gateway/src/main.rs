//! `etcd-gateway`: the same gateway as `etcd gateway start`, as a binary of its own for
//! images and node agents (`etcd-gateway [start] --endpoints=...`).

fn main() -> std::process::ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // `etcd-gateway start ...` reads as `etcd gateway start ...` does.
    if args.get(1).is_some_and(|a| a == "start") {
        args.remove(1);
    }
    etcd_gateway::run_cli(args)
}
