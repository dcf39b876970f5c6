//! The durable write sequence (§5.4): a temporary file in the device's
//! `tmp/`, written, metadata set, `fsync`ed, renamed into place, and the
//! directory (and every directory newly created for it) `fsync`ed.
//! Dropping a `TempFile` that was not committed removes it, so an error
//! path can never leave a half-written file visible, and a crash leaves
//! only a file in `tmp/`.

use super::{create_dirs, fsync_dir, write_metadata};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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
        let remade = rename_into(dest, || std::fs::rename(&self.path, dest))?;
        self.committed = true;
        fsync_published(dest, &[created, &remade].concat())?;
        Ok(())
    }
}

/// Run `rename` (something into `dest`); when `dest`'s directory vanished
/// meanwhile — the replicators remove empty hash and suffix directories,
/// Swift's as aerie's — make it again and retry, as Swift's `renamer` does.
/// Returns the directories made again (to fsync).
fn rename_into(dest: &Path, mut rename: impl FnMut() -> io::Result<()>) -> io::Result<Vec<PathBuf>> {
    let mut remade = Vec::new();
    for attempt in 0.. {
        match rename() {
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < 3 => {
                let dir = dest.parent().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no directory"))?;
                remade.extend(create_dirs(dir)?);
            }
            other => return other.map(|()| remade),
        }
    }
    Ok(remade)
}

/// Move a finished file that is not a [`TempFile`] (one rsync placed)
/// into place as durably as [`TempFile::commit`]: fsync it, make `dest`'s
/// directories, rename, fsync the directory and each new parent.
pub fn durable_rename(src: &Path, dest: &Path) -> io::Result<()> {
    File::open(src)?.sync_all()?;
    let dir = dest.parent().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no directory"))?;
    let mut created = create_dirs(dir)?;
    created.extend(rename_into(dest, || std::fs::rename(src, dest))?);
    fsync_published(dest, &created)
}

/// After a rename into place: fsync the directory that holds `dest` and
/// the parent of every directory in `created` (newly made for it).
fn fsync_published(dest: &Path, created: &[PathBuf]) -> io::Result<()> {
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
        let renamed = rename_into(dest, || {
            nix::fcntl::renameat2(None, &self.path, None, dest, nix::fcntl::RenameFlags::RENAME_NOREPLACE)
                .map_err(io::Error::from)
        });
        let remade = match renamed {
            Ok(remade) => remade,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(e),
        };
        self.committed = true;
        fsync_published(dest, &[created, &remade].concat())?;
        Ok(true)
    }
}

impl TempFile {
    /// Rename to `dest` with no fsync at all: for a batch of files whose
    /// data one [`super::syncfs`] already made durable, and whose names the
    /// next one will. Nothing may depend on `dest` before that second sync.
    pub fn rename_unsynced(mut self, dest: &Path) -> io::Result<()> {
        self.file.flush()?;
        rename_into(dest, || std::fs::rename(&self.path, dest))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::tests::scratch;
    use std::io::Write;

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
    fn a_commit_makes_again_the_directories_a_replicator_removed_meanwhile() {
        let d = scratch("tmp-gone");
        let tmp = d.join("tmp");
        let hash_dir = d.join("containers/39/d51/hash");
        for new in [false, true] {
            let created = create_dirs(&hash_dir).expect("dirs");
            let mut t = TempFile::create(&tmp).expect("create");
            t.file().write_all(b"db").expect("write");
            // The replicator's pass finds them empty and removes them.
            std::fs::remove_dir(&hash_dir).expect("rmdir hash");
            std::fs::remove_dir(hash_dir.parent().expect("suffix")).expect("rmdir suffix");
            let dest = hash_dir.join("hash.db");
            if new {
                assert!(t.commit_new(&dest, &created).expect("commit_new"));
            } else {
                t.commit(&dest, &created).expect("commit");
            }
            assert_eq!(std::fs::read(&dest).expect("read"), b"db");
            std::fs::remove_file(&dest).expect("rm");
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}
