//! The scoreboard: one anonymous shared mapping, created by the master
//! before the first fork, with a header and a slot per worker process.
//!
//! Workers write their own slot (state, heartbeat, counters, queue stats);
//! the master and the admin endpoints read every slot. The mapping is an
//! array of `AtomicU64` words (see `sys::shm`), so concurrent access from
//! several processes is data-race free, and a reader never trusts what it
//! reads for memory safety: a worker can die mid-update, so names are
//! bounded and decoded lossily, and values are only reported.
//!
//! Slot life: the master claims a free slot before forking (generation,
//! `Starting`); the worker records its pid and marks it `Ready` when its loop
//! runs and `Draining` when it stops accepting; the master frees it when it
//! reaps the process.

use crate::sys::shm;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The largest `server.workers`.
pub const MAX_WORKERS: usize = 128;
/// Slots: a reload overlaps two generations, plus background processes.
pub const SLOTS: usize = 2 * MAX_WORKERS + 8;
/// Queues reported per worker.
pub const QUEUES: usize = 32;
const NAME_WORDS: usize = 8;
/// Longest queue name stored (bytes).
pub const NAME_MAX: usize = NAME_WORDS * 8;

const HEADER_WORDS: usize = 16;
// Header fields.
const H_MASTER_PID: usize = 0;
const H_GENERATION: usize = 1;
const H_TARGET: usize = 2;
const H_RELOADS: usize = 3;
const H_FAILED_RELOADS: usize = 4;
const H_CRASHES: usize = 5;
const H_TIMEOUTS: usize = 6;
const H_STARTED: usize = 7;
const H_DEVICE_COUNT: usize = 8;

// Queue fields.
const Q_NAME: usize = 0;
const Q_NAME_LEN: usize = NAME_WORDS;
const Q_DEPTH: usize = NAME_WORDS + 1;
const Q_ACTIVE: usize = NAME_WORDS + 2;
const Q_THREADS: usize = NAME_WORDS + 3;
const Q_CAPACITY: usize = NAME_WORDS + 4;
const Q_SHED_FULL: usize = NAME_WORDS + 5;
const Q_SHED_AGE: usize = NAME_WORDS + 6;
const Q_COMPLETED: usize = NAME_WORDS + 7;
const Q_RECENT_IO: usize = NAME_WORDS + 8;
const Q_WAIT_HIST: usize = NAME_WORDS + 9;
const Q_IO_HIST: usize = Q_WAIT_HIST + HIST_WORDS;
const QUEUE_WORDS: usize = Q_IO_HIST + HIST_WORDS;

/// Upper bounds (milliseconds) of the histogram buckets; one more bucket
/// holds everything larger.
pub const HIST_BOUNDS_MS: [u64; 12] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];
const HIST_WORDS: usize = HIST_BOUNDS_MS.len() + 2;

/// A latency histogram: per-bucket counts (not cumulative) and the sum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Counts per bucket of [`HIST_BOUNDS_MS`], then the overflow bucket.
    pub buckets: [u64; HIST_BOUNDS_MS.len() + 1],
    /// Sum of the observations, microseconds.
    pub sum_us: u64,
}

impl Histogram {
    /// Observations.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Add another histogram's counts.
    pub fn add(&mut self, o: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&o.buckets) {
            *a += b;
        }
        self.sum_us += o.sum_us;
    }
}

/// Devices the master reports on (slow flags).
pub const DEVICES: usize = 64;
const D_NAME: usize = 0;
const D_NAME_LEN: usize = NAME_WORDS;
const D_SLOW: usize = NAME_WORDS + 1;
const D_RECENT_IO: usize = NAME_WORDS + 2;
const D_SINCE: usize = NAME_WORDS + 3;
const DEVICE_WORDS: usize = NAME_WORDS + 4;

// Slot fields.
const S_PID: usize = 0;
const S_STATE: usize = 1;
const S_RECYCLE: usize = 2;
const S_GENERATION: usize = 3;
const S_INDEX: usize = 4;
const S_STARTED: usize = 5;
const S_HEARTBEAT: usize = 6;
const S_REQUESTS: usize = 7;
const S_BYTES_IN: usize = 8;
const S_BYTES_OUT: usize = 9;
const S_CONNECTIONS: usize = 10;
const S_ACCEPTED: usize = 11;
const S_QUEUE_COUNT: usize = 12;
const S_KIND: usize = 13;
const SLOT_WORDS: usize = 16;
const SLOT_QUEUE_WORDS: usize = QUEUES * QUEUE_WORDS;

// Layout: header, then every slot's own words side by side, then every
// slot's queue cells. Scanning the slots (each worker does once a second)
// then touches a few pages, not the whole mapping: RSS counts every shared
// page a process has touched.
const CORES: usize = HEADER_WORDS;
const DEVICE_REGION: usize = CORES + SLOTS * SLOT_WORDS;
const QUEUE_REGION: usize = DEVICE_REGION + DEVICES * DEVICE_WORDS;
const WORDS: usize = QUEUE_REGION + SLOTS * SLOT_QUEUE_WORDS;

/// What a slot's process is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No process.
    Free,
    /// Forked, not yet serving.
    Starting,
    /// Serving.
    Ready,
    /// Stopped accepting; finishing in-flight requests.
    Draining,
}

impl State {
    fn from_word(v: u64) -> State {
        match v {
            1 => State::Starting,
            2 => State::Ready,
            3 => State::Draining,
            _ => State::Free,
        }
    }

    /// Lower-case name for status output.
    pub fn name(self) -> &'static str {
        match self {
            State::Free => "free",
            State::Starting => "starting",
            State::Ready => "ready",
            State::Draining => "draining",
        }
    }
}

/// A handle on the shared scoreboard (cheap to copy; `'static`).
#[derive(Clone, Copy)]
pub struct Scoreboard {
    words: &'static [AtomicU64],
}

impl std::fmt::Debug for Scoreboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scoreboard").field("generation", &self.header().generation()).finish()
    }
}

/// Milliseconds on CLOCK_MONOTONIC: one clock for every process of the
/// machine, so a heartbeat written by a worker compares with the master's now.
pub fn monotonic_ms() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| (t.tv_sec() as u64).saturating_mul(1000) + (t.tv_nsec() as u64) / 1_000_000)
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn word(w: &[AtomicU64], i: usize) -> u64 {
    w.get(i).map_or(0, |a| a.load(Relaxed))
}

fn set(w: &[AtomicU64], i: usize, v: u64) {
    if let Some(a) = w.get(i) {
        a.store(v, Relaxed);
    }
}

fn add(w: &[AtomicU64], i: usize, v: u64) {
    if let Some(a) = w.get(i) {
        a.fetch_add(v, Relaxed);
    }
}

macro_rules! counters {
    ($ty:ident { $($get:ident / $setter:ident / $adder:ident = $idx:expr;)* }) => {
        impl $ty {
            $(
                #[doc = concat!("`", stringify!($get), "`.")]
                pub fn $get(&self) -> u64 { word(self.w, $idx) }
                #[doc = concat!("Set `", stringify!($get), "`.")]
                pub fn $setter(&self, v: u64) { set(self.w, $idx, v) }
                #[doc = concat!("Add to `", stringify!($get), "`.")]
                pub fn $adder(&self, v: u64) { add(self.w, $idx, v) }
            )*
        }
    };
}

/// The header.
#[derive(Clone, Copy)]
pub struct Header {
    w: &'static [AtomicU64],
}

counters!(Header {
    master_pid / set_master_pid / add_master_pid = H_MASTER_PID;
    generation / set_generation / add_generation = H_GENERATION;
    target_workers / set_target_workers / add_target_workers = H_TARGET;
    reloads / set_reloads / add_reloads = H_RELOADS;
    failed_reloads / set_failed_reloads / add_failed_reloads = H_FAILED_RELOADS;
    worker_crashes / set_worker_crashes / add_worker_crashes = H_CRASHES;
    worker_timeouts / set_worker_timeouts / add_worker_timeouts = H_TIMEOUTS;
    started_unix_ms / set_started_unix_ms / add_started_unix_ms = H_STARTED;
    device_count / set_device_count / add_device_count = H_DEVICE_COUNT;
});

/// One worker's slot.
#[derive(Clone, Copy)]
pub struct Slot {
    w: &'static [AtomicU64],
    q: &'static [AtomicU64],
}

counters!(Slot {
    pid / set_pid / add_pid = S_PID;
    recycle / set_recycle / add_recycle = S_RECYCLE;
    generation / set_generation / add_generation = S_GENERATION;
    index / set_index / add_index = S_INDEX;
    started_unix_ms / set_started_unix_ms / add_started_unix_ms = S_STARTED;
    heartbeat_ms / set_heartbeat_ms / add_heartbeat_ms = S_HEARTBEAT;
    requests / set_requests / add_requests = S_REQUESTS;
    bytes_in / set_bytes_in / add_bytes_in = S_BYTES_IN;
    bytes_out / set_bytes_out / add_bytes_out = S_BYTES_OUT;
    connections / set_connections / add_connections = S_CONNECTIONS;
    accepted / set_accepted / add_accepted = S_ACCEPTED;
    queue_count / set_queue_count / add_queue_count = S_QUEUE_COUNT;
    kind / set_kind / add_kind = S_KIND;
});

/// One queue's figures in a slot.
#[derive(Clone, Copy)]
pub struct QueueCell {
    w: &'static [AtomicU64],
}

counters!(QueueCell {
    depth / set_depth / add_depth = Q_DEPTH;
    active / set_active / add_active = Q_ACTIVE;
    threads / set_threads / add_threads = Q_THREADS;
    capacity / set_capacity / add_capacity = Q_CAPACITY;
    shed_full / set_shed_full / add_shed_full = Q_SHED_FULL;
    shed_age / set_shed_age / add_shed_age = Q_SHED_AGE;
    completed / set_completed / add_completed = Q_COMPLETED;
    recent_io_us / set_recent_io_us / add_recent_io_us = Q_RECENT_IO;
});

/// One device's health, as the master judges it.
#[derive(Clone, Copy)]
pub struct DeviceCell {
    w: &'static [AtomicU64],
}

counters!(DeviceCell {
    slow / set_slow / add_slow = D_SLOW;
    recent_io_us / set_recent_io_us / add_recent_io_us = D_RECENT_IO;
    since_unix_ms / set_since_unix_ms / add_since_unix_ms = D_SINCE;
});

fn set_name_words(w: &[AtomicU64], at: usize, len_at: usize, name: &str) {
    let bytes = name.as_bytes();
    let n = bytes.len().min(NAME_MAX);
    for i in 0..NAME_WORDS {
        let mut chunk = [0u8; 8];
        for (j, b) in chunk.iter_mut().enumerate() {
            let k = i * 8 + j;
            if k < n {
                *b = bytes.get(k).copied().unwrap_or(0);
            }
        }
        set(w, at + i, u64::from_le_bytes(chunk));
    }
    set(w, len_at, n as u64);
}

fn name_words(w: &[AtomicU64], at: usize, len_at: usize) -> String {
    let n = (word(w, len_at) as usize).min(NAME_MAX);
    let mut bytes = Vec::with_capacity(NAME_MAX);
    for i in 0..NAME_WORDS {
        bytes.extend_from_slice(&word(w, at + i).to_le_bytes());
    }
    bytes.truncate(n);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn set_histogram(w: &[AtomicU64], at: usize, h: &Histogram) {
    for (i, v) in h.buckets.iter().enumerate() {
        set(w, at + i, *v);
    }
    set(w, at + h.buckets.len(), h.sum_us);
}

fn histogram(w: &[AtomicU64], at: usize) -> Histogram {
    let mut h = Histogram::default();
    for (i, v) in h.buckets.iter_mut().enumerate() {
        *v = word(w, at + i);
    }
    h.sum_us = word(w, at + h.buckets.len());
    h
}

impl DeviceCell {
    /// Store the device's name (`processor:key`).
    pub fn set_name(&self, name: &str) {
        set_name_words(self.w, D_NAME, D_NAME_LEN, name);
    }

    /// The device's name.
    pub fn name(&self) -> String {
        name_words(self.w, D_NAME, D_NAME_LEN)
    }
}

impl Scoreboard {
    /// Create the mapping (master, before any fork).
    pub fn create() -> nix::Result<Scoreboard> {
        let sb = Scoreboard { words: shm::shared_words(WORDS)? };
        sb.header().set_master_pid(u64::from(std::process::id()));
        sb.header().set_started_unix_ms(unix_ms());
        Ok(sb)
    }

    /// The header.
    pub fn header(&self) -> Header {
        Header { w: self.words.get(..HEADER_WORDS).unwrap_or(&[]) }
    }

    /// A slot by index, if it exists.
    pub fn slot(&self, i: usize) -> Option<Slot> {
        if i >= SLOTS {
            return None;
        }
        let start = CORES + i * SLOT_WORDS;
        let qstart = QUEUE_REGION + i * SLOT_QUEUE_WORDS;
        Some(Slot {
            w: self.words.get(start..start + SLOT_WORDS)?,
            q: self.words.get(qstart..qstart + SLOT_QUEUE_WORDS)?,
        })
    }

    /// Device cell `i` (written by the master).
    pub fn device(&self, i: usize) -> Option<DeviceCell> {
        if i >= DEVICES {
            return None;
        }
        let start = DEVICE_REGION + i * DEVICE_WORDS;
        self.words.get(start..start + DEVICE_WORDS).map(|w| DeviceCell { w })
    }

    /// The devices the master reports on.
    pub fn devices(&self) -> impl Iterator<Item = DeviceCell> + '_ {
        let n = (self.header().device_count() as usize).min(DEVICES);
        (0..n).filter_map(move |i| self.device(i))
    }

    /// Every slot.
    pub fn slots(&self) -> impl Iterator<Item = (usize, Slot)> + '_ {
        (0..SLOTS).filter_map(move |i| self.slot(i).map(|s| (i, s)))
    }

    /// Claim a free slot for a process about to be forked.
    pub fn claim(&self, generation: u64, index: usize) -> Option<usize> {
        let (i, slot) = self.slots().find(|(_, s)| s.state() == State::Free)?;
        slot.reset();
        slot.set_generation(generation);
        slot.set_index(index as u64);
        slot.set_started_unix_ms(unix_ms());
        slot.beat();
        slot.set_state(State::Starting);
        Some(i)
    }
}

impl Slot {
    /// The slot's state.
    pub fn state(&self) -> State {
        State::from_word(word(self.w, S_STATE))
    }

    /// Set the state.
    pub fn set_state(&self, s: State) {
        set(self.w, S_STATE, s as u64);
    }

    /// Zero every field (the slot becomes free).
    pub fn reset(&self) {
        for a in self.w.iter().chain(self.q) {
            a.store(0, Relaxed);
        }
    }

    /// Tick the heartbeat.
    pub fn beat(&self) {
        self.set_heartbeat_ms(monotonic_ms());
    }

    /// Queue cell `i`.
    pub fn queue(&self, i: usize) -> Option<QueueCell> {
        if i >= QUEUES {
            return None;
        }
        let start = i * QUEUE_WORDS;
        self.q.get(start..start + QUEUE_WORDS).map(|w| QueueCell { w })
    }

    /// The queues in use.
    pub fn queues(&self) -> impl Iterator<Item = QueueCell> + '_ {
        let n = (self.queue_count() as usize).min(QUEUES);
        (0..n).filter_map(move |i| self.queue(i))
    }
}

impl QueueCell {
    /// Store the queue's name (truncated to [`NAME_MAX`] bytes).
    pub fn set_name(&self, name: &str) {
        set_name_words(self.w, Q_NAME, Q_NAME_LEN, name);
    }

    /// The queue's name (lossy: a worker may have died mid-write).
    pub fn name(&self) -> String {
        name_words(self.w, Q_NAME, Q_NAME_LEN)
    }

    /// Store the queue-wait histogram.
    pub fn set_wait_histogram(&self, h: &Histogram) {
        set_histogram(self.w, Q_WAIT_HIST, h);
    }

    /// The queue-wait histogram.
    pub fn wait_histogram(&self) -> Histogram {
        histogram(self.w, Q_WAIT_HIST)
    }

    /// Store the I/O-time histogram.
    pub fn set_io_histogram(&self, h: &Histogram) {
        set_histogram(self.w, Q_IO_HIST, h);
    }

    /// The I/O-time histogram.
    pub fn io_histogram(&self) -> Histogram {
        histogram(self.w, Q_IO_HIST)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_claimed_and_freed() {
        let sb = Scoreboard::create().expect("map");
        let a = sb.claim(1, 0).expect("free slot");
        let b = sb.claim(1, 1).expect("free slot");
        assert_ne!(a, b);
        let slot = sb.slot(a).expect("slot");
        assert_eq!(slot.state(), State::Starting);
        slot.set_requests(5);
        slot.reset();
        assert_eq!(slot.state(), State::Free);
        assert_eq!(slot.requests(), 0);
        assert_eq!(sb.claim(2, 0), Some(a), "a freed slot is reused");
        assert!(sb.slot(SLOTS).is_none());
    }

    #[test]
    fn queue_names_round_trip_and_truncate() {
        let sb = Scoreboard::create().expect("map");
        let q = sb.slot(0).and_then(|s| s.queue(0)).expect("queue");
        q.set_name("object:sdb1");
        assert_eq!(q.name(), "object:sdb1");
        q.set_name(&"x".repeat(100));
        assert_eq!(q.name().len(), NAME_MAX);
        assert!(sb.slot(0).and_then(|s| s.queue(QUEUES)).is_none());
        let mut h = Histogram::default();
        h.buckets[3] = 7;
        h.buckets[HIST_BOUNDS_MS.len()] = 1;
        h.sum_us = 123_456;
        q.set_io_histogram(&h);
        assert_eq!(q.io_histogram(), h);
        assert_eq!(q.wait_histogram(), Histogram::default());
        assert_eq!(q.name().len(), NAME_MAX, "the histograms do not overlap the name");
        let d = sb.device(0).expect("device");
        d.set_name("object:sdb1");
        d.set_slow(1);
        assert_eq!((d.name().as_str(), d.slow()), ("object:sdb1", 1));
    }
}
