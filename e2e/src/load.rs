//! Background write load through Debian's etcdctl, recording every acknowledged key, so a
//! test can check that no acknowledged write was lost whatever happened to the cluster.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{etcdctl, Member};

/// Puts `load/<n>` one after another on the current endpoints until finished.
pub struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<BTreeSet<String>>>,
    handle: Option<JoinHandle<()>>,
}

impl Load {
    /// Starts writing through `endpoints` (etcdctl's `--endpoints`), which the test may
    /// change while the load runs. A failed put is not an acknowledgement; the next one
    /// goes on with a new key.
    pub fn start(endpoints: Arc<Mutex<String>>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let (s, a) = (stop.clone(), acked.clone());
        let handle = std::thread::spawn(move || {
            for i in 0.. {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let key = format!("load/{i:06}");
                let eps = endpoints.lock().unwrap().clone();
                if etcdctl(&eps, &["put", &key, "v", "--command-timeout=5s"], None)
                    .status
                    .success()
                {
                    a.lock().unwrap().insert(key);
                }
            }
        });
        Load {
            stop,
            acked,
            handle: Some(handle),
        }
    }

    /// How many puts were acknowledged so far.
    pub fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Waits until at least `count` puts were acknowledged; panics after `limit`.
    pub fn wait_acked(&self, count: usize, limit: Duration) {
        let what = format!("{count} acknowledged writes (have {})", self.acked());
        crate::wait::until(limit, &what, || self.acked() >= count);
    }

    /// Stops the load and returns the acknowledged keys.
    pub fn finish(mut self) -> BTreeSet<String> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            handle.join().expect("load thread");
        }
        self.acked.lock().unwrap().clone()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Asserts that `member` has every key in `acked` (a linearizable read through it).
pub fn assert_has_all(member: &Member, acked: &BTreeSet<String>) {
    let out = member.ctl_ok(&["get", "load/", "--prefix", "--keys-only"]);
    let keys: BTreeSet<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|k| !keys.contains(k.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} lacks {} acknowledged keys: {missing:?}",
        member.name,
        missing.len()
    );
}
