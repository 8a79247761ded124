//! What each lossyfs operation does: answered from the backing directory, except file
//! contents, which go through [`Unsynced`] until the file is synced. The FUSE replies are
//! in [`super::fs`].

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, INodeNo, OpenAccMode, OpenFlags, RenameFlags,
    ReplyDirectory,
};

use super::inodes::{Inodes, ROOT};
use super::overlay::Unsynced;

/// Attributes and entries are never cached by the kernel: sizes change with unsynced
/// writes, and a stale size would hide them.
pub(super) const TTL: Duration = Duration::ZERO;

/// A file's unsynced bytes and the handle that can write them out (the one that wrote
/// last; it stays open until they are synced or lost, as the page cache keeps an inode).
pub(super) struct Dirty {
    writer: Arc<File>,
    pub(super) unsynced: Unsynced,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) inodes: Inodes,
    pub(super) handles: HashMap<u64, Arc<File>>,
    next_handle: u64,
    pub(super) dirty: HashMap<u64, Dirty>,
}

/// The filesystem: a backing directory and what has not been synced to it.
pub struct LossyFs {
    backing: PathBuf,
    state: Mutex<State>,
}

pub(super) type Result<T> = std::result::Result<T, Errno>;

fn errno(err: io::Error) -> Errno {
    Errno::from(err)
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    match u64::try_from(secs) {
        Ok(secs) => UNIX_EPOCH + Duration::new(secs, nsecs as u32),
        Err(_) => UNIX_EPOCH,
    }
}

fn attr(ino: u64, md: &Metadata, unsynced: Option<&Unsynced>) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: md.len().max(unsynced.map_or(0, Unsynced::end)),
        blocks: md.blocks(),
        atime: time(md.atime(), md.atime_nsec()),
        mtime: time(md.mtime(), md.mtime_nsec()),
        ctime: time(md.ctime(), md.ctime_nsec()),
        crtime: UNIX_EPOCH,
        kind: FileType::from_std(md.file_type()).unwrap_or(FileType::RegularFile),
        perm: (md.mode() & 0o7777) as u16,
        nlink: md.nlink() as u32,
        uid: md.uid(),
        gid: md.gid(),
        rdev: md.rdev() as u32,
        blksize: md.blksize() as u32,
        flags: 0,
    }
}

/// How the backing file is opened for a FUSE open or create: readable always (reads are
/// merged with unsynced bytes), writable when the caller asked to write. Flags that act on
/// the file's content (O_TRUNC) or on the kernel's offsets (O_APPEND) are handled apart.
fn open_options(flags: i32) -> OpenOptions {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(OpenFlags(flags).acc_mode() != OpenAccMode::O_RDONLY);
    options
}

impl LossyFs {
    pub fn new(backing: PathBuf) -> LossyFs {
        LossyFs {
            backing,
            state: Mutex::new(State::default()),
        }
    }

    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The path of `ino` relative to the backing directory.
    pub(super) fn relative(state: &State, ino: INodeNo) -> Result<PathBuf> {
        state
            .inodes
            .path(ino.0)
            .map(Path::to_path_buf)
            .ok_or(Errno::ENOENT)
    }

    pub(super) fn child(state: &State, parent: INodeNo, name: &OsStr) -> Result<PathBuf> {
        Ok(Self::relative(state, parent)?.join(name))
    }

    /// Numbers `relative` and describes it, as lookup, create, mknod and mkdir answer.
    pub(super) fn entry(&self, state: &mut State, relative: &Path) -> Result<FileAttr> {
        let md = std::fs::symlink_metadata(self.backing.join(relative)).map_err(errno)?;
        let ino = state.inodes.number(relative);
        Ok(attr(ino, &md, state.dirty.get(&ino).map(|d| &d.unsynced)))
    }

    fn add_handle(state: &mut State, file: File) -> FileHandle {
        state.next_handle += 1;
        state.handles.insert(state.next_handle, Arc::new(file));
        FileHandle(state.next_handle)
    }

    fn handle(state: &State, fh: FileHandle) -> Result<Arc<File>> {
        state.handles.get(&fh.0).cloned().ok_or(Errno::EBADF)
    }

    /// Sets the size of `ino` in the backing file at once; unsynced bytes past it go.
    fn set_size(
        &self,
        state: &mut State,
        ino: INodeNo,
        fh: Option<FileHandle>,
        size: u64,
    ) -> Result<()> {
        match fh.and_then(|fh| state.handles.get(&fh.0)) {
            Some(file) => file.set_len(size).map_err(errno)?,
            None => {
                let path = self.backing.join(Self::relative(state, ino)?);
                OpenOptions::new()
                    .write(true)
                    .open(path)
                    .and_then(|f| f.set_len(size))
                    .map_err(errno)?
            }
        }
        if let Some(dirty) = state.dirty.get_mut(&ino.0) {
            dirty.unsynced.truncate(size);
        }
        Ok(())
    }

    /// Attributes from the open handle when there is one (it outlives an unlink), with the
    /// size the unsynced bytes give.
    pub(super) fn do_getattr(&self, ino: INodeNo, fh: Option<FileHandle>) -> Result<FileAttr> {
        let state = self.state();
        let md = match fh.and_then(|fh| state.handles.get(&fh.0)) {
            Some(file) => file.metadata().map_err(errno)?,
            None => {
                let path = self.backing.join(Self::relative(&state, ino)?);
                std::fs::symlink_metadata(path).map_err(errno)?
            }
        };
        Ok(attr(
            ino.0,
            &md,
            state.dirty.get(&ino.0).map(|d| &d.unsynced),
        ))
    }

    pub(super) fn do_setattr(
        &self,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        fh: Option<FileHandle>,
    ) -> Result<FileAttr> {
        let mut state = self.state();
        let path = self.backing.join(Self::relative(&state, ino)?);
        if let Some(mode) = mode {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777))
                .map_err(errno)?;
        }
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::lchown(&path, uid, gid).map_err(errno)?;
        }
        if let Some(size) = size {
            self.set_size(&mut state, ino, fh, size)?;
        }
        let md = match fh.and_then(|fh| state.handles.get(&fh.0)) {
            Some(file) => file.metadata(),
            None => std::fs::symlink_metadata(&path),
        }
        .map_err(errno)?;
        Ok(attr(
            ino.0,
            &md,
            state.dirty.get(&ino.0).map(|d| &d.unsynced),
        ))
    }

    pub(super) fn do_open(&self, ino: INodeNo, flags: i32) -> Result<FileHandle> {
        let mut state = self.state();
        let path = self.backing.join(Self::relative(&state, ino)?);
        let file = open_options(flags).open(path).map_err(errno)?;
        let fh = Self::add_handle(&mut state, file);
        if flags & libc::O_TRUNC != 0 {
            self.set_size(&mut state, ino, Some(fh), 0)?;
        }
        Ok(fh)
    }

    pub(super) fn do_create(
        &self,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
    ) -> Result<(FileAttr, FileHandle)> {
        let mut state = self.state();
        let relative = Self::child(&state, parent, name)?;
        let mut options = open_options(flags);
        options.create(true).mode(mode & !umask & 0o7777);
        if flags & libc::O_EXCL != 0 {
            options.create_new(true);
        }
        let file = options.open(self.backing.join(&relative)).map_err(errno)?;
        let ino = state.inodes.number(&relative);
        let fh = Self::add_handle(&mut state, file);
        if flags & libc::O_TRUNC != 0 {
            self.set_size(&mut state, INodeNo(ino), Some(fh), 0)?;
        }
        Ok((self.entry(&mut state, &relative)?, fh))
    }

    pub(super) fn do_read(
        &self,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
    ) -> Result<Vec<u8>> {
        let state = self.state();
        let file = Self::handle(&state, fh)?;
        let none = Unsynced::default();
        let unsynced = state.dirty.get(&ino.0).map_or(&none, |d| &d.unsynced);
        unsynced.read(&file, offset, size as usize).map_err(errno)
    }

    pub(super) fn do_write(
        &self,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
    ) -> Result<()> {
        let mut state = self.state();
        let file = Self::handle(&state, fh)?;
        let dirty = state.dirty.entry(ino.0).or_insert_with(|| Dirty {
            writer: file.clone(),
            unsynced: Unsynced::default(),
        });
        dirty.writer = file;
        dirty.unsynced.write(offset, data);
        Ok(())
    }

    /// fsync and fdatasync alike: the file's unsynced bytes go to the backing file. The
    /// backing file itself is not synced: it outlives the simulated power cut anyway.
    pub(super) fn do_fsync(&self, ino: INodeNo) -> Result<()> {
        let mut state = self.state();
        let Some(dirty) = state.dirty.get_mut(&ino.0) else {
            return Ok(());
        };
        let result = dirty.unsynced.apply(&dirty.writer).map_err(errno);
        if dirty.unsynced.is_empty() {
            state.dirty.remove(&ino.0);
        }
        result
    }

    pub(super) fn do_readdir(
        &self,
        ino: INodeNo,
        offset: u64,
        reply: &mut ReplyDirectory,
    ) -> Result<()> {
        let mut state = self.state();
        let relative = Self::relative(&state, ino)?;
        let mut names: Vec<(std::ffi::OsString, FileType)> =
            std::fs::read_dir(self.backing.join(&relative))
                .map_err(errno)?
                .filter_map(|e| e.ok())
                .map(|e| {
                    let kind = e
                        .file_type()
                        .ok()
                        .and_then(FileType::from_std)
                        .unwrap_or(FileType::RegularFile);
                    (e.file_name(), kind)
                })
                .collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        let parent = match relative.parent() {
            Some(p) => state.inodes.number(p),
            None => ROOT,
        };
        let mut entries = vec![
            (ino.0, FileType::Directory, std::ffi::OsString::from(".")),
            (parent, FileType::Directory, std::ffi::OsString::from("..")),
        ];
        for (name, kind) in names {
            let child = state.inodes.number(&relative.join(&name));
            entries.push((child, kind, name));
        }
        for (i, (child, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), i as u64 + 1, kind, name) {
                break;
            }
        }
        Ok(())
    }

    pub(super) fn do_mkdir(
        &self,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
    ) -> Result<FileAttr> {
        let mut state = self.state();
        let relative = Self::child(&state, parent, name)?;
        let path = self.backing.join(&relative);
        std::fs::create_dir(&path).map_err(errno)?;
        std::fs::set_permissions(
            &path,
            std::fs::Permissions::from_mode(mode & !umask & 0o7777),
        )
        .map_err(errno)?;
        self.entry(&mut state, &relative)
    }

    pub(super) fn do_remove(&self, parent: INodeNo, name: &OsStr, dir: bool) -> Result<()> {
        let mut state = self.state();
        let relative = Self::child(&state, parent, name)?;
        let path = self.backing.join(&relative);
        if dir {
            std::fs::remove_dir(path)
        } else {
            std::fs::remove_file(path)
        }
        .map_err(errno)?;
        state.inodes.forget_path(&relative);
        Ok(())
    }

    pub(super) fn do_rename(
        &self,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
    ) -> Result<()> {
        let mut state = self.state();
        let from = Self::child(&state, parent, name)?;
        let to = Self::child(&state, newparent, newname)?;
        if flags.contains(RenameFlags::RENAME_EXCHANGE)
            || flags.contains(RenameFlags::RENAME_WHITEOUT)
        {
            return Err(Errno::EINVAL);
        }
        if flags.contains(RenameFlags::RENAME_NOREPLACE)
            && self.backing.join(&to).symlink_metadata().is_ok()
        {
            return Err(Errno::EEXIST);
        }
        std::fs::rename(self.backing.join(&from), self.backing.join(&to)).map_err(errno)?;
        state.inodes.rename(&from, &to);
        Ok(())
    }

    /// Plain preallocation (mode 0 or KEEP_SIZE) goes to the backing file at once. Modes
    /// that change content (punching holes, zeroing ranges) are refused rather than
    /// modelled: callers fall back to writing.
    pub(super) fn do_fallocate(
        &self,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> Result<()> {
        if mode & !libc::FALLOC_FL_KEEP_SIZE != 0 {
            return Err(Errno::from_i32(libc::EOPNOTSUPP));
        }
        let state = self.state();
        let file = Self::handle(&state, fh)?;
        // SAFETY: fallocate on an open file descriptor owned by `file`; no memory is passed.
        let rc = unsafe {
            libc::fallocate(
                file.as_raw_fd(),
                mode,
                offset as libc::off_t,
                length as libc::off_t,
            )
        };
        if rc != 0 {
            return Err(errno(io::Error::last_os_error()));
        }
        Ok(())
    }

    pub(super) fn do_statfs(&self) -> Result<libc::statvfs> {
        let path = std::ffi::CString::new(self.backing.as_os_str().as_encoded_bytes())
            .map_err(|_| Errno::EINVAL)?;
        // SAFETY: `path` is a valid C string and `st` a properly sized out parameter.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
            return Err(errno(io::Error::last_os_error()));
        }
        Ok(st)
    }
}
