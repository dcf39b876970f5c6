//! What every child of the master does right after fork, in one place:
//! take on its role (log tag, process title, scoreboard pid), let go of the
//! master's signal handlers and master-only descriptors, drop privileges,
//! ask for SIGTERM when the master dies, install its own handlers (TERM:
//! graceful, INT/QUIT: now, USR1: reopen logs — each sets a flag and wakes
//! a self-pipe the child may poll), and start its log writer thread.
//!
//! It must run before the child starts any thread of its own (the log
//! writer is the first), and it never returns into master code: callers
//! end in `std::process::exit`.

use crate::role::{ProcessKind, Role};
use nix::sys::signal::Signal;
use signal_hook::SigId;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Why a child could not start.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// The signal self-pipe could not be made.
    #[error("could not make the signal pipe: {0}")]
    SignalPipe(std::io::Error),
    /// A handler could not be installed.
    #[error("could not handle signal {signal}: {source}")]
    Handler {
        /// The signal number.
        signal: i32,
        /// The cause.
        source: std::io::Error,
    },
    /// The configured user or group could not be taken on.
    #[error("{0}")]
    Privileges(String),
    /// The parent-death signal could not be set.
    #[error("could not set the parent-death signal: {0}")]
    ParentDeath(nix::Error),
    /// The log writer thread could not be started.
    #[error("could not start the log writer: {0}")]
    LogWriter(std::io::Error),
    /// The master exited while this child was starting.
    #[error("the master exited while this process was starting")]
    MasterGone,
}

impl ChildError {
    /// Every start-up failure of a child is a runtime failure (exit 1).
    pub fn exit_code(&self) -> crate::exit::ExitCode {
        crate::exit::ExitCode::Failure
    }

    /// How loud: the master going away meanwhile is part of a stop.
    pub fn level(&self) -> log::Level {
        match self {
            ChildError::MasterGone => log::Level::Warn,
            _ => log::Level::Error,
        }
    }
}

/// The signals a child acts on, set by its handlers.
#[derive(Debug, Default, Clone)]
pub struct SignalFlags {
    /// SIGTERM: graceful stop.
    pub term: Arc<AtomicBool>,
    /// SIGINT or SIGQUIT: stop now.
    pub quit: Arc<AtomicBool>,
    /// SIGUSR1: reopen log files.
    pub reopen: Arc<AtomicBool>,
}

impl SignalFlags {
    /// Whether a stop (either kind) was asked for.
    pub fn stopping(&self) -> bool {
        self.term.load(Ordering::Relaxed) || self.quit.load(Ordering::Relaxed)
    }
}

/// What the master hands every child at fork.
pub struct Inheritance<'a> {
    /// The child's role.
    pub role: Role,
    /// Its scoreboard slot.
    pub slot: crate::scoreboard::Slot,
    /// Master-only descriptors to close.
    pub close: Vec<OwnedFd>,
    /// The master's signal registrations to remove.
    pub master_signals: Vec<SigId>,
    /// The master's pid.
    pub master: nix::unistd::Pid,
    /// The user and group children run as.
    pub server: &'a crate::config::ServerConfig,
}

/// A started child: its signal flags and the read end of its self-pipe
/// (readable when a signal arrived).
pub struct Started {
    /// The flags.
    pub flags: SignalFlags,
    /// The self-pipe's read end (non-blocking).
    pub signal_rx: UnixStream,
    /// The master's pid (the expected parent).
    pub master: nix::unistd::Pid,
}

impl Started {
    /// Whether the master is still this process's parent.
    pub fn master_alive(&self) -> bool {
        nix::unistd::getppid() == self.master
    }

    /// Sleep until a signal arrives or `timeout` passes (background roles
    /// wait between passes here, so a stop is taken at once).
    pub fn wait(&self, timeout: Duration) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.signal_rx.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(ms));
        let mut buf = [0u8; 64];
        while matches!(std::io::Read::read(&mut &self.signal_rx, &mut buf), Ok(n) if n > 0) {}
    }
}

/// Post-fork hygiene for a child of any kind (see the module docs).
pub fn after_fork(inh: Inheritance<'_>) -> Result<Started, ChildError> {
    let Inheritance { role, slot, close, master_signals, master, server } = inh;
    crate::log::set_role(role);
    slot.set_pid(u64::from(std::process::id()));
    for id in master_signals {
        signal_hook::low_level::unregister(id);
    }
    drop(close);
    let title = match role {
        Role::Master => "aerie: master".to_string(),
        Role::Child(ProcessKind::Worker, _) => "aerie: worker".to_string(),
        Role::Child(kind, _) => format!("aerie: {}", kind.name()),
    };
    crate::sys::process::set_name(&title);
    // Credentials first: changing them clears the parent-death signal.
    crate::sys::process::drop_privileges(server.user.as_ref(), server.group.as_ref())
        .map_err(ChildError::Privileges)?;
    crate::sys::process::set_parent_death_signal(Signal::SIGTERM).map_err(ChildError::ParentDeath)?;
    let (rx, tx) = UnixStream::pair().map_err(ChildError::SignalPipe)?;
    rx.set_nonblocking(true).map_err(ChildError::SignalPipe)?;
    tx.set_nonblocking(true).map_err(ChildError::SignalPipe)?;
    let flags = SignalFlags::default();
    let reg = |signal: i32, flag: &Arc<AtomicBool>| -> Result<(), ChildError> {
        let handler = |source| ChildError::Handler { signal, source };
        signal_hook::flag::register(signal, flag.clone()).map_err(handler)?;
        let w = tx.try_clone().map_err(handler)?;
        signal_hook::low_level::pipe::register(signal, w).map_err(handler)?;
        Ok(())
    };
    reg(signal_hook::consts::SIGTERM, &flags.term)?;
    reg(signal_hook::consts::SIGINT, &flags.quit)?;
    reg(signal_hook::consts::SIGQUIT, &flags.quit)?;
    reg(signal_hook::consts::SIGUSR1, &flags.reopen)?;
    crate::log::start_writer().map_err(ChildError::LogWriter)?;
    if nix::unistd::getppid() != master {
        return Err(ChildError::MasterGone);
    }
    Ok(Started { flags, signal_rx: rx, master })
}

/// End a child: flush its log queue (briefly), then exit with `code`.
pub fn exit(code: crate::exit::ExitCode) -> ! {
    crate::log::flush(Duration::from_secs(1));
    code.exit()
}
