//! The test side of lossyfs: mounting it over a backing directory and cutting the power.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

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
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = child.kill();
        let _ = child.wait();
        let out = Command::new("fusermount3")
            .args(["-u", "-z"])
            .arg(&self.mountpoint)
            .output()
            .expect("run fusermount3");
        assert!(
            out.status.success(),
            "fusermount3 -u -z {}: {}",
            self.mountpoint.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.power_cut();
        } else if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = Command::new("fusermount3")
                .args(["-u", "-z"])
                .arg(&self.mountpoint)
                .output();
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
