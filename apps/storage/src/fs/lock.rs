//! Swift's lock files (`utils.lock_path`): an exclusive `flock` on a named
//! file in a directory, tried without blocking every 10 ms until a timeout,
//! so that aerie and Swift's own daemons sharing a disk exclude each other
//! on the same files (`<part>/.lock` for hashes, `<part>/.lock-replication`
//! for an SSYNC, `<dev>/.lock[-N]` for a device's replication slots).

use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// A held lock; released when dropped.
pub type Lock = Flock<File>;

/// How often a busy lock is tried again.
const POLL: Duration = Duration::from_millis(10);

fn try_lock(path: &Path) -> io::Result<Option<Lock>> {
    let f = OpenOptions::new().create(true).write(true).truncate(false).open(path)?;
    match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(Some(l)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(io::Error::from(e)),
    }
}

/// The message Swift's `LockTimeout` carries: `15 seconds: <path>`.
fn timed_out(timeout: Duration, path: &Path) -> io::Error {
    let secs = timeout.as_secs_f64();
    let shown = if secs.fract() == 0.0 { format!("{}", secs as u64) } else { format!("{secs}") };
    io::Error::new(io::ErrorKind::TimedOut, format!("{shown} seconds: {}", path.display()))
}

/// Lock `<dir>/<name>` (creating the directory), waiting up to `timeout`.
pub fn lock_path(dir: &Path, name: &str, timeout: Duration) -> io::Result<Lock> {
    super::create_dirs(dir)?;
    let path = dir.join(name);
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(l) = try_lock(&path)? {
            return Ok(l);
        }
        if Instant::now() >= deadline {
            return Err(timed_out(timeout, &path));
        }
        std::thread::sleep(POLL);
    }
}

/// Lock any one of `<dir>/<name>`, `<name>-1` … `<name>-(limit-1)` (Swift's
/// `lock_path(…, limit=N)`): at most `limit` holders at once.
pub fn lock_any(dir: &Path, name: &str, limit: usize, timeout: Duration) -> io::Result<Lock> {
    super::create_dirs(dir)?;
    let names: Vec<String> =
        (0..limit.max(1)).map(|i| if i == 0 { name.to_string() } else { format!("{name}-{i}") }).collect();
    let deadline = Instant::now() + timeout;
    loop {
        for n in &names {
            if let Some(l) = try_lock(&dir.join(n))? {
                return Ok(l);
            }
        }
        if Instant::now() >= deadline {
            return Err(timed_out(timeout, &dir.join(name)));
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_times_out_others_and_limits_count_slots() {
        let d = crate::fs::tests::scratch("locks");
        let held = lock_path(&d, ".lock", Duration::from_secs(1)).expect("lock");
        let e = lock_path(&d, ".lock", Duration::from_millis(50)).expect_err("busy");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(e.to_string().starts_with("0.05 seconds: "), "{e}");
        let second = lock_any(&d, ".lock", 2, Duration::from_millis(50)).expect("the second slot");
        assert!(lock_any(&d, ".lock", 2, Duration::from_millis(50)).is_err(), "both slots held");
        drop((held, second));
        assert!(lock_path(&d, ".lock", Duration::from_millis(50)).is_ok());
        let _ = std::fs::remove_dir_all(&d);
    }
}
