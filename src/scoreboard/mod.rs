//! The scoreboard: one anonymous shared mapping, created by the master
//! before the first fork, holding a header, a slot per child process, the
//! master's device tables and every slot's queue cells.
//!
//! Children write their own slot (state, heartbeat, counters, queue
//! figures); the master writes the header and the device tables; the admin
//! endpoints read everything. The mapping is an array of `AtomicU64` words
//! (see `sys::shm`), so concurrent access from several processes is data-race
//! free, and a reader never trusts what it reads for memory safety: a
//! process can die mid-update, so names are bounded and decoded lossily, and
//! values are only reported.
//!
//! Slot life: the master claims a free slot before forking (generation,
//! kind, `Starting`); the child records its pid and marks it `Ready` when it
//! serves and `Draining` when it stops accepting; the master frees it when it
//! reaps the process.

pub mod cells;
pub mod db_replication;
pub mod devices;
pub mod replication;
pub mod slot;

pub use cells::{Histogram, HIST_BOUNDS_MS, NAME_MAX};
pub use db_replication::{DbReplicationCell, DB_REPLICATION_DEVICES, DB_SERVICES};
pub use devices::{DeviceCell, KnownDevice, DEVICES, KNOWN_DEVICES};
pub use replication::{ReplicationCell, REPLICATION_DEVICES};
pub use slot::{QueueCell, QueueId, Slot, State, CLOSE_REASONS, QUEUES};

use cells::{fields, word};
use db_replication::{DB_REPLICATION_WORDS, DB_TABLE_WORDS};
use devices::{DEVICE_WORDS, KNOWN_WORDS};
use replication::REPLICATION_WORDS;
use slot::{SLOT_QUEUE_WORDS, SLOT_WORDS};
use std::sync::atomic::AtomicU64;

/// The largest `server.workers`.
pub const MAX_WORKERS: usize = 128;
/// Slots: a reload overlaps two generations, plus the background roles.
pub const SLOTS: usize = 2 * MAX_WORKERS + 8;

const HEADER_WORDS: usize = 16;
const H_MASTER_PID: usize = 0;
const H_GENERATION: usize = 1;
const H_TARGET: usize = 2;
const H_RELOADS: usize = 3;
const H_FAILED_RELOADS: usize = 4;
const H_CRASHES: usize = 5;
const H_TIMEOUTS: usize = 6;
const H_STARTED: usize = 7;
const H_DEVICE_COUNT: usize = 8;
const H_PHASE: usize = 9;
const H_KNOWN_COUNT: usize = 10;
const H_KNOWN_SEQ: usize = 11;
const H_UPGRADES: usize = 12;
const H_FAILED_UPGRADES: usize = 13;
const H_REPLICATION_COUNT: usize = 14;

// Layout: header, then every slot's own words side by side, then the
// device tables, then every slot's queue cells. Scanning the slots (each
// worker does once a second) touches a few pages, not the whole mapping:
// RSS counts every shared page a process has touched.
const CORES: usize = HEADER_WORDS;
const DEVICE_REGION: usize = CORES + SLOTS * SLOT_WORDS;
const KNOWN_REGION: usize = DEVICE_REGION + DEVICES * DEVICE_WORDS;
const REPLICATION_REGION: usize = KNOWN_REGION + KNOWN_DEVICES * KNOWN_WORDS;
const DB_REPLICATION_REGION: usize = REPLICATION_REGION + REPLICATION_DEVICES * REPLICATION_WORDS;
const QUEUE_REGION: usize = DB_REPLICATION_REGION + DB_TABLE_WORDS;
const WORDS: usize = QUEUE_REGION + SLOTS * SLOT_QUEUE_WORDS;

/// The master's lifecycle phase (pingora's `ExecutionPhase`), shown in
/// `/status` so that lifecycle tests and operators can watch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Forking the first generation; not every worker is ready yet.
    Starting,
    /// Serving with every wanted worker of the current generation.
    Running,
    /// A HUP reload: the new generation is starting, the old one serves.
    Reloading,
    /// A USR2 upgrade: the new binary is being checked or is taking over.
    Upgrading,
    /// Stopping (gracefully or fast).
    Stopping,
}

impl Phase {
    const ALL: [Phase; 5] = [Phase::Starting, Phase::Running, Phase::Reloading, Phase::Upgrading, Phase::Stopping];

    /// Lower-case name for status output.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Reloading => "reloading",
            Phase::Upgrading => "upgrading",
            Phase::Stopping => "stopping",
        }
    }

    fn code(self) -> u64 {
        Phase::ALL.iter().position(|p| *p == self).unwrap_or(0) as u64
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

/// The header.
#[derive(Clone, Copy)]
pub struct Header {
    w: &'static [AtomicU64],
}

fields!(Header {
    gauge master_pid / set_master_pid = H_MASTER_PID;
    gauge generation / set_generation = H_GENERATION;
    gauge target_workers / set_target_workers = H_TARGET;
    counter reloads / add_reloads = H_RELOADS;
    counter failed_reloads / add_failed_reloads = H_FAILED_RELOADS;
    counter upgrades / add_upgrades = H_UPGRADES;
    counter failed_upgrades / add_failed_upgrades = H_FAILED_UPGRADES;
    counter worker_crashes / add_worker_crashes = H_CRASHES;
    counter worker_timeouts / add_worker_timeouts = H_TIMEOUTS;
    gauge started_unix_ms / set_started_unix_ms = H_STARTED;
    gauge device_count / set_device_count = H_DEVICE_COUNT;
    gauge replication_count / set_replication_count = H_REPLICATION_COUNT;
});

impl Header {
    /// The master's phase.
    pub fn phase(&self) -> Phase {
        let code = word(self.w, H_PHASE) as usize;
        Phase::ALL.get(code).copied().unwrap_or(Phase::Starting)
    }

    /// Record the master's phase.
    pub fn set_phase(&self, p: Phase) {
        cells::set(self.w, H_PHASE, p.code());
    }
}

impl Scoreboard {
    /// Create the mapping (master, before any fork).
    pub fn create() -> nix::Result<Scoreboard> {
        let sb = Scoreboard { words: crate::sys::shm::shared_words(WORDS)? };
        sb.header().set_master_pid(u64::from(std::process::id()));
        sb.header().set_started_unix_ms(crate::clock::unix_ms());
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

    /// Every slot.
    pub fn slots(&self) -> impl Iterator<Item = (usize, Slot)> + '_ {
        (0..SLOTS).filter_map(move |i| self.slot(i).map(|s| (i, s)))
    }

    /// Claim a free slot for a process about to be forked.
    pub fn claim(&self, generation: u64, index: usize, kind: crate::role::ProcessKind) -> Option<usize> {
        let (i, slot) = self.slots().find(|(_, s)| s.state() == State::Free)?;
        slot.reset();
        slot.set_generation(generation);
        slot.set_index(index as u64);
        slot.set_kind(kind);
        slot.set_started_unix_ms(crate::clock::unix_ms());
        slot.beat();
        slot.set_state(State::Starting);
        Some(i)
    }

    /// Health cell `i` (written by the master).
    pub fn device(&self, i: usize) -> Option<DeviceCell> {
        if i >= DEVICES {
            return None;
        }
        let start = DEVICE_REGION + i * DEVICE_WORDS;
        self.words.get(start..start + DEVICE_WORDS).map(|w| DeviceCell { w })
    }

    /// The queues the master reports health for.
    pub fn devices(&self) -> impl Iterator<Item = DeviceCell> + '_ {
        let n = (self.header().device_count() as usize).min(DEVICES);
        (0..n).filter_map(move |i| self.device(i))
    }

    /// Replication cell `i` (written by the object replicator).
    pub fn replication(&self, i: usize) -> Option<ReplicationCell> {
        if i >= REPLICATION_DEVICES {
            return None;
        }
        let start = REPLICATION_REGION + i * REPLICATION_WORDS;
        self.words.get(start..start + REPLICATION_WORDS).map(|w| ReplicationCell { w })
    }

    /// The devices the object replicator reports on.
    pub fn replications(&self) -> impl Iterator<Item = ReplicationCell> + '_ {
        let n = (self.header().replication_count() as usize).min(REPLICATION_DEVICES);
        (0..n).filter_map(move |i| self.replication(i))
    }

    /// Database replication cell `i` of `service` (an index of
    /// [`DB_SERVICES`]), written by that service's replicator.
    pub fn db_replication(&self, service: usize, i: usize) -> Option<DbReplicationCell> {
        if service >= DB_SERVICES.len() || i >= DB_REPLICATION_DEVICES {
            return None;
        }
        let start =
            DB_REPLICATION_REGION + DB_SERVICES.len() + (service * DB_REPLICATION_DEVICES + i) * DB_REPLICATION_WORDS;
        self.words.get(start..start + DB_REPLICATION_WORDS).map(|w| DbReplicationCell { w })
    }

    /// How many cells `service`'s replicator has claimed.
    pub fn db_replication_count(&self, service: usize) -> usize {
        (cells::word(self.words, DB_REPLICATION_REGION + service) as usize).min(DB_REPLICATION_DEVICES)
    }

    /// Record how many cells `service`'s replicator has claimed.
    pub fn set_db_replication_count(&self, service: usize, n: usize) {
        if service < DB_SERVICES.len() {
            cells::set(self.words, DB_REPLICATION_REGION + service, n as u64);
        }
    }

    /// The devices `service`'s replicator reports on.
    pub fn db_replications(&self, service: usize) -> impl Iterator<Item = DbReplicationCell> + '_ {
        (0..self.db_replication_count(service)).filter_map(move |i| self.db_replication(service, i))
    }

    fn known(&self, i: usize) -> Option<KnownDevice> {
        let start = KNOWN_REGION + i * KNOWN_WORDS;
        (i < KNOWN_DEVICES).then(|| self.words.get(start..start + KNOWN_WORDS).map(|w| KnownDevice { w }))?
    }

    /// Replace the known-devices table (master). Readers retry while it
    /// changes (a sequence number, odd while writing).
    pub fn set_known_devices(&self, names: &[String]) {
        let h = self.header().w;
        cells::add(h, H_KNOWN_SEQ, 1);
        let n = names.len().min(KNOWN_DEVICES);
        for (i, name) in names.iter().take(n).enumerate() {
            if let Some(k) = self.known(i) {
                k.set(name);
            }
        }
        cells::set(h, H_KNOWN_COUNT, n as u64);
        cells::add(h, H_KNOWN_SEQ, 1);
    }

    /// The known devices, consistently (`None` if the master kept changing
    /// the table while this read it).
    pub fn known_devices(&self) -> Option<Vec<String>> {
        let h = self.header().w;
        for _ in 0..16 {
            let before = word(h, H_KNOWN_SEQ);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let n = (word(h, H_KNOWN_COUNT) as usize).min(KNOWN_DEVICES);
            let names: Vec<String> = (0..n).filter_map(|i| self.known(i)).map(|k| k.get()).collect();
            if word(h, H_KNOWN_SEQ) == before {
                return Some(names);
            }
        }
        None
    }

    /// Whether `device` is one of the devices under the devices root.
    pub fn has_device(&self, device: &str) -> bool {
        self.known_devices().is_some_and(|names| names.iter().any(|n| n == device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::ProcessKind;

    #[test]
    fn slots_are_claimed_and_freed() {
        let sb = Scoreboard::create().expect("map");
        let a = sb.claim(1, 0, ProcessKind::Worker).expect("free slot");
        let b = sb.claim(1, 1, ProcessKind::ContainerUpdater).expect("free slot");
        assert_ne!(a, b);
        let slot = sb.slot(a).expect("slot");
        assert_eq!(slot.state(), State::Starting);
        assert_eq!(sb.slot(b).map(|s| s.kind()), Some(ProcessKind::ContainerUpdater));
        slot.add_requests(5);
        slot.add_closed(3);
        assert_eq!(slot.closed(3), 1);
        slot.reset();
        assert_eq!(slot.state(), State::Free);
        assert_eq!((slot.requests(), slot.closed(3)), (0, 0));
        assert_eq!(sb.claim(2, 0, ProcessKind::Worker), Some(a), "a freed slot is reused");
        assert!(sb.slot(SLOTS).is_none());
    }

    #[test]
    fn queue_ids_round_trip_and_names_truncate() {
        let sb = Scoreboard::create().expect("map");
        let q = sb.slot(0).and_then(|s| s.queue(0)).expect("queue");
        q.set_id(&QueueId::new("object", "sdb1"));
        assert_eq!(q.id(), QueueId::new("object", "sdb1"));
        assert_eq!(QueueId::decode("object:a:b"), QueueId::new("object", "a:b"), "keys may hold a colon");
        q.set_id(&QueueId::new("x", &"x".repeat(100)));
        assert_eq!(q.id().encode().len(), NAME_MAX);
        assert!(sb.slot(0).and_then(|s| s.queue(QUEUES)).is_none());
        let mut h = Histogram::default();
        h.buckets[3] = 7;
        h.buckets[HIST_BOUNDS_MS.len()] = 1;
        h.sum_us = 123_456;
        q.set_io_histogram(&h);
        assert_eq!(q.io_histogram(), h);
        assert_eq!(q.wait_histogram(), Histogram::default());
        assert_eq!(q.id().encode().len(), NAME_MAX, "the histograms do not overlap the name");
        let d = sb.device(0).expect("device");
        d.set_id(&QueueId::new("object", "sdb1"));
        d.set_slow(1);
        assert_eq!((d.id().key.as_str(), d.slow()), ("sdb1", 1));
    }

    #[test]
    fn the_known_devices_table_is_replaced_whole() {
        let sb = Scoreboard::create().expect("map");
        assert!(!sb.has_device("sda1"));
        sb.set_known_devices(&["sda1".into(), "sdb1".into()]);
        assert!(sb.has_device("sdb1") && !sb.has_device("sdc1"));
        sb.set_known_devices(&["sdc1".into()]);
        assert_eq!(sb.known_devices(), Some(vec!["sdc1".to_string()]));
        sb.header().set_phase(Phase::Reloading);
        assert_eq!(sb.header().phase(), Phase::Reloading);
    }
}
