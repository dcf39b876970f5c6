//! A worker process: what runs in the child after fork, until it exits.
//!
//! [`run`] never returns: it ends in [`crate::child::exit`], so no worker
//! path can unwind into master code. Its sequence:
//!
//! 1. [`crate::child::after_fork`], the hygiene every child does;
//! 2. build every listener's pipelines (processor construction may fail:
//!    exit with [`ExitCode::BootFailure`], which the master treats as fatal
//!    instead of restarting in a loop);
//! 3. run the event loop; thread pools are created inside it, on demand.
//!
//! The rooms: `event_loop` (poll, accept, deadlines, drain), `conn` (one
//! connection's state machine), `dispatch` (route, 405, inline call, pool
//! submission, overload), `pool` (per-key threads), `bridge` (what crosses
//! between the loop and the pool threads), `queue` (the bounded queues they
//! cross in, whose blocked side parks at once), `timer` (deadlines).

pub mod bridge;
pub mod conn;
pub mod dispatch;
pub mod event_loop;
pub mod pool;
pub mod queue;
pub mod timer;

use crate::child::{self, ChildError, Inheritance};
use crate::config::Config;
use crate::exit::ExitCode;
use crate::listeners::{Listener, Role as ListenerRole};
use crate::role::{ProcessKind, Role};
use dispatch::ListenerInfo;
use event_loop::{EventLoop, LoopParts};
use std::os::fd::OwnedFd;

/// What the master hands a new worker.
pub struct WorkerArgs<'a> {
    /// This worker's index in its generation (for log lines).
    pub index: usize,
    /// Its scoreboard slot.
    pub slot: usize,
    /// Its config generation.
    pub generation: u64,
    /// The shared scoreboard.
    pub scoreboard: crate::scoreboard::Scoreboard,
    /// The validated configuration.
    pub config: &'a Config,
    /// The bound listeners, in config order.
    pub listeners: &'a [Listener],
    /// Master-only descriptors to close in the child.
    pub close: Vec<OwnedFd>,
    /// The master's signal registrations to remove in the child.
    pub master_signals: Vec<signal_hook::SigId>,
    /// The master's pid.
    pub master: nix::unistd::Pid,
}

/// Why a worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The master gave a slot that does not exist.
    #[error("no scoreboard slot {0}")]
    Slot(usize),
    /// The after-fork steps failed.
    #[error(transparent)]
    Child(#[from] ChildError),
    /// A listener names a `[[listen]]` section that does not exist.
    #[error("no [[listen]] number {0}")]
    NoListenSection(usize),
    /// A pipeline could not be built.
    #[error("{0}")]
    BuildPipeline(aerie_api::BuildError),
    /// A listening socket could not be taken over.
    #[error("could not use listener {address}: {source}")]
    Listener {
        /// Its address.
        address: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The poll or its waker could not be set up.
    #[error("could not set up the event loop: {0}")]
    EventLoop(std::io::Error),
}

impl WorkerError {
    /// The exit code: boot failure for a processor that cannot be built (the
    /// master stops then), a runtime failure otherwise.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            WorkerError::BuildPipeline(_) => ExitCode::BootFailure,
            WorkerError::Child(e) => e.exit_code(),
            _ => ExitCode::Failure,
        }
    }

    /// How loud: a master that went away while this worker started is
    /// expected during a stop; anything else needs an operator.
    pub fn level(&self) -> log::Level {
        match self {
            WorkerError::Child(e) => e.level(),
            _ => log::Level::Error,
        }
    }
}

/// Run a worker to completion and exit the process.
pub fn run(args: WorkerArgs<'_>) -> ! {
    let code = match boot(args) {
        Ok(event_loop) => event_loop.run(),
        Err(e) => {
            log::log!(e.level(), "worker could not start: {e}");
            e.exit_code()
        }
    };
    child::exit(code)
}

fn boot(args: WorkerArgs<'_>) -> Result<EventLoop, WorkerError> {
    let WorkerArgs { index, slot, generation, scoreboard, config, listeners, close, master_signals, master } = args;
    let slot_id = slot;
    let slot = scoreboard.slot(slot).ok_or(WorkerError::Slot(slot_id))?;
    let started = child::after_fork(Inheritance {
        role: Role::Child(ProcessKind::Worker, index),
        slot,
        close,
        master_signals,
        master,
        server: &config.server,
    })?;
    let mut parts = Vec::with_capacity(listeners.len());
    for l in listeners {
        let info = match l.role {
            ListenerRole::Admin => ListenerInfo::admin(scoreboard),
            ListenerRole::Data(i) => {
                let cfg = config.listen.get(i).ok_or(WorkerError::NoListenSection(i))?;
                ListenerInfo::build(config, cfg).map_err(WorkerError::BuildPipeline)?
            }
        };
        let sock = l.socket.try_clone().map_err(|source| WorkerError::Listener { address: l.local, source })?;
        parts.push((mio::net::TcpListener::from_std(sock), info));
    }
    let s = &config.server;
    let settings = conn::Settings::from_server(s);
    let event_loop = EventLoop::new(LoopParts {
        listeners: parts,
        settings,
        max_connections: s.max_connections,
        pools: config.pools.clone(),
        lane_nice: config.replication.nice_priority,
        signal_rx: mio::net::UnixStream::from_std(started.signal_rx),
        flags: started.flags,
        master,
        slot,
        max_requests: max_requests(config),
        scoreboard,
        accept_balance: s.accept_balance,
    })
    .map_err(WorkerError::EventLoop)?;
    log::info!("worker started (generation {generation})");
    Ok(event_loop)
}

/// This worker's request limit: `max_requests` plus a jitter drawn from
/// the pid and the clock (no randomness crate needed for spreading).
fn max_requests(config: &Config) -> Option<u64> {
    let base = config.server.max_requests;
    if base == 0 {
        return None;
    }
    let jitter = config.server.max_requests_jitter;
    let seed = u64::from(std::process::id()).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ crate::clock::unix_ms();
    Some(base + if jitter == 0 { 0 } else { seed % (jitter + 1) })
}
