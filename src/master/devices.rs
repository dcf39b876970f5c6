//! The node's devices, as the master sees them.
//!
//! * Which exist: once a second the master lists the devices root (the
//!   directories in it) into the scoreboard's known-devices table; a worker
//!   starts a storage queue only for a device in it. A device added to a
//!   running node is served within about a second.
//! * How they do: once a second the master reads every worker's recent I/O
//!   time per queue from the scoreboard, flags a queue (a device) slow when
//!   the slowest worker's figure stays above the processor's `slow_latency`
//!   (two readings in a row) and clears it when it has stayed below for
//!   three, logging once on each change. The verdicts go into the
//!   scoreboard's health table, which `/status` and `/metrics` show.

use super::Master;
use crate::clock::unix_ms;
use crate::role::ProcessKind;
use crate::scoreboard::{QueueId, State, DEVICES, KNOWN_DEVICES};
use std::collections::BTreeMap;
use std::time::Duration;

/// Readings in a row above the threshold before a device is flagged.
const SLOW_AFTER: u32 = 2;
/// Readings in a row below it before the flag is cleared.
const FAST_AFTER: u32 = 3;

/// What the master remembers of a device.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Health {
    slow: bool,
    /// Readings in a row that disagree with `slow`.
    streak: u32,
    since_unix_ms: u64,
}

impl Master {
    /// List the devices root into the known-devices table (only when it
    /// changed, so readers rarely meet a table being rewritten).
    pub(super) fn scan_devices(&mut self) {
        let root = &self.config.storage.devices.root;
        let mut names: Vec<String> = match std::fs::read_dir(root) {
            Ok(entries) => entries
                .flatten()
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect(),
            Err(e) => {
                if self.config.storage.swift.is_some() {
                    log::warn!("cannot list the devices root {}: {e}", root.display());
                }
                Vec::new()
            }
        };
        names.sort();
        if names.len() > KNOWN_DEVICES {
            log::warn!("{} devices under {}: only the first {KNOWN_DEVICES} are served", names.len(), root.display());
            names.truncate(KNOWN_DEVICES);
        }
        if names != self.known_devices {
            self.scoreboard.set_known_devices(&names);
            self.known_devices = names;
        }
    }

    pub(super) fn watch_devices(&mut self) {
        if self.devices_checked.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.devices_checked = std::time::Instant::now();
        // A readdir of the devices root: a new disk is served within a
        // second of its directory appearing.
        self.scan_devices();
        let mut recent: BTreeMap<QueueId, u64> = BTreeMap::new();
        for (_, s) in self.scoreboard.slots() {
            if s.state() == State::Free || s.kind() != ProcessKind::Worker {
                continue;
            }
            for q in s.queues() {
                let id = q.id();
                if id.key.contains('/') {
                    // A device's lane (replication): long sessions by
                    // design, not a measure of the disk.
                    continue;
                }
                let e = recent.entry(id).or_default();
                *e = (*e).max(q.recent_io_us());
            }
        }
        self.device_health.retain(|id, _| recent.contains_key(id));
        for (id, &io_us) in &recent {
            let name = id.encode();
            let threshold = self.config.pools.get(&id.processor).copied().unwrap_or_default().slow_latency;
            let h = self
                .device_health
                .entry(id.clone())
                .or_insert(Health { since_unix_ms: unix_ms(), ..Health::default() });
            let high = Duration::from_micros(io_us) > threshold;
            if high == h.slow {
                h.streak = 0;
                continue;
            }
            h.streak += 1;
            if h.streak < if h.slow { FAST_AFTER } else { SLOW_AFTER } {
                continue;
            }
            h.slow = high;
            h.streak = 0;
            h.since_unix_ms = unix_ms();
            if high {
                log::warn!(
                    "device {name} is slow: requests spend {} ms each on I/O (slow_latency {} ms)",
                    io_us / 1000,
                    threshold.as_millis()
                );
            } else {
                log::info!("device {name} is no longer slow ({} ms per request)", io_us / 1000);
            }
        }
        let mut n = 0;
        for ((id, &io_us), i) in recent.iter().zip(0..DEVICES) {
            let Some(cell) = self.scoreboard.device(i) else { break };
            let h = self.device_health.get(id).copied().unwrap_or_default();
            cell.set_id(id);
            cell.set_slow(u64::from(h.slow));
            cell.set_recent_io_us(io_us);
            cell.set_since_unix_ms(h.since_unix_ms);
            n = i + 1;
        }
        self.scoreboard.header().set_device_count(n as u64);
    }
}
