//! Group commit of appends: concurrent appends by this process's threads
//! to one file go in together — one lock, one write and one sync per
//! batch — and every member returns only after the sync that holds its
//! record.

use std::io;
use std::path::{Path, PathBuf};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::tests::scratch;
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};

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
}
