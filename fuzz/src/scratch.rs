//! Scratch directories for targets that need files. They go to a memory filesystem where
//! there is one: the code under test fsyncs, and a disk would make every run wait for it.

use std::path::Path;

/// A fresh, empty directory removed when dropped.
pub fn dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let made = if shm.is_dir() {
        tempfile::Builder::new().prefix("etcd-fuzz").tempdir_in(shm)
    } else {
        tempfile::Builder::new().prefix("etcd-fuzz").tempdir()
    };
    made.expect("a scratch directory")
}
