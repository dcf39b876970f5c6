//! What replication found a database to be, kept while its file stays as
//! it was: a pass over databases already in sync then reads none of them
//! (SQLite's open and schema parse are most of such a pass's cost).
//!
//! A database is "as it was" when `stat` gives the same device, inode,
//! size, modification and change times, and its `.pending` is empty. That
//! is only a proof when the stamp was taken while no write could be under
//! way (the caller holds SQLite's read lock: every write to the file waits
//! for it) and after the clock the kernel stamps files with had moved past
//! the file's last change: a write in the same clock tick would leave the
//! times as they were. A stamp taken too soon after a change is not kept;
//! the next look reads the database again.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A database file as `stat` saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// `<db>.pending`.
fn pending_of(db_file: &Path) -> PathBuf {
    db_file.with_extension("db.pending")
}

/// The clock file times come from (the kernel's coarse real-time clock),
/// as (seconds, nanoseconds).
fn file_clock() -> Option<(i64, i64)> {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME_COARSE).ok()?;
    Some((t.tv_sec(), t.tv_nsec()))
}

/// `t` plus the granularity of the file system that stamped it: a time
/// without nanoseconds may have been cut to whole seconds (or FAT's two).
fn latest_meant(t: (i64, i64)) -> (i64, i64) {
    if t.1 == 0 {
        (t.0 + 2, 0)
    } else {
        t
    }
}

impl Stamp {
    /// The file's stamp now; `None` when there is no file or its
    /// `.pending` holds rows still to merge (the database is more than its
    /// file then).
    pub fn of(db_file: &Path) -> Option<Stamp> {
        let m = std::fs::metadata(db_file).ok()?;
        if std::fs::metadata(pending_of(db_file)).is_ok_and(|p| p.len() > 0) {
            return None;
        }
        Some(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }

    /// The stamp to keep what is being read under; the caller holds the
    /// database's read lock. `None` when a later change could leave the
    /// same stamp (the file changed in the current tick of the file clock).
    pub fn settled(db_file: &Path) -> Option<Stamp> {
        let now = file_clock()?;
        let s = Stamp::of(db_file)?;
        s.settled_at(now).then_some(s)
    }

    /// Whether a change after the file clock read `now` must give another
    /// stamp: both times are before it, and not within a whole-second
    /// file system's granularity of it.
    fn settled_at(&self, now: (i64, i64)) -> bool {
        latest_meant(self.mtime) < now && latest_meant(self.ctime) < now
    }
}

/// Values kept per database path while the file keeps its stamp, at most
/// `cap` of them (when full, all are let go and the next pass fills it
/// again).
pub struct Known<T> {
    entries: Mutex<HashMap<PathBuf, (Stamp, Arc<T>)>>,
    cap: usize,
}

impl<T> Known<T> {
    /// An empty store of at most `cap` databases.
    pub fn new(cap: usize) -> Known<T> {
        Known { entries: Mutex::new(HashMap::new()), cap }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, (Stamp, Arc<T>)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What was kept for `db_file`, if the file is still as it was then.
    pub fn get(&self, db_file: &Path) -> Option<Arc<T>> {
        let now = Stamp::of(db_file)?;
        let entries = self.entries();
        let (stamp, value) = entries.get(db_file)?;
        (*stamp == now).then(|| value.clone())
    }

    /// Keep `value` for `db_file` while it has `stamp`.
    pub fn keep(&self, db_file: &Path, stamp: Stamp, value: T) {
        let mut entries = self.entries();
        if entries.len() >= self.cap && !entries.contains_key(db_file) {
            entries.clear();
        }
        entries.insert(db_file.to_path_buf(), (stamp, Arc::new(value)));
    }

    /// Let go of what was kept for `db_file`.
    pub fn forget(&self, db_file: &Path) {
        self.entries().remove(db_file);
    }

    /// How many databases are kept.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::tests::scratch;
    use std::io::Write;

    fn settled_soon(path: &Path) -> Stamp {
        for _ in 0..300 {
            if let Some(s) = Stamp::settled(path) {
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("{} never settled", path.display());
    }

    fn rewrite(path: &Path, bytes: &[u8]) {
        let mut f = std::fs::OpenOptions::new().write(true).open(path).expect("test file");
        f.write_all(bytes).expect("test file");
    }

    #[test]
    fn a_kept_value_lasts_while_the_file_and_its_pending_are_unchanged() {
        let dir = scratch("known");
        let db = dir.join("h.db");
        std::fs::write(&db, b"one").expect("test file");
        let known = Known::new(10);
        assert!(known.get(&db).is_none());
        known.keep(&db, settled_soon(&db), 7);
        assert_eq!(known.get(&db).as_deref(), Some(&7));

        // Rows waiting in .pending: the file is not the database.
        std::fs::write(pending_of(&db), b":x").expect("test file");
        assert!(known.get(&db).is_none(), "pending rows");
        std::fs::write(pending_of(&db), b"").expect("test file");
        assert_eq!(known.get(&db).as_deref(), Some(&7), "an emptied pending");

        // Written in place, same size.
        rewrite(&db, b"two");
        assert!(known.get(&db).is_none(), "rewritten");

        // Replaced by another file.
        known.keep(&db, settled_soon(&db), 8);
        std::fs::write(dir.join("new"), b"two").expect("test file");
        std::fs::rename(dir.join("new"), &db).expect("test file");
        assert!(known.get(&db).is_none(), "replaced");

        known.keep(&db, settled_soon(&db), 9);
        std::fs::remove_file(&db).expect("test file");
        assert!(known.get(&db).is_none(), "gone");
        assert!(Stamp::settled(&db).is_none());
    }

    #[test]
    fn a_settled_stamp_always_changes_with_the_next_write() {
        // The property the store rests on, on this kernel and file system:
        // a write right after a stamp was given (same size, same clock
        // tick as near as it can be) never leaves the stamp as it was.
        let dir = scratch("known-tick");
        let db = dir.join("h.db");
        std::fs::write(&db, b"0000").expect("test file");
        let mut given = 0;
        for i in 0..400u64 {
            rewrite(&db, format!("{:04}", i % 10000).as_bytes());
            // From at once to past a tick after the change.
            std::thread::sleep(std::time::Duration::from_micros((i % 25) * 500));
            if let Some(s) = Stamp::settled(&db) {
                given += 1;
                rewrite(&db, b"next");
                assert_ne!(Stamp::of(&db), Some(s), "write {i} left a settled stamp as it was");
            }
        }
        assert!(given > 0, "a stamp is given once the clock moved past the change");
    }

    #[test]
    fn a_change_in_the_clock_tick_of_the_stamp_is_not_settled() {
        let s = |ctime: (i64, i64)| Stamp { dev: 1, ino: 2, size: 3, mtime: (100, 5), ctime };
        let now = (200, 500);
        assert!(s((200, 499)).settled_at(now));
        assert!(!s((200, 500)).settled_at(now), "the tick of now");
        assert!(!s((200, 501)).settled_at(now), "a fine-grained time past the coarse clock");
        // Whole seconds: perhaps cut from any time in the two after.
        assert!(!s((199, 0)).settled_at(now));
        assert!(s((198, 0)).settled_at(now));
        assert!(!Stamp { mtime: (200, 500), ..s((1, 1)) }.settled_at(now), "mtime too");
    }

    #[test]
    fn a_full_store_starts_again() {
        let dir = scratch("known-cap");
        let known = Known::new(2);
        let paths: Vec<PathBuf> = (0..3).map(|i| dir.join(format!("{i}.db"))).collect();
        for p in &paths {
            std::fs::write(p, b"x").expect("test file");
        }
        for (i, p) in paths.iter().enumerate() {
            known.keep(p, settled_soon(p), i);
        }
        assert_eq!(known.len(), 1, "cleared when the third came");
        assert_eq!(known.get(&paths[2]).as_deref(), Some(&2));
        known.forget(&paths[2]);
        assert!(known.is_empty());
    }
}
