//! The master's signals: handlers only set a flag and write a byte to a
//! self-pipe (signal-hook's `flag` and `low_level::pipe`); the loop waits on
//! the pipe, drains it first, then takes the flags and dispatches to
//! `handle_<signal>` in [`super`].

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use signal_hook::consts as sig;
use signal_hook::SigId;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A signal the master acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Reload.
    Hup,
    /// Graceful stop.
    Term,
    /// Fast stop.
    Int,
    /// Fast stop.
    Quit,
    /// A child changed state.
    Chld,
    /// One worker more.
    Ttin,
    /// One worker fewer.
    Ttou,
    /// Reopen log files.
    Usr1,
    /// Upgrade the binary in place.
    Usr2,
}

impl Signal {
    // Order matters when several arrive together: stops first, then the
    // rest in a fixed order.
    const ALL: [Signal; 9] = [
        Signal::Term,
        Signal::Int,
        Signal::Quit,
        Signal::Chld,
        Signal::Usr1,
        Signal::Hup,
        Signal::Usr2,
        Signal::Ttin,
        Signal::Ttou,
    ];

    fn number(self) -> i32 {
        match self {
            Signal::Hup => sig::SIGHUP,
            Signal::Term => sig::SIGTERM,
            Signal::Int => sig::SIGINT,
            Signal::Quit => sig::SIGQUIT,
            Signal::Chld => sig::SIGCHLD,
            Signal::Ttin => sig::SIGTTIN,
            Signal::Ttou => sig::SIGTTOU,
            Signal::Usr1 => sig::SIGUSR1,
            Signal::Usr2 => sig::SIGUSR2,
        }
    }
}

/// The registered handlers and the pipe they write to.
pub struct Signals {
    flags: Vec<(Signal, Arc<AtomicBool>)>,
    rx: Option<UnixStream>,
    ids: Vec<SigId>,
}

impl Signals {
    /// Install the handlers.
    pub fn install() -> std::io::Result<Signals> {
        let (rx, tx) = UnixStream::pair()?;
        rx.set_nonblocking(true)?;
        tx.set_nonblocking(true)?;
        let mut flags = Vec::new();
        let mut ids = Vec::new();
        for s in Signal::ALL {
            let flag = Arc::new(AtomicBool::new(false));
            ids.push(signal_hook::flag::register(s.number(), flag.clone())?);
            ids.push(signal_hook::low_level::pipe::register(s.number(), tx.try_clone()?)?);
            flags.push((s, flag));
        }
        Ok(Signals { flags, rx: Some(rx), ids })
    }

    /// Wait until a signal arrives or `timeout` passes, then return the
    /// signals that arrived (each at most once, in a fixed order).
    pub fn wait(&mut self, timeout: Duration) -> Vec<Signal> {
        if let Some(rx) = self.rx.as_mut() {
            let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(rx.as_fd(), PollFlags::POLLIN)];
            // EINTR just means a signal arrived: the flags below say which.
            let _ = poll(&mut fds, PollTimeout::from(ms));
            let mut buf = [0u8; 64];
            while matches!(rx.read(&mut buf), Ok(n) if n > 0) {}
        }
        self.flags.iter().filter(|(_, f)| f.swap(false, Ordering::SeqCst)).map(|(s, _)| *s).collect()
    }

    /// For a new worker: the registrations to remove and the pipe to close.
    /// Called only in the child after fork; the master's copy is untouched.
    pub fn take_for_child(&mut self) -> (Vec<SigId>, Vec<OwnedFd>) {
        let fds = self.rx.take().map(|s| vec![OwnedFd::from(s)]).unwrap_or_default();
        (std::mem::take(&mut self.ids), fds)
    }
}
