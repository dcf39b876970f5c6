//! Accepting: every worker accepts on the same listening sockets, in
//! bounded batches, up to `max_connections`; a worker holding clearly more
//! than its share of the generation's connections leaves new ones to the
//! others for a few milliseconds (`server.accept_balance`).

use super::{EventLoop, CONN_BASE};
use crate::role::ProcessKind;
use crate::scoreboard::{Slot, State};
use crate::worker::bridge::ConnId;
use crate::worker::conn::Conn;
use mio::net::TcpStream;
use mio::{Interest, Token};
use std::io;
use std::time::{Duration, Instant};

/// Connections accepted per listener per loop turn, so one busy listener
/// cannot starve the connections already open.
const ACCEPT_BATCH: usize = 64;

/// Whether a slot is a worker of this generation that accepts connections
/// (the fair share is computed over these). The updaters have slots
/// too, but no connections: counting them made a lone worker defer accepts.
pub fn is_accepting_peer(s: &Slot, generation: u64) -> bool {
    s.state() == State::Ready && s.generation() == generation && s.kind() == ProcessKind::Worker
}

/// Poll again this soon while accepts are deferred to other workers.
pub(super) const DEFER_RECHECK: Duration = Duration::from_millis(2);
/// Accept anyway once pending connections waited this long for others.
const DEFER_MAX: Duration = Duration::from_millis(50);

impl EventLoop {
    /// Whether this worker holds clearly more than its share of the
    /// generation's connections. All workers accept on the same sockets and
    /// the kernel wakes them all; left alone, the one that wakes first takes
    /// a whole burst (measured: 2% to 64% of 50 keep-alive connections over
    /// 4 workers). A worker over its share leaves new connections to the
    /// others for a few milliseconds.
    fn over_fair_share(&self) -> bool {
        let n = self.peers.len() as u64;
        if n <= 1 || !self.accept_balance {
            return false;
        }
        let total: u64 = self.peers.iter().map(|s| s.connections()).sum();
        let mine = self.conns.len() as u64;
        // mine > total/n * 9/8 + 1, in integers.
        mine * n * 8 > total * 9 + 8 * n
    }

    pub(super) fn accept_all(&mut self, now: Instant) {
        if !self.listeners.iter().any(|l| l.more && l.sock.is_some()) {
            self.deferred_since = None;
            return;
        }
        if self.over_fair_share() {
            match self.deferred_since {
                None => {
                    self.deferred_since = Some(now);
                    return;
                }
                Some(t) if now.duration_since(t) < DEFER_MAX => return,
                Some(_) => {}
            }
        }
        self.deferred_since = None;
        for i in 0..self.listeners.len() {
            let mut accepted = 0;
            loop {
                if self.conns.len() >= self.max_connections {
                    if !self.accept_paused {
                        log::warn!(
                            "max_connections ({}) reached: not accepting until one closes",
                            self.max_connections
                        );
                    }
                    self.accept_paused = true;
                    return;
                }
                let Some(slot) = self.listeners.get_mut(i) else { break };
                if !slot.more {
                    break;
                }
                let Some(sock) = slot.sock.as_ref() else { break };
                if accepted >= ACCEPT_BATCH {
                    break;
                }
                match sock.accept() {
                    Ok((stream, peer)) => {
                        accepted += 1;
                        self.add_conn(stream, peer, i, now);
                        self.slot.set_connections(self.conns.len() as u64);
                        if self.over_fair_share() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => slot.more = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // EMFILE/ENFILE/ENOBUFS: the connection stays in the
                        // backlog; try again on the next turn (bounded by the
                        // one-second poll cap) instead of spinning.
                        log::warn!("accept failed: {e}");
                        slot.more = false;
                        break;
                    }
                }
            }
        }
    }

    fn add_conn(&mut self, mut stream: TcpStream, peer: std::net::SocketAddr, listener: usize, now: Instant) {
        // A listener bound to a specific address is the local address; only
        // a wildcard listener needs to ask the kernel which one was used.
        let bound = self.listeners.get(listener).map(|l| l.local);
        let local = match bound {
            Some(a) if !a.ip().is_unspecified() => a,
            _ => match stream.local_addr() {
                Ok(a) => a,
                Err(e) => {
                    log::debug!("{peer}: connection lost before setup: {e}");
                    return;
                }
            },
        };
        self.serial += 1;
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let id = ConnId { key, serial: self.serial };
        if let Err(e) =
            self.poll.registry().register(&mut stream, Token(CONN_BASE + key), Interest::READABLE | Interest::WRITABLE)
        {
            log::warn!("could not register a connection: {e}");
            return;
        }
        entry.insert(Conn::new(id, stream, peer, local, listener, now));
        self.slot.add_accepted(1);
        self.with_conn(key, now, |c, cx| c.drive(cx));
    }
}

#[cfg(test)]
mod tests {
    use super::is_accepting_peer;
    use crate::role::ProcessKind;
    use crate::scoreboard::{Scoreboard, State};

    #[test]
    fn only_ready_workers_of_the_generation_are_peers() {
        let sb = Scoreboard::create().expect("map");
        let w = sb.slot(sb.claim(3, 0, ProcessKind::Worker).expect("slot")).expect("slot");
        let u = sb.slot(sb.claim(3, 0, ProcessKind::ObjectUpdater).expect("slot")).expect("slot");
        let old = sb.slot(sb.claim(2, 0, ProcessKind::Worker).expect("slot")).expect("slot");
        for s in [w, u, old] {
            s.set_state(State::Ready);
        }
        assert!(is_accepting_peer(&w, 3));
        assert!(!is_accepting_peer(&u, 3), "the updater accepts nothing");
        assert!(!is_accepting_peer(&old, 3), "an older generation is draining");
        w.set_state(State::Starting);
        assert!(!is_accepting_peer(&w, 3));
    }
}
