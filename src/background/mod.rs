//! The background roles: processes the master forks and supervises beside
//! the workers. The object updater replays async pendings
//! (`object_updater.rs`); the container updater sends changed container
//! statistics to the accounts (`aerie_container::updater`); the object
//! replicator keeps every replica of this node's partitions in sync
//! (`replicator.rs`, over `aerie_object::replicator`). Being their own
//! processes, they survive worker reloads and crashes, and their blocking
//! disk and network calls never touch a worker's loop.
//!
//! All are the same shape: after fork ([`crate::child::after_fork`]), a
//! pass every interval, a heartbeat in between, and an exit as soon as a
//! stop signal arrives or the master is gone.

pub mod object_updater;
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
    /// The ports this node's object service listens on (the replicator
    /// finds its devices in the rings by them).
    pub object_ports: Vec<u16>,
}

/// The background process, after fork: hygiene, then passes until
/// stopped; never returns.
pub fn main(args: BackgroundArgs<'_>) -> ! {
    let BackgroundArgs { kind, config, slot, close, master_signals, master, scoreboard, object_ports } = args;
    let inh = Inheritance { role: Role::Child(kind, 0), slot, close, master_signals, master, server: &config.server };
    let started = match child::after_fork(inh) {
        Ok(s) => s,
        Err(e) => {
            log::log!(e.level(), "{} could not start: {e}", kind.name());
            child::exit(e.exit_code())
        }
    };
    if kind == ProcessKind::ObjectReplicator {
        child::exit(replicator::run(config, slot, &started, scoreboard, &object_ports))
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
                let s = object_updater::sweep(&root, ring, remote.conn(), remote.node(), Some(slot));
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
                let s = aerie_container::updater::sweep(&root, ring, &mut state, &settings, &|| slot.beat());
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
