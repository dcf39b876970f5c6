//! HUP: reload the configuration without losing a request.
//!
//! 1. Parse and validate the new file completely. If it is invalid, log why
//!    and keep serving with the old one (nothing was touched).
//! 2. Reconcile the listeners: sockets whose key is still configured are
//!    kept (never closed, so nothing queued on them is lost), new ones are
//!    bound (a bind failure aborts the reload), removed ones are dropped.
//! 3. Raise the generation; `manage_workers` starts the new generation and,
//!    once every new worker reports ready, retires the old ones (they stop
//!    accepting, finish in-flight requests with `Connection: close`, close
//!    idle connections between requests, and exit; SIGKILL after
//!    `graceful_timeout`).
//! 4. If the new workers cannot boot, the reload is undone: the old config,
//!    generation and listeners come back and the new workers are stopped.
//!
//! Until the reload completes the master keeps duplicates of the old
//! listener table, so it can be restored; new workers close those.

use super::Master;
use crate::config::{Config, ConfigError};
use crate::listeners::{reconcile, Inherited, ListenError, Listener};
use crate::scoreboard::Phase;
use std::os::fd::OwnedFd;
use std::time::Instant;

/// Why a reload was refused (the old generation keeps serving).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The current listeners could not be duplicated (to undo the reload).
    #[error("could not keep the old listeners: {0}")]
    KeepListeners(std::io::Error),
    /// A new listener could not be bound.
    #[error(transparent)]
    Listen(#[from] ListenError),
}

/// What a reload in progress can go back to.
pub struct Pending {
    config: Config,
    generation: u64,
    target: usize,
    listeners: Vec<Listener>,
    started: Instant,
}

impl Pending {
    /// The descriptors held only to undo the reload.
    pub fn into_fds(self) -> Vec<OwnedFd> {
        self.listeners.into_iter().map(|l| OwnedFd::from(l.socket)).collect()
    }
}

fn duplicate(listeners: &[Listener]) -> std::io::Result<Vec<Listener>> {
    listeners
        .iter()
        .map(|l| {
            Ok(Listener {
                key: l.key.clone(),
                role: l.role,
                configured: l.configured,
                local: l.local,
                socket: l.socket.try_clone()?,
            })
        })
        .collect()
}

impl Master {
    pub(super) fn handle_hup(&mut self) {
        if self.reload.is_some() {
            log::warn!("SIGHUP: a reload is already in progress; ignoring");
            return;
        }
        crate::notify::send(&format!("RELOADING=1\nMONOTONIC_USEC={}", crate::clock::monotonic_ms() * 1000));
        log::info!("SIGHUP: reloading {}", self.source);
        if let Err(why) = self.start_reload() {
            self.scoreboard.header().add_failed_reloads(1);
            log::error!("reload refused, still serving generation {}: {why}", self.generation);
            crate::notify::send("READY=1");
        }
    }

    fn start_reload(&mut self) -> Result<(), ReloadError> {
        let config = Config::load(&self.source, &self.overrides, &crate::catalog::CATALOG)?;
        let backup = duplicate(&self.listeners).map_err(ReloadError::KeepListeners)?;
        let mut current = std::mem::take(&mut self.listeners);
        let table = match reconcile(&config, &mut current, &mut Inherited::default(), std::time::Duration::ZERO) {
            Ok(t) => t,
            Err(e) => {
                // Put the table back as it was (the reused sockets are the
                // same ones; `current` holds those not reused).
                self.listeners = backup;
                return Err(e.into());
            }
        };
        for l in &current {
            log::info!("closing listener {} (no longer configured)", l.local);
        }
        drop(current);
        if let Err(e) = crate::log::configure(&config.log) {
            log::warn!("keeping the old log files: {e}");
        }
        let pending = Pending {
            config: std::mem::replace(&mut self.config, config),
            generation: self.generation,
            target: self.target,
            listeners: backup,
            started: Instant::now(),
        };
        self.listeners = table;
        self.reload = Some(pending);
        self.generation += 1;
        self.target = self.config.server.workers;
        self.recycling = None;
        self.scoreboard.header().set_generation(self.generation);
        self.scoreboard.header().set_target_workers(self.target as u64);
        self.set_phase(Phase::Reloading);
        log::info!("starting generation {} ({} workers; {})", self.generation, self.target, self.addresses());
        Ok(())
    }

    /// The new generation is ready (called by `manage_workers`).
    pub(super) fn finish_reload(&mut self) {
        if let Some(p) = self.reload.take() {
            self.scoreboard.header().add_reloads(1);
            log::info!(
                "reload complete: generation {} serving ({:.1}s)",
                self.generation,
                p.started.elapsed().as_secs_f64()
            );
            self.set_phase(Phase::Running);
            crate::notify::send(&format!("READY=1\nSTATUS={}", self.addresses()));
        }
    }

    /// The new generation cannot run: go back to the old one.
    pub(super) fn abort_reload(&mut self, why: &str) {
        let Some(p) = self.reload.take() else { return };
        let failed = self.generation;
        let new_pids: Vec<_> =
            self.workers.iter().filter(|w| w.generation == failed && w.retiring.is_none()).map(|w| w.pid).collect();
        for pid in new_pids {
            self.retire(pid, "its generation is being abandoned");
        }
        self.config = p.config;
        self.generation = p.generation;
        self.target = p.target;
        self.listeners = p.listeners;
        if let Err(e) = crate::log::configure(&self.config.log) {
            log::warn!("could not restore the old log settings: {e}");
        }
        self.scoreboard.header().set_generation(self.generation);
        self.scoreboard.header().set_target_workers(self.target as u64);
        self.scoreboard.header().add_failed_reloads(1);
        log::error!("reload to generation {failed} failed ({why}); generation {} keeps serving", self.generation);
        self.set_phase(Phase::Running);
        crate::notify::send("READY=1");
    }
}
