//! The worker's mio loop: accept, drive connections, route completions,
//! fire deadlines, and drain on shutdown.
//!
//! Tokens: [`SIGNAL`] (the worker's signal pipe), [`WAKER`] (completions from
//! pool threads), listeners from [`LISTENER_BASE`], connections from
//! [`CONN_BASE`] (plus their slab key). All sockets are registered once,
//! edge-triggered, for both directions; connections remember readiness until
//! an operation returns `WouldBlock` (see `conn.rs`).
//!
//! One loop turn: poll (timeout = next deadline, 0 when an accept batch was
//! cut short, at most one second), handle events, drain completions, fire due
//! deadlines, resume paused accepts, and once a second check that the master
//! is still our parent. On SIGTERM the loop stops accepting, closes idle
//! connections, lets busy ones finish without keep-alive, and returns when
//! none are left (the master kills it after `graceful_timeout` regardless).

mod accept;

use super::bridge::{Completion, ConnId, Notifier};
use super::conn::{Close, Conn, Cx, Settings};
use super::dispatch::{Dispatcher, ListenerInfo};
use super::pool::Pools;
use super::timer::Timers;
use crate::child::SignalFlags;
use crate::exit::ExitCode;
use crate::http::date::http_date;
use crate::http::CloseReason;
use crate::scoreboard::{Scoreboard, Slot, State};
use accept::{is_accepting_peer, DEFER_RECHECK};
use crossbeam_channel::Receiver;
use mio::net::{TcpListener, TcpStream, UnixStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use std::io::{self, Read};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The worker's signal pipe.
pub const SIGNAL: Token = Token(0);
/// Completions from pool threads.
pub const WAKER: Token = Token(1);
/// First listener token.
pub const LISTENER_BASE: usize = 2;
/// First connection token.
pub const CONN_BASE: usize = 1 << 16;
pub(super) struct ListenerSlot {
    pub(super) sock: Option<TcpListener>,
    pub(super) local: std::net::SocketAddr,
    /// An accept batch was cut short: accept again without waiting.
    pub(super) more: bool,
}

/// Everything a worker's loop owns.
pub struct EventLoop {
    pub(super) poll: Poll,
    pub(super) listeners: Vec<ListenerSlot>,
    pub(super) infos: Vec<ListenerInfo>,
    pub(super) conns: Slab<Conn<TcpStream>>,
    pub(super) serial: u64,
    pub(super) timers: Timers,
    pub(super) pools: Pools,
    pub(super) notifier: Notifier,
    pub(super) completions: Receiver<Completion>,
    pub(super) settings: Settings,
    pub(super) max_connections: usize,
    pub(super) signal_rx: UnixStream,
    pub(super) flags: SignalFlags,
    pub(super) draining: bool,
    pub(super) accept_paused: bool,
    pub(super) scratch: Vec<u8>,
    pub(super) date_secs: u64,
    pub(super) date: [u8; 29],
    pub(super) master: nix::unistd::Pid,
    pub(super) last_parent_check: Instant,
    pub(super) slot: Slot,
    pub(super) max_requests: Option<u64>,
    pub(super) scoreboard: Scoreboard,
    /// Slots of the ready workers of this generation (refreshed each tick).
    pub(super) peers: Vec<Slot>,
    /// Since when accepting has been deferred to less busy workers.
    pub(super) deferred_since: Option<Instant>,
    pub(super) accept_balance: bool,
}

/// What the loop needs to start.
pub struct LoopParts {
    /// The listeners, in config order.
    pub listeners: Vec<(TcpListener, ListenerInfo)>,
    /// Connection settings.
    pub settings: Settings,
    /// Per-worker connection cap.
    pub max_connections: usize,
    /// Pool settings.
    pub pools: std::collections::BTreeMap<String, crate::config::PoolConfig>,
    /// The CPU priority of device lanes' threads (replication).
    pub lane_nice: i32,
    /// The read end of the signal pipe.
    pub signal_rx: UnixStream,
    /// The flags the handlers set.
    pub flags: SignalFlags,
    /// The master's pid (our expected parent).
    pub master: nix::unistd::Pid,
    /// This worker's scoreboard slot.
    pub slot: Slot,
    /// Ask to be replaced after this many requests.
    pub max_requests: Option<u64>,
    /// The shared scoreboard (to see the other workers' load).
    pub scoreboard: Scoreboard,
    /// Defer accepts while over the fair share of connections.
    pub accept_balance: bool,
}

impl EventLoop {
    /// Register everything with a new poll.
    pub fn new(parts: LoopParts) -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (notifier, completions) = Notifier::new(waker);
        let mut signal_rx = parts.signal_rx;
        poll.registry().register(&mut signal_rx, SIGNAL, Interest::READABLE)?;
        let mut listeners = Vec::new();
        let mut infos = Vec::new();
        for (i, (mut sock, info)) in parts.listeners.into_iter().enumerate() {
            poll.registry().register(&mut sock, Token(LISTENER_BASE + i), Interest::READABLE)?;
            let local = sock.local_addr()?;
            listeners.push(ListenerSlot { sock: Some(sock), local, more: true });
            infos.push(info);
        }
        let now = Instant::now();
        Ok(EventLoop {
            pools: Pools::new(parts.pools, notifier.clone()).with_lane_nice(parts.lane_nice),
            poll,
            listeners,
            infos,
            conns: Slab::new(),
            serial: 0,
            timers: Timers::default(),
            notifier,
            completions,
            settings: parts.settings,
            max_connections: parts.max_connections,
            signal_rx,
            flags: parts.flags,
            draining: false,
            accept_paused: false,
            scratch: vec![0; 64 * 1024],
            date_secs: 0,
            date: http_date(0),
            master: parts.master,
            last_parent_check: now,
            slot: parts.slot,
            max_requests: parts.max_requests,
            scoreboard: parts.scoreboard,
            peers: Vec::new(),
            deferred_since: None,
            accept_balance: parts.accept_balance,
        })
    }

    fn refresh_clock(&mut self) -> Instant {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if secs != self.date_secs {
            self.date_secs = secs;
            self.date = http_date(secs);
            self.tick();
        }
        Instant::now()
    }

    /// Once a second: heartbeat and figures for the scoreboard.
    fn tick(&mut self) {
        self.slot.beat();
        let generation = self.slot.generation();
        self.peers = self.scoreboard.slots().map(|(_, s)| s).filter(|s| is_accepting_peer(s, generation)).collect();
        self.slot.set_connections(self.conns.len() as u64);
        self.slot.set_log_dropped(crate::log::dropped());
        self.pools.report(&self.slot);
        if let Some(limit) = self.max_requests {
            if self.slot.recycle() == 0 && self.slot.requests() >= limit {
                log::info!("served {} requests (max_requests {limit}): asking to be replaced", self.slot.requests());
                self.slot.set_recycle(1);
            }
        }
    }

    /// Run until stopped; returns the process exit code.
    pub fn run(mut self) -> ExitCode {
        let mut events = Events::with_capacity(1024);
        self.tick();
        self.slot.set_state(State::Ready);
        loop {
            let now = self.refresh_clock();
            let timeout = if self.deferred_since.is_some() {
                Some(DEFER_RECHECK)
            } else if self.listeners.iter().any(|l| l.more && l.sock.is_some()) && !self.accept_paused {
                Some(Duration::ZERO)
            } else {
                let cap = now + Duration::from_secs(1);
                Some(self.timers.next().map_or(cap, |t| t.min(cap)).saturating_duration_since(now))
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!("poll failed: {e}");
                    return ExitCode::Failure;
                }
            }
            let now = self.refresh_clock();
            for event in events.iter() {
                match event.token() {
                    SIGNAL => self.drain_signal_pipe(),
                    WAKER => {}
                    Token(t) if (LISTENER_BASE..CONN_BASE).contains(&t) => {
                        if let Some(l) = self.listeners.get_mut(t - LISTENER_BASE) {
                            l.more = true;
                        }
                    }
                    Token(t) => {
                        let key = t - CONN_BASE;
                        if let Some(c) = self.conns.get_mut(key) {
                            if event.is_readable() || event.is_read_closed() || event.is_error() {
                                c.readable = true;
                                c.short_read_drains = !(event.is_read_closed() || event.is_error());
                            }
                            if event.is_writable() || event.is_write_closed() || event.is_error() {
                                c.writable = true;
                            }
                            self.with_conn(key, now, |c, cx| c.drive(cx));
                        }
                    }
                }
            }
            self.handle_completions(now);
            self.fire_timers(now);
            if self.flags.quit.load(Ordering::Relaxed) {
                log::info!("stopping now (fast shutdown)");
                return ExitCode::Ok;
            }
            if self.flags.term.load(Ordering::Relaxed) && !self.draining {
                self.start_draining(now);
            }
            if self.flags.reopen.swap(false, Ordering::Relaxed) {
                // The log's writer thread reopens the files; this only asks.
                if let Err(e) = crate::log::reopen() {
                    log::error!("could not reopen the log files: {e}");
                }
            }
            if !self.draining && !self.accept_paused {
                self.accept_all(now);
            }
            if self.draining && self.conns.is_empty() {
                log::info!("drained: exiting");
                return ExitCode::Ok;
            }
            if now.duration_since(self.last_parent_check) >= Duration::from_secs(1) {
                self.last_parent_check = now;
                if nix::unistd::getppid() != self.master {
                    log::warn!("the master (pid {}) is gone: exiting", self.master);
                    return ExitCode::Ok;
                }
            }
        }
    }

    fn drain_signal_pipe(&mut self) {
        let mut buf = [0u8; 64];
        loop {
            match self.signal_rx.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    }

    fn start_draining(&mut self, now: Instant) {
        self.draining = true;
        self.slot.set_state(State::Draining);
        log::info!("graceful stop: no longer accepting; {} connections open", self.conns.len());
        for l in &mut self.listeners {
            if let Some(mut s) = l.sock.take() {
                let _ = self.poll.registry().deregister(&mut s);
            }
        }
        // Every connection takes a step with `draining` set: idle ones read
        // what may have arrived (and serve it with `Connection: close`) or
        // close cleanly; busy ones will answer without keep-alive.
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.with_conn(key, now, |c, cx| c.drive(cx));
        }
    }

    /// Run `f` on a connection with a fresh context; close it on `Err`, and
    /// keep its deadline in the heap.
    pub(super) fn with_conn<F>(&mut self, key: usize, now: Instant, f: F)
    where
        F: FnOnce(&mut Conn<TcpStream>, &mut Cx<'_>) -> Result<(), Close>,
    {
        let Some(conn) = self.conns.get_mut(key) else { return };
        let mut cx = Cx {
            settings: &self.settings,
            listeners: &self.infos,
            dispatch: Dispatcher {
                pools: &mut self.pools,
                notifier: &self.notifier,
                scoreboard: self.scoreboard,
                slot: self.slot,
            },
            now,
            date: &self.date,
            scratch: &mut self.scratch,
            draining: self.draining,
        };
        match f(conn, &mut cx) {
            Ok(()) => {
                if let Some(d) = conn.deadline {
                    match conn.timer_at {
                        Some(t) if t <= d => {}
                        old => {
                            if let Some(t) = old {
                                self.timers.cancel(t, key, conn.id.serial);
                            }
                            conn.timer_at = Some(d);
                            self.timers.schedule(d, key, conn.id.serial);
                        }
                    }
                }
            }
            Err(Close(reason)) => self.close(key, reason),
        }
    }

    fn close(&mut self, key: usize, reason: CloseReason) {
        self.slot.add_closed(reason.index());
        if self.conns.contains(key) {
            let conn = self.conns.remove(key);
            if let Some(t) = conn.timer_at {
                self.timers.cancel(t, key, conn.id.serial);
            }
            // Dropping the socket closes it, which removes it from epoll: no
            // separate deregistration syscall on the per-connection path.
            drop(conn);
            self.slot.set_connections(self.conns.len() as u64);
        }
        if self.accept_paused && self.conns.len() < self.max_connections {
            self.accept_paused = false;
            for l in &mut self.listeners {
                l.more = true;
            }
        }
    }

    fn lookup(&self, id: ConnId) -> bool {
        self.conns.get(id.key).is_some_and(|c| c.id.serial == id.serial)
    }

    fn handle_completions(&mut self, now: Instant) {
        while let Ok(c) = self.completions.try_recv() {
            match c {
                Completion::WantBody { conn, headers } => {
                    if self.lookup(conn) {
                        self.with_conn(conn.key, now, |c, cx| c.on_want_body(headers, cx));
                    }
                }
                Completion::InterimContinue(conn) => {
                    if self.lookup(conn) {
                        self.with_conn(conn.key, now, |c, cx| c.on_interim_continue(cx));
                    }
                }
                Completion::BodyRoom(conn) | Completion::ChunksReady(conn) => {
                    if self.lookup(conn) {
                        self.with_conn(conn.key, now, |c, cx| c.on_pipe_ready(cx));
                    }
                }
                Completion::Response(conn, out) => {
                    if self.lookup(conn) {
                        self.with_conn(conn.key, now, |c, cx| {
                            c.on_response(out, cx);
                            c.drive(cx)
                        });
                    }
                }
            }
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        for (key, serial) in self.timers.due(now) {
            let Some(conn) = self.conns.get_mut(key) else { continue };
            if conn.id.serial != serial {
                continue;
            }
            conn.timer_at = None;
            match conn.deadline {
                Some(d) if d <= now => self.with_conn(key, now, |c, cx| c.on_timeout(cx)),
                Some(d) => {
                    conn.timer_at = Some(d);
                    self.timers.schedule(d, key, serial);
                }
                None => {}
            }
        }
    }
}
