//! A gateway process (`etcd gateway start`, ours or Debian's, or our `etcd-gateway`) for
//! tests, with its log in a file of its own; killed on drop.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::{our_binary, Flavor};

/// How the gateway is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayBinary {
    /// `etcd gateway start` of the given flavour.
    Etcd(Flavor),
    /// Our `etcd-gateway` binary.
    Standalone,
}

/// A running gateway.
pub struct Gateway {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// `--listen-addr`.
    pub addr: String,
}

impl Gateway {
    /// Starts a gateway listening on `addr` with `args` under `launcher` (a command prefix
    /// such as [`crate::netns::Network::launcher`], or empty), without waiting.
    pub fn spawn(binary: GatewayBinary, launcher: &[String], addr: &str, args: &[&str]) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = std::fs::File::create(dir.path().join("gateway.log")).expect("log file");
        let (program, sub): (PathBuf, &[&str]) = match binary {
            GatewayBinary::Etcd(flavor) => (flavor.binary(), &["gateway", "start"]),
            GatewayBinary::Standalone => (our_binary("etcd-gateway"), &[]),
        };
        let child = crate::command_under(launcher, program)
            .args(sub)
            .arg(format!("--listen-addr={addr}"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("spawn gateway");
        Gateway {
            child: Some(child),
            dir,
            addr: addr.to_string(),
        }
    }

    /// Starts a gateway and waits until it says it is ready to proxy.
    pub fn start(binary: GatewayBinary, launcher: &[String], addr: &str, args: &[&str]) -> Gateway {
        let mut g = Gateway::spawn(binary, launcher, addr, args);
        crate::wait::until(Duration::from_secs(20), "gateway ready", || {
            if let Some(status) = g.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("gateway exited with {status}:\n{}", g.log());
            }
            g.log().contains("ready to proxy client requests")
        });
        g
    }

    /// Everything the gateway wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// The log lines (zap JSON) whose `msg` is `msg`.
    pub fn log_lines(&self, msg: &str) -> Vec<serde_json::Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["msg"] == msg)
            .collect()
    }

    /// Waits up to `limit` for the process to end; its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let mut code = None;
        crate::wait::until(limit, "gateway exits", || match child.try_wait() {
            Ok(Some(status)) => {
                code = status.code();
                true
            }
            _ => false,
        });
        self.child = None;
        code
    }

    /// Sends `sig` to the process.
    pub fn signal(&self, sig: libc::c_int) -> bool {
        // SAFETY: kill(2) on a child this harness started and has not reaped.
        self.child
            .as_ref()
            .is_some_and(|c| unsafe { libc::kill(c.id() as libc::pid_t, sig) } == 0)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
