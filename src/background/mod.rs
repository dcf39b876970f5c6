//! The background roles: processes the master forks and supervises beside
//! the workers. The object updater replays async pendings
//! (`object_updater.rs`); the container updater sends changed container
//! statistics to the accounts (`aerie_container::updater`); the object
//! replicator keeps every replica of this node's partitions in sync
//! (`replicator.rs`, over `aerie_object::replicator`); the container and
//! account replicators do the same for their databases (`db_replicator.rs`,
//! over `aerie_storage::db::replicator`). Being their own
//! processes, they survive worker reloads and crashes, and their blocking
//! disk and network calls never touch a worker's loop.
//!
//! After each pass every one of them merges its figures into the recon
//! cache, as Swift's daemons do (`recon.rs`), for `/recon/*`.
//!
//! All are the same shape: after fork ([`crate::child::after_fork`]), a
//! pass every interval, a heartbeat in between, and an exit as soon as a
//! stop signal arrives or the master is gone.

pub mod board;
pub mod db_replicator;
pub mod object_updater;
pub mod recon;
pub mod replicator;

use crate::child::{self, Inheritance, Started};
use crate::config::Config;
use crate::exit::ExitCode;
use crate::role::{ProcessKind, Role};
use crate::scoreboard::{Slot, State};
use aerie_storage::ring::RingFile;
use std::path::Path;
use std::time::{Duration, Instant};

/// What the master hands a background role at fork.
pub struct BackgroundArgs<'a> {
    /// Which role.
    pub kind: ProcessKind,
    /// The configuration.
    pub config: &'a Config,
    /// Its scoreboard slot.
    pub slot: Slot,
    /// Master-only descriptors to close.
    pub close: Vec<std::os::fd::OwnedFd>,
    /// The master's signal registrations to remove.
    pub master_signals: Vec<signal_hook::SigId>,
    /// The master's pid.
    pub master: nix::unistd::Pid,
    /// The shared scoreboard (the replicator's table is in it).
    pub scoreboard: crate::scoreboard::Scoreboard,
    /// The ports this node's service of the role listens on (a replicator
    /// finds its devices in the rings by them).
    pub ports: Vec<u16>,
}

/// The background process, after fork: hygiene, then passes until
/// stopped; never returns.
pub fn main(args: BackgroundArgs<'_>) -> ! {
    let BackgroundArgs { kind, config, slot, close, master_signals, master, scoreboard, ports } = args;
    let inh = Inheritance { role: Role::Child(kind, 0), slot, close, master_signals, master, server: &config.server };
    let started = match child::after_fork(inh) {
        Ok(s) => s,
        Err(e) => {
            log::log!(e.level(), "{} could not start: {e}", kind.name());
            child::exit(e.exit_code())
        }
    };
    match kind {
        ProcessKind::ObjectReplicator => child::exit(replicator::run(config, slot, &started, scoreboard, &ports)),
        ProcessKind::ContainerReplicator | ProcessKind::AccountReplicator => {
            child::exit(db_replicator::run(kind, config, slot, &started, scoreboard, &ports))
        }
        _ => {}
    }
    child::exit(run(kind, config, slot, &started))
}

/// Run passes every `interval` until a stop signal or the master's death.
pub fn run_passes(started: &Started, slot: Slot, interval: Duration, mut pass: impl FnMut(&Slot)) -> ExitCode {
    slot.set_state(State::Ready);
    let mut next = Instant::now();
    loop {
        slot.beat();
        slot.set_log_dropped(crate::log::dropped());
        if started.flags.stopping() {
            log::info!("stopping");
            return ExitCode::Ok;
        }
        if !started.master_alive() {
            log::warn!("the master is gone: exiting");
            return ExitCode::Ok;
        }
        if started.flags.reopen.swap(false, std::sync::atomic::Ordering::Relaxed) {
            if let Err(e) = crate::log::reopen() {
                log::error!("could not reopen the log files: {e}");
            }
        }
        if Instant::now() >= next {
            pass(&slot);
            next = Instant::now() + interval;
        }
        started.wait(next.saturating_duration_since(Instant::now()).min(Duration::from_secs(1)));
    }
}

/// Every address of this host's interfaces (Swift's `whataremyips`): a
/// ring device is this node's when its replication address is one of them.
pub fn local_ips() -> Vec<std::net::IpAddr> {
    use std::net::IpAddr;
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

/// How long a replicator may go without progress before it counts as
/// hung: ten answer timeouts, at least a minute.
pub fn lockup(config: &Config) -> Duration {
    (config.replication.http_timeout.max(config.replication.node_timeout) * 10).max(Duration::from_secs(60))
}

/// A replicator's pass can outlast `server.worker_timeout` (the master
/// kills a child whose heartbeat is that old): a thread beats for it as
/// long as `progress` (monotonic ms) moved within [`lockup`]. A replicator
/// stuck longer stops beating, and the master replaces it.
pub fn beat_while_progressing(config: &Config, slot: Slot, progress: std::sync::Arc<std::sync::atomic::AtomicU64>) {
    let lockup_ms = lockup(config).as_millis() as u64;
    let heart = std::thread::Builder::new().name("replicator-heartbeat".into()).spawn(move || loop {
        std::thread::sleep(Duration::from_secs(1));
        let last = progress.load(std::sync::atomic::Ordering::Relaxed);
        if crate::clock::monotonic_ms().saturating_sub(last) < lockup_ms {
            slot.beat();
        }
    });
    if let Err(e) = heart {
        log::error!("could not start the heartbeat thread: {e}");
    }
}

/// Lower the whole process's CPU priority to `replication.nice_priority`
/// (its threads inherit it).
pub fn lower_priority(config: &Config) {
    let nice = config.replication.nice_priority;
    if nice != 0 {
        if let Err(e) = crate::sys::process::set_process_nice(nice) {
            log::warn!("could not set the replicator's priority to {nice}: {e}");
        }
    }
}

fn run(kind: ProcessKind, config: &Config, slot: Slot, started: &Started) -> ExitCode {
    let root = config.storage.devices.root.clone();
    let processor = if kind == ProcessKind::ObjectUpdater { "object" } else { "container" };
    let remote = config.pools.get(processor).map(|p| p.settings).unwrap_or_default();
    // The ring this updater sends to: the container ring (object updater)
    // or the account ring (container updater), beside swift.conf.
    let swift_dir = config.storage.swift_conf_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let ring_name = if kind == ProcessKind::ObjectUpdater { "container.ring.gz" } else { "account.ring.gz" };
    let mut ring_file = RingFile::new(swift_dir.join(ring_name));
    let salt = config.storage.swift.as_ref().map(|s| s.salt.clone());
    match kind {
        ProcessKind::ObjectUpdater => {
            let interval = config.storage.object_updater_interval;
            log::info!("sweeping the async pendings under {} every {interval:?}", root.display());
            run_passes(started, slot, interval, |slot| {
                let ring = ring_file.get().zip(salt.as_ref());
                let began = Instant::now();
                let s = object_updater::sweep(&root, ring, remote.conn(), remote.node(), Some(slot));
                recon::object_updater(config, &s, began.elapsed());
                if s.delivered > 0 || s.pending > 0 {
                    log::info!(
                        "object updater sweep: {} delivered, {} still pending, {} left for a ring",
                        s.delivered,
                        s.pending,
                        s.skipped
                    );
                }
            })
        }
        _ => {
            let interval = config.storage.container_updater_interval;
            let settings = aerie_container::updater::Settings {
                conn_timeout: remote.conn(),
                node_timeout: remote.node(),
                suppression: config.storage.container_updater_suppression,
            };
            if ring_file.get().is_none() {
                log::warn!(
                    "no account ring at {}: statistics go only to the account replicas each container's \
                     requests named; the others learn them by replication",
                    swift_dir.join(ring_name).display()
                );
            }
            let mut state = aerie_container::updater::State::default();
            log::info!("sweeping the container databases under {} every {interval:?}", root.display());
            run_passes(started, slot, interval, |slot| {
                let ring = ring_file.get().zip(salt.as_ref());
                let began = Instant::now();
                let s = aerie_container::updater::sweep(&root, ring, &mut state, &settings, &|| slot.beat());
                recon::container_updater(config, began.elapsed());
                if s.reported > 0 || s.failed > 0 || s.quarantined > 0 {
                    log::info!(
                        "container updater sweep: {} checked, {} reported, {} to retry, {} without account \
                         replicas, {} quarantined",
                        s.checked,
                        s.reported,
                        s.failed,
                        s.no_targets,
                        s.quarantined
                    );
                }
            })
        }
    }
}
