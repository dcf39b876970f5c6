//! Devices and durable writes.
//!
//! * [`Devices`]: the devices root and `mount_check` (§1.1, §0.2): a device
//!   is a directory directly under the root whose name survives
//!   `quote_plus`; with `mount_check` it must also be a mount point.
//!   Anything else is "unavailable" (507).
//! * [`TempFile`] (`tempfile.rs`): the durable write sequence (§5.4).
//! * [`group_append`] (`group.rs`): group-committed appends.
//! * Metadata in extended attributes: `user.swift.metadata`,
//!   `user.swift.metadata1…` in 64 KiB pieces (§5.3).
//!
//! Everything here blocks on the file system: call it from pool threads.

mod group;
mod lock;
mod tempfile;
pub use group::group_append;
pub use lock::{lock_any, lock_path, Lock};
pub use tempfile::{durable_rename, TempFile};

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

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

/// Flush everything written to the filesystem holding `dir` (`syncfs`):
/// one journal commit for a whole batch of writes.
pub fn syncfs(dir: &Path) -> io::Result<()> {
    let d = File::open(dir)?;
    nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&d)).map_err(io::Error::from)
}

fn piece_name(i: usize) -> String {
    if i == 0 {
        METADATA_XATTR.to_string()
    } else {
        format!("{METADATA_XATTR}{i}")
    }
}

/// Store a metadata pickle in `path`'s xattrs as Swift's `write_metadata`
/// does: 64 KiB pieces, then the pickle's MD5 (hex) that readers check. A
/// filesystem that cannot hold it (ext4's one-block limit) gives ENOSPC or
/// E2BIG, which callers answer 507.
pub fn write_metadata(path: &Path, pickle: &[u8]) -> io::Result<()> {
    for (i, piece) in pickle.chunks(METADATA_CHUNK).enumerate() {
        xattr::set(path, piece_name(i), piece)?;
    }
    if pickle.is_empty() {
        xattr::set(path, piece_name(0), b"")?;
    }
    xattr::set(path, METADATA_CHECKSUM_XATTR, crate::hash::md5_hex(pickle).as_bytes())
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
    metadata_from(|name| xattr::get(path, name))
}

/// [`read_metadata`] of a file already open: `fgetxattr` on its
/// descriptor, so no call walks the path again.
pub fn read_metadata_of(file: &std::fs::File) -> Result<crate::pickle::Metadata, MetadataError> {
    use xattr::FileExt;
    metadata_from(|name| file.get_xattr(name))
}

/// The metadata pickle from its xattr pieces, checked against the
/// checksum xattr when there is one, read through `get`.
fn metadata_from(
    mut get: impl FnMut(&str) -> io::Result<Option<Vec<u8>>>,
) -> Result<crate::pickle::Metadata, MetadataError> {
    let mut pickle = Vec::new();
    for i in 0.. {
        match get(&piece_name(i)) {
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
    if let Ok(Some(sum)) = get(METADATA_CHECKSUM_XATTR) {
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
pub(crate) mod tests {
    use super::*;

    pub(crate) fn scratch(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("aerie-storage-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("scratch dir");
        p
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
