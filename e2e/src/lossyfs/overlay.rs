//! The bytes written to one file and not yet synced, kept beside the backing file.
//!
//! This is what a page cache holds between `write` and `fsync`: reads must see it, a sync
//! writes it out, a power cut drops it. Kept apart from FUSE so it can be tested on plain
//! files.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Unsynced writes of one file: non-overlapping extents keyed by their offset, the newest
/// bytes winning where writes overlapped.
#[derive(Debug, Default)]
pub struct Unsynced {
    extents: BTreeMap<u64, Vec<u8>>,
}

impl Unsynced {
    /// Records `data` written at `offset`, replacing any unsynced bytes it overlaps.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let end = offset + data.len() as u64;
        self.cut_out(offset, end);
        // Appends (the log's pattern) extend the extent they follow instead of adding one.
        if let Some((&start, bytes)) = self.extents.range_mut(..offset).next_back() {
            if start + bytes.len() as u64 == offset {
                bytes.extend_from_slice(data);
                return;
            }
        }
        self.extents.insert(offset, data.to_vec());
    }

    /// Removes the unsynced bytes in `[from, to)`, keeping what lies either side.
    fn cut_out(&mut self, from: u64, to: u64) {
        let mut tails = Vec::new();
        if let Some((&start, bytes)) = self.extents.range_mut(..from).next_back() {
            let end = start + bytes.len() as u64;
            if end > to {
                tails.push((to, bytes[(to - start) as usize..].to_vec()));
            }
            if end > from {
                bytes.truncate((from - start) as usize);
            }
        }
        let inside: Vec<u64> = self.extents.range(from..to).map(|(&s, _)| s).collect();
        for start in inside {
            let bytes = self.extents.remove(&start).unwrap_or_default();
            let end = start + bytes.len() as u64;
            if end > to {
                tails.push((to, bytes[(to - start) as usize..].to_vec()));
            }
        }
        self.extents.extend(tails);
    }

    /// Where the last unsynced byte ends (0 when there is none): writes past the backing
    /// file's end make the file look longer until they are synced or lost.
    pub fn end(&self) -> u64 {
        self.extents
            .iter()
            .next_back()
            .map_or(0, |(&start, bytes)| start + bytes.len() as u64)
    }

    /// Whether nothing is waiting for a sync.
    pub fn is_empty(&self) -> bool {
        self.extents.is_empty()
    }

    /// The file was truncated (or extended) to `size`: unsynced bytes past it are gone.
    pub fn truncate(&mut self, size: u64) {
        self.cut_out(size, u64::MAX);
    }

    /// Copies the unsynced bytes that fall in `[offset, offset + buf.len())` over `buf`.
    pub fn overlay(&self, offset: u64, buf: &mut [u8]) {
        let end = offset + buf.len() as u64;
        let first = self
            .extents
            .range(..=offset)
            .next_back()
            .map_or(offset, |(&s, _)| s);
        for (&start, bytes) in self.extents.range(first..end) {
            let lo = start.max(offset);
            let hi = (start + bytes.len() as u64).min(end);
            if lo < hi {
                buf[(lo - offset) as usize..(hi - offset) as usize]
                    .copy_from_slice(&bytes[(lo - start) as usize..(hi - start) as usize]);
            }
        }
    }

    /// Reads `size` bytes at `offset` as a program sees them: the backing file with the
    /// unsynced bytes over it, cut at the apparent end of the file.
    pub fn read(&self, file: &File, offset: u64, size: usize) -> io::Result<Vec<u8>> {
        let apparent = file.metadata()?.len().max(self.end());
        let len = apparent.saturating_sub(offset).min(size as u64) as usize;
        let mut buf = vec![0; len];
        let mut done = 0;
        while done < len {
            match file.read_at(&mut buf[done..], offset + done as u64)? {
                0 => break, // past the backing end: zeros, or unsynced bytes laid over below
                n => done += n,
            }
        }
        self.overlay(offset, &mut buf);
        Ok(buf)
    }

    /// Writes every unsynced byte to `file` (what fsync does); afterwards nothing is
    /// unsynced. On an error the bytes not yet written stay unsynced.
    pub fn apply(&mut self, file: &File) -> io::Result<()> {
        while let Some((start, bytes)) = self.extents.pop_first() {
            if let Err(err) = file.write_all_at(&bytes, start) {
                self.extents.insert(start, bytes);
                return Err(err);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A byte-for-byte model of the file as programs see it, to compare against.
    fn model_write(model: &mut Vec<u8>, offset: usize, data: &[u8]) {
        if model.len() < offset + data.len() {
            model.resize(offset + data.len(), 0);
        }
        model[offset..offset + data.len()].copy_from_slice(data);
    }

    fn backing(content: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, content).unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        (dir, file)
    }

    #[test]
    fn reads_merge_unsynced_writes_over_the_backing_file() {
        let (_dir, file) = backing(b"0123456789");
        let mut model = b"0123456789".to_vec();
        let mut u = Unsynced::default();
        // Overlapping, adjacent, inside-another and past-the-end writes.
        for (offset, data) in [
            (2usize, &b"ab"[..]),
            (4, b"cd"),
            (3, b"XYZ"),
            (8, b"pqrstu"),
            (0, b"!"),
            (9, b"#"),
            (20, b"far"),
        ] {
            u.write(offset as u64, data);
            model_write(&mut model, offset, data);
            assert_eq!(u.read(&file, 0, 100).unwrap(), model, "after {offset}");
        }
        assert_eq!(u.end(), 23);
        assert_eq!(u.read(&file, 3, 4).unwrap(), &model[3..7]);
        assert_eq!(u.read(&file, 22, 10).unwrap(), b"r");
        assert!(u.read(&file, 23, 10).unwrap().is_empty());
        // Nothing reached the backing file.
        assert_eq!(std::fs::read(_dir.path().join("f")).unwrap(), b"0123456789");
    }

    #[test]
    fn apply_writes_everything_to_the_backing_file() {
        let (dir, file) = backing(b"0123456789");
        let mut u = Unsynced::default();
        u.write(8, b"abcd");
        u.write(1, b"xy");
        u.write(2, b"Q");
        let seen = u.read(&file, 0, 100).unwrap();
        u.apply(&file).unwrap();
        assert!(u.is_empty());
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), seen);
        assert_eq!(seen, b"0xQ34567abcd");
    }

    #[test]
    fn dropping_loses_exactly_the_unsynced_writes() {
        let (dir, file) = backing(b"");
        let mut u = Unsynced::default();
        u.write(0, b"synced-1|");
        u.write(9, b"synced-2|");
        u.apply(&file).unwrap();
        u.write(18, b"lost-1|");
        u.write(0, b"LOST");
        assert_eq!(u.read(&file, 0, 100).unwrap(), b"LOSTed-1|synced-2|lost-1|");
        drop(u); // the power cut
        assert_eq!(
            std::fs::read(dir.path().join("f")).unwrap(),
            b"synced-1|synced-2|"
        );
    }

    #[test]
    fn truncation_drops_unsynced_bytes_past_the_new_end() {
        let (_dir, file) = backing(b"0123456789");
        let mut u = Unsynced::default();
        u.write(2, b"abcdef");
        u.write(12, b"gone");
        u.truncate(5);
        file.set_len(5).unwrap();
        assert_eq!(u.end(), 5);
        assert_eq!(u.read(&file, 0, 100).unwrap(), b"01abc");
        u.truncate(0);
        assert!(u.is_empty());
    }

    #[test]
    fn many_appends_stay_one_extent() {
        let mut u = Unsynced::default();
        for i in 0..1000u64 {
            u.write(i * 3, b"abc");
        }
        assert_eq!(u.extents.len(), 1);
        assert_eq!(u.end(), 3000);
    }
}
