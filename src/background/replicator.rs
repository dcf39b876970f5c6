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
//! or an object sent — within [`super::lockup`]; a replicator stuck longer than
//! that stops beating, and the master replaces it.

use crate::child::Started;
use crate::config::Config;
use crate::exit::ExitCode;
use crate::scoreboard::{ReplicationCell, Scoreboard, Slot, REPLICATION_DEVICES};
use aerie_object::peer::Timeouts;
use aerie_object::replicator::{DeviceStats, PolicyRing, Replicator, Settings};
use aerie_storage::ring::RingFile;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

impl super::board::Cell for ReplicationCell {
    type Stats = DeviceStats;

    fn totals(&self) -> DeviceStats {
        DeviceStats {
            suffixes_hashed: self.suffixes_hashed(),
            suffixes_synced: self.suffixes_synced(),
            hashmatch: self.hashmatch(),
            objects_sent: self.objects_sent(),
            bytes_sent: self.bytes_sent(),
            failures: self.failures(),
            handoffs_removed: self.handoffs_removed(),
            handoff_objects_removed: self.handoff_objects_removed(),
            ..DeviceStats::default()
        }
    }

    fn write(&self, base: &DeviceStats, s: &DeviceStats) {
        self.set_partitions(s.partitions);
        self.set_done(s.done);
        self.set_suffixes_hashed(base.suffixes_hashed + s.suffixes_hashed);
        self.set_suffixes_synced(base.suffixes_synced + s.suffixes_synced);
        self.set_hashmatch(base.hashmatch + s.hashmatch);
        self.set_objects_sent(base.objects_sent + s.objects_sent);
        self.set_bytes_sent(base.bytes_sent + s.bytes_sent);
        self.set_failures(base.failures + s.failures);
        self.set_handoffs_removed(base.handoffs_removed + s.handoffs_removed);
        self.set_handoff_objects_removed(base.handoff_objects_removed + s.handoff_objects_removed);
    }

    fn set_pass_started(&self, unix_ms: u64) {
        self.set_pass_started_unix_ms(unix_ms);
    }

    fn finish(&self, s: &DeviceStats, took: Duration) {
        self.set_handoffs_remaining(s.handoffs_remaining);
        self.set_last_pass_ms(took.as_millis() as u64);
        self.set_last_pass_end_unix_ms(crate::clock::unix_ms());
        self.add_passes(1);
    }
}

/// The device's cell in the object replicator's table: found, or the next
/// free one.
fn claim(scoreboard: Scoreboard, device: &str) -> Option<ReplicationCell> {
    let n = (scoreboard.header().replication_count() as usize).min(REPLICATION_DEVICES);
    if let Some(c) = (0..n).filter_map(|i| scoreboard.replication(i)).find(|c| c.device() == device) {
        return Some(c);
    }
    let c = scoreboard.replication(n)?;
    c.set_device(device);
    scoreboard.header().set_replication_count(n as u64 + 1);
    Some(c)
}

/// The policies' object rings, beside swift.conf.
fn ring_files(config: &Config) -> Vec<(u32, RingFile)> {
    let swift_dir = config.storage.swift_conf_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut policies: Vec<u32> = Vec::new();
    for p in config.storage.swift.as_ref().map(|s| s.policies.as_slice()).unwrap_or_default() {
        if p.ec.is_some() {
            // Fragment archives are rebuilt from the other fragments, not
            // copied: Swift's object-reconstructor works on these.
            log::info!(
                "storage policy {} ({}) is erasure coded: aerie's object replicator leaves it to Swift's object-reconstructor",
                p.index,
                p.name
            );
            continue;
        }
        policies.push(p.index);
    }
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
    super::lower_priority(config);
    let settings = Settings {
        devices: config.storage.devices.clone(),
        reclaim_age: config.storage.reclaim_age.as_secs_f64(),
        concurrency: r.concurrency,
        concurrency_per_device: r.concurrency_per_device,
        handoffs_first: r.handoffs_first,
        max_bytes_per_second: r.max_bytes_per_second,
        max_objects_per_second: r.max_objects_per_second,
        timeouts: Timeouts { conn: r.conn_timeout, node: r.node_timeout, http: r.http_timeout },
        ips: super::local_ips(),
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
    super::beat_while_progressing(config, slot, last_progress.clone());
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
        let claim = |device: &str| claim(scoreboard, device);
        let board = super::board::Board::new(&claim, started, last_progress.clone());
        let s = replicator.pass(&policy_rings, &board);
        super::recon::object_replication(config, &s);
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
