//! Writes made durable together. An SSYNC session receives hundreds of
//! objects in a row; made durable one by one (fsync the file, rename,
//! fsync the directory and each new parent) a rebuilt disk spends most of
//! its time waiting for three or four journal commits per object. Staged,
//! the same files are written in `tmp/` with their metadata, then one
//! `syncfs` makes all their data durable, then they are renamed into place
//! (their suffixes invalidated first, once each), then a second `syncfs`
//! makes the names durable. At no point can a crash leave a visible file
//! whose data is not on disk: a name appears only after its data was
//! synced, as with the one-by-one sequence. While one batch is published
//! (by a thread of its own) the session receives the next. The session
//! says `:UPDATES: END` only after the last flush, so a sender never
//! believes in an object that is not durable here.

use crate::diskfile::schedule_cleanup;
use aerie_storage::fs::{create_dirs, syncfs, TempFile};
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Files staged before a flush is forced (each holds a descriptor).
pub const MAX_FILES: usize = 256;
/// Bytes staged before a flush is forced (dirty pages waiting).
pub const MAX_BYTES: u64 = 64 << 20;

struct StagedFile {
    tmp: TempFile,
    dir: PathBuf,
    dest: PathBuf,
    part_dir: PathBuf,
    suffix: String,
}

#[derive(Default)]
struct Staged {
    files: Vec<StagedFile>,
    hashes: HashSet<String>,
    bytes: u64,
}

/// The writes of one device waiting for a common flush.
pub struct Staging {
    device_dir: PathBuf,
    staged: Mutex<Staged>,
    /// A batch being published behind the session's back (at most one).
    behind: Mutex<Option<Behind>>,
}

/// A batch published by a thread of its own while the next one is staged.
struct Behind {
    hashes: HashSet<String>,
    count: usize,
    thread: std::thread::JoinHandle<Flushed>,
}

/// What a flush did.
#[derive(Debug, Default, PartialEq)]
pub struct Flushed {
    /// Files now durable in place.
    pub published: usize,
    /// Files that could not be published (logged).
    pub failed: usize,
}

impl Flushed {
    fn add(self, other: Flushed) -> Flushed {
        Flushed { published: self.published + other.published, failed: self.failed + other.failed }
    }
}

impl Staging {
    /// Staging for writes on the device at `device_dir`.
    pub fn new(device_dir: PathBuf) -> Staging {
        Staging { device_dir, staged: Mutex::new(Staged::default()), behind: Mutex::new(None) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Staged> {
        self.staged.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keep a written temporary file (data and metadata set) to be
    /// published as `dir/file_name` at the next flush.
    pub(crate) fn add(&self, tmp: TempFile, size: u64, dir: PathBuf, file_name: &str, part_dir: PathBuf, hash: &str) {
        let suffix = crate::hashes::suffix_of(hash);
        let mut s = self.lock();
        s.bytes += size;
        s.hashes.insert(hash.to_string());
        let dest = dir.join(file_name);
        s.files.push(StagedFile { tmp, dir, dest, part_dir, suffix: suffix.to_string() });
    }

    /// Whether a write of this object hash is waiting (a later update of
    /// the same object must see it, so the caller flushes first).
    pub fn holds(&self, hash: &str) -> bool {
        self.lock().hashes.contains(hash)
            || self.behind.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|b| b.hashes.contains(hash))
    }

    /// Whether enough is waiting that it should be flushed now.
    pub fn full(&self) -> bool {
        let s = self.lock();
        s.files.len() >= MAX_FILES || s.bytes >= MAX_BYTES
    }

    fn take(&self) -> (Vec<StagedFile>, HashSet<String>) {
        let mut s = self.lock();
        s.bytes = 0;
        (std::mem::take(&mut s.files), std::mem::take(&mut s.hashes))
    }

    /// Wait for the batch being published behind, if any.
    fn join_behind(&self) -> Flushed {
        let Some(behind) = self.behind.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Flushed::default();
        };
        behind.thread.join().unwrap_or_else(|_| {
            log::error!("{}: the thread publishing {} received files failed", self.device_dir.display(), behind.count);
            Flushed { published: 0, failed: behind.count }
        })
    }

    /// Make every staged file durable and visible, and wait for the batch
    /// published behind: all the session's writes are durable after it.
    pub fn flush(&self) -> Flushed {
        let earlier = self.join_behind();
        let (files, _) = self.take();
        earlier.add(publish(&self.device_dir, files))
    }

    /// Publish what is staged on a thread of its own, so the session goes
    /// on receiving while the disk syncs; the batch before it (if any) is
    /// waited for first, and what it did is returned.
    pub fn flush_behind(&self) -> Flushed {
        let earlier = self.join_behind();
        let (files, hashes) = self.take();
        if files.is_empty() {
            return earlier;
        }
        let count = files.len();
        let device_dir = self.device_dir.clone();
        // The files go to the thread once it exists; if it cannot be made,
        // they are published here instead.
        let (tx, rx) = std::sync::mpsc::channel::<Vec<StagedFile>>();
        let spawned = std::thread::Builder::new()
            .name("ssync-flush".into())
            .spawn(move || rx.recv().map_or_else(|_| Flushed::default(), |files| publish(&device_dir, files)));
        let files = match spawned {
            Ok(thread) => match tx.send(files) {
                Ok(()) => {
                    *self.behind.lock().unwrap_or_else(|e| e.into_inner()) = Some(Behind { hashes, count, thread });
                    return earlier;
                }
                Err(std::sync::mpsc::SendError(files)) => files,
            },
            Err(e) => {
                log::warn!("could not start a flush thread ({e}): publishing in line");
                files
            }
        };
        earlier.add(publish(&self.device_dir, files))
    }
}

/// Publish a batch: one `syncfs` for the data, the suffixes invalidated,
/// the renames, one `syncfs` for the names.
fn publish(device_dir: &Path, files: Vec<StagedFile>) -> Flushed {
    if files.is_empty() {
        return Flushed::default();
    }
    let total = files.len();
    // Data and metadata of every temporary file, in one commit.
    if let Err(e) = syncfs(device_dir) {
        log::error!("{}: could not sync {total} received files: {e}", device_dir.display());
        return Flushed { published: 0, failed: total };
    }
    // Suffixes are marked for rehashing before anything appears in them.
    let mut bad_suffixes: HashSet<(PathBuf, String)> = HashSet::new();
    let suffixes: BTreeSet<(&Path, &str)> = files.iter().map(|f| (f.part_dir.as_path(), f.suffix.as_str())).collect();
    for (part_dir, suffix) in suffixes {
        if let Err(e) = crate::hashes::invalidate(part_dir, suffix) {
            log::error!("{}: could not invalidate suffix {suffix}: {e}", part_dir.display());
            bad_suffixes.insert((part_dir.to_path_buf(), suffix.to_string()));
        }
    }
    let mut failed = 0;
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    for f in files {
        if bad_suffixes.contains(&(f.part_dir.clone(), f.suffix.clone())) {
            failed += 1;
            continue;
        }
        match create_dirs(&f.dir).and_then(|_| f.tmp.rename_unsynced(&f.dest)) {
            Ok(()) => {
                dirs.insert(f.dir);
            }
            Err(e) => {
                log::error!("could not publish {}: {e}", f.dest.display());
                failed += 1;
            }
        }
    }
    // The names (and the directories made for them).
    if let Err(e) = syncfs(device_dir) {
        log::error!("{}: could not sync {} published names: {e}", device_dir.display(), total - failed);
        return Flushed { published: 0, failed: total };
    }
    for dir in dirs {
        schedule_cleanup(dir, crate::ondisk::Layout::Replicated);
    }
    Flushed { published: total - failed, failed }
}

impl Drop for Staging {
    /// Whatever was staged and not flushed is published rather than lost:
    /// each of those updates was received whole.
    fn drop(&mut self) {
        let f = self.flush();
        if f.failed > 0 {
            log::error!("{}: {} received files were not published", self.device_dir.display(), f.failed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diskfile::DiskFile;
    use crate::meta::Meta;
    use std::io::Write;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("aerie-staging-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("dir");
        d
    }

    fn object(dev: &Path, hash: &str) -> DiskFile {
        DiskFile::for_hash(dev.to_path_buf(), 0, "7".into(), hash.to_string())
    }

    fn write(df: &DiskFile, ts: &str, body: &[u8], staging: Option<&Staging>) {
        let mut tmp = TempFile::create(&df.tmpdir()).expect("tmp");
        tmp.file().write_all(body).expect("write");
        let mut meta = Meta::default();
        meta.set("X-Timestamp", ts.to_string());
        meta.set("Content-Length", body.len().to_string());
        df.publish(tmp, &format!("{ts}.data"), &meta, staging).expect("publish");
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|r| r.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn staged_writes_appear_only_at_the_flush_and_each_suffix_is_invalidated_once() {
        let dev = scratch("flush");
        let staging = Staging::new(dev.clone());
        let hashes = [
            "0000000000000000000000000000a123",
            "1111111111111111111111111111a123",
            "22222222222222222222222222222b45",
        ];
        for (i, h) in hashes.iter().enumerate() {
            write(&object(&dev, h), &format!("170000000{i}.00000"), b"body", Some(&staging));
        }
        assert!(staging.holds(hashes[1]) && !staging.holds("33333333333333333333333333333b45"));
        for h in &hashes {
            assert!(names(&object(&dev, h).datadir()).is_empty(), "nothing visible before the flush");
        }
        assert_eq!(names(&dev.join("tmp")).len(), 3, "the staged files wait in tmp/");
        assert_eq!(staging.flush(), Flushed { published: 3, failed: 0 });
        for (i, h) in hashes.iter().enumerate() {
            let dir = object(&dev, h).datadir();
            assert_eq!(names(&dir), vec![format!("170000000{i}.00000.data")]);
            assert_eq!(std::fs::read(dir.join(format!("170000000{i}.00000.data"))).expect("read"), b"body");
            let m = aerie_storage::fs::read_metadata(&dir.join(format!("170000000{i}.00000.data"))).expect("meta");
            assert!(m.iter().any(|(k, _)| k.as_slice() == b"X-Timestamp"), "metadata was set before the rename");
        }
        assert!(names(&dev.join("tmp")).is_empty());
        let part = crate::hashes::partition_dir(&dev, 0, "7");
        let inv = std::fs::read_to_string(part.join("hashes.invalid")).expect("hashes.invalid");
        assert_eq!(inv, "123\nb45\n", "each suffix once, before its files appeared");
        assert!(!staging.holds(hashes[0]), "a flush forgets what it published");
        assert_eq!(staging.flush(), Flushed::default(), "an empty flush does nothing");
        let _ = std::fs::remove_dir_all(&dev);
    }

    #[test]
    fn limits_ask_for_a_flush_and_dropping_publishes_what_is_left() {
        let dev = scratch("limits");
        let staging = Staging::new(dev.clone());
        for i in 0..MAX_FILES {
            assert!(!staging.full());
            write(&object(&dev, &format!("{i:029}abc")), "1700000000.00000", b"x", Some(&staging));
        }
        assert!(staging.full(), "{MAX_FILES} files waiting is enough");
        staging.flush();
        let big = vec![7u8; 1 << 20];
        let mut n = 0;
        while !staging.full() {
            write(&object(&dev, &format!("{n:029}def")), "1700000000.00000", &big, Some(&staging));
            n += 1;
        }
        assert_eq!(n as u64, MAX_BYTES >> 20, "{} MiB waiting is enough", MAX_BYTES >> 20);
        write(&object(&dev, "000000000000000000000000000000ff"), "1700000001.00000", b"last", Some(&staging));
        drop(staging);
        let dir = object(&dev, "000000000000000000000000000000ff").datadir();
        assert_eq!(names(&dir), vec!["1700000001.00000.data".to_string()], "dropped staging still publishes");
        let _ = std::fs::remove_dir_all(&dev);
    }

    #[test]
    fn a_batch_published_behind_is_counted_and_waited_for_by_the_next_flush() {
        let dev = scratch("behind");
        let staging = Staging::new(dev.clone());
        let first = object(&dev, "0000000000000000000000000000a123");
        write(&first, "1700000000.00000", b"one", Some(&staging));
        assert_eq!(staging.flush_behind(), Flushed::default(), "nothing was behind before");
        assert!(staging.holds(&first.hash), "an object being published is still held");
        let second = object(&dev, "0000000000000000000000000000b456");
        write(&second, "1700000001.00000", b"two", Some(&staging));
        assert_eq!(staging.flush(), Flushed { published: 2, failed: 0 }, "the batch behind and this one");
        assert!(!staging.holds(&first.hash));
        assert_eq!(names(&first.datadir()), vec!["1700000000.00000.data".to_string()]);
        assert_eq!(names(&second.datadir()), vec!["1700000001.00000.data".to_string()]);
        let _ = std::fs::remove_dir_all(&dev);
    }

    #[test]
    fn a_file_that_cannot_be_placed_fails_alone() {
        let dev = scratch("fail");
        let staging = Staging::new(dev.clone());
        let good = object(&dev, "0000000000000000000000000000a123");
        let bad = object(&dev, "0000000000000000000000000000b456");
        write(&good, "1700000000.00000", b"ok", Some(&staging));
        write(&bad, "1700000000.00000", b"no", Some(&staging));
        // Where the hash directory should be, a file is.
        std::fs::create_dir_all(bad.datadir().parent().expect("suffix")).expect("suffix dir");
        std::fs::write(bad.datadir(), b"in the way").expect("obstacle");
        assert_eq!(staging.flush(), Flushed { published: 1, failed: 1 });
        assert_eq!(names(&good.datadir()), vec!["1700000000.00000.data".to_string()]);
        assert!(names(&dev.join("tmp")).is_empty(), "the failed file's temporary is removed");
        let _ = std::fs::remove_dir_all(&dev);
    }
}
