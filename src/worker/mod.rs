//! A worker process: what runs in the child after fork, until it exits.
//!
//! [`run`] never returns: it ends in `std::process::exit`, so no worker path
//! can unwind into master code. Its sequence:
//!
//! 1. [`after_fork`]: mark the log role, drop the master's signal handlers
//!    and self-pipe, install the worker's own (TERM: graceful, INT/QUIT:
//!    now), ask for SIGTERM when the master dies, name the process;
//! 2. build every listener's pipelines (processor construction may fail:
//!    exit with [`crate::error::EXIT_BOOT_FAILURE`], which the master treats
//!    as fatal instead of restarting in a loop);
//! 3. run the event loop; thread pools are created inside it, on demand.

pub mod body;
pub mod completion;
pub mod conn;
pub mod dispatch;
pub mod event_loop;
pub mod pool;
pub mod timer;

use crate::config::Config;
use crate::error::{EXIT_BOOT_FAILURE, EXIT_FAILURE};
use crate::listeners::{Listener, Role};
use dispatch::ListenerInfo;
use event_loop::{EventLoop, LoopParts, SignalFlags};
use nix::sys::signal::Signal;
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

/// Run a worker to completion and exit the process.
pub fn run(args: WorkerArgs<'_>) -> ! {
    let code = match boot(args) {
        Ok(event_loop) => event_loop.run(),
        Err((code, why)) => {
            log::error!("worker could not start: {why}");
            code
        }
    };
    std::process::exit(code)
}

fn boot(args: WorkerArgs<'_>) -> Result<EventLoop, (i32, String)> {
    let WorkerArgs { index, slot, generation, scoreboard, config, listeners, close, master_signals, master } = args;
    crate::log::set_worker(index);
    let slot = scoreboard.slot(slot).ok_or((EXIT_FAILURE, format!("no scoreboard slot {slot}")))?;
    slot.set_pid(u64::from(std::process::id()));
    let (signal_rx, flags) = after_fork(close, master_signals, config).map_err(|e| (EXIT_FAILURE, e))?;
    if nix::unistd::getppid() != master {
        return Err((EXIT_FAILURE, "the master exited while this worker was starting".into()));
    }
    let mut parts = Vec::with_capacity(listeners.len());
    for l in listeners {
        let info = match l.role {
            Role::Admin => ListenerInfo::admin(scoreboard),
            Role::Data(i) => {
                let cfg = config.listen.get(i).ok_or((EXIT_FAILURE, format!("no [[listen]] number {i}")))?;
                ListenerInfo::build(config, cfg).map_err(|e| (EXIT_BOOT_FAILURE, e.to_string()))?
            }
        };
        let sock =
            l.socket.try_clone().map_err(|e| (EXIT_FAILURE, format!("could not use listener {}: {e}", l.local)))?;
        parts.push((mio::net::TcpListener::from_std(sock), info));
    }
    let s = &config.server;
    let settings = conn::Settings {
        limits: crate::http::HeadLimits {
            max_request_line: s.max_request_line,
            max_header_bytes: s.max_header_bytes,
            max_headers: s.max_headers,
        },
        keepalive_timeout: s.keepalive_timeout,
        header_timeout: s.header_timeout,
        body_timeout: s.body_timeout,
        write_timeout: s.write_timeout,
    };
    let event_loop = EventLoop::new(LoopParts {
        listeners: parts,
        settings,
        max_connections: s.max_connections,
        pools: config.pools.clone(),
        signal_rx,
        flags,
        master,
        slot,
        max_requests: max_requests(config),
        scoreboard,
        accept_balance: s.accept_balance,
    })
    .map_err(|e| (EXIT_FAILURE, format!("could not set up the event loop: {e}")))?;
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
    let seed = u64::from(std::process::id()).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ crate::scoreboard::unix_ms();
    Some(base + if jitter == 0 { 0 } else { seed % (jitter + 1) })
}

/// Post-fork hygiene, in one place.
fn after_fork(
    close: Vec<OwnedFd>,
    master_signals: Vec<signal_hook::SigId>,
    config: &Config,
) -> Result<(mio::net::UnixStream, SignalFlags), String> {
    for id in master_signals {
        signal_hook::low_level::unregister(id);
    }
    drop(close);
    crate::sys::process::set_name("aerie: worker");
    // Credentials first: changing them clears the parent-death signal.
    crate::sys::process::drop_privileges(config.server.user.as_ref(), config.server.group.as_ref())?;
    crate::sys::process::set_parent_death_signal(Signal::SIGTERM)
        .map_err(|e| format!("could not set the parent-death signal: {e}"))?;
    let (rx, tx) =
        std::os::unix::net::UnixStream::pair().map_err(|e| format!("could not make the signal pipe: {e}"))?;
    rx.set_nonblocking(true).map_err(|e| e.to_string())?;
    tx.set_nonblocking(true).map_err(|e| e.to_string())?;
    let flags = SignalFlags::default();
    let reg = |sig: i32, flag: &std::sync::Arc<std::sync::atomic::AtomicBool>| -> Result<(), String> {
        signal_hook::flag::register(sig, flag.clone()).map_err(|e| format!("could not handle signal {sig}: {e}"))?;
        let w = tx.try_clone().map_err(|e| e.to_string())?;
        signal_hook::low_level::pipe::register(sig, w).map_err(|e| format!("could not handle signal {sig}: {e}"))?;
        Ok(())
    };
    reg(signal_hook::consts::SIGTERM, &flags.term)?;
    reg(signal_hook::consts::SIGINT, &flags.quit)?;
    reg(signal_hook::consts::SIGQUIT, &flags.quit)?;
    reg(signal_hook::consts::SIGUSR1, &flags.reopen)?;
    Ok((mio::net::UnixStream::from_std(rx), flags))
}
