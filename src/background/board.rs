//! The scoreboard side of a replication pass, for every replicator: a
//! cell per local device, found or claimed on first use, written as the
//! pass goes with the totals carried over from the cell (they outlive the
//! process), and the replicator's progress for its heartbeat.

use crate::child::Started;
use aerie_storage::pass::Progress;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A replicator's scoreboard cell for one device.
pub trait Cell: Copy + Send + Sync {
    /// The replicator's figures for a device.
    type Stats: Clone + Send;
    /// The totals the cell holds.
    fn totals(&self) -> Self::Stats;
    /// Store `base` (the totals before this pass) plus this pass's `s`.
    fn write(&self, base: &Self::Stats, s: &Self::Stats);
    /// When the device's pass started.
    fn set_pass_started(&self, unix_ms: u64);
    /// The device's pass ended after `took`.
    fn finish(&self, s: &Self::Stats, took: Duration);
}

/// A pass's board: `claim` finds a device's cell or takes a free one.
pub struct Board<'a, C: Cell> {
    claim: &'a (dyn Fn(&str) -> Option<C> + Sync),
    started: &'a Started,
    /// Device → (cell, totals before this pass).
    cells: Mutex<BTreeMap<String, (C, C::Stats)>>,
    last_progress: Arc<AtomicU64>,
}

impl<'a, C: Cell> Board<'a, C> {
    /// A board for one pass; progress goes to `last_progress` (monotonic
    /// ms) for the heartbeat thread.
    pub fn new(
        claim: &'a (dyn Fn(&str) -> Option<C> + Sync),
        started: &'a Started,
        last_progress: Arc<AtomicU64>,
    ) -> Board<'a, C> {
        Board { claim, started, cells: Mutex::new(BTreeMap::new()), last_progress }
    }

    fn cell(&self, device: &str) -> Option<(C, C::Stats)> {
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cells.get(device) {
            return Some(c.clone());
        }
        let cell = (self.claim)(device)?;
        let entry = (cell, cell.totals());
        cells.insert(device.to_string(), entry.clone());
        Some(entry)
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl<C: Cell> Progress<C::Stats> for Board<'_, C> {
    fn device(&self, device: &str, stats: &C::Stats, started: SystemTime) {
        if let Some((cell, base)) = self.cell(device) {
            cell.set_pass_started(unix_ms(started));
            cell.write(&base, stats);
        }
    }

    fn device_done(&self, device: &str, stats: &C::Stats, took: Duration) {
        if let Some((cell, base)) = self.cell(device) {
            cell.write(&base, stats);
            cell.finish(stats, took);
        }
        // The next pass starts from these totals.
        self.cells.lock().unwrap_or_else(|e| e.into_inner()).remove(device);
        self.beat();
    }

    fn beat(&self) {
        self.last_progress.store(crate::clock::monotonic_ms(), Ordering::Relaxed);
    }

    fn stopping(&self) -> bool {
        self.started.flags.stopping()
    }
}
