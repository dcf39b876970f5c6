//! The container and account replicator processes: a pass of
//! `aerie_storage::db::replicator` every `replication.interval` over the
//! service's ring (`container.ring.gz`, `account.ring.gz` beside
//! swift.conf), reloaded when it changes. Progress goes to the scoreboard's
//! database replication table as the pass runs (`/status`, `/metrics`);
//! one summary line per pass goes to the log, with Swift's figures.

use crate::child::Started;
use crate::config::Config;
use crate::exit::ExitCode;
use crate::role::ProcessKind;
use crate::scoreboard::{DbReplicationCell, Scoreboard, Slot, DB_REPLICATION_DEVICES};
use aerie_storage::db::replicator::{DbReplicator, DbStats, Replicated, Settings};
use aerie_storage::ring::RingFile;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

impl super::board::Cell for DbReplicationCell {
    type Stats = DbStats;

    fn totals(&self) -> DbStats {
        DbStats {
            attempted: self.attempted(),
            success: self.success(),
            failure: self.failure(),
            no_change: self.no_change(),
            hashmatch: self.hashmatch(),
            rsync: self.rsync(),
            remote_merge: self.remote_merge(),
            diff: self.diff(),
            diff_capped: self.diff_capped(),
            rows_sent: self.rows_sent(),
            remove: self.remove(),
            reclaimed_rows: self.reclaimed_rows(),
            unopened: self.unopened(),
            ..DbStats::default()
        }
    }

    fn write(&self, base: &DbStats, s: &DbStats) {
        self.set_databases(s.databases);
        self.set_done(s.attempted);
        self.set_attempted(base.attempted + s.attempted);
        self.set_success(base.success + s.success);
        self.set_failure(base.failure + s.failure);
        self.set_no_change(base.no_change + s.no_change);
        self.set_hashmatch(base.hashmatch + s.hashmatch);
        self.set_rsync(base.rsync + s.rsync);
        self.set_remote_merge(base.remote_merge + s.remote_merge);
        self.set_diff(base.diff + s.diff);
        self.set_diff_capped(base.diff_capped + s.diff_capped);
        self.set_rows_sent(base.rows_sent + s.rows_sent);
        self.set_remove(base.remove + s.remove);
        self.set_reclaimed_rows(base.reclaimed_rows + s.reclaimed_rows);
        self.set_unopened(base.unopened + s.unopened);
    }

    fn set_pass_started(&self, unix_ms: u64) {
        self.set_pass_started_unix_ms(unix_ms);
    }

    fn finish(&self, _: &DbStats, took: Duration) {
        self.set_last_pass_ms(took.as_millis() as u64);
        self.set_last_pass_end_unix_ms(crate::clock::unix_ms());
        self.add_passes(1);
    }
}

/// The device's cell in `service`'s database replication table: found, or
/// the next free one.
fn claim(scoreboard: Scoreboard, service: usize, device: &str) -> Option<DbReplicationCell> {
    if let Some(c) = scoreboard.db_replications(service).find(|c| c.device() == device) {
        return Some(c);
    }
    let n = scoreboard.db_replication_count(service);
    if n >= DB_REPLICATION_DEVICES {
        return None;
    }
    let c = scoreboard.db_replication(service, n)?;
    c.set_device(device);
    scoreboard.set_db_replication_count(service, n + 1);
    Some(c)
}

/// The replicator process's life: passes until stopped.
pub fn run(
    kind: ProcessKind,
    config: &Config,
    slot: Slot,
    started: &Started,
    scoreboard: Scoreboard,
    ports: &[u16],
) -> ExitCode {
    if kind == ProcessKind::AccountReplicator {
        passes::<aerie_account::replicate::Account>(1, config, slot, started, scoreboard, ports)
    } else {
        passes::<aerie_container::replicate::Container>(0, config, slot, started, scoreboard, ports)
    }
}

fn passes<R: Replicated>(
    service: usize,
    config: &Config,
    slot: Slot,
    started: &Started,
    scoreboard: Scoreboard,
    ports: &[u16],
) -> ExitCode {
    let r = &config.replication;
    super::lower_priority(config);
    let swift = config.storage.swift.as_ref();
    let settings = Settings {
        devices: config.storage.devices.clone(),
        per_diff: r.per_diff,
        max_diffs: r.max_diffs,
        concurrency: r.concurrency,
        concurrency_per_device: r.concurrency_per_device,
        databases_per_second: r.databases_per_second,
        conn_timeout: r.conn_timeout,
        node_timeout: r.node_timeout,
        rsync_module: if service == 0 { r.container_rsync_module.clone() } else { r.account_rsync_module.clone() },
        rsync_compress: r.rsync_compress,
        reclaim_age: config.storage.reclaim_age.as_secs_f64(),
        multi_policy: swift.is_some_and(|s| s.policies.len() > 1),
        salt: swift.map(|s| s.salt.clone()),
        ips: super::local_ips(),
        ports: ports.to_vec(),
    };
    let swift_dir = config.storage.swift_conf_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let ring_path = swift_dir.join(format!("{}.ring.gz", R::SERVER_TYPE));
    log::info!(
        "replicating the {} databases under {} every {:?} (this node: {:?}, ports {:?}; rsync to {})",
        R::SERVER_TYPE,
        settings.devices.root.display(),
        r.interval,
        settings.ips,
        ports,
        settings.rsync_module
    );
    let replicator = DbReplicator::new(settings);
    let mut ring_file = RingFile::new(ring_path.clone());
    let last_progress = Arc::new(AtomicU64::new(crate::clock::monotonic_ms()));
    super::beat_while_progressing(config, slot, last_progress.clone());
    let mut warned = false;
    super::run_passes(started, slot, r.interval, |_slot| {
        last_progress.store(crate::clock::monotonic_ms(), Ordering::Relaxed);
        let Some(ring) = ring_file.get() else {
            if !warned {
                log::warn!("no {} ring at {}: nothing to replicate", R::SERVER_TYPE, ring_path.display());
                warned = true;
            }
            return;
        };
        warned = false;
        let claim = |device: &str| claim(scoreboard, service, device);
        let board = super::board::Board::new(&claim, started, last_progress.clone());
        let s = replicator.pass::<R>(ring, &board);
        super::recon::db_replication(config, service, &s.totals, s.took);
        let t = &s.totals;
        log::info!(
            "{} replication pass: {} devices, {} dbs in {:.2}s; {} successes, {} failures; no_change:{} \
             hashmatch:{} rsync:{} remote_merge:{} diff:{} diff_capped:{}; {} rows sent; {} dbs removed; \
             {} tombstones reclaimed; {} unchanged dbs not opened",
            R::SERVER_TYPE,
            s.devices,
            t.attempted,
            s.took.as_secs_f64(),
            t.success,
            t.failure,
            t.no_change,
            t.hashmatch,
            t.rsync,
            t.remote_merge,
            t.diff,
            t.diff_capped,
            t.rows_sent,
            t.remove,
            t.reclaimed_rows,
            t.unopened
        );
    })
}
