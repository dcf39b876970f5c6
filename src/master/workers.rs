//! The worker table: spawning, reaping, killing hung workers, and
//! converging on the wanted set.
//!
//! What "wanted" means: `target` workers of the current generation that are
//! neither retiring nor being recycled. [`Master::manage_workers`] spawns
//! missing ones (unless a crash loop is backing off), retires surplus ones
//! (TTOU, oldest first), and once every wanted worker reports `Ready` it
//! retires what they replace: workers of older generations (the end of a
//! reload or upgrade) and the one worker being recycled for `max_requests`.
//! A retiring worker gets SIGTERM, and SIGKILL after `graceful_timeout`.

use super::reap::{reap_all, Exit};
use super::{Master, MasterError};
use crate::exit::ExitCode;
use crate::role::ProcessKind;
use crate::scoreboard::{Phase, State};
use crate::sys::fork::{fork, Forked};
use nix::sys::signal::{kill, Signal as Sig};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Deaths within [`CRASH_WINDOW`] that make a crash loop.
pub const CRASH_LIMIT: usize = 5;
/// See [`CRASH_LIMIT`].
pub const CRASH_WINDOW: Duration = Duration::from_secs(10);
/// The first delay of a crash loop; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest delay between worker starts in a crash loop.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A child process of the master.
#[derive(Debug)]
pub struct Worker {
    /// What it is.
    pub kind: ProcessKind,
    /// Its pid.
    pub pid: Pid,
    /// Its scoreboard slot (none for workers inherited across an upgrade).
    pub slot: Option<usize>,
    /// The config generation it runs.
    pub generation: u64,
    /// Its index within its generation (log lines say `worker.N`).
    pub index: usize,
    /// When it was forked.
    pub started: Instant,
    /// When it was asked to stop, if it was.
    pub retiring: Option<Instant>,
    /// Whether SIGKILL was sent.
    pub killed: bool,
}

/// Crash-loop detection and backoff.
#[derive(Debug, Default)]
pub struct CrashLoop {
    deaths: VecDeque<Instant>,
    delay: Option<Duration>,
    not_before: Option<Instant>,
}

impl CrashLoop {
    /// Record an unexpected death; returns a log line when the state changes.
    pub fn record(&mut self, now: Instant) -> Option<String> {
        self.deaths.push_back(now);
        while self.deaths.front().is_some_and(|t| now.duration_since(*t) > CRASH_WINDOW) {
            self.deaths.pop_front();
        }
        if self.deaths.len() < CRASH_LIMIT {
            return None;
        }
        let next = self.delay.map_or(FIRST_BACKOFF, |d| (d * 2).min(MAX_BACKOFF));
        let changed = self.delay != Some(next);
        self.delay = Some(next);
        self.not_before = Some(now + next);
        changed.then(|| {
            format!(
                "crash loop: {} workers died within {}s; starting replacements at most every {:.0}s",
                self.deaths.len(),
                CRASH_WINDOW.as_secs(),
                next.as_secs_f64()
            )
        })
    }

    /// Whether a worker may be started now; returns a log line when the
    /// loop has calmed down (no death for a whole window).
    pub fn may_spawn(&mut self, now: Instant) -> (bool, Option<String>) {
        if self.delay.is_some() && self.deaths.back().is_none_or(|t| now.duration_since(*t) > 3 * CRASH_WINDOW) {
            self.delay = None;
            self.not_before = None;
            self.deaths.clear();
            return (true, Some("crash loop over: workers are staying up again".to_string()));
        }
        match self.not_before {
            Some(t) if now < t => (false, None),
            Some(_) => {
                // One start per delay while backing off.
                self.not_before = self.delay.map(|d| now + d);
                (true, None)
            }
            None => (true, None),
        }
    }

    /// When the next start may happen, if backing off.
    pub fn next_spawn(&self) -> Option<Instant> {
        self.not_before
    }
}

impl Master {
    pub(super) fn free_slot(&self, w: &Worker) {
        if let Some(slot) = w.slot.and_then(|i| self.scoreboard.slot(i)) {
            slot.reset();
        }
    }

    fn slot_state(&self, w: &Worker) -> Option<State> {
        w.slot.and_then(|i| self.scoreboard.slot(i)).map(|s| s.state())
    }

    pub(super) fn retire(&mut self, pid: Pid, why: &str) {
        if let Some(w) = self.workers.iter_mut().find(|w| w.pid == pid && w.retiring.is_none()) {
            log::info!("retiring worker {} (generation {}): {why}", w.pid, w.generation);
            w.retiring = Some(Instant::now());
            let _ = kill(w.pid, Sig::SIGTERM);
        }
    }

    /// Fork a child of the current generation. The child never returns.
    fn spawn(&mut self, kind: ProcessKind, index: usize) -> Result<(), MasterError> {
        let Some(slot) = self.scoreboard.claim(self.generation, index, kind) else {
            log::error!("no free scoreboard slot for a new process");
            return Ok(());
        };
        match fork().map_err(MasterError::Fork)? {
            Forked::Child => {
                let (master_signals, mut close) = self.signals.take_for_child();
                // Sockets kept only to undo a reload belong to the master.
                if let Some(pending) = self.reload.take() {
                    close.extend(pending.into_fds());
                }
                match (kind, self.scoreboard.slot(slot)) {
                    (kind, Some(s)) if kind.is_background() => {
                        let service = match kind {
                            ProcessKind::ContainerReplicator => "container",
                            ProcessKind::AccountReplicator => "account",
                            _ => "object",
                        };
                        let ports = self.service_ports(service);
                        // A background role serves no socket: close the listeners.
                        close.extend(self.listeners.drain(..).map(|l| std::os::fd::OwnedFd::from(l.socket)));
                        crate::background::main(crate::background::BackgroundArgs {
                            kind,
                            config: &self.config,
                            slot: s,
                            close,
                            master_signals,
                            master: self.me,
                            scoreboard: self.scoreboard,
                            ports,
                        })
                    }
                    _ => crate::worker::run(crate::worker::WorkerArgs {
                        index,
                        slot,
                        generation: self.generation,
                        config: &self.config,
                        listeners: &self.listeners,
                        scoreboard: self.scoreboard,
                        close,
                        master_signals,
                        master: self.me,
                    }),
                }
            }
            Forked::Parent { pid } => {
                if let Some(s) = self.scoreboard.slot(slot) {
                    s.set_pid(pid.as_raw() as u64);
                }
                self.workers.push(Worker {
                    kind,
                    pid,
                    slot: Some(slot),
                    generation: self.generation,
                    index,
                    started: Instant::now(),
                    retiring: None,
                    killed: false,
                });
                match kind {
                    ProcessKind::Worker => {
                        log::info!("started worker {index} (pid {pid}, generation {})", self.generation)
                    }
                    _ => log::info!("started the {} (pid {pid}, generation {})", kind.name(), self.generation),
                }
                Ok(())
            }
        }
    }

    /// The ports of the listeners whose pipelines end in `service` (a ring
    /// device of this node is one whose replication port is among them).
    fn service_ports(&self, service: &str) -> Vec<u16> {
        self.listeners
            .iter()
            .filter_map(|l| match l.role {
                crate::listeners::Role::Data(i) => self.config.listen.get(i).map(|c| (c, l.local.port())),
                crate::listeners::Role::Admin => None,
            })
            .filter(|(c, _)| {
                c.pipeline.last().is_some_and(|p| p == service)
                    || c.routes.iter().any(|r| r.pipeline.last().is_some_and(|p| p == service))
            })
            .map(|(_, port)| port)
            .collect()
    }

    /// The background roles this generation runs: one updater per storage
    /// service in a pipeline that has one, and a replicator for each
    /// storage service in one (unless turned off).
    fn wanted_background(&self) -> Vec<ProcessKind> {
        let objects = self.config.replication.object_replicator;
        let dbs = self.config.replication.db_replicator;
        [
            ("object", ProcessKind::ObjectUpdater, true),
            ("container", ProcessKind::ContainerUpdater, true),
            ("object", ProcessKind::ObjectReplicator, objects),
            ("container", ProcessKind::ContainerReplicator, dbs),
            ("account", ProcessKind::AccountReplicator, dbs),
        ]
        .into_iter()
        .filter(|(service, _, on)| *on && self.config.uses(service))
        .map(|(_, kind, _)| kind)
        .collect()
    }

    pub(super) fn reap_workers(&mut self) -> Result<(), MasterError> {
        let now = Instant::now();
        let mut boot_failed = false;
        for (pid, exit) in reap_all() {
            let Some(i) = self.workers.iter().position(|w| w.pid == pid) else {
                log::debug!("reaped child {pid} that is not a worker: {}", exit.describe());
                continue;
            };
            let w = self.workers.swap_remove(i);
            self.free_slot(&w);
            if self.recycling == Some(pid) {
                self.recycling = None;
            }
            let lived = now.saturating_duration_since(w.started).as_secs_f64();
            if w.retiring.is_some() {
                log::info!("worker {pid} (generation {}) {} after retiring", w.generation, exit.describe());
                continue;
            }
            if exit == Exit::Code(ExitCode::BootFailure.code()) {
                log::error!("worker {pid} (generation {}) {}", w.generation, exit.describe());
                if w.generation == self.generation && self.reload.is_some() {
                    self.abort_reload("the new workers cannot boot");
                    continue;
                }
                // Stop once every exit reaped here is accounted for.
                boot_failed |= w.generation == self.generation;
                continue;
            }
            self.scoreboard.header().add_worker_crashes(1);
            log::warn!(
                "worker {pid} (generation {}) {} after {lived:.1}s; replacing it",
                w.generation,
                exit.describe()
            );
            if let Some(line) = self.crashes.record(now) {
                log::error!("{line}");
            }
        }
        if boot_failed {
            self.stop(Sig::SIGTERM, self.config.server.graceful_timeout);
            return Err(MasterError::BootFailure);
        }
        Ok(())
    }

    /// Kill workers whose heartbeat is older than `worker_timeout`, and
    /// retiring ones past `graceful_timeout`.
    pub(super) fn murder_workers(&mut self) {
        let now_ms = crate::clock::monotonic_ms();
        let limit_ms = self.config.server.worker_timeout.as_millis() as u64;
        let grace = self.config.server.graceful_timeout;
        let now = Instant::now();
        let mut hung = Vec::new();
        for w in &self.workers {
            if w.killed {
                continue;
            }
            if let Some(slot) = w.slot.and_then(|i| self.scoreboard.slot(i)) {
                let age = now_ms.saturating_sub(slot.heartbeat_ms());
                if age > limit_ms {
                    hung.push((w.pid, age));
                    continue;
                }
            }
            if w.retiring.is_some_and(|t| now.duration_since(t) >= grace) {
                hung.push((w.pid, 0));
            }
        }
        for (pid, age) in hung {
            if age > 0 {
                log::error!("worker {pid} stopped responding (no heartbeat for {:.1}s): SIGKILL", age as f64 / 1000.0);
                self.scoreboard.header().add_worker_timeouts(1);
            } else {
                log::warn!("worker {pid} did not finish within graceful_timeout: SIGKILL");
            }
            let _ = kill(pid, Sig::SIGKILL);
            if let Some(w) = self.workers.iter_mut().find(|w| w.pid == pid) {
                w.killed = true;
            }
        }
    }

    /// Converge on the wanted workers (see the module docs).
    pub(super) fn manage_workers(&mut self) -> Result<(), MasterError> {
        let generation = self.generation;
        for kind in self.wanted_background() {
            let running =
                self.workers.iter().any(|w| w.kind == kind && w.generation == generation && w.retiring.is_none());
            if running {
                continue;
            }
            let (ok, line) = self.crashes.may_spawn(Instant::now());
            if let Some(line) = line {
                log::info!("{line}");
            }
            if ok {
                self.spawn(kind, 0)?;
            }
        }
        // Pick one worker to recycle at a time.
        if self.recycling.is_none() {
            let flagged = self.workers.iter().find(|w| {
                w.kind == ProcessKind::Worker
                    && w.generation == generation
                    && w.retiring.is_none()
                    && w.slot.and_then(|i| self.scoreboard.slot(i)).is_some_and(|s| s.recycle() != 0)
            });
            if let Some(w) = flagged {
                log::info!("worker {} reached max_requests: starting its replacement", w.pid);
                self.recycling = Some(w.pid);
            }
        }
        let recycling = self.recycling;
        let wanted: Vec<usize> = self
            .workers
            .iter()
            .enumerate()
            .filter(|(_, w)| {
                w.kind == ProcessKind::Worker
                    && w.generation == generation
                    && w.retiring.is_none()
                    && Some(w.pid) != recycling
            })
            .map(|(i, _)| i)
            .collect();
        if wanted.len() < self.target {
            let used: Vec<usize> = wanted.iter().filter_map(|&i| self.workers.get(i)).map(|w| w.index).collect();
            let missing = self.target - wanted.len();
            let free_indexes: Vec<usize> = (0..).filter(|i| !used.contains(i)).take(missing).collect();
            for index in free_indexes {
                let (ok, line) = self.crashes.may_spawn(Instant::now());
                if let Some(line) = line {
                    log::info!("{line}");
                }
                if !ok {
                    break;
                }
                self.spawn(ProcessKind::Worker, index)?;
            }
            return Ok(());
        }
        if wanted.len() > self.target {
            let mut surplus: Vec<(Instant, Pid)> =
                wanted.iter().filter_map(|&i| self.workers.get(i)).map(|w| (w.started, w.pid)).collect();
            surplus.sort();
            for (_, pid) in surplus.into_iter().take(wanted.len() - self.target) {
                self.retire(pid, "fewer workers wanted");
            }
            return Ok(());
        }
        let all_ready =
            wanted.iter().filter_map(|&i| self.workers.get(i)).all(|w| self.slot_state(w) == Some(State::Ready));
        if !all_ready {
            return Ok(());
        }
        let old: Vec<Pid> =
            self.workers.iter().filter(|w| w.generation < generation && w.retiring.is_none()).map(|w| w.pid).collect();
        for pid in old {
            self.retire(pid, "replaced by the new generation");
        }
        if let Some(pid) = recycling {
            self.retire(pid, "replaced after max_requests");
        }
        if self.reload.is_some() {
            self.finish_reload();
        }
        if !self.ready_notified {
            self.ready_notified = true;
            // Serving: a failed upgrade can no longer go back, and need not.
            if self.rollback.take().is_some() {
                self.scoreboard.header().add_upgrades(1);
            }
            self.set_phase(Phase::Running);
            crate::notify::send(&format!("READY=1\nMAINPID={}\nSTATUS={}", self.me, self.addresses()));
            log::info!("generation {generation} ready: {} workers", self.target);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_quick_deaths_start_a_backoff_that_doubles_and_is_capped() {
        let mut c = CrashLoop::default();
        let t0 = Instant::now();
        for i in 0..4 {
            assert!(c.record(t0 + Duration::from_millis(i)).is_none());
        }
        let line = c.record(t0 + Duration::from_millis(5)).expect("state change is logged");
        assert!(line.contains("crash loop"), "{line}");
        assert_eq!(c.delay, Some(FIRST_BACKOFF));
        assert!(!c.may_spawn(t0 + Duration::from_millis(10)).0);
        assert!(c.may_spawn(t0 + Duration::from_secs(2)).0);
        c.record(t0 + Duration::from_secs(2));
        assert_eq!(c.delay, Some(FIRST_BACKOFF * 2));
        for i in 0..20 {
            c.record(t0 + Duration::from_secs(3) + Duration::from_millis(i));
        }
        assert_eq!(c.delay, Some(MAX_BACKOFF));
        let (ok, line) = c.may_spawn(t0 + Duration::from_secs(100));
        assert!(ok && line.is_some(), "calm again after a quiet spell");
    }

    #[test]
    fn deaths_spread_out_do_not_make_a_loop() {
        let mut c = CrashLoop::default();
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(c.record(t0 + Duration::from_secs(3 * i)).is_none());
        }
        assert!(c.may_spawn(t0 + Duration::from_secs(31)).0);
    }
}
