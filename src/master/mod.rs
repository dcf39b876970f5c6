//! The master process: binds, forks, supervises, stops. It never serves a
//! request and never starts a thread (fork copies only the calling thread).
//!
//! Lifecycle:
//!
//! ```text
//! bind listeners → install signal handlers → fork `workers` workers
//!   → READY=1 → loop { wait for a signal (≤ 1 s) → handle it → reap → spawn missing }
//!   TERM        → STOPPING=1, SIGTERM to workers, wait ≤ graceful_timeout, SIGKILL the rest
//!   INT / QUIT  → STOPPING=1, SIGQUIT to workers, wait ≤ 1 s, SIGKILL the rest
//! ```
//!
//! A worker that dies is replaced. One that dies within [`QUICK_DEATH`] of
//! starting is replaced after a delay that doubles each time (up to
//! [`MAX_BACKOFF`]), so a crash loop cannot spin. A worker that exits with
//! [`EXIT_BOOT_FAILURE`] could never start: the master stops with its reason
//! instead of retrying.

mod reap;
mod signals;

use crate::config::Config;
use crate::error::{EXIT_BOOT_FAILURE, EXIT_FAILURE};
use crate::listeners::Listener;
use crate::sys::fork::{fork, Forked};
use nix::sys::signal::{kill, Signal as Sig};
use nix::unistd::Pid;
use reap::{reap_all, Exit};
use signals::{Signal, Signals};
use std::time::{Duration, Instant};

/// A worker dying sooner than this after its start counts towards backoff.
pub const QUICK_DEATH: Duration = Duration::from_secs(5);
/// The longest delay before replacing a crashing worker.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a fast stop waits before SIGKILL.
const FAST_STOP: Duration = Duration::from_secs(1);

/// Why the master stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// Signal handlers could not be installed.
    #[error("could not install signal handlers: {0}")]
    Signals(std::io::Error),
    /// fork(2) failed.
    #[error("could not fork a worker: {0}")]
    Fork(nix::Error),
    /// Workers cannot boot.
    #[error("workers cannot start (see the error above); stopping instead of restarting them in a loop")]
    BootFailure,
}

impl MasterError {
    /// The process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            MasterError::BootFailure => EXIT_BOOT_FAILURE,
            _ => EXIT_FAILURE,
        }
    }
}

struct Slot {
    pid: Option<Pid>,
    started: Instant,
    quick_deaths: u32,
    respawn_at: Option<Instant>,
}

/// The master's state.
pub struct Master {
    config: Config,
    listeners: Vec<Listener>,
    signals: Signals,
    slots: Vec<Slot>,
    me: Pid,
}

impl Master {
    /// Take over bound listeners and install the signal handlers.
    pub fn new(config: Config, listeners: Vec<Listener>) -> Result<Master, MasterError> {
        let signals = Signals::install().map_err(MasterError::Signals)?;
        Ok(Master { config, listeners, signals, slots: Vec::new(), me: nix::unistd::getpid() })
    }

    /// Run until stopped.
    pub fn run(mut self) -> Result<(), MasterError> {
        crate::sys::process::set_name("aerie: master");
        let addrs: Vec<String> = self.listeners.iter().map(|l| l.local.to_string()).collect();
        log::info!("listening on {}; starting {} workers", addrs.join(" "), self.config.server.workers);
        let now = Instant::now();
        for _ in 0..self.config.server.workers {
            self.slots.push(Slot { pid: None, started: now, quick_deaths: 0, respawn_at: Some(now) });
        }
        self.manage_workers()?;
        crate::notify::send(&format!(
            "READY=1\nMAINPID={}\nSTATUS=listening on {}",
            std::process::id(),
            addrs.join(" ")
        ));
        loop {
            let timeout = self.next_respawn().map_or(Duration::from_secs(1), |t| {
                t.saturating_duration_since(Instant::now()).min(Duration::from_secs(1))
            });
            for s in self.signals.wait(timeout) {
                match s {
                    Signal::Term => return self.handle_term(),
                    Signal::Int | Signal::Quit => return self.handle_quit(),
                    Signal::Hup => self.handle_hup(),
                    Signal::Chld => {}
                }
            }
            self.reap_workers()?;
            self.manage_workers()?;
        }
    }

    fn next_respawn(&self) -> Option<Instant> {
        self.slots.iter().filter_map(|s| s.respawn_at).min()
    }

    fn handle_hup(&mut self) {
        log::warn!("SIGHUP: configuration reload is not implemented yet; ignoring (the server keeps running)");
    }

    fn handle_term(mut self) -> Result<(), MasterError> {
        crate::notify::send("STOPPING=1");
        log::info!("SIGTERM: graceful stop (up to {:?})", self.config.server.graceful_timeout);
        self.stop(Sig::SIGTERM, self.config.server.graceful_timeout);
        Ok(())
    }

    fn handle_quit(mut self) -> Result<(), MasterError> {
        crate::notify::send("STOPPING=1");
        log::info!("fast stop");
        self.stop(Sig::SIGQUIT, FAST_STOP);
        Ok(())
    }

    /// Signal every worker, wait for them up to `grace`, then SIGKILL.
    fn stop(&mut self, signal: Sig, grace: Duration) {
        for pid in self.slots.iter().filter_map(|s| s.pid) {
            let _ = kill(pid, signal);
        }
        let deadline = Instant::now() + grace;
        let mut killed = false;
        while self.slots.iter().any(|s| s.pid.is_some()) {
            for (pid, exit) in reap_all() {
                if let Some(slot) = self.slots.iter_mut().find(|s| s.pid == Some(pid)) {
                    slot.pid = None;
                    log::info!("worker {pid} {}", exit.describe());
                }
            }
            if !self.slots.iter().any(|s| s.pid.is_some()) {
                break;
            }
            if Instant::now() >= deadline && !killed {
                for pid in self.slots.iter().filter_map(|s| s.pid) {
                    log::warn!("worker {pid} did not stop in time: SIGKILL");
                    let _ = kill(pid, Sig::SIGKILL);
                }
                killed = true;
            }
            let _ = self.signals.wait(Duration::from_millis(100));
        }
        log::info!("stopped");
    }

    fn reap_workers(&mut self) -> Result<(), MasterError> {
        let now = Instant::now();
        let mut boot_failure = false;
        for (pid, exit) in reap_all() {
            let Some(slot) = self.slots.iter_mut().find(|s| s.pid == Some(pid)) else {
                log::debug!("reaped unknown child {pid}: {}", exit.describe());
                continue;
            };
            slot.pid = None;
            if exit == Exit::Code(EXIT_BOOT_FAILURE) {
                log::error!("worker {pid} {}", exit.describe());
                boot_failure = true;
                continue;
            }
            let lived = now.saturating_duration_since(slot.started);
            if lived < QUICK_DEATH {
                slot.quick_deaths += 1;
            } else {
                slot.quick_deaths = 0;
            }
            let delay = backoff(slot.quick_deaths);
            if delay.is_zero() {
                log::warn!("worker {pid} {} after {:.1}s; replacing it", exit.describe(), lived.as_secs_f64());
            } else {
                log::warn!(
                    "worker {pid} {} after {:.1}s ({} quick deaths in a row); replacing it in {:.1}s",
                    exit.describe(),
                    lived.as_secs_f64(),
                    slot.quick_deaths,
                    delay.as_secs_f64()
                );
            }
            slot.respawn_at = Some(now + delay);
        }
        if boot_failure {
            self.stop(Sig::SIGTERM, self.config.server.graceful_timeout);
            return Err(MasterError::BootFailure);
        }
        Ok(())
    }

    fn manage_workers(&mut self) -> Result<(), MasterError> {
        let now = Instant::now();
        for index in 0..self.slots.len() {
            let due = self.slots.get(index).is_some_and(|s| s.pid.is_none() && s.respawn_at.is_some_and(|t| t <= now));
            if due {
                self.spawn(index)?;
            }
        }
        Ok(())
    }

    /// Fork worker `index`. The child never returns from here.
    fn spawn(&mut self, index: usize) -> Result<(), MasterError> {
        match fork().map_err(MasterError::Fork)? {
            Forked::Child => {
                let (master_signals, close) = self.signals.take_for_child();
                crate::worker::run(crate::worker::WorkerArgs {
                    index,
                    config: &self.config,
                    listeners: &self.listeners,
                    close,
                    master_signals,
                    master: self.me,
                })
            }
            Forked::Parent { pid } => {
                if let Some(slot) = self.slots.get_mut(index) {
                    slot.pid = Some(pid);
                    slot.started = Instant::now();
                    slot.respawn_at = None;
                }
                log::info!("started worker {index} (pid {pid})");
                Ok(())
            }
        }
    }
}

/// Delay before replacing a worker after `n` quick deaths in a row: none for
/// the first, then 0.5 s doubling up to [`MAX_BACKOFF`].
pub fn backoff(n: u32) -> Duration {
    if n <= 1 {
        return Duration::ZERO;
    }
    let ms = 500u64.saturating_mul(1u64 << (n - 2).min(16));
    Duration::from_millis(ms).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(3), Duration::from_secs(1));
        assert_eq!(backoff(40), super::MAX_BACKOFF);
    }
}
