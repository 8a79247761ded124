//! Inode numbers for the paths of the backing directory.
//!
//! FUSE names files by inode number; the backing directory by path. Numbers are handed
//! out on first lookup and never reused, so a path removed and created again gets a new
//! one (the kernel may still hold the old number for an open, unlinked file).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The root directory's number, fixed by FUSE.
pub const ROOT: u64 = 1;

/// Both directions of the number <-> path mapping; paths are relative to the backing
/// directory (the root is the empty path).
#[derive(Debug)]
pub struct Inodes {
    paths: HashMap<u64, PathBuf>,
    numbers: HashMap<PathBuf, u64>,
    next: u64,
}

impl Default for Inodes {
    fn default() -> Self {
        Inodes {
            paths: HashMap::from([(ROOT, PathBuf::new())]),
            numbers: HashMap::from([(PathBuf::new(), ROOT)]),
            next: ROOT + 1,
        }
    }
}

impl Inodes {
    /// The path of `ino`, if it still has one.
    pub fn path(&self, ino: u64) -> Option<&Path> {
        self.paths.get(&ino).map(PathBuf::as_path)
    }

    /// The number of `path`, handing out a new one the first time.
    pub fn number(&mut self, path: &Path) -> u64 {
        if let Some(&ino) = self.numbers.get(path) {
            return ino;
        }
        let ino = self.next;
        self.next += 1;
        self.paths.insert(ino, path.to_path_buf());
        self.numbers.insert(path.to_path_buf(), ino);
        ino
    }

    /// `path` was removed: its number no longer names it.
    pub fn forget_path(&mut self, path: &Path) {
        if let Some(ino) = self.numbers.remove(path) {
            self.paths.remove(&ino);
        }
    }

    /// `from` was renamed to `to` (replacing whatever `to` was): the numbers of `from` and
    /// of everything below it move along.
    pub fn rename(&mut self, from: &Path, to: &Path) {
        self.forget_path(to);
        let moved: Vec<(PathBuf, u64)> = self
            .numbers
            .iter()
            .filter(|(p, _)| p.starts_with(from))
            .map(|(p, &ino)| (p.clone(), ino))
            .collect();
        for (old, ino) in moved {
            let rest = old.strip_prefix(from).unwrap_or(Path::new(""));
            let new = if rest.as_os_str().is_empty() {
                to.to_path_buf()
            } else {
                to.join(rest)
            };
            self.numbers.remove(&old);
            self.numbers.insert(new.clone(), ino);
            self.paths.insert(ino, new);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_moves_a_directory_and_its_children() {
        let mut inodes = Inodes::default();
        let dir = inodes.number(Path::new("a"));
        let child = inodes.number(Path::new("a/f"));
        let victim = inodes.number(Path::new("b"));
        let sibling = inodes.number(Path::new("ab"));
        inodes.rename(Path::new("a"), Path::new("b"));
        assert_eq!(inodes.path(dir), Some(Path::new("b")));
        assert_eq!(inodes.path(child), Some(Path::new("b/f")));
        assert_eq!(inodes.path(victim), None);
        assert_eq!(inodes.path(sibling), Some(Path::new("ab")));
        assert_ne!(inodes.number(Path::new("a")), dir);
    }
}
