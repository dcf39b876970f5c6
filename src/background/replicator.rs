//! The object replicator process: a pass of `aerie_object::replicator`
//! every `replication.interval` over the object rings of every policy
//! (`object.ring.gz`, `object-N.ring.gz` beside swift.conf), reloaded when
//! they change. Progress goes to the scoreboard's replication table as the
//! pass runs (`/status`, `/metrics`); one summary line per pass goes to the
//! log.
//!
//! A pass can take longer than `server.worker_timeout` (the master kills a
//! child whose heartbeat is that old), so a heartbeat thread beats for the
//! replicator as long as its threads make progress — a partition finished
//! or an object sent — within [`lockup`]; a replicator stuck longer than
//! that stops beating, and the master replaces it.

use crate::child::Started;
use crate::config::Config;
use crate::exit::ExitCode;
use crate::scoreboard::{ReplicationCell, Scoreboard, Slot, REPLICATION_DEVICES};
use aerie_object::peer::Timeouts;
use aerie_object::replicator::{DeviceStats, PolicyRing, Progress, Replicator, Settings};
use aerie_storage::ring::RingFile;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How long the replicator may go without progress before it counts as
/// hung: ten answer timeouts.
fn lockup(config: &Config) -> Duration {
    (config.replication.http_timeout * 10).max(Duration::from_secs(60))
}

/// Every address of this host's interfaces (Swift's `whataremyips`).
fn local_ips() -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = match nix::ifaddrs::getifaddrs() {
        Ok(addrs) => addrs
            .filter_map(|a| a.address)
            .filter_map(|s| {
                s.as_sockaddr_in()
                    .map(|v4| IpAddr::V4(v4.ip()))
                    .or_else(|| s.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
            })
            .collect(),
        Err(e) => {
            log::warn!("could not list this host's addresses: {e}");
            Vec::new()
        }
    };
    ips.push(IpAddr::from([127, 0, 0, 1]));
    ips.sort();
    ips.dedup();
    ips
}

/// The scoreboard side of a pass: a cell per device, totals carried over
/// from the cell (they outlive the process).
struct Board<'a> {
    scoreboard: Scoreboard,
    started: &'a Started,
    /// Device → (cell, totals before this pass).
    cells: Mutex<BTreeMap<String, (ReplicationCell, DeviceStats)>>,
    last_progress: Arc<AtomicU64>,
}

fn read_totals(c: &ReplicationCell) -> DeviceStats {
    DeviceStats {
        suffixes_hashed: c.suffixes_hashed(),
        suffixes_synced: c.suffixes_synced(),
        hashmatch: c.hashmatch(),
        objects_sent: c.objects_sent(),
        bytes_sent: c.bytes_sent(),
        failures: c.failures(),
        handoffs_removed: c.handoffs_removed(),
        handoff_objects_removed: c.handoff_objects_removed(),
        ..DeviceStats::default()
    }
}

impl Board<'_> {
    /// The device's cell (found, or the next free one), and its totals
    /// before this pass.
    fn cell(&self, device: &str) -> Option<(ReplicationCell, DeviceStats)> {
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cells.get(device) {
            return Some(c.clone());
        }
        let n = (self.scoreboard.header().replication_count() as usize).min(REPLICATION_DEVICES);
        let found = (0..n).filter_map(|i| self.scoreboard.replication(i)).find(|c| c.device() == device);
        let cell = match found {
            Some(c) => c,
            None => {
                let c = self.scoreboard.replication(n)?;
                c.set_device(device);
                self.scoreboard.header().set_replication_count(n as u64 + 1);
                c
            }
        };
        let entry = (cell, read_totals(&cell));
        cells.insert(device.to_string(), entry.clone());
        Some(entry)
    }

    fn write(cell: &ReplicationCell, base: &DeviceStats, s: &DeviceStats) {
        cell.set_partitions(s.partitions);
        cell.set_done(s.done);
        cell.set_suffixes_hashed(base.suffixes_hashed + s.suffixes_hashed);
        cell.set_suffixes_synced(base.suffixes_synced + s.suffixes_synced);
        cell.set_hashmatch(base.hashmatch + s.hashmatch);
        cell.set_objects_sent(base.objects_sent + s.objects_sent);
        cell.set_bytes_sent(base.bytes_sent + s.bytes_sent);
        cell.set_failures(base.failures + s.failures);
        cell.set_handoffs_removed(base.handoffs_removed + s.handoffs_removed);
        cell.set_handoff_objects_removed(base.handoff_objects_removed + s.handoff_objects_removed);
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Progress for Board<'_> {
    fn device(&self, device: &str, stats: &DeviceStats, started: SystemTime) {
        if let Some((cell, base)) = self.cell(device) {
            cell.set_pass_started_unix_ms(unix_ms(started));
            Board::write(&cell, &base, stats);
        }
    }

    fn device_done(&self, device: &str, stats: &DeviceStats, took: Duration) {
        if let Some((cell, base)) = self.cell(device) {
            Board::write(&cell, &base, stats);
            cell.set_handoffs_remaining(stats.handoffs_remaining);
            cell.set_last_pass_ms(took.as_millis() as u64);
            cell.set_last_pass_end_unix_ms(crate::clock::unix_ms());
            cell.add_passes(1);
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

/// The policies' object rings, beside swift.conf.
fn ring_files(config: &Config) -> Vec<(u32, RingFile)> {
    let swift_dir = config.storage.swift_conf_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let policies: Vec<u32> =
        config.storage.swift.as_ref().map(|s| s.policies.iter().map(|p| p.index).collect()).unwrap_or_default();
    policies
        .into_iter()
        .map(|i| {
            let name = if i == 0 { "object.ring.gz".to_string() } else { format!("object-{i}.ring.gz") };
            (i, RingFile::new(swift_dir.join(name)))
        })
        .collect()
}

/// The replicator process's life: passes until stopped.
pub fn run(config: &Config, slot: Slot, started: &Started, scoreboard: Scoreboard, ports: &[u16]) -> ExitCode {
    let r = &config.replication;
    // Every thread now, and the pass's threads inherit it.
    if r.nice_priority != 0 {
        if let Err(e) = crate::sys::process::set_process_nice(r.nice_priority) {
            log::warn!("could not set the replicator's priority to {}: {e}", r.nice_priority);
        }
    }
    let settings = Settings {
        devices: config.storage.devices.clone(),
        reclaim_age: config.storage.reclaim_age.as_secs_f64(),
        concurrency: r.concurrency,
        concurrency_per_device: r.concurrency_per_device,
        handoffs_first: r.handoffs_first,
        max_bytes_per_second: r.max_bytes_per_second,
        max_objects_per_second: r.max_objects_per_second,
        timeouts: Timeouts { conn: r.conn_timeout, node: r.node_timeout, http: r.http_timeout },
        ips: local_ips(),
        ports: ports.to_vec(),
    };
    log::info!(
        "replicating the object partitions under {} every {:?} (this node: {:?}, ports {:?})",
        settings.devices.root.display(),
        r.interval,
        settings.ips,
        ports
    );
    let mut replicator = Replicator::new(settings);
    let mut rings = ring_files(config);
    let last_progress = Arc::new(AtomicU64::new(crate::clock::monotonic_ms()));
    let lockup_ms = lockup(config).as_millis() as u64;
    let beating = last_progress.clone();
    let heart = std::thread::Builder::new().name("replicator-heartbeat".into()).spawn(move || loop {
        std::thread::sleep(Duration::from_secs(1));
        if crate::clock::monotonic_ms().saturating_sub(beating.load(Ordering::Relaxed)) < lockup_ms {
            slot.beat();
        }
    });
    if let Err(e) = heart {
        log::error!("could not start the heartbeat thread: {e}");
    }
    let mut warned = false;
    super::run_passes(started, slot, r.interval, |_slot| {
        last_progress.store(crate::clock::monotonic_ms(), Ordering::Relaxed);
        let loaded: Vec<(u32, Option<&aerie_storage::ring::Ring>)> =
            rings.iter_mut().map(|(i, f)| (*i, f.get())).collect();
        let policy_rings: Vec<PolicyRing<'_>> =
            loaded.iter().filter_map(|(policy, ring)| ring.map(|ring| PolicyRing { policy: *policy, ring })).collect();
        if policy_rings.is_empty() {
            if !warned {
                log::warn!("no object ring beside {}: nothing to replicate", config.storage.swift_conf_path.display());
                warned = true;
            }
            return;
        }
        warned = false;
        let board =
            Board { scoreboard, started, cells: Mutex::new(BTreeMap::new()), last_progress: last_progress.clone() };
        let s = replicator.pass(&policy_rings, &board);
        let t = &s.totals;
        log::info!(
            "object replication pass: {} devices, {}/{} partitions in {:.2}s; {} suffixes hashed, {} synced, {} peers \
             in sync; {} objects ({} bytes) sent; {} failures; {} handoffs removed ({} objects), {} remaining",
            s.devices,
            t.done,
            t.partitions,
            s.took.as_secs_f64(),
            t.suffixes_hashed,
            t.suffixes_synced,
            t.hashmatch,
            t.objects_sent,
            t.bytes_sent,
            t.failures,
            t.handoffs_removed,
            t.handoff_objects_removed,
            t.handoffs_remaining
        );
    })
}
