//! `lossyfs BACKING MOUNTPOINT`: mounts the power-loss filesystem (see
//! `etcd_e2e::lossyfs`) and serves it until killed. Prints one line once mounted, so a
//! test waits for the mount instead of guessing how long it takes.

use std::path::PathBuf;

use etcd_e2e::lossyfs::{mount::READY, ops::LossyFs};
use fuser::{Config, MountOption};

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [backing, mountpoint] = args.as_slice() else {
        eprintln!("usage: lossyfs BACKING MOUNTPOINT");
        std::process::exit(2);
    };
    let backing = match backing.canonicalize() {
        Ok(path) => path,
        Err(err) => {
            eprintln!("lossyfs: {}: {err}", backing.display());
            std::process::exit(1);
        }
    };
    let mut config = Config::default();
    config.mount_options = vec![MountOption::FSName("lossyfs".into()), MountOption::RW];
    let session = match fuser::spawn_mount(LossyFs::new(backing), mountpoint, &config) {
        Ok(session) => session,
        Err(err) => {
            eprintln!("lossyfs: mount {}: {err}", mountpoint.display());
            std::process::exit(1);
        }
    };
    println!("{READY}");
    if let Err(err) = session.join() {
        eprintln!("lossyfs: {err}");
        std::process::exit(1);
    }
}
