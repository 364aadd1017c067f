//! The pass-through: every FUSE operation done on the backing directory, after the gate (slow, stall, power)
//! and with the durability journal told what changed. Inode numbers are the backing files' own (the backing
//! directory itself is inode 1). Files are opened with direct I/O and attributes are never cached, so the
//! kernel keeps no copy of data or sizes that a power cut or a bit flip could leave stale.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt as _, FileExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use nix::libc;

use super::slow::Pass;
use super::{FsyncFailure, Shared, State};

const TTL: Duration = Duration::ZERO;

const LOOKUP: usize = 0;
const GETATTR: usize = 1;
const SETATTR: usize = 2;
const OPEN: usize = 3;
const READ: usize = 4;
const WRITE: usize = 5;
const FSYNC: usize = 6;
const CREATE: usize = 7;
const RENAME: usize = 8;
const UNLINK: usize = 9;
const MKDIR: usize = 10;
const READDIR: usize = 11;
const FSYNCDIR: usize = 12;

pub(crate) struct FaultFs {
    shared: Arc<Shared>,
}

fn errno(e: std::io::Error) -> Errno {
    Errno::from(e)
}

fn kind_of(ft: std::fs::FileType) -> FileType {
    FileType::from_std(ft).unwrap_or(FileType::RegularFile)
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH
    }
}

impl FaultFs {
    pub(crate) fn new(shared: Arc<Shared>) -> FaultFs {
        FaultFs { shared }
    }

    fn attr(&self, meta: &std::fs::Metadata) -> FileAttr {
        FileAttr {
            ino: INodeNo(self.shared.fuse_ino(meta)),
            size: meta.len(),
            blocks: meta.blocks(),
            atime: time(meta.atime(), meta.atime_nsec()),
            mtime: time(meta.mtime(), meta.mtime_nsec()),
            ctime: time(meta.ctime(), meta.ctime_nsec()),
            crtime: UNIX_EPOCH,
            kind: kind_of(meta.file_type()),
            perm: (meta.mode() & 0o7777) as u16,
            nlink: meta.nlink() as u32,
            uid: meta.uid(),
            gid: meta.gid(),
            rdev: meta.rdev() as u32,
            blksize: meta.blksize() as u32,
            flags: 0,
        }
    }

    /// Passes the gate and starts timing; EIO while the power is off.
    fn begin(&self, is_sync: bool) -> Result<Instant, Errno> {
        match self.shared.gate.pass(is_sync) {
            Pass::Go => Ok(Instant::now()),
            Pass::PoweredOff => Err(Errno::EIO),
        }
    }

    fn end(&self, kind: usize, t0: Instant) {
        let c = &self.shared.counters;
        c.ops[kind].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        c.nanos[kind].fetch_add(
            t0.elapsed().as_nanos() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    fn path(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        self.shared
            .state
            .lock()
            .unwrap()
            .inodes
            .get(&ino.0)
            .cloned()
            .ok_or(Errno::ENOENT)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.path(parent)?.join(name))
    }

    fn remember(&self, path: &Path, meta: &std::fs::Metadata) -> FileAttr {
        let attr = self.attr(meta);
        self.shared
            .state
            .lock()
            .unwrap()
            .inodes
            .insert(attr.ino.0, path.to_path_buf());
        attr
    }

    fn handle(&self, fh: FileHandle) -> Result<Arc<File>, Errno> {
        self.shared
            .state
            .lock()
            .unwrap()
            .handles
            .get(&fh.0)
            .cloned()
            .ok_or(Errno::EBADF)
    }

    fn add_handle(&self, file: File) -> FileHandle {
        let mut st = self.shared.state.lock().unwrap();
        let fh = st.next_fh;
        st.next_fh += 1;
        st.handles.insert(fh, Arc::new(file));
        FileHandle(fh)
    }

    #[allow(clippy::too_many_arguments)] // the kernel's setattr, minus what is ignored
    fn do_setattr(
        &self,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        mtime: Option<TimeOrNow>,
        fh: Option<FileHandle>,
    ) -> Result<FileAttr, Errno> {
        let path = self.path(ino)?;
        if let Some(size) = size {
            let file = match fh.map(|fh| self.handle(fh)) {
                Some(Ok(f)) => f,
                // Readable too: the journal reads the bytes a shrink cuts off (write-only, that read failed with
                // EBADF, and so did `truncate` by path and `open(O_TRUNC)` of any non-empty file).
                _ => Arc::new(
                    OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(&path)
                        .map_err(errno)?,
                ),
            };
            let mut st = self.shared.state.lock().unwrap();
            let have = file.metadata().map_err(errno)?.len();
            if size > have && !st.full.take_all(size - have) {
                return Err(Errno::from_i32(libc::ENOSPC));
            }
            st.journal
                .before_truncate(ino.0, &file, size)
                .map_err(errno)?;
            file.set_len(size).map_err(errno)?;
        }
        if let Some(mode) = mode {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777))
                .map_err(errno)?;
        }
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::lchown(&path, uid, gid).map_err(errno)?;
        }
        if let Some(t) = mtime {
            let t = match t {
                TimeOrNow::SpecificTime(t) => t,
                TimeOrNow::Now => SystemTime::now(),
            };
            if let Ok(f) = File::open(&path) {
                let _ = f.set_times(std::fs::FileTimes::new().set_modified(t));
            }
        }
        let meta = std::fs::symlink_metadata(&path).map_err(errno)?;
        Ok(self.attr(&meta))
    }

    fn do_open(&self, ino: INodeNo, flags: OpenFlags) -> Result<FileHandle, Errno> {
        let path = self.path(ino)?;
        let file = open_backing(&path, flags.0, false, 0)?;
        if flags.0 & libc::O_TRUNC != 0 {
            let mut st = self.shared.state.lock().unwrap();
            st.journal.before_truncate(ino.0, &file, 0).map_err(errno)?;
            file.set_len(0).map_err(errno)?;
        }
        Ok(self.add_handle(file))
    }

    fn do_write(
        &self,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
    ) -> Result<u32, Errno> {
        let file = self.handle(fh)?;
        let mut st = self.shared.state.lock().unwrap();
        let n = st
            .full
            .take(data.len())
            .ok_or(Errno::from_i32(libc::ENOSPC))?;
        st.journal
            .before_write(ino.0, &file, offset, n)
            .map_err(errno)?;
        file.write_all_at(&data[..n], offset).map_err(errno)?;
        Ok(n as u32)
    }

    fn do_fsync(&self, ino: INodeNo, fh: FileHandle, datasync: bool) -> Result<(), Errno> {
        let file = self.handle(fh)?;
        let mut st = self.shared.state.lock().unwrap();
        self.armed_cut(&mut st)?;
        let (fail, left) = FsyncFailure::fire(st.fsync_fail);
        st.fsync_fail = left;
        if fail {
            // Like Linux after a writeback error: the dirty data is gone and the error is reported once.
            if let Some(path) = st.inodes.get(&ino.0).cloned() {
                let _ = st.journal.drop_file(ino.0, &path);
            }
            return Err(Errno::EIO);
        }
        if datasync {
            file.sync_data().map_err(errno)?;
        } else {
            file.sync_all().map_err(errno)?;
        }
        st.journal.synced(ino.0).map_err(errno)?;
        Ok(())
    }

    /// A sync is about to run: if an armed power cut ([`super::DiskFaults::power_off_after_syncs`]) falls
    /// here, the power goes off and the sync fails with EIO, having made nothing durable; otherwise it counts
    /// towards the cut.
    fn armed_cut(&self, st: &mut State) -> Result<(), Errno> {
        match st.cut_after_syncs {
            Some(0) => {
                st.cut_after_syncs = None;
                self.shared.gate.set_powered_off(true);
                Err(Errno::EIO)
            }
            Some(n) => {
                st.cut_after_syncs = Some(n - 1);
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn do_fsyncdir(&self, ino: INodeNo) -> Result<(), Errno> {
        let path = self.path(ino)?;
        let mut st = self.shared.state.lock().unwrap();
        self.armed_cut(&mut st)?;
        File::open(&path)
            .and_then(|d| d.sync_all())
            .map_err(errno)?;
        for freed in st.journal.dir_synced(ino.0).map_err(errno)? {
            // The removal is durable: the file's unsynced data goes with it. Its record must go too, or the
            // inode number, once the backing filesystem reuses it for a new file, would roll that file back
            // with another file's bytes at the next power cut.
            if let Ok(meta) = std::fs::symlink_metadata(&freed)
                && meta.is_file()
            {
                st.journal
                    .forget(self.shared.fuse_ino(&meta))
                    .map_err(errno)?;
            }
            let _ = if freed.is_dir() {
                std::fs::remove_dir_all(&freed)
            } else {
                std::fs::remove_file(&freed)
            };
        }
        Ok(())
    }

    fn do_create(
        &self,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
    ) -> Result<(FileAttr, FileHandle), Errno> {
        let path = self.child(parent, name)?;
        // Held from the check to the record, so the log's order is the order of the changes.
        let mut st = self.shared.state.lock().unwrap();
        let existed = std::fs::symlink_metadata(&path).is_ok();
        if !existed {
            if st.full.spent() {
                return Err(Errno::from_i32(libc::ENOSPC));
            }
            st.journal.created(parent.0, path.clone()).map_err(errno)?;
        }
        let file = match open_backing(&path, flags, true, mode & !umask & 0o7777) {
            Ok(f) => f,
            Err(e) => {
                if !existed {
                    st.journal.abort_name().map_err(errno)?;
                }
                return Err(e);
            }
        };
        let meta = file.metadata().map_err(errno)?;
        let attr = self.attr(&meta);
        st.inodes.insert(attr.ino.0, path.clone());
        if existed && flags & libc::O_TRUNC != 0 {
            st.journal
                .before_truncate(attr.ino.0, &file, 0)
                .map_err(errno)?;
            file.set_len(0).map_err(errno)?;
        }
        drop(st);
        Ok((attr, self.add_handle(file)))
    }

    fn do_rename(
        &self,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
    ) -> Result<(), Errno> {
        let from = self.child(parent, name)?;
        let to = self.child(newparent, newname)?;
        let mut st = self.shared.state.lock().unwrap();
        std::fs::symlink_metadata(&from).map_err(errno)?;
        let replaced = match std::fs::symlink_metadata(&to) {
            Ok(meta) => {
                if meta.is_dir() && std::fs::read_dir(&to).map_err(errno)?.next().is_some() {
                    return Err(Errno::from_i32(libc::ENOTEMPTY));
                }
                Some(st.journal.stash_path(&self.shared.stash))
            }
            Err(_) => None,
        };
        let mut dirs = vec![parent.0];
        if newparent != parent {
            dirs.push(newparent.0);
        }
        // Logged before anything moves: a squall killed half-way leaves a record the next mount can undo.
        st.journal
            .renamed(dirs, from.clone(), to.clone(), replaced.clone())
            .map_err(errno)?;
        if let Some(r) = &replaced {
            if let Err(e) = std::fs::rename(&to, r) {
                st.journal.abort_name().map_err(errno)?;
                return Err(errno(e));
            }
            repath(&mut st.inodes, &to, r);
        }
        if let Err(e) = std::fs::rename(&from, &to) {
            if let Some(r) = &replaced {
                let _ = std::fs::rename(r, &to);
                repath(&mut st.inodes, r, &to);
            }
            st.journal.abort_name().map_err(errno)?;
            return Err(errno(e));
        }
        repath(&mut st.inodes, &from, &to);
        Ok(())
    }

    fn do_mkdir(&self, parent: INodeNo, name: &OsStr, mode: u32) -> Result<PathBuf, Errno> {
        let path = self.child(parent, name)?;
        let mut st = self.shared.state.lock().unwrap();
        if st.full.spent() {
            return Err(Errno::from_i32(libc::ENOSPC));
        }
        if std::fs::symlink_metadata(&path).is_ok() {
            return Err(Errno::EEXIST);
        }
        st.journal.made_dir(parent.0, path.clone()).map_err(errno)?;
        if let Err(e) = std::fs::DirBuilder::new().mode(mode).create(&path) {
            st.journal.abort_name().map_err(errno)?;
            return Err(errno(e));
        }
        Ok(path)
    }

    fn do_remove(&self, parent: INodeNo, name: &OsStr, dir: bool) -> Result<(), Errno> {
        let path = self.child(parent, name)?;
        let meta = std::fs::symlink_metadata(&path).map_err(errno)?;
        if dir {
            if !meta.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            if std::fs::read_dir(&path).map_err(errno)?.next().is_some() {
                return Err(Errno::from_i32(libc::ENOTEMPTY));
            }
        } else if meta.is_dir() {
            return Err(Errno::from_i32(libc::EISDIR));
        }
        let mut st = self.shared.state.lock().unwrap();
        let stash = st.journal.stash_path(&self.shared.stash);
        st.journal
            .removed(parent.0, path.clone(), stash.clone())
            .map_err(errno)?;
        if let Err(e) = std::fs::rename(&path, &stash) {
            st.journal.abort_name().map_err(errno)?;
            return Err(errno(e));
        }
        repath(&mut st.inodes, &path, &stash);
        Ok(())
    }
}

/// Rewrites every remembered path at or under `from` to lie under `to`.
fn repath(inodes: &mut std::collections::HashMap<u64, PathBuf>, from: &Path, to: &Path) {
    for p in inodes.values_mut() {
        if let Ok(rest) = p.strip_prefix(from) {
            *p = if rest.as_os_str().is_empty() {
                to.to_path_buf()
            } else {
                to.join(rest)
            };
        }
    }
}

/// Opens a backing file as the kernel asked, minus O_APPEND (the kernel supplies every write's offset) and
/// O_TRUNC (done by the caller, through the journal).
fn open_backing(path: &Path, flags: i32, create: bool, mode: u32) -> Result<File, Errno> {
    let mut o = OpenOptions::new();
    match flags & libc::O_ACCMODE {
        libc::O_RDONLY => o.read(true),
        libc::O_WRONLY => o.write(true),
        _ => o.read(true).write(true),
    };
    // Reads of a write-only handle happen for torn-write bookkeeping, so open every file readable too.
    o.read(true);
    if create {
        o.create(true).mode(mode);
        if flags & libc::O_EXCL != 0 {
            o.create_new(true);
        }
    }
    o.custom_flags(
        flags & !(libc::O_APPEND | libc::O_TRUNC | libc::O_CREAT | libc::O_EXCL | libc::O_ACCMODE),
    );
    o.open(path).map_err(errno)
}

impl fuser::Filesystem for FaultFs {
    fn init(&mut self, _req: &Request, config: &mut fuser::KernelConfig) -> std::io::Result<()> {
        // Files are opened direct-I/O (every write reaches the fault layer), and a kernel refuses a shared
        // mapping of such a file (ENODEV) unless the filesystem allows it: etcd's bbolt maps its database so.
        // A kernel without the flag (before 6.6) keeps refusing; nothing else changes.
        let _ = config.add_capabilities(fuser::InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = self.begin(false).and_then(|t0| {
            let path = self.child(parent, name)?;
            let meta = std::fs::symlink_metadata(&path).map_err(errno)?;
            let attr = self.remember(&path, &meta);
            self.end(LOOKUP, t0);
            Ok(attr)
        });
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let r = self.begin(false).and_then(|t0| {
            let meta = match fh.map(|fh| self.handle(fh)) {
                Some(Ok(f)) => f.metadata().map_err(errno)?,
                _ => std::fs::symlink_metadata(self.path(ino)?).map_err(errno)?,
            };
            self.end(GETATTR, t0);
            Ok(self.attr(&meta))
        });
        match r {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let r = self.begin(false).and_then(|t0| {
            let a = self.do_setattr(ino, mode, uid, gid, size, mtime, fh)?;
            self.end(SETATTR, t0);
            Ok(a)
        });
        match r {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let r = self.begin(false).and_then(|t0| {
            let path = self.do_mkdir(parent, name, mode & !umask & 0o7777)?;
            let meta = std::fs::symlink_metadata(&path).map_err(errno)?;
            self.end(MKDIR, t0);
            Ok(self.remember(&path, &meta))
        });
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self.begin(false).and_then(|t0| {
            self.do_remove(parent, name, false)?;
            self.end(UNLINK, t0);
            Ok(())
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self.begin(false).and_then(|t0| {
            self.do_remove(parent, name, true)?;
            self.end(UNLINK, t0);
            Ok(())
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let r = self.begin(false).and_then(|t0| {
            if !flags.is_empty() {
                return Err(Errno::EINVAL);
            }
            self.do_rename(parent, name, newparent, newname)?;
            self.end(RENAME, t0);
            Ok(())
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let r = self.begin(false).and_then(|t0| {
            let fh = self.do_open(ino, flags)?;
            self.end(OPEN, t0);
            Ok(fh)
        });
        match r {
            Ok(fh) => reply.opened(fh, FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let r = self.begin(false).and_then(|t0| {
            let file = self.handle(fh)?;
            let mut buf = vec![0u8; size as usize];
            let mut got = 0;
            while got < buf.len() {
                match file.read_at(&mut buf[got..], offset + got as u64) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(errno(e)),
                }
            }
            buf.truncate(got);
            self.end(READ, t0);
            Ok(buf)
        });
        match r {
            Ok(b) => reply.data(&b),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let r = self.begin(false).and_then(|t0| {
            let n = self.do_write(ino, fh, offset, data)?;
            self.end(WRITE, t0);
            Ok(n)
        });
        match r {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.shared.state.lock().unwrap().handles.remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let r = self.begin(true).and_then(|t0| {
            self.do_fsync(ino, fh, datasync)?;
            self.end(FSYNC, t0);
            Ok(())
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.opened(FileHandle(0), FopenFlags::empty());
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let r = self.begin(false).and_then(|t0| {
            let path = self.path(ino)?;
            let mut entries: Vec<(u64, FileType, std::ffi::OsString)> = vec![
                (ino.0, FileType::Directory, ".".into()),
                (1, FileType::Directory, "..".into()),
            ];
            let mut rest: Vec<_> = std::fs::read_dir(&path)
                .map_err(errno)?
                .flatten()
                .filter_map(|e| {
                    let meta = e.metadata().ok()?;
                    Some((
                        self.shared.fuse_ino(&meta),
                        kind_of(meta.file_type()),
                        e.file_name(),
                    ))
                })
                .collect();
            rest.sort_by(|a, b| a.2.cmp(&b.2));
            entries.extend(rest);
            self.end(READDIR, t0);
            Ok(entries)
        });
        match r {
            Ok(entries) => {
                for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize)
                {
                    if reply.add(INodeNo(ino), i as u64 + 1, kind, &name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let r = self.begin(true).and_then(|t0| {
            self.do_fsyncdir(ino)?;
            self.end(FSYNCDIR, t0);
            Ok(())
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match nix::sys::statvfs::statvfs(&self.shared.backing) {
            Ok(s) => reply.statfs(
                s.blocks(),
                s.blocks_free(),
                s.blocks_available(),
                s.files(),
                s.files_free(),
                s.block_size() as u32,
                s.name_max() as u32,
                s.fragment_size() as u32,
            ),
            Err(e) => reply.error(Errno::from_i32(e as i32)),
        }
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let r = self.begin(false).and_then(|t0| {
            let out = self.do_create(parent, name, mode, umask, flags)?;
            self.end(CREATE, t0);
            Ok(out)
        });
        match r {
            Ok((a, fh)) => reply.created(&TTL, &a, Generation(0), fh, FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(e),
        }
    }
}
