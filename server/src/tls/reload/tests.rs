use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::*;

fn counting(path: PathBuf) -> (Reloading<String>, Arc<AtomicUsize>) {
    let loads = Arc::new(AtomicUsize::new(0));
    let counter = loads.clone();
    let file = path.clone();
    let r = Reloading::new(vec![path], move || {
        counter.fetch_add(1, Ordering::SeqCst);
        let text = std::fs::read_to_string(&file).map_err(|e| TlsError::read(&file, &e))?;
        if text.contains("broken") {
            return Err(TlsError::NoCertificate(file.display().to_string()));
        }
        Ok(text)
    })
    .unwrap();
    (r, loads)
}

#[test]
fn unchanged_files_are_not_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cert.pem");
    std::fs::write(&path, "one").unwrap();
    let (r, loads) = counting(path);
    for _ in 0..10 {
        assert_eq!(*r.get().unwrap(), "one");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

#[test]
fn a_replaced_file_is_read_on_the_next_get() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cert.pem");
    std::fs::write(&path, "one").unwrap();
    let (r, _) = counting(path.clone());
    // Renamed over (a new inode), as rotation tools do.
    let next = dir.path().join("next.pem");
    std::fs::write(&next, "two").unwrap();
    std::fs::rename(&next, &path).unwrap();
    assert_eq!(*r.get().unwrap(), "two");
    // Rewritten in place with another length.
    std::fs::write(&path, "three!").unwrap();
    assert_eq!(*r.get().unwrap(), "three!");
}

#[test]
fn a_file_that_no_longer_loads_keeps_the_previous_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cert.pem");
    std::fs::write(&path, "good").unwrap();
    let (r, loads) = counting(path.clone());
    std::fs::write(&path, "broken file").unwrap();
    assert_eq!(*r.get().unwrap(), "good");
    std::fs::write(&path, "fixed").unwrap();
    assert_eq!(*r.get().unwrap(), "fixed");
    assert_eq!(loads.load(Ordering::SeqCst), 3);
}

#[test]
fn a_file_that_never_loaded_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let err = Reloading::new(vec![missing.clone()], move || {
        std::fs::read_to_string(&missing).map_err(|e| TlsError::read(&missing, &e))
    })
    .err()
    .unwrap();
    assert!(
        err.to_string()
            .ends_with("missing.pem: no such file or directory"),
        "{err}"
    );
}
