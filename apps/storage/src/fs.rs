//! Devices and durable writes.
//!
//! * [`Devices`]: the devices root and `mount_check` (§1.1, §0.2): a device
//!   is a directory directly under the root whose name survives
//!   `quote_plus`; with `mount_check` it must also be a mount point.
//!   Anything else is "unavailable" (507).
//! * [`TempFile`]: the durable write sequence (§5.4): a temporary file in the
//!   device's `tmp/`, written, metadata set, `fsync`ed, renamed into place,
//!   and the directory (and every directory newly created for it)
//!   `fsync`ed. Dropping a `TempFile` that was not committed removes it, so
//!   an error path can never leave a half-written file visible, and a crash
//!   leaves only a file in `tmp/`.
//! * Metadata in extended attributes: `user.swift.metadata`,
//!   `user.swift.metadata1…` in 64 KiB pieces (§5.3).
//!
//! Everything here blocks on the file system: call it from pool threads.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The xattr holding Swift's metadata pickle (continued in `…1`, `…2`).
pub const METADATA_XATTR: &str = "user.swift.metadata";
/// The optional checksum xattr (md5 hex of the whole pickle).
pub const METADATA_CHECKSUM_XATTR: &str = "user.swift.metadata_checksum";
/// Bytes per metadata xattr piece.
pub const METADATA_CHUNK: usize = 65536;

/// Why a device cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

/// The devices root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Devices {
    /// e.g. `/srv/node`
    pub root: PathBuf,
    /// Require each device to be a mount point.
    pub mount_check: bool,
}

/// Whether `path` is a mount point: a real directory whose device differs
/// from its parent's, or that is its parent (the root).
pub fn is_mount(path: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return false };
    if !meta.is_dir() {
        return false;
    }
    let Ok(parent) = std::fs::metadata(path.join("..")) else { return false };
    meta.dev() != parent.dev() || meta.ino() == parent.ino()
}

impl Devices {
    /// The directory of a device, if it may be used.
    pub fn device_dir(&self, device: &str) -> Result<PathBuf, Unavailable> {
        if !crate::path::is_safe_device_name(device) || device == "." || device == ".." {
            return Err(Unavailable(format!("bad device name {device:?}")));
        }
        let dir = self.root.join(device);
        // A device that is a symlink must stay inside the devices root:
        // requests never read or write anywhere else.
        if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink()) {
            let inside = match (dir.canonicalize(), self.root.canonicalize()) {
                (Ok(target), Ok(root)) => target.starts_with(&root) && target != root,
                _ => false,
            };
            if !inside {
                return Err(Unavailable(format!("{} is a symlink out of the devices root", dir.display())));
            }
        }
        if self.mount_check {
            if !is_mount(&dir) {
                return Err(Unavailable(format!("{} is not mounted", dir.display())));
            }
        } else if !dir.is_dir() {
            return Err(Unavailable(format!("{} is not a directory", dir.display())));
        }
        Ok(dir)
    }
}

/// Free space on the filesystem holding `path`: (free bytes, free fraction).
pub fn free_space(path: &Path) -> io::Result<(u64, f64)> {
    let st = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    let frsize = st.fragment_size() as u64;
    let free = st.blocks_available() as u64 * frsize;
    let total = st.blocks() as u64 * frsize;
    Ok((free, if total == 0 { 0.0 } else { free as f64 / total as f64 }))
}

/// `fallocate_reserve`: keep this much free (bytes, or a percentage).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reserve {
    /// Absolute bytes.
    Bytes(u64),
    /// Percent of the filesystem.
    Percent(f64),
}

impl Reserve {
    /// Parse `1%`, `10485760`, `0`.
    pub fn parse(s: &str) -> Option<Reserve> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p.trim().parse().ok()?;
            return (0.0..=100.0).contains(&v).then_some(Reserve::Percent(v));
        }
        s.parse().ok().map(Reserve::Bytes)
    }

    /// Whether writing `size` more bytes at `path` would cross the reserve.
    pub fn would_cross(&self, path: &Path, size: u64) -> io::Result<bool> {
        let (free, frac) = free_space(path)?;
        Ok(match *self {
            Reserve::Bytes(r) => free.saturating_sub(size) < r,
            Reserve::Percent(p) => {
                let total = if frac > 0.0 { free as f64 / frac } else { 0.0 };
                let after = free.saturating_sub(size) as f64;
                total > 0.0 && after / total * 100.0 < p
            }
        })
    }
}

/// Whether an I/O error means "the disk is full".
pub fn is_full(e: &io::Error) -> bool {
    let code = e.raw_os_error();
    code == Some(nix::errno::Errno::ENOSPC as i32)
        || code == Some(nix::errno::Errno::EDQUOT as i32)
        || code == Some(nix::errno::Errno::E2BIG as i32)
}

/// Create `dir` and its missing parents; returns the directories created,
/// outermost first (each must be fsynced in its parent after a publish).
pub fn create_dirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut cur = dir;
    while !cur.exists() {
        missing.push(cur.to_path_buf());
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    missing.reverse();
    for d in &missing {
        match std::fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(missing)
}

/// fsync a directory.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Appends to one file being committed together.
#[derive(Default)]
struct AppendGroup {
    /// The batch new appenders join.
    open: u64,
    /// The records of the open batch, in arrival order.
    records: Vec<u8>,
    /// Appenders in the open batch.
    members: usize,
    /// A thread is committing (the batch before `open`).
    busy: bool,
    /// Outcomes of committed batches not yet picked up by all their
    /// members: batch → (error, if any; members still to pick it up).
    done: std::collections::HashMap<u64, (Option<(io::ErrorKind, String)>, usize)>,
}

/// Per file, the appenders of this process committing to it.
static APPEND_GROUPS: std::sync::Mutex<Option<std::collections::HashMap<PathBuf, AppendGroup>>> =
    std::sync::Mutex::new(None);
static APPEND_DONE: std::sync::Condvar = std::sync::Condvar::new();

/// Group commit of appends to one file by the threads of this process:
/// `record` joins the open batch for `key`; the first thread to find no
/// commit under way takes the batch and runs `commit` with all its records
/// at once (one lock, one write, one `fdatasync` for the lot), and every
/// member returns only when the commit holding its record has finished,
/// with that commit's outcome: the committing thread gets `commit`'s
/// value, the others `R::default()`. Threads arriving during a commit form
/// the next batch, so under concurrency the cost is per batch, not per
/// record, with the same guarantee for each.
pub fn group_append<R: Default>(
    key: &Path,
    record: &[u8],
    commit: impl FnOnce(&[u8]) -> io::Result<R>,
) -> io::Result<R> {
    let lock = || APPEND_GROUPS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut guard = lock();
    let group = guard.get_or_insert_with(Default::default).entry(key.to_path_buf()).or_default();
    let batch = group.open;
    group.records.extend_from_slice(record);
    group.members += 1;
    loop {
        let groups = guard.get_or_insert_with(Default::default);
        let Some(group) = groups.get_mut(key) else {
            return Err(io::Error::other("append group vanished"));
        };
        if let Some((err, left)) = group.done.get_mut(&batch) {
            let err = err.clone();
            *left -= 1;
            if *left == 0 {
                group.done.remove(&batch);
            }
            forget_if_idle(groups, key);
            return err.map_or(Ok(R::default()), |(kind, msg)| Err(io::Error::new(kind, msg)));
        }
        if !group.busy && group.open == batch {
            group.busy = true;
            group.open += 1;
            let records = std::mem::take(&mut group.records);
            let members = std::mem::take(&mut group.members);
            drop(guard);
            // Should `commit` panic, the batch still ends (with an error for
            // its other members) and the file's group is not left busy.
            let mut finish = Finish { key, batch, members, done: false };
            let result = commit(&records);
            finish.complete(result.as_ref().err().map(|e| (e.kind(), e.to_string())));
            return result;
        }
        guard = APPEND_DONE.wait(guard).unwrap_or_else(std::sync::PoisonError::into_inner);
    }
}

/// Ends a committed batch: clears `busy`, leaves the outcome for the
/// batch's other members and wakes them — also when dropped unfinished
/// (the commit panicked).
struct Finish<'a> {
    key: &'a Path,
    batch: u64,
    members: usize,
    done: bool,
}

impl Finish<'_> {
    fn complete(&mut self, err: Option<(io::ErrorKind, String)>) {
        self.done = true;
        let mut guard = APPEND_GROUPS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let groups = guard.get_or_insert_with(Default::default);
        if let Some(group) = groups.get_mut(self.key) {
            group.busy = false;
            if self.members > 1 {
                group.done.insert(self.batch, (err, self.members - 1));
            }
        }
        forget_if_idle(groups, self.key);
        APPEND_DONE.notify_all();
    }
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.complete(Some((io::ErrorKind::Other, "the commit of this batch failed".into())));
        }
    }
}

/// Drop a file's group once nobody is in it.
fn forget_if_idle(groups: &mut std::collections::HashMap<PathBuf, AppendGroup>, key: &Path) {
    if groups.get(key).is_some_and(|g| !g.busy && g.members == 0 && g.done.is_empty()) {
        groups.remove(key);
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A file being written in a device's `tmp/` directory.
pub struct TempFile {
    file: File,
    path: PathBuf,
    committed: bool,
}

impl TempFile {
    /// Create a new empty file in `tmp_dir` (created if missing).
    pub fn create(tmp_dir: &Path) -> io::Result<TempFile> {
        create_dirs(tmp_dir)?;
        for _ in 0..16 {
            let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
            let path = tmp_dir.join(format!("tmp{}.{n}.{nanos:x}", std::process::id()));
            match OpenOptions::new().write(true).read(true).create_new(true).open(&path) {
                Ok(file) => return Ok(TempFile { file, path, committed: false }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(io::ErrorKind::AlreadyExists, "could not pick a temporary file name"))
    }

    /// The open file.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Reserve `size` bytes up front (ENOSPC surfaces here, before the body).
    pub fn preallocate(&self, size: u64) -> io::Result<()> {
        if size == 0 {
            return Ok(());
        }
        let len = i64::try_from(size).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "size too large"))?;
        match nix::fcntl::posix_fallocate(std::os::fd::AsRawFd::as_raw_fd(&self.file), 0, len) {
            Ok(()) => Ok(()),
            // Filesystems without fallocate: fall back to the reserve check.
            Err(nix::errno::Errno::EOPNOTSUPP) | Err(nix::errno::Errno::EINVAL) => Ok(()),
            Err(e) => Err(io::Error::from(e)),
        }
    }

    /// Write the metadata pickle into the file's xattrs.
    pub fn set_metadata(&self, pickle: &[u8]) -> io::Result<()> {
        write_metadata(&self.path, pickle)
    }

    /// fsync, then rename to `dest` and fsync its directory and every
    /// directory in `created` (newly made parents).
    pub fn commit(mut self, dest: &Path, created: &[PathBuf]) -> io::Result<()> {
        self.file.flush()?;
        self.file.sync_all()?;
        std::fs::rename(&self.path, dest)?;
        self.committed = true;
        if let Some(dir) = dest.parent() {
            fsync_dir(dir)?;
        }
        for d in created.iter().rev() {
            if let Some(parent) = d.parent() {
                fsync_dir(parent)?;
            }
        }
        Ok(())
    }
}

impl TempFile {
    /// Its path (for a writer that opens it itself, such as SQLite).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Like [`TempFile::commit`], but never replaces an existing `dest`:
    /// `Ok(false)` (and the temporary file removed) when another writer
    /// published it first. The rename is `renameat2(RENAME_NOREPLACE)`, so
    /// of concurrent creators exactly one wins, whatever process it is in.
    pub fn commit_new(mut self, dest: &Path, created: &[PathBuf]) -> io::Result<bool> {
        self.file.flush()?;
        self.file.sync_all()?;
        match nix::fcntl::renameat2(None, &self.path, None, dest, nix::fcntl::RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => {}
            Err(nix::errno::Errno::EEXIST) => return Ok(false),
            Err(e) => return Err(io::Error::from(e)),
        }
        self.committed = true;
        if let Some(dir) = dest.parent() {
            fsync_dir(dir)?;
        }
        for d in created.iter().rev() {
            if let Some(parent) = d.parent() {
                fsync_dir(parent)?;
            }
        }
        Ok(true)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn piece_name(i: usize) -> String {
    if i == 0 {
        METADATA_XATTR.to_string()
    } else {
        format!("{METADATA_XATTR}{i}")
    }
}

/// Store a metadata pickle in `path`'s xattrs, in 64 KiB pieces. A
/// filesystem that cannot hold it (ext4's one-block limit) gives ENOSPC or
/// E2BIG, which callers answer 507.
pub fn write_metadata(path: &Path, pickle: &[u8]) -> io::Result<()> {
    for (i, piece) in pickle.chunks(METADATA_CHUNK).enumerate() {
        xattr::set(path, piece_name(i), piece)?;
    }
    if pickle.is_empty() {
        xattr::set(path, piece_name(0), b"")?;
    }
    Ok(())
}

/// Why stored metadata could not be read.
#[derive(Debug)]
pub enum MetadataError {
    /// No metadata at all.
    Missing,
    /// Present but unusable (bad checksum, bad pickle).
    Corrupt(String),
    /// The read failed.
    Io(io::Error),
}

/// Read a metadata pickle from `path`'s xattrs and decode it.
pub fn read_metadata(path: &Path) -> Result<crate::pickle::Metadata, MetadataError> {
    let mut pickle = Vec::new();
    for i in 0.. {
        match xattr::get(path, piece_name(i)) {
            Ok(Some(piece)) => pickle.extend_from_slice(&piece),
            Ok(None) => break,
            Err(e) => return Err(MetadataError::Io(e)),
        }
        if i > 1024 {
            return Err(MetadataError::Corrupt("too many metadata pieces".into()));
        }
    }
    if pickle.is_empty() {
        return Err(MetadataError::Missing);
    }
    if let Ok(Some(sum)) = xattr::get(path, METADATA_CHECKSUM_XATTR) {
        if sum != crate::hash::md5_hex(&pickle).as_bytes() {
            return Err(MetadataError::Corrupt("metadata checksum mismatch".into()));
        }
    }
    crate::pickle::loads_metadata(&pickle).map_err(|e| MetadataError::Corrupt(e.to_string()))
}

/// Whether a file name is visible (not a dotfile or temporary).
pub fn is_visible(name: &OsStr) -> bool {
    !name.as_encoded_bytes().starts_with(b".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("aerie-storage-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("scratch dir");
        p
    }

    #[test]
    fn temp_files_vanish_unless_committed() {
        let d = scratch("tmp");
        let tmp = d.join("tmp");
        {
            let mut t = TempFile::create(&tmp).expect("create");
            t.file().write_all(b"partial").expect("write");
        }
        assert_eq!(std::fs::read_dir(&tmp).expect("tmp").count(), 0, "an abandoned write leaves nothing");
        let mut t = TempFile::create(&tmp).expect("create");
        t.file().write_all(b"whole").expect("write");
        let dest_dir = d.join("a/b");
        let created = create_dirs(&dest_dir).expect("dirs");
        assert_eq!(created.len(), 2);
        t.commit(&dest_dir.join("x.data"), &created).expect("commit");
        assert_eq!(std::fs::read(dest_dir.join("x.data")).expect("read"), b"whole");
        assert_eq!(std::fs::read_dir(&tmp).expect("tmp").count(), 0);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn group_append_commits_every_record_once_and_forgets_the_file() {
        let d = scratch("gappend");
        let path = d.join("pending");
        let commits = std::sync::Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (path, commits) = (path.clone(), commits.clone());
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let line = format!("{t}-{i}\n");
                        group_append(&path, line.as_bytes(), |all| {
                            commits.fetch_add(1, Ordering::Relaxed);
                            let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
                            f.write_all(all)?;
                            f.sync_data()
                        })
                        .expect("append");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("appender");
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        lines.dedup();
        assert_eq!(lines.len(), 1600, "every record exactly once");
        assert_eq!(text.lines().count(), 1600);
        assert!(commits.load(Ordering::Relaxed) <= 1600);
        let left = APPEND_GROUPS.lock().expect("groups").as_ref().map(|g| g.contains_key(&path));
        assert_eq!(left, Some(false), "no state is kept for a file once its appenders are done");
        // A failed commit fails every member of its batch.
        let err = group_append(&d.join("x"), b"r", |_| -> io::Result<()> { Err(io::Error::other("disk gone")) });
        assert!(err.is_err());
        // A commit that panics leaves the file usable.
        let key = d.join("p");
        let panicked = std::panic::catch_unwind(|| group_append(&key, b"r", |_| -> io::Result<()> { panic!("boom") }));
        assert!(panicked.is_err());
        assert!(group_append(&key, b"r", |_| Ok(())).is_ok(), "the next append commits");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn devices_need_a_directory_and_with_mount_check_a_mount() {
        let d = scratch("dev");
        std::fs::create_dir(d.join("sda")).expect("dev");
        let devs = Devices { root: d.clone(), mount_check: false };
        assert!(devs.device_dir("sda").is_ok());
        assert!(devs.device_dir("sdb").is_err());
        assert!(devs.device_dir("..").is_err());
        assert!(devs.device_dir("a b").is_err());
        let devs = Devices { root: d.clone(), mount_check: true };
        assert!(devs.device_dir("sda").is_err(), "a plain directory is not a mount point");
        assert!(is_mount(Path::new("/")));
        assert!(is_mount(Path::new("/proc")));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn reserve_parses() {
        assert_eq!(Reserve::parse("1%"), Some(Reserve::Percent(1.0)));
        assert_eq!(Reserve::parse("1048576"), Some(Reserve::Bytes(1_048_576)));
        assert_eq!(Reserve::parse("x"), None);
        assert_eq!(Reserve::parse("101%"), None);
    }
}
