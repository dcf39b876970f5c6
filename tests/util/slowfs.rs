//! A slow disk on demand: a FUSE passthrough filesystem that mirrors a
//! directory and sleeps a configurable time in every operation that would
//! touch a disk (and can fail them with an errno), counting them.
//!
//! Used in-process by the tests (`SlowFs::mount`; the mount goes when the
//! value is dropped) and as a program by the benchmarks
//! (`examples/slowfs.rs`). Every operation except `statfs`, `forget` and
//! handle releases is delayed and counted; the kernel caches nothing
//! (attribute and entry timeouts are zero), so a path walk shows up as
//! lookups. Requests run on `threads` threads, so a slow disk still serves
//! several requests at a time, as a real one does.

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, MountOption,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyWrite, ReplyXattr, Request, SessionACL, TimeOrNow, WriteFlags,
};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the filesystem does, changeable while it is mounted.
#[derive(Debug, Default)]
pub struct Control {
    /// Milliseconds every counted operation sleeps.
    pub delay_ms: AtomicU64,
    /// A non-zero errno fails every counted operation with it.
    pub errno: AtomicI32,
    /// Operations counted so far.
    pub ops: AtomicU64,
}

struct Fs {
    source: PathBuf,
    control: Arc<Control>,
    paths: Mutex<HashMap<u64, PathBuf>>,
    files: Mutex<HashMap<u64, Arc<File>>>,
    next_fh: AtomicU64,
    root_ino: u64,
}

const TTL: Duration = Duration::ZERO;

fn errno(e: &io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc_eio()))
}

fn libc_eio() -> i32 {
    nix::errno::Errno::EIO as i32
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH
    }
}

impl Fs {
    /// Count and delay one operation; Err if it is to fail.
    fn touch(&self) -> Result<(), Errno> {
        self.control.ops.fetch_add(1, Ordering::Relaxed);
        let ms = self.control.delay_ms.load(Ordering::Relaxed);
        if ms > 0 {
            std::thread::sleep(Duration::from_millis(ms));
        }
        match self.control.errno.load(Ordering::Relaxed) {
            0 => Ok(()),
            e => Err(Errno::from_i32(e)),
        }
    }

    fn fuse_ino(&self, real: u64) -> u64 {
        if real == self.root_ino {
            1
        } else if real == 1 {
            self.root_ino
        } else {
            real
        }
    }

    fn path(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        if ino.0 == 1 {
            return Ok(self.source.clone());
        }
        self.paths.lock().map_err(|_| Errno::EIO)?.get(&ino.0).cloned().ok_or(Errno::ENOENT)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.path(parent)?.join(name))
    }

    fn attr(&self, path: &Path) -> Result<FileAttr, Errno> {
        let m = std::fs::symlink_metadata(path).map_err(|e| errno(&e))?;
        let ino = self.fuse_ino(m.ino());
        if ino != 1 {
            if let Ok(mut p) = self.paths.lock() {
                p.insert(ino, path.to_path_buf());
            }
        }
        let kind = if m.is_dir() {
            FileType::Directory
        } else if m.file_type().is_symlink() {
            FileType::Symlink
        } else {
            FileType::RegularFile
        };
        Ok(FileAttr {
            ino: INodeNo(ino),
            size: m.size(),
            blocks: m.blocks(),
            atime: time(m.atime(), m.atime_nsec()),
            mtime: time(m.mtime(), m.mtime_nsec()),
            ctime: time(m.ctime(), m.ctime_nsec()),
            crtime: time(m.ctime(), m.ctime_nsec()),
            kind,
            perm: (m.mode() & 0o7777) as u16,
            nlink: m.nlink() as u32,
            uid: m.uid(),
            gid: m.gid(),
            rdev: m.rdev() as u32,
            blksize: m.blksize() as u32,
            flags: 0,
        })
    }

    fn file(&self, fh: FileHandle) -> Result<Arc<File>, Errno> {
        self.files.lock().map_err(|_| Errno::EIO)?.get(&fh.0).cloned().ok_or(Errno::EBADF)
    }

    fn keep(&self, f: File) -> FileHandle {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut files) = self.files.lock() {
            files.insert(fh, Arc::new(f));
        }
        FileHandle(fh)
    }

    fn open_flags(flags: i32) -> OpenOptions {
        let mut o = OpenOptions::new();
        match flags & nix::libc::O_ACCMODE {
            nix::libc::O_WRONLY => o.write(true),
            nix::libc::O_RDWR => o.read(true).write(true),
            _ => o.read(true),
        };
        o.custom_flags(flags & (nix::libc::O_APPEND | nix::libc::O_TRUNC | nix::libc::O_DIRECTORY));
        o
    }
}

macro_rules! tryf {
    ($reply:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return $reply.error(e),
        }
    };
}

fn io<T>(r: io::Result<T>) -> Result<T, Errno> {
    r.map_err(|e| errno(&e))
}

impl Filesystem for Fs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        tryf!(reply, self.touch());
        let p = tryf!(reply, self.child(parent, name));
        let a = tryf!(reply, self.attr(&p));
        reply.entry(&TTL, &a, Generation(0));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        tryf!(reply, self.touch());
        let p = tryf!(reply, self.path(ino));
        let a = tryf!(reply, self.attr(&p));
        reply.attr(&TTL, &a);
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        tryf!(reply, self.touch());
        let p = tryf!(reply, self.path(ino));
        if let Some(m) = mode {
            tryf!(reply, io(std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m))));
        }
        if let Some(s) = size {
            let f = tryf!(reply, io(OpenOptions::new().write(true).open(&p)));
            tryf!(reply, io(f.set_len(s)));
        }
        if atime.is_some() || mtime.is_some() {
            let t = |v: Option<TimeOrNow>| match v {
                Some(TimeOrNow::SpecificTime(t)) => Some(t),
                Some(TimeOrNow::Now) => Some(SystemTime::now()),
                None => None,
            };
            if let Ok(f) = File::open(&p) {
                let mut times = std::fs::FileTimes::new();
                if let Some(a) = t(atime) {
                    times = times.set_accessed(a);
                }
                if let Some(m) = t(mtime) {
                    times = times.set_modified(m);
                }
                tryf!(reply, io(f.set_times(times)));
            }
        }
        let a = tryf!(reply, self.attr(&p));
        reply.attr(&TTL, &a);
    }

    fn mkdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, mode: u32, _umask: u32, reply: ReplyEntry) {
        tryf!(reply, self.touch());
        let p = tryf!(reply, self.child(parent, name));
        tryf!(reply, io(std::fs::create_dir(&p)));
        let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode & 0o7777));
        let a = tryf!(reply, self.attr(&p));
        reply.entry(&TTL, &a, Generation(0));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        tryf!(reply, self.touch());
        let p = tryf!(reply, self.child(parent, name));
        tryf!(reply, io(std::fs::remove_file(p)));
        reply.ok();
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        tryf!(reply, self.touch());
        let p = tryf!(reply, self.child(parent, name));
        tryf!(reply, io(std::fs::remove_dir(p)));
        reply.ok();
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        tryf!(reply, self.touch());
        let from = tryf!(reply, self.child(parent, name));
        let to = tryf!(reply, self.child(newparent, newname));
        tryf!(reply, io(std::fs::rename(&from, &to)));
        // Paths under a renamed directory move with it.
        if let Ok(mut paths) = self.paths.lock() {
            for p in paths.values_mut() {
                if let Ok(rest) = p.strip_prefix(&from) {
                    *p = to.join(rest);
                }
            }
        }
        reply.ok();
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        tryf!(reply, self.touch());
        let p = tryf!(reply, self.path(ino));
        let f = tryf!(reply, io(Fs::open_flags(flags.0).open(p)));
        reply.opened(self.keep(f), FopenFlags::empty());
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        tryf!(reply, self.touch());
        let p = tryf!(reply, self.child(parent, name));
        let mut o = Fs::open_flags(flags);
        o.create(true).mode(mode & 0o7777);
        if flags & nix::libc::O_EXCL != 0 {
            o.create_new(true);
        }
        let f = tryf!(reply, io(o.open(&p)));
        let a = tryf!(reply, self.attr(&p));
        reply.created(&TTL, &a, Generation(0), self.keep(f), FopenFlags::empty());
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
        tryf!(reply, self.touch());
        let f = tryf!(reply, self.file(fh));
        let mut buf = vec![0u8; size as usize];
        let n = tryf!(reply, io(f.read_at(&mut buf, offset)));
        reply.data(&buf[..n]);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        tryf!(reply, self.touch());
        let f = tryf!(reply, self.file(fh));
        tryf!(reply, io(f.write_all_at(data, offset)));
        reply.written(data.len() as u32);
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
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
        if let Ok(mut files) = self.files.lock() {
            files.remove(&fh.0);
        }
        reply.ok();
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, datasync: bool, reply: ReplyEmpty) {
        tryf!(reply, self.touch());
        let f = tryf!(reply, self.file(fh));
        tryf!(reply, io(if datasync { f.sync_data() } else { f.sync_all() }));
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        tryf!(reply, self.touch());
        let p = tryf!(reply, self.path(ino));
        let f = tryf!(reply, io(File::open(p)));
        reply.opened(self.keep(f), FopenFlags::empty());
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        tryf!(reply, self.touch());
        let p = tryf!(reply, self.path(ino));
        let mut entries: Vec<(u64, FileType, OsString)> =
            vec![(ino.0, FileType::Directory, ".".into()), (ino.0, FileType::Directory, "..".into())];
        for e in tryf!(reply, io(std::fs::read_dir(&p))).flatten() {
            let Ok(m) = e.metadata() else { continue };
            let kind = if m.is_dir() { FileType::Directory } else { FileType::RegularFile };
            entries.push((self.fuse_ino(m.ino()), kind, e.file_name()));
        }
        for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        if let Ok(mut files) = self.files.lock() {
            files.remove(&fh.0);
        }
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        tryf!(reply, self.touch());
        let f = tryf!(reply, self.file(fh));
        tryf!(reply, io(f.sync_all()));
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match nix::sys::statvfs::statvfs(&self.source) {
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

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        tryf!(reply, self.touch());
        let p = tryf!(reply, self.path(ino));
        tryf!(reply, io(xattr::set(p, name, value)));
        reply.ok();
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        tryf!(reply, self.touch());
        let p = tryf!(reply, self.path(ino));
        let v = tryf!(reply, io(xattr::get(p, name)));
        let Some(v) = v else { return reply.error(Errno::from_i32(nix::errno::Errno::ENODATA as i32)) };
        if size == 0 {
            reply.size(v.len() as u32);
        } else if v.len() > size as usize {
            reply.error(Errno::from_i32(nix::errno::Errno::ERANGE as i32));
        } else {
            reply.data(&v);
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        tryf!(reply, self.touch());
        let p = tryf!(reply, self.path(ino));
        let mut out = Vec::new();
        for n in tryf!(reply, io(xattr::list(p))) {
            out.extend_from_slice(n.as_encoded_bytes());
            out.push(0);
        }
        if size == 0 {
            reply.size(out.len() as u32);
        } else if out.len() > size as usize {
            reply.error(Errno::from_i32(nix::errno::Errno::ERANGE as i32));
        } else {
            reply.data(&out);
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        tryf!(reply, self.touch());
        let p = tryf!(reply, self.path(ino));
        tryf!(reply, io(xattr::remove(p, name)));
        reply.ok();
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        tryf!(reply, self.touch());
        let f = tryf!(reply, self.file(fh));
        let mode = nix::fcntl::FallocateFlags::from_bits_truncate(mode);
        tryf!(
            reply,
            nix::fcntl::fallocate(std::os::fd::AsRawFd::as_raw_fd(&*f), mode, offset as i64, length as i64)
                .map_err(|e| Errno::from_i32(e as i32))
        );
        reply.ok();
    }
}

/// A mounted slow filesystem; unmounted on drop.
pub struct SlowFs {
    /// Change the delay and errors, read the operation count.
    pub control: Arc<Control>,
    mountpoint: PathBuf,
    session: Option<fuser::BackgroundSession>,
}

impl Drop for SlowFs {
    fn drop(&mut self) {
        // A lazy unmount always succeeds, even with files still open; then
        // the session's threads end.
        self.control.delay_ms.store(0, Ordering::Relaxed);
        let _ = nix::mount::umount2(&self.mountpoint, nix::mount::MntFlags::MNT_DETACH);
        drop(self.session.take());
    }
}

impl SlowFs {
    /// Mirror `source` at `mountpoint` (an existing empty directory).
    pub fn mount(source: &Path, mountpoint: &Path, threads: usize) -> io::Result<SlowFs> {
        let control = Arc::new(Control::default());
        let fs = Fs {
            source: source.to_path_buf(),
            control: control.clone(),
            paths: Mutex::new(HashMap::new()),
            files: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            root_ino: std::fs::metadata(source)?.ino(),
        };
        let mut config = Config::default();
        config.mount_options =
            vec![MountOption::FSName("aerie-slowfs".into()), MountOption::AutoUnmount, MountOption::DefaultPermissions];
        config.acl = SessionACL::All;
        config.n_threads = Some(threads.max(1));
        let session = fuser::spawn_mount(fs, mountpoint, &config)?;
        // Wait until the kernel shows the mount.
        for _ in 0..200 {
            if is_mounted(mountpoint) {
                return Ok(SlowFs { control, mountpoint: mountpoint.to_path_buf(), session: Some(session) });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(io::Error::other(format!("{} did not appear as a mount", mountpoint.display())))
    }
}

/// Whether `path` is a mount point (in /proc/self/mounts).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(target) = path.canonicalize() else { return false };
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(&*target.to_string_lossy()))
}

/// Make sure `fusermount3` is installed (Debian's fuse3), as root.
pub fn ensure_fuse() -> io::Result<()> {
    let have = |bin: &str| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {bin}"))
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if have("fusermount3") {
        return Ok(());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fuse.sh");
    let st = std::process::Command::new(script).status()?;
    if st.success() && have("fusermount3") {
        Ok(())
    } else {
        Err(io::Error::other("could not install fuse3 (fusermount3)"))
    }
}
