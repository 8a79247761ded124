//! A long-running `etcdctl` (typically `watch`) whose stdout and stderr are collected while
//! it runs, so a test can poll for output, then stop it and compare what it printed.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{normalise, Member, DEBIAN_ETCDCTL};

/// Bytes a reader thread has collected so far.
type Collected = Arc<Mutex<Vec<u8>>>;

/// A running `etcdctl` child process.
pub struct Watcher {
    child: Child,
    stdout: Collected,
    stderr: Collected,
    readers: Vec<JoinHandle<()>>,
}

/// Copies everything `from` yields into a shared buffer until EOF.
fn collect(mut from: impl Read + Send + 'static) -> (Collected, JoinHandle<()>) {
    let buf: Collected = Arc::default();
    let sink = buf.clone();
    let reader = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = from.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("output buffer")
                .extend_from_slice(&chunk[..n]);
        }
    });
    (buf, reader)
}

impl Watcher {
    /// Starts Debian's `etcdctl` (API v3) with `args` against `member`.
    pub fn spawn(member: &Member, args: &[&str]) -> Watcher {
        Watcher::spawn_with(Path::new(DEBIAN_ETCDCTL), member, args)
    }

    /// Starts the etcdctl at `binary` (API v3) with `args` against `member`.
    pub fn spawn_with(binary: &Path, member: &Member, args: &[&str]) -> Watcher {
        let mut child = Command::new(binary)
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", member.endpoint()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn etcdctl");
        let (stdout, out_reader) = collect(child.stdout.take().expect("piped stdout"));
        let (stderr, err_reader) = collect(child.stderr.take().expect("piped stderr"));
        Watcher {
            child,
            stdout,
            stderr,
            readers: vec![out_reader, err_reader],
        }
    }

    /// Everything printed on stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().expect("output buffer")).into_owned()
    }

    /// Polls stdout until `ready` holds or `limit` passes; returns whether it held.
    pub fn wait_for(&self, limit: Duration, ready: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if ready(&self.stdout()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `limit` for the process to exit on its own, kills it otherwise, and
    /// returns what it printed.
    pub fn finish(mut self, limit: Duration) -> Finished {
        let deadline = Instant::now() + limit;
        let exit = loop {
            if let Some(status) = self.child.try_wait().expect("etcdctl status") {
                break status
                    .code()
                    .map_or("signal".to_string(), |c| c.to_string());
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break "killed".to_string();
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for reader in self.readers.drain(..) {
            reader.join().expect("output reader");
        }
        let stderr = self.stderr.lock().expect("output buffer");
        Finished {
            exit,
            stdout: self.stdout(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }
}

/// What a stopped [`Watcher`] printed.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The exit code, `killed` when it had to be killed, `signal` when a signal ended it.
    pub exit: String,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// `exit=<code>`, stdout and stderr, as printed.
    pub fn raw_transcript(&self) -> String {
        format!("exit={}\n{}{}", self.exit, self.stdout, self.stderr)
    }

    /// The normalised `exit=<code>`, stdout and stderr, as [`crate::transcript`] gives.
    pub fn transcript(&self) -> String {
        normalise(&self.raw_transcript())
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
