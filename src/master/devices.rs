//! Device health: once a second the master reads every worker's recent
//! I/O time per queue key (device) from the scoreboard, flags a device slow
//! when the slowest worker's figure stays above the processor's
//! `slow_latency` (two readings in a row) and clears it when it has stayed
//! below for three, logging once on each change. The verdicts go into the
//! scoreboard's device table, which `/status` and `/metrics` show.

use super::Master;
use crate::scoreboard::{unix_ms, State, DEVICES};
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
    pub(super) fn watch_devices(&mut self) {
        if self.devices_checked.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.devices_checked = std::time::Instant::now();
        let mut recent: BTreeMap<String, u64> = BTreeMap::new();
        for (_, s) in self.scoreboard.slots() {
            if s.state() == State::Free || s.kind() != 0 {
                continue;
            }
            for q in s.queues() {
                let e = recent.entry(q.name()).or_default();
                *e = (*e).max(q.recent_io_us());
            }
        }
        self.device_health.retain(|name, _| recent.contains_key(name));
        for (name, &io_us) in &recent {
            let processor = name.split(':').next().unwrap_or("");
            let threshold = self.config.pools.get(processor).copied().unwrap_or_default().slow_latency;
            let h = self
                .device_health
                .entry(name.clone())
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
        for ((name, &io_us), i) in recent.iter().zip(0..DEVICES) {
            let Some(cell) = self.scoreboard.device(i) else { break };
            let h = self.device_health.get(name).copied().unwrap_or_default();
            cell.set_name(name);
            cell.set_slow(u64::from(h.slow));
            cell.set_recent_io_us(io_us);
            cell.set_since_unix_ms(h.since_unix_ms);
            n = i + 1;
        }
        self.scoreboard.header().set_device_count(n as u64);
    }
}
