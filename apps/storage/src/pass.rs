//! What every replication pass needs, objects and databases alike: where
//! its figures go as it runs, a shuffle of the work (so nodes do not all
//! start at the same partition), the node-wide limit on jobs in flight, a
//! token bucket for a rate limit, and the sweep of stale temporary files.

use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Where a running pass's figures go (the scoreboard, for `/status` and
/// `/metrics`), and whether to stop; called from the device threads. `S`
/// is the replicator's figures for a device.
pub trait Progress<S>: Sync {
    /// A device's figures so far in this pass.
    fn device(&self, device: &str, stats: &S, started: SystemTime);
    /// A device's pass ended.
    fn device_done(&self, device: &str, stats: &S, took: Duration);
    /// Still alive (the master's heartbeat).
    fn beat(&self);
    /// Whether the pass must end now (the process is stopping).
    fn stopping(&self) -> bool;
}

/// A tiny generator for shuffling (quality does not matter; no crate).
pub struct Shuffle(u64);

impl Shuffle {
    /// Seeded from the clock and the process id.
    pub fn new() -> Shuffle {
        let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        Shuffle(seed ^ (u64::from(std::process::id()) << 32) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Put `v` in a random order.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

impl Default for Shuffle {
    fn default() -> Self {
        Shuffle::new()
    }
}

/// The node-wide limit on jobs in flight: each job holds a slot.
pub struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Slots {
    /// `n` slots (at least one).
    pub fn new(n: usize) -> Slots {
        Slots { free: Mutex::new(n.max(1)), cv: Condvar::new() }
    }

    /// Wait for a free slot; it is given back when the guard drops.
    pub fn take(&self) -> SlotGuard<'_> {
        let mut n = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *n == 0 {
            n = self.cv.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n -= 1;
        SlotGuard(self)
    }
}

/// A slot held.
pub struct SlotGuard<'a>(&'a Slots);

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.cv.notify_one();
    }
}

/// A token bucket: `rate` per second, holding at most one second's worth
/// (a rate of 0 is no limit).
#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket of `rate` per second.
    pub fn new(rate: f64) -> Bucket {
        Bucket { rate, tokens: rate, at: Instant::now() }
    }

    /// Take `n`; how long to wait first.
    pub fn take(&mut self, n: f64) -> Duration {
        if self.rate <= 0.0 {
            return Duration::ZERO;
        }
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.rate);
        self.at = now;
        self.tokens -= n;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// Remove files in a temporary directory older than `age` (Swift's
/// `unlink_older_than`): what crashed writes and rsyncs left.
pub fn unlink_older_than(dir: &Path, age: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let cutoff = SystemTime::now().checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH);
    for e in entries.flatten() {
        let Ok(m) = e.metadata() else { continue };
        if m.is_file() && m.modified().is_ok_and(|t| t < cutoff) {
            if let Err(err) = std::fs::remove_file(e.path()) {
                log::warn!("could not remove stale {}: {err}", e.path().display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_lets_a_second_through_then_spaces_the_rest() {
        let mut b = Bucket::new(10.0);
        for _ in 0..10 {
            assert_eq!(b.take(1.0), Duration::ZERO);
        }
        let w = b.take(1.0);
        assert!(w > Duration::from_millis(50) && w <= Duration::from_millis(100), "{w:?}");
        let mut free = Bucket::new(0.0);
        assert_eq!(free.take(1e9), Duration::ZERO, "0 is no limit");
    }

    #[test]
    fn a_shuffle_keeps_every_element() {
        let mut v: Vec<u32> = (0..100).collect();
        Shuffle::new().shuffle(&mut v);
        let mut sorted = v.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<u32>>());
    }

    #[test]
    fn slots_bound_what_runs_at_once() {
        let slots = Slots::new(2);
        let a = slots.take();
        let _b = slots.take();
        assert_eq!(*slots.free.lock().expect("slots"), 0);
        drop(a);
        assert_eq!(*slots.free.lock().expect("slots"), 1);
    }
}
