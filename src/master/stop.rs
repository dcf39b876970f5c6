//! Stopping: TERM is graceful (children finish what they are doing, up to
//! `graceful_timeout`), INT and QUIT are fast (a second, then SIGKILL). An
//! INT or QUIT that arrives during a graceful stop hurries it: the children
//! get SIGQUIT and the deadline shrinks to the fast one.

use super::signals::Signal;
use super::{reap, Master, MasterError};
use crate::scoreboard::Phase;
use nix::sys::signal::{kill, Signal as Sig};
use std::time::{Duration, Instant};

/// How long a fast stop waits before SIGKILL.
pub(super) const FAST_STOP: Duration = Duration::from_secs(1);

impl Master {
    pub(super) fn handle_term(&mut self) -> Result<(), MasterError> {
        crate::notify::send("STOPPING=1");
        log::info!("SIGTERM: graceful stop (up to {:?})", self.config.server.graceful_timeout);
        self.stop(Sig::SIGTERM, self.config.server.graceful_timeout);
        Ok(())
    }

    pub(super) fn handle_quit(&mut self) -> Result<(), MasterError> {
        crate::notify::send("STOPPING=1");
        log::info!("fast stop");
        self.stop(Sig::SIGQUIT, FAST_STOP);
        Ok(())
    }

    /// Signal every child, wait for them up to `grace` (cut short by INT or
    /// QUIT), then SIGKILL.
    pub(super) fn stop(&mut self, signal: Sig, grace: Duration) {
        self.set_phase(Phase::Stopping);
        for w in &self.workers {
            let _ = kill(w.pid, signal);
        }
        let mut deadline = Instant::now() + grace;
        let mut hurried = signal == Sig::SIGQUIT;
        let mut killed = false;
        while !self.workers.is_empty() {
            for (pid, exit) in reap::reap_all() {
                if let Some(i) = self.workers.iter().position(|w| w.pid == pid) {
                    let w = self.workers.swap_remove(i);
                    self.free_slot(&w);
                    log::info!("{} {pid} {}", w.kind.name(), exit.describe());
                }
            }
            // A child reaped before this stop began (a caller may hold its
            // exit status, e.g. when several died at once) no longer exists:
            // waiting for it would never end.
            let (gone, live): (Vec<_>, Vec<_>) = std::mem::take(&mut self.workers)
                .into_iter()
                .partition(|w| kill(w.pid, None) == Err(nix::errno::Errno::ESRCH));
            self.workers = live;
            for w in &gone {
                self.free_slot(w);
            }
            if self.workers.is_empty() {
                break;
            }
            if Instant::now() >= deadline && !killed {
                for w in &self.workers {
                    log::warn!("{} {} did not stop in time: SIGKILL", w.kind.name(), w.pid);
                    let _ = kill(w.pid, Sig::SIGKILL);
                }
                killed = true;
            }
            let signals = self.signals.wait(Duration::from_millis(50));
            if !hurried && signals.iter().any(|s| matches!(s, Signal::Int | Signal::Quit)) {
                hurried = true;
                log::info!("fast stop asked during the graceful stop: {} children get SIGQUIT", self.workers.len());
                for w in &self.workers {
                    let _ = kill(w.pid, Sig::SIGQUIT);
                }
                deadline = deadline.min(Instant::now() + FAST_STOP);
            }
        }
        log::info!("stopped");
    }

    /// SIGKILL and reap the children this image started (not those it
    /// inherited from the previous image), before going back to that image.
    pub(super) fn kill_own_workers(&mut self) {
        let own: Vec<_> = self.workers.iter().filter(|w| w.slot.is_some()).map(|w| w.pid).collect();
        for pid in &own {
            let _ = kill(*pid, Sig::SIGKILL);
        }
        for pid in own {
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        self.workers.retain(|w| w.slot.is_none());
    }
}
