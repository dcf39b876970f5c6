//! Reaping children and saying why they ended.

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `exit(code)`.
    Code(i32),
    /// Killed by a signal.
    Signal(nix::sys::signal::Signal, bool),
}

impl Exit {
    /// A human explanation for the log.
    pub fn describe(&self) -> String {
        match self {
            Exit::Code(0) => "exited cleanly".to_string(),
            Exit::Code(c) if *c == crate::exit::ExitCode::BootFailure.code() => {
                format!("exited with code {c} (could not boot)")
            }
            Exit::Code(c) => format!("exited with code {c}"),
            Exit::Signal(nix::sys::signal::Signal::SIGKILL, _) => {
                "killed by SIGKILL: perhaps out of memory?".to_string()
            }
            Exit::Signal(s, core) => format!("killed by {s}{}", if *core { " (core dumped)" } else { "" }),
        }
    }
}

/// Collect every child that has ended, without blocking.
pub fn reap_all() -> Vec<(Pid, Exit)> {
    let mut out = Vec::new();
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => out.push((pid, Exit::Code(code))),
            Ok(WaitStatus::Signaled(pid, s, core)) => out.push((pid, Exit::Signal(s, core))),
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => break,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                log::error!("waitpid failed: {e}");
                break;
            }
        }
    }
    out
}
