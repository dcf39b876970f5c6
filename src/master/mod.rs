//! The master process: binds, forks, supervises, reloads, upgrades, stops.
//! It never serves a request and never starts a thread (fork copies only
//! the calling thread).
//!
//! Phases ([`Phase`], in the scoreboard and `/status` as `master.phase`;
//! systemd sees the notifications):
//!
//! ```text
//! Starting ─(all workers of generation 1 ready)─► Running   READY=1
//! Running ─HUP─► Reloading ─(new generation ready)─► Running   RELOADING=1 … READY=1
//!                   └─(bad config / new workers cannot boot)─► Running (old generation kept)
//! Running ─USR2─► Upgrading ─(exec of the binary, same pid)─► Starting, the old workers retiring
//!                   └─(the new binary fails its check, or fails before ready:
//!                      exec back to the old one)─► Running
//! Running ─TERM─► Stopping (graceful; INT/QUIT hurry it) ─► exit 0      STOPPING=1
//! Running ─INT/QUIT─► Stopping (fast) ─► exit 0
//! ```
//!
//! The run loop is gunicorn's: wait for a signal (at most a second), handle
//! each as `handle_<signal>`, then reap children, kill hung ones, and
//! converge on the wanted set of workers (`workers.rs`).

mod devices;
mod reap;
mod reload;
mod signals;
mod stop;
mod upgrade;
mod workers;

use crate::config::{Config, Overrides, Source};
use crate::exit::ExitCode;
use crate::listeners::{Listener, Role};
use crate::role::ProcessKind;
use crate::scoreboard::{Phase, Scoreboard};
use nix::sys::signal::{kill, Signal as Sig};
use nix::unistd::Pid;
use signals::{Signal, Signals};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use workers::{CrashLoop, Worker};

pub use upgrade::{
    inherited_from_env as upgrade_env, Inherited as UpgradeInherited, UPGRADE_GENERATION_ENV, UPGRADE_WORKERS_ENV,
};

/// Why the master stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// Signal handlers could not be installed.
    #[error("could not install signal handlers: {0}")]
    Signals(std::io::Error),
    /// The scoreboard could not be mapped.
    #[error("could not create the scoreboard: {0}")]
    Scoreboard(nix::Error),
    /// fork(2) failed.
    #[error("could not fork a worker: {0}")]
    Fork(nix::Error),
    /// The pid file could not be written.
    #[error("could not write the pid file {0}: {1}")]
    PidFile(PathBuf, std::io::Error),
    /// Workers cannot boot.
    #[error("workers cannot start (see the error above); stopping instead of restarting them in a loop")]
    BootFailure,
    /// The image an upgrade started did not get its first generation ready
    /// in time.
    #[error("the first generation was not ready within {0:?}")]
    NotReady(Duration),
}

impl MasterError {
    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            MasterError::BootFailure => ExitCode::BootFailure,
            _ => ExitCode::Failure,
        }
    }

    /// Every way the master stops abnormally needs an operator.
    pub fn level(&self) -> log::Level {
        log::Level::Error
    }
}

/// How the master was started.
pub struct Startup {
    /// Where the config came from (re-read on HUP).
    pub source: Source,
    /// Command-line overrides (re-applied on HUP).
    pub overrides: Overrides,
    /// The validated config.
    pub config: Config,
    /// The listeners for it.
    pub listeners: Vec<Listener>,
    /// The binary to re-exec on USR2.
    pub exe: PathBuf,
    /// The arguments to re-exec it with.
    pub args: Vec<OsString>,
    /// What the previous image handed over (USR2): its workers, the
    /// generation to start with, and the way back to it.
    pub inherited: UpgradeInherited,
}

/// The master's state.
pub struct Master {
    source: Source,
    overrides: Overrides,
    config: Config,
    generation: u64,
    listeners: Vec<Listener>,
    scoreboard: Scoreboard,
    signals: Signals,
    workers: Vec<Worker>,
    target: usize,
    reload: Option<reload::Pending>,
    crashes: CrashLoop,
    recycling: Option<Pid>,
    exe: PathBuf,
    args: Vec<OsString>,
    me: Pid,
    ready_notified: bool,
    /// Until the first generation is ready after a USR2: the way back to
    /// the previous image.
    rollback: Option<upgrade::Rollback>,
    started: Instant,
    devices_checked: Instant,
    known_devices: Vec<String>,
    device_health: std::collections::HashMap<crate::scoreboard::QueueId, devices::Health>,
}

impl Master {
    /// Take over bound listeners, map the scoreboard, install the handlers.
    pub fn new(s: Startup) -> Result<Master, MasterError> {
        let scoreboard = Scoreboard::create().map_err(MasterError::Scoreboard)?;
        let signals = Signals::install().map_err(MasterError::Signals)?;
        let h = scoreboard.header();
        h.set_phase(Phase::Starting);
        h.set_generation(s.inherited.generation);
        h.set_target_workers(s.config.server.workers as u64);
        if s.inherited.rolled_back {
            h.add_failed_upgrades(1);
        }
        let now = Instant::now();
        let workers = s
            .inherited
            .workers
            .iter()
            .map(|&(pid, generation)| Worker {
                kind: ProcessKind::Worker,
                pid,
                slot: None,
                generation,
                index: 0,
                started: now,
                retiring: None,
                killed: false,
            })
            .collect();
        let mut m = Master {
            target: s.config.server.workers,
            source: s.source,
            overrides: s.overrides,
            config: s.config,
            generation: s.inherited.generation,
            listeners: s.listeners,
            scoreboard,
            signals,
            workers,
            reload: None,
            crashes: CrashLoop::default(),
            recycling: None,
            exe: s.exe,
            args: s.args,
            me: nix::unistd::getpid(),
            ready_notified: false,
            rollback: s.inherited.rollback,
            started: now,
            devices_checked: now,
            known_devices: Vec::new(),
            device_health: std::collections::HashMap::new(),
        };
        // Workers must know the node's devices before their first request.
        m.scan_devices();
        Ok(m)
    }

    fn addresses(&self) -> String {
        let data: Vec<String> =
            self.listeners.iter().filter(|l| l.role != Role::Admin).map(|l| l.local.to_string()).collect();
        let mut s = format!("listening on {}", data.join(" "));
        if let Some(a) = self.listeners.iter().find(|l| l.role == Role::Admin) {
            s.push_str(&format!("; admin {}", a.local));
        }
        s
    }

    fn set_phase(&self, p: Phase) {
        self.scoreboard.header().set_phase(p);
    }

    /// Run until stopped. An image started by an upgrade that fails before
    /// its first generation is ready goes back to the previous image (same
    /// pid, same sockets) instead of ending the node.
    pub fn run(mut self) -> Result<(), MasterError> {
        crate::sys::process::set_name("aerie: master");
        self.write_pid_file()?;
        log::info!("{}; generation {}, {} workers", self.addresses(), self.generation, self.target);
        let result = self.main_loop();
        if let Err(e) = &result {
            if let Some(rollback) = self.rollback.take() {
                log::error!("the upgraded binary failed before serving ({e}): going back to the previous one");
                self.kill_own_workers();
                let why = rollback.exec(&self.args);
                log::error!("could not go back to the previous binary: {why}");
            }
        }
        self.remove_pid_file();
        result
    }

    fn main_loop(&mut self) -> Result<(), MasterError> {
        loop {
            self.manage_workers()?;
            if self.rollback.is_some() && self.started.elapsed() > self.config.server.worker_timeout {
                return Err(MasterError::NotReady(self.config.server.worker_timeout));
            }
            let mut timeout = self.crashes.next_spawn().map_or(Duration::from_secs(1), |t| {
                t.saturating_duration_since(Instant::now()).clamp(Duration::from_millis(10), Duration::from_secs(1))
            });
            if self.workers_starting() {
                // Workers report readiness through the scoreboard, not a
                // signal: look again soon.
                timeout = timeout.min(Duration::from_millis(20));
            }
            for s in self.signals.wait(timeout) {
                match s {
                    Signal::Term => return self.handle_term(),
                    Signal::Int | Signal::Quit => return self.handle_quit(),
                    Signal::Hup => self.handle_hup(),
                    Signal::Ttin => self.handle_ttin(),
                    Signal::Ttou => self.handle_ttou(),
                    Signal::Usr1 => self.handle_usr1(),
                    Signal::Usr2 => self.handle_usr2(),
                    Signal::Chld => {}
                }
            }
            self.reap_workers()?;
            self.murder_workers();
            self.watch_devices();
        }
    }

    fn workers_starting(&self) -> bool {
        self.workers.iter().any(|w| {
            w.retiring.is_none()
                && w.slot
                    .and_then(|i| self.scoreboard.slot(i))
                    .is_some_and(|s| s.state() == crate::scoreboard::State::Starting)
        })
    }

    fn handle_ttin(&mut self) {
        if self.target >= crate::scoreboard::MAX_WORKERS {
            log::warn!("SIGTTIN: already at the maximum of {} workers", self.target);
            return;
        }
        self.target += 1;
        self.scoreboard.header().set_target_workers(self.target as u64);
        log::info!("SIGTTIN: {} workers wanted", self.target);
    }

    fn handle_ttou(&mut self) {
        if self.target <= 1 {
            log::warn!("SIGTTOU: keeping the last worker");
            return;
        }
        self.target -= 1;
        self.scoreboard.header().set_target_workers(self.target as u64);
        log::info!("SIGTTOU: {} workers wanted", self.target);
    }

    fn handle_usr1(&mut self) {
        match crate::log::reopen() {
            Ok(()) => log::info!("SIGUSR1: log files reopened"),
            Err(e) => log::error!("SIGUSR1: could not reopen the log files: {e}"),
        }
        self.chown_logs();
        for w in &self.workers {
            let _ = kill(w.pid, Sig::SIGUSR1);
        }
    }

    /// Give the log files to the workers' user so they can reopen them.
    fn chown_logs(&self) {
        let Some((_, uid, gid)) = &self.config.server.user else { return };
        let gid = self.config.server.group.as_ref().map_or(*gid, |g| g.1);
        for p in [&self.config.log.error_log, &self.config.log.access_log].into_iter().flatten() {
            if let Err(e) = nix::unistd::chown(
                p.as_path(),
                Some(nix::unistd::Uid::from_raw(*uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            ) {
                log::warn!("could not hand {} to the workers' user: {e}", p.display());
            }
        }
    }

    fn write_pid_file(&self) -> Result<(), MasterError> {
        let Some(path) = &self.config.server.pid_file else { return Ok(()) };
        let tmp = path.with_extension("pid.tmp");
        let err = |e| MasterError::PidFile(path.clone(), e);
        std::fs::write(&tmp, format!("{}\n", self.me)).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)?;
        Ok(())
    }

    fn remove_pid_file(&self) {
        let Some(path) = &self.config.server.pid_file else { return };
        // Only our own: a new master may already have written its pid.
        if std::fs::read_to_string(path).is_ok_and(|s| s.trim() == self.me.to_string()) {
            let _ = std::fs::remove_file(path);
        }
    }
}
