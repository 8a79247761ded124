//! lossyfs: a FUSE filesystem that loses what was not synced, for power-loss tests.
//!
//! A passthrough over a backing directory, except for file contents: bytes written are
//! kept in the daemon's memory ([`overlay::Unsynced`]) until the file is fsynced or
//! fdatasynced, and only then written to the backing file. Reads see the backing file with
//! the unsynced bytes over it, as programs see a page cache. Killing the daemon with
//! SIGKILL (then `fusermount3 -u -z`) is the power cut: whatever was not synced is gone,
//! and the backing directory holds exactly what a disk would after the cut.
//!
//! The limit, plainly: namespace operations (create, mkdir, rename, unlink, rmdir) and
//! size changes (truncate, fallocate) reach the backing directory at once, synced or not.
//! lossyfs models lost data, not lost directory entries: a program that forgets to fsync
//! a directory after a rename passes here and may still lose the rename on a real disk.
//! A write past the end of a file is data: until synced it makes the file look longer,
//! and it is lost in a cut with the rest.
//!
//! The kernel does not cache attributes or entries (sizes move with unsynced writes), and
//! without FUSE's writeback cache every write reaches the daemon when it is made.

pub mod fs;
pub mod inodes;
pub mod mount;
pub mod ops;
pub mod overlay;
