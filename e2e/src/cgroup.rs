//! A memory cgroup around a member, as a pod's memory limit (or `docker run --memory`)
//! puts one: the kernel reclaims page cache first and OOM-kills the process when what it
//! cannot reclaim passes the limit.
//!
//! Uses the cgroup v1 memory controller at `/sys/fs/cgroup/memory` (what this machine
//! mounts; Docker's `--memory` sets the same `memory.limit_in_bytes`), or cgroup v2 at
//! `/sys/fs/cgroup` (`memory.max`) where that is the hierarchy. Needs root. The group is
//! removed on drop, once the process in it has exited.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

static GROUPS: AtomicUsize = AtomicUsize::new(0);

/// One memory cgroup with a limit.
pub struct MemoryLimit {
    dir: PathBuf,
    v2: bool,
}

fn write(path: &Path, value: &str) -> std::io::Result<()> {
    std::fs::write(path, value).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("writing {value:?} to {}: {e}", path.display()),
        )
    })
}

impl MemoryLimit {
    /// A new cgroup limited to `bytes` of memory (swap included where the kernel
    /// accounts it, so the limit cannot be dodged by swapping).
    pub fn new(bytes: u64) -> std::io::Result<MemoryLimit> {
        let name = format!(
            "etcd-e2e-{}-{}",
            std::process::id(),
            GROUPS.fetch_add(1, Ordering::Relaxed)
        );
        let v1 = Path::new("/sys/fs/cgroup/memory");
        let (dir, v2) = if v1.join("memory.limit_in_bytes").exists() {
            (v1.join(&name), false)
        } else {
            (Path::new("/sys/fs/cgroup").join(&name), true)
        };
        std::fs::create_dir(&dir)?;
        let group = MemoryLimit { dir, v2 };
        if v2 {
            write(&group.dir.join("memory.max"), &bytes.to_string())?;
            let _ = write(&group.dir.join("memory.swap.max"), "0");
        } else {
            write(&group.dir.join("memory.limit_in_bytes"), &bytes.to_string())?;
            let memsw = group.dir.join("memory.memsw.limit_in_bytes");
            if memsw.exists() {
                write(&memsw, &bytes.to_string())?;
            }
        }
        Ok(group)
    }

    /// Moves process `pid` (all its threads) into the group.
    pub fn add(&self, pid: u32) -> std::io::Result<()> {
        write(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    /// The text of one of the group's files, by its cgroup v1 or v2 name.
    fn read(&self, v1: &str, v2: &str) -> String {
        let file = if self.v2 { v2 } else { v1 };
        std::fs::read_to_string(self.dir.join(file)).unwrap_or_default()
    }

    /// How many processes of the group the kernel has OOM-killed.
    pub fn oom_kills(&self) -> u64 {
        self.read("memory.oom_control", "memory.events")
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// The most memory the group has been charged (page cache included), in bytes.
    pub fn peak(&self) -> u64 {
        let peak = self.read("memory.max_usage_in_bytes", "memory.peak");
        peak.trim().parse().unwrap_or(0)
    }
}

impl Drop for MemoryLimit {
    fn drop(&mut self) {
        // Fails while a process is still inside; the test kills its members first.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Resident memory of process `pid` in bytes (`VmRSS`), or None once it is gone.
pub fn rss(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:").map(|kib| kib * 1024)
}

/// Resets the peak resident memory the kernel records for process `pid` (`VmHWM`), so
/// [`peak_rss`] measures from now.
pub fn reset_peak_rss(pid: u32) -> std::io::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
}

/// Peak resident memory of process `pid` in bytes since start or the last
/// [`reset_peak_rss`] (`VmHWM`).
pub fn peak_rss(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:").map(|kib| kib * 1024)
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
