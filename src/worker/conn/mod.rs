//! One client connection: a state machine driven by readiness, completions
//! from pool threads and deadlines. Generic over the byte stream
//! ([`Stream`]), so its rules are unit-tested over an in-memory pipe
//! (`tests.rs`); the loop uses mio's `TcpStream`.
//!
//! ```text
//!            head parsed                      response written,
//!   Idle ───────────────────► Busy ─────────────────────────────► Idle
//!    │  ▲                      │   keep-alive and body consumed     (pipelined
//!    │  └──────────────────────┘                                   heads are
//!    │ protocol error / timeout     │ not keep-alive, error          parsed at
//!    ▼                              ▼                                once)
//!  Closing (flush the response; if the client may still be sending, shut
//!           down our side and read until EOF or the linger deadline) ──► closed
//! ```
//!
//! In `Busy`, three things progress independently: the request body
//! (`request_body.rs`: decoded from the socket into the body pipe once the
//! processor asks for it, or discarded after the response), the response
//! (`response.rs`: head and bytes into the write buffer; streamed chunks
//! pulled from the chunk pipe while the buffer is below its high-water
//! mark), and the write buffer (flushed while the socket is writable).
//! Readiness is edge-triggered, so `readable` and `writable` remember it
//! until an operation returns `WouldBlock`.
//!
//! Deadlines: `header_timeout` for a head once its first byte arrived (and
//! for a first request), `keepalive_timeout` between requests,
//! `body_timeout` while the body is being fed or discarded, `write_timeout`
//! while the client does not take the response, and a short linger when
//! closing. Every way out is a [`Close`] with its [`CloseReason`].
//!
//! The connection never reads more than it can hold: heads up to
//! `max_header_bytes`, body bytes only while the pipe has room, nothing while
//! a processor works on a request it has not asked the body of.

mod exchange;
mod request_body;
mod response;
#[cfg(test)]
mod tests;

use super::bridge::{ConnId, Outgoing};
use super::dispatch::{Dispatcher, ListenerInfo};
use crate::http::{parse_head, CloseReason, HeadLimits, HttpError};
use aerie_api::{Header, Method, Status, Version};
use request_body::ReqBody;
use response::Resp;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a closing connection waits for the client to stop sending.
const LINGER: Duration = Duration::from_secs(2);
/// Longest target kept for the access log.
const LOG_TARGET_MAX: usize = 512;

/// A byte stream a connection runs on: a socket, or a test's pipe.
pub trait Stream: Read + Write {
    /// Close our sending side (the client reads end of stream).
    fn shutdown_write(&mut self) -> io::Result<()>;

    /// Send small writes at once (`TCP_NODELAY`), from the connection's
    /// second write on: the first never waits for an acknowledgement, so a
    /// connection that writes once (one response, then close) saves the
    /// system call, as nginx does.
    fn set_nodelay(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for mio::net::TcpStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }

    fn set_nodelay(&mut self) -> io::Result<()> {
        mio::net::TcpStream::set_nodelay(self, true)
    }
}

/// Per-worker settings every connection reads.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Head limits.
    pub limits: HeadLimits,
    /// Idle time between requests.
    pub keepalive_timeout: Duration,
    /// Time to receive a whole head.
    pub header_timeout: Duration,
    /// Longest wait for body bytes.
    pub body_timeout: Duration,
    /// Longest wait for the client to take response bytes.
    pub write_timeout: Duration,
}

impl Settings {
    /// The connection settings of `[server]`.
    pub fn from_server(s: &crate::config::ServerConfig) -> Settings {
        Settings {
            limits: HeadLimits {
                max_request_line: s.max_request_line,
                max_header_bytes: s.max_header_bytes,
                max_headers: s.max_headers,
            },
            keepalive_timeout: s.keepalive_timeout,
            header_timeout: s.header_timeout,
            body_timeout: s.body_timeout,
            write_timeout: s.write_timeout,
        }
    }
}

/// What a connection needs from its worker while it runs.
pub struct Cx<'a> {
    /// Settings.
    pub settings: &'a Settings,
    /// Per-listener routing and limits.
    pub listeners: &'a [ListenerInfo],
    /// Pools, pipes and the device table, for starting requests.
    pub dispatch: Dispatcher<'a>,
    /// This loop turn's time.
    pub now: Instant,
    /// This second's `Date` value.
    pub date: &'a [u8],
    /// A read buffer shared by all connections of the loop.
    pub scratch: &'a mut [u8],
    /// Whether the worker is shutting down (no keep-alive).
    pub draining: bool,
}

/// The connection must be closed now, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close(pub CloseReason);

type Step = Result<bool, Close>;

struct Exchange {
    started: Instant,
    method: Method,
    target: String,
    version: Version,
    keep_alive: bool,
    body: Option<ReqBody>,
    resp: Resp,
    status: Status,
    bytes_out: u64,
    queue_wait: Option<Duration>,
    /// The server ended the body itself (limit, framing, timeout): this is
    /// the answer, whatever the processor makes of the truncated body.
    body_error: Option<HttpError>,
    /// The client went away in the middle of the request.
    client_gone: bool,
}

enum Phase {
    Idle,
    Busy(Box<Exchange>),
    Closing { linger: bool, shut: bool, since: Instant, reason: CloseReason },
}

/// A client connection.
pub struct Conn<S: Stream> {
    /// Identity across slab reuse.
    pub id: ConnId,
    sock: S,
    peer: SocketAddr,
    local: SocketAddr,
    listener: usize,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    wpos: usize,
    /// Edge-triggered readiness not yet consumed.
    pub readable: bool,
    /// A read that returns less than it asked for leaves the socket empty,
    /// so it consumes the readiness: the next bytes raise a new edge, and
    /// the `read() → WouldBlock` that would only say so is saved (one
    /// system call in three of a keep-alive exchange; nginx does the same
    /// with EPOLLRDHUP). The event loop sets it on each readiness event of
    /// a socket, unless the event says the peer closed its side or the
    /// socket failed: then reads go on until end of stream or `WouldBlock`,
    /// since no later edge would announce the close.
    pub short_read_drains: bool,
    /// Edge-triggered readiness not yet consumed.
    pub writable: bool,
    /// Written to before (the next write sets `TCP_NODELAY` first).
    wrote: bool,
    /// `TCP_NODELAY` is set.
    nodelay: bool,
    eof: bool,
    phase: Phase,
    idle_since: Instant,
    head_started: Option<Instant>,
    last_write: Instant,
    served: u64,
    /// The current deadline.
    pub deadline: Option<Instant>,
    /// The earliest deadline this connection has in the timer heap.
    pub timer_at: Option<Instant>,
}

impl<S: Stream> Conn<S> {
    /// A freshly accepted connection.
    pub fn new(id: ConnId, sock: S, peer: SocketAddr, local: SocketAddr, listener: usize, now: Instant) -> Conn<S> {
        Conn {
            id,
            sock,
            peer,
            local,
            listener,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            wpos: 0,
            readable: true,
            short_read_drains: false,
            writable: true,
            wrote: false,
            nodelay: false,
            eof: false,
            phase: Phase::Idle,
            idle_since: now,
            head_started: None,
            last_write: now,
            served: 0,
            deadline: None,
            timer_at: None,
        }
    }

    /// The stream (the loop registers sockets with its poll).
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.sock
    }

    /// Make as much progress as possible. `Err(Close)` means drop it.
    pub fn drive(&mut self, cx: &mut Cx<'_>) -> Result<(), Close> {
        loop {
            let progressed = match self.phase {
                Phase::Idle => self.step_idle(cx)?,
                Phase::Busy(_) => self.step_busy(cx)?,
                Phase::Closing { .. } => self.step_closing(cx)?,
            };
            if !progressed {
                break;
            }
        }
        self.deadline = self.compute_deadline(cx.settings);
        Ok(())
    }

    fn compute_deadline(&self, s: &Settings) -> Option<Instant> {
        match &self.phase {
            Phase::Idle => Some(match self.head_started {
                Some(t) => t + s.header_timeout,
                None if self.served == 0 => self.idle_since + s.header_timeout,
                None => self.idle_since + s.keepalive_timeout,
            }),
            Phase::Busy(ex) => {
                if self.wpos < self.wbuf.len() {
                    return Some(self.last_write + s.write_timeout);
                }
                ex.body.as_ref()?.deadline(s.body_timeout)
            }
            Phase::Closing { since, .. } => {
                if self.wpos < self.wbuf.len() {
                    Some(self.last_write + s.write_timeout)
                } else {
                    Some(*since + LINGER)
                }
            }
        }
    }

    /// The deadline passed: act on it.
    pub fn on_timeout(&mut self, cx: &mut Cx<'_>) -> Result<(), Close> {
        match &mut self.phase {
            Phase::Idle => {
                if self.head_started.is_some() || !self.rbuf.is_empty() {
                    log::debug!("{}: closing: request head not received in time", self.peer);
                    self.fail(HttpError::Timeout("request head not received in time"), cx);
                } else {
                    return Err(Close(CloseReason::IdleTimeout));
                }
            }
            Phase::Busy(ex) => {
                if self.wpos < self.wbuf.len() {
                    log::debug!("{}: closing: client stopped reading the response", self.peer);
                    return Err(Close(CloseReason::WriteTimeout));
                }
                let Some(b) = ex.body.as_mut() else { return Ok(()) };
                if b.discard || !matches!(ex.resp, Resp::Waiting) {
                    return Err(Close(CloseReason::BodyTimeout));
                }
                log::info!(
                    "{}: request body stalled for {:?}: aborting {}",
                    self.peer,
                    cx.settings.body_timeout,
                    ex.target
                );
                ex.body_error = Some(HttpError::Timeout("request body not received in time"));
                ex.keep_alive = false;
                b.end();
            }
            Phase::Closing { reason, .. } => return Err(Close(*reason)),
        }
        self.drive(cx)
    }

    fn read_some(&mut self, scratch: &mut [u8]) -> Result<usize, Close> {
        let mut r = Readiness { readable: &mut self.readable, drains: self.short_read_drains, eof: &mut self.eof };
        read_into(&mut self.sock, &mut self.rbuf, &mut r, self.peer, scratch)
    }

    fn flush(&mut self, now: Instant) -> Step {
        let mut progressed = false;
        while self.writable && self.wpos < self.wbuf.len() {
            if self.wrote && !self.nodelay {
                self.nodelay = true;
                if let Err(e) = self.sock.set_nodelay() {
                    log::debug!("{}: could not set TCP_NODELAY: {e}", self.peer);
                }
            }
            self.wrote = true;
            match self.sock.write(self.wbuf.get(self.wpos..).unwrap_or(&[])) {
                Ok(0) => return Err(Close(CloseReason::WriteError)),
                Ok(n) => {
                    self.wpos += n;
                    self.last_write = now;
                    progressed = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("{}: write failed: {e}", self.peer);
                    return Err(Close(CloseReason::WriteError));
                }
            }
        }
        if self.wpos >= self.wbuf.len() && self.wpos > 0 {
            self.wbuf.clear();
            self.wpos = 0;
            if self.wbuf.capacity() > 4 * response::WRITE_HIGH_WATER {
                self.wbuf = Vec::new();
            }
        }
        Ok(progressed)
    }

    fn pending_write(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    fn step_idle(&mut self, cx: &mut Cx<'_>) -> Step {
        if !self.rbuf.is_empty() {
            self.head_started.get_or_insert(cx.now);
            match parse_head(&self.rbuf, &cx.settings.limits) {
                Ok(Some(head)) => {
                    self.start_exchange(head, cx);
                    return Ok(true);
                }
                Ok(None) => {}
                Err(e) => {
                    log::debug!("{}: refused request: {e}", self.peer);
                    self.fail(e, cx);
                    return Ok(true);
                }
            }
        }
        if self.readable && !self.eof && self.rbuf.len() <= cx.settings.limits.max_header_bytes {
            let n = self.read_some(cx.scratch)?;
            if n > 0 || self.eof {
                return Ok(true);
            }
        }
        if self.eof {
            return Err(Close(CloseReason::ClientClosed));
        }
        if cx.draining && self.rbuf.is_empty() && self.served > 0 {
            // Between requests, with nothing more arrived: close our side
            // and read until the client closes too, so a request it sends
            // meanwhile meets a clean end of stream, never a reset.
            self.phase = Phase::Closing { linger: true, shut: false, since: cx.now, reason: CloseReason::Draining };
            return Ok(true);
        }
        Ok(false)
    }

    /// The processor asked for the body (and `100 Continue`, if the client
    /// expects one, with these headers).
    pub fn on_want_body(&mut self, headers: Vec<Header>, cx: &mut Cx<'_>) -> Result<(), Close> {
        if let Phase::Busy(ex) = &mut self.phase {
            let answered = !matches!(ex.resp, Resp::Waiting);
            if let Some(b) = ex.body.as_mut() {
                b.want(&mut self.wbuf, &headers, answered, cx.now);
            }
        }
        self.drive(cx)
    }

    /// The processor asks for another `100 Continue` mid-body: sent when
    /// the first was and nothing of the answer has been.
    pub fn on_interim_continue(&mut self, cx: &mut Cx<'_>) -> Result<(), Close> {
        if let Phase::Busy(ex) = &mut self.phase {
            let answered = !matches!(ex.resp, Resp::Waiting);
            if let Some(b) = ex.body.as_mut() {
                b.interim_continue(&mut self.wbuf, answered, cx.now);
            }
        }
        self.drive(cx)
    }

    /// A pipe has room or data again.
    pub fn on_pipe_ready(&mut self, cx: &mut Cx<'_>) -> Result<(), Close> {
        self.drive(cx)
    }

    fn step_busy(&mut self, cx: &mut Cx<'_>) -> Step {
        let mut progressed = self.pump_body(cx)?;
        progressed |= self.pull_response(cx.now)?;
        if self.pending_write() > 0 {
            progressed |= self.flush(cx.now)?;
        }
        let pending = self.pending_write();
        let Phase::Busy(ex) = &mut self.phase else { return Ok(progressed) };
        if !matches!(ex.resp, Resp::Written) || pending > 0 {
            return Ok(progressed);
        }
        if ex.body.as_ref().is_some_and(ReqBody::open) {
            // Discarding the rest of a body we did not need.
            return Ok(progressed);
        }
        self.finish(cx);
        Ok(true)
    }

    fn step_closing(&mut self, cx: &mut Cx<'_>) -> Step {
        let mut progressed = false;
        if self.pending_write() > 0 {
            progressed = self.flush(cx.now)?;
            if self.pending_write() > 0 {
                return Ok(progressed);
            }
        }
        let Phase::Closing { linger, shut, reason, .. } = &mut self.phase else { return Ok(progressed) };
        let reason = *reason;
        if !*linger {
            return Err(Close(reason));
        }
        if !*shut {
            *shut = true;
            // Our response is out; tell the client, then read whatever it is
            // still sending so that closing does not reset the connection and
            // destroy the response before the client has read it.
            if self.sock.shutdown_write().is_err() {
                return Err(Close(reason));
            }
        }
        while self.readable && !self.eof {
            self.rbuf.clear();
            self.read_some(cx.scratch)?;
            self.rbuf.clear();
            progressed = true;
        }
        if self.eof {
            return Err(Close(reason));
        }
        Ok(progressed)
    }
}

/// What a read consults and updates of a connection's read side.
struct Readiness<'a> {
    /// `Conn::readable`.
    readable: &'a mut bool,
    /// `Conn::short_read_drains`.
    drains: bool,
    /// End of stream seen.
    eof: &'a mut bool,
}

/// One read into `buf`: the bytes read, 0 at end of stream (`eof` set) or
/// when the socket has nothing now (`readable` cleared, as it is by a
/// short read when `drains`).
fn read_some<S: Read>(sock: &mut S, buf: &mut [u8], r: &mut Readiness<'_>, peer: SocketAddr) -> Result<usize, Close> {
    loop {
        match sock.read(buf) {
            Ok(0) => {
                *r.eof = true;
                *r.readable = false;
                return Ok(0);
            }
            Ok(n) => {
                if r.drains && n < buf.len() {
                    *r.readable = false;
                }
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                *r.readable = false;
                return Ok(0);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::debug!("{peer}: read failed: {e}");
                return Err(Close(CloseReason::ReadError));
            }
        }
    }
}

/// Read once into `scratch` and append what came to `rbuf`.
fn read_into<S: Read>(
    sock: &mut S,
    rbuf: &mut Vec<u8>,
    r: &mut Readiness<'_>,
    peer: SocketAddr,
    scratch: &mut [u8],
) -> Result<usize, Close> {
    let n = read_some(sock, scratch, r, peer)?;
    rbuf.extend_from_slice(scratch.get(..n).unwrap_or(&[]));
    Ok(n)
}

/// An answer the connection makes itself for a body it ended.
fn body_error_answer(e: &HttpError) -> Outgoing {
    Outgoing::text(e.status(), e.body(), Vec::new())
}
