//! Files re-read when they change. etcd builds its TLS configuration's certificate, key, CA
//! and CRL from the files on every handshake, so replacing them takes effect on the next
//! connection; we get the same by comparing the files' metadata on each handshake and
//! parsing them again only when it moved.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;

use super::TlsError;

/// What tells one version of a file from the next without reading it: a rename over it
/// changes the inode, a rewrite in place the modification time or length.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn stamp(path: &PathBuf) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        ino: m.ino(),
        len: m.len(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

/// The value and the stamps of the files it was built from (`None`: a file was missing).
type Loaded<T> = (Vec<Option<Stamp>>, Arc<T>);

type Loader<T> = Box<dyn Fn() -> Result<T, TlsError> + Send + Sync>;

/// A value built from files, rebuilt when any of them changes.
pub struct Reloading<T> {
    paths: Vec<PathBuf>,
    load: Loader<T>,
    current: Mutex<Option<Loaded<T>>>,
}

impl<T> Reloading<T> {
    /// Builds the value once (so a broken file stops start-up) and keeps `load` for later.
    pub fn new(
        paths: Vec<PathBuf>,
        load: impl Fn() -> Result<T, TlsError> + Send + Sync + 'static,
    ) -> Result<Self, TlsError> {
        let r = Reloading {
            paths,
            load: Box::new(load),
            current: Mutex::new(None),
        };
        r.get()?;
        Ok(r)
    }

    /// The value for the files as they are now. When they changed but no longer load (a
    /// rotation caught between writing the certificate and the key), the previous value is
    /// kept and the failure logged; the next handshake tries again.
    pub fn get(&self) -> Result<Arc<T>, TlsError> {
        let stamps: Vec<_> = self.paths.iter().map(stamp).collect();
        let mut current = self.current.lock();
        if let Some((seen, value)) = current.as_ref() {
            if *seen == stamps {
                return Ok(value.clone());
            }
        }
        match (self.load)() {
            Ok(value) => {
                let value = Arc::new(value);
                if current.is_some() {
                    tracing::info!(target: "embed", "reloaded TLS files {:?}", self.paths);
                }
                *current = Some((stamps, value.clone()));
                Ok(value)
            }
            Err(e) => match current.as_ref() {
                Some((_, value)) => {
                    tracing::warn!(target: "embed", "keeping the previous TLS files: {e}");
                    Ok(value.clone())
                }
                None => Err(e),
            },
        }
    }
}

#[cfg(test)]
mod tests;
