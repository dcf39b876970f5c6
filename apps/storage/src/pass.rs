//! What every replication pass needs, objects and databases alike: which
//! ring devices are this node's, the devices' threads running their jobs
//! ([`run_per_device`]) and where their figures go as they run, a shuffle
//! of the work (so nodes do not all start at the same partition), the
//! node-wide limit on jobs in flight, a token bucket for a rate limit, and
//! the sweep of stale temporary files.

use crate::ring::Device;
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Whether a ring device is this node's: its replication address is one
/// of `ips` and its port one of `ports` (the service's listeners).
pub fn is_local(ips: &[IpAddr], ports: &[u16], d: &Device) -> bool {
    d.replication_ip.parse::<IpAddr>().is_ok_and(|ip| ips.contains(&ip)) && ports.contains(&d.replication_port)
}

/// A replicator's figures for a device, as [`run_per_device`] keeps them.
pub trait Figures: Default + Send {
    /// The figures a device starts its pass with: `jobs` planned.
    fn planned(jobs: u64) -> Self;
    /// Add a job's figures.
    fn add(&mut self, other: &Self);
}

/// Run each device's jobs on threads of its own — `per_device` of them,
/// within `slots` for the node — so a slow device holds back only its own
/// work; stop taking jobs once `progress` says so. `device` makes what a
/// device's threads share (its pace), `thread` what each thread keeps (its
/// connections); `work` does one job into fresh figures. Threads are named
/// `<name>:<device>[:<i>]`. The sum of every device's figures.
#[allow(clippy::too_many_arguments)]
pub fn run_per_device<J, S, D, T>(
    name: &str,
    by_device: BTreeMap<String, Vec<J>>,
    slots: &Slots,
    per_device: usize,
    progress: &dyn Progress<S>,
    device: &(dyn Fn() -> D + Sync),
    thread: &(dyn Fn() -> T + Sync),
    work: &(dyn Fn(&D, &mut T, J, &mut S) + Sync),
) -> S
where
    J: Send,
    S: Figures,
    D: Sync,
{
    let totals = Mutex::new(S::default());
    std::thread::scope(|scope| {
        for (dev, jobs) in by_device {
            let totals = &totals;
            let spawned = std::thread::Builder::new().name(format!("{name}:{dev}")).spawn_scoped(scope, move || {
                let started_at = SystemTime::now();
                let dev_started = Instant::now();
                let shared = device();
                let stats = Mutex::new(S::planned(jobs.len() as u64));
                let queue = Mutex::new(VecDeque::from(jobs));
                let stop = AtomicBool::new(false);
                progress.device(&dev, &lock(&stats), started_at);
                std::thread::scope(|inner| {
                    for i in 0..per_device.max(1) {
                        let (queue, stats, stop, dev, shared) = (&queue, &stats, &stop, &dev, &shared);
                        let spawned = std::thread::Builder::new().name(format!("{name}:{dev}:{i}")).spawn_scoped(
                            inner,
                            move || {
                                let mut mine = thread();
                                loop {
                                    if stop.load(Ordering::Relaxed) || progress.stopping() {
                                        stop.store(true, Ordering::Relaxed);
                                        return;
                                    }
                                    let Some(job) = lock(queue).pop_front() else { return };
                                    let _slot = slots.take();
                                    let mut s = S::default();
                                    work(shared, &mut mine, job, &mut s);
                                    let mut all = lock(stats);
                                    all.add(&s);
                                    progress.device(dev, &all, started_at);
                                    progress.beat();
                                }
                            },
                        );
                        if let Err(e) = spawned {
                            log::error!("could not start a replication thread for {dev}: {e}");
                        }
                    }
                });
                let s = stats.into_inner().unwrap_or_else(|e| e.into_inner());
                progress.device_done(&dev, &s, dev_started.elapsed());
                lock(totals).add(&s);
            });
            if let Err(e) = spawned {
                log::error!("could not start the replication thread of a device: {e}");
            }
        }
    });
    totals.into_inner().unwrap_or_else(|e| e.into_inner())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

    #[derive(Default, Debug, PartialEq)]
    struct Count {
        planned: u64,
        done: u64,
    }

    impl Figures for Count {
        fn planned(jobs: u64) -> Count {
            Count { planned: jobs, done: 0 }
        }
        fn add(&mut self, o: &Count) {
            self.planned += o.planned;
            self.done += o.done;
        }
    }

    struct Board {
        stop_after: u64,
        seen: Mutex<Vec<(String, u64)>>,
    }

    impl Progress<Count> for Board {
        fn device(&self, _: &str, _: &Count, _: SystemTime) {}
        fn device_done(&self, device: &str, s: &Count, _: Duration) {
            self.seen.lock().expect("seen").push((device.to_string(), s.done));
        }
        fn beat(&self) {}
        fn stopping(&self) -> bool {
            self.seen.lock().expect("seen").len() as u64 >= self.stop_after
        }
    }

    #[test]
    fn every_devices_jobs_run_on_its_own_threads_and_the_figures_add_up() {
        let jobs: BTreeMap<String, Vec<u64>> =
            [("sda".to_string(), (0..50).collect()), ("sdb".to_string(), (0..7).collect())].into_iter().collect();
        let board = Board { stop_after: u64::MAX, seen: Mutex::new(Vec::new()) };
        let ran = Mutex::new(Vec::new());
        let work = |_: &(), calls: &mut u64, job: u64, s: &mut Count| {
            *calls += 1;
            let name = std::thread::current().name().unwrap_or("").to_string();
            ran.lock().expect("ran").push((name, job));
            s.done = 1;
        };
        let total = run_per_device("t", jobs, &Slots::new(2), 3, &board, &|| (), &|| 0u64, &work);
        assert_eq!(total, Count { planned: 57, done: 57 });
        let ran = ran.into_inner().expect("ran");
        assert_eq!(ran.len(), 57);
        assert!(ran.iter().all(|(n, _)| n.starts_with("t:sda:") || n.starts_with("t:sdb:")), "{ran:?}");
        let mut seen = board.seen.into_inner().expect("seen");
        seen.sort();
        assert_eq!(seen, [("sda".to_string(), 50), ("sdb".to_string(), 7)]);
    }

    #[test]
    fn a_stopping_pass_takes_no_more_jobs() {
        let jobs: BTreeMap<String, Vec<u64>> = [("sda".to_string(), (0..1000).collect())].into_iter().collect();
        let board = Board { stop_after: 0, seen: Mutex::new(Vec::new()) };
        let work = |_: &(), _: &mut (), _: u64, s: &mut Count| s.done = 1;
        let total = run_per_device("t", jobs, &Slots::new(1), 2, &board, &|| (), &|| (), &work);
        assert_eq!(total, Count { planned: 1000, done: 0 });
    }

    #[test]
    fn a_ring_device_is_local_by_replication_address_and_port() {
        let d = |ip: &str, port: u16| Device {
            id: 0,
            region: 1,
            zone: 1,
            ip: "10.9.9.9".into(),
            port: 1,
            replication_ip: ip.into(),
            replication_port: port,
            device: "sda".into(),
            weight: 1.0,
            meta: String::new(),
        };
        let ips = [IpAddr::from([127, 0, 0, 1])];
        assert!(is_local(&ips, &[6201], &d("127.0.0.1", 6201)));
        assert!(!is_local(&ips, &[6201], &d("127.0.0.1", 6200)), "another service's port");
        assert!(!is_local(&ips, &[6201], &d("10.0.0.2", 6201)), "another host");
        assert!(!is_local(&ips, &[6201], &d("not-an-ip", 6201)));
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
