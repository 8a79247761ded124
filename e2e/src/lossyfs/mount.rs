//! The test side of lossyfs: mounting it over a backing directory and cutting the power.

use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// What the daemon prints once the filesystem is mounted and serving.
pub const READY: &str = "lossyfs: mounted";

/// A running lossyfs daemon; dropping it cuts the power.
pub struct Mount {
    child: Option<Child>,
    mountpoint: PathBuf,
}

impl Mount {
    /// Mounts lossyfs over `backing` at `mountpoint` (both existing directories) and
    /// returns once the daemon reports the mount is up.
    pub fn start(backing: &Path, mountpoint: &Path) -> Mount {
        let mut child = Command::new(crate::our_binary("lossyfs"))
            .arg(backing)
            .arg(mountpoint)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn lossyfs");
        let stdout = child.stdout.take().expect("lossyfs stdout");
        let mut line = String::new();
        // The daemon prints its line after the mount succeeded or exits on failure, so
        // this read ends either way.
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read lossyfs stdout");
        if line.trim_end() != READY {
            let status = child.wait().expect("wait for lossyfs");
            panic!("lossyfs did not mount {}: {status}", mountpoint.display());
        }
        assert!(
            is_fuse_mount(mountpoint),
            "{} is not a FUSE mount after lossyfs reported ready",
            mountpoint.display()
        );
        Mount {
            child: Some(child),
            mountpoint: mountpoint.to_path_buf(),
        }
    }

    /// The power cut: SIGKILLs the daemon, so every unsynced byte is lost, and detaches
    /// the dead mount. Does nothing the second time.
    pub fn power_cut(&mut self) {
        if let Some(out) = self.kill_and_detach() {
            let out = out.expect("run fusermount3");
            assert!(
                out.status.success(),
                "fusermount3 -u -z {}: {}",
                self.mountpoint.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Kills the daemon and runs `fusermount3 -u -z`; None if it was done already.
    fn kill_and_detach(&mut self) -> Option<io::Result<Output>> {
        let mut child = self.child.take()?;
        let _ = child.kill();
        let _ = child.wait();
        Some(
            Command::new("fusermount3")
                .args(["-u", "-z"])
                .arg(&self.mountpoint)
                .output(),
        )
    }
}

impl Drop for Mount {
    /// A test that failed still detaches its mount, without a second panic.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.kill_and_detach();
        } else {
            self.power_cut();
        }
    }
}

/// Whether `path` is the mount point of a FUSE filesystem, per /proc/self/mountinfo
/// (field 5 is the mount point, the field after " - " the filesystem type).
pub fn is_fuse_mount(path: &Path) -> bool {
    let Ok(path) = path.canonicalize() else {
        return false;
    };
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines().any(|line| {
        let mut halves = line.splitn(2, " - ");
        let (Some(left), Some(right)) = (halves.next(), halves.next()) else {
            return false;
        };
        left.split(' ').nth(4) == Some(path.to_str().unwrap_or_default())
            && right.starts_with("fuse")
    })
}
