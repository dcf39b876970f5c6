//! One client connection: a state machine driven by readiness, completions
//! from pool threads and deadlines.
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
//! (decoded from the socket into the body pipe once the processor asks for
//! it, or discarded after the response), the response (head and bytes into
//! the write buffer; streamed chunks pulled from the chunk pipe while the
//! buffer is below its high-water mark), and the write buffer (flushed while
//! the socket is writable). Readiness is edge-triggered, so `readable` and
//! `writable` remember it until an operation returns `WouldBlock`.
//!
//! The connection never reads more than it can hold: heads up to
//! `max_header_bytes`, body bytes only while the pipe has room, nothing while
//! a processor works on a request it has not asked the body of.

use super::body::{body_pipe, BodyMsg, BodyTx, ChunkMsg, ChunkRx, InlineBody, Sent};
use super::completion::{ConnId, Notifier, ResponseBody};
use super::dispatch::ListenerInfo;
use super::pool::{Job, Pools, Refused};
use crate::http::framing::{encode_chunk, LAST_CHUNK};
use crate::http::response::{declared_length, framing, write_continue, write_head, Framing};
use crate::http::{parse_head, BodyDecoder, ChunkedDecoder, HeadLimits, HttpError};
use aerie_api::{
    Body, BodyFraming, Executor, Header, Method, Request, RequestBody, RequestHead, RequestHeadParts, Status, Version,
};
use mio::net::TcpStream;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

/// Largest decoded chunk handed to a pool thread at once.
const BODY_CHUNK: usize = 64 * 1024;
/// Read no further ahead of the body decoder than this.
const READ_AHEAD: usize = 64 * 1024;
/// Stop pulling response chunks while this much is waiting to be written.
const WRITE_HIGH_WATER: usize = 128 * 1024;
/// An unread request body up to this size is read and discarded after the
/// response so the connection can be kept; a larger one closes it.
const DISCARD_LIMIT: u64 = 1024 * 1024;
/// How long a closing connection waits for the client to stop sending.
const LINGER: Duration = Duration::from_secs(2);
/// Longest target kept for the access log.
const LOG_TARGET_MAX: usize = 512;

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

/// What a connection needs from its worker while it runs.
pub struct Cx<'a> {
    /// Settings.
    pub settings: &'a Settings,
    /// Per-listener routing and limits.
    pub listeners: &'a [ListenerInfo],
    /// The pools.
    pub pools: &'a mut Pools,
    /// The completion path for pipes.
    pub notifier: &'a Notifier,
    /// This loop turn's time.
    pub now: Instant,
    /// This second's `Date` value.
    pub date: &'a [u8],
    /// A read buffer shared by all connections of the loop.
    pub scratch: &'a mut [u8],
    /// Whether the worker is shutting down (no keep-alive).
    pub draining: bool,
    /// This worker's scoreboard slot (request counters).
    pub slot: crate::scoreboard::Slot,
}

/// The connection must be closed now.
#[derive(Debug)]
pub struct Close;

type Step = Result<bool, Close>;

struct ReqBody {
    decoder: BodyDecoder,
    received: u64,
    max: u64,
    wanted: bool,
    expect_continue: bool,
    continue_sent: bool,
    tx: Option<BodyTx>,
    pending: Option<BodyMsg>,
    /// Nothing more will be decoded (complete, failed or abandoned).
    ended: bool,
    /// Decode and drop the rest (the processor answered without it).
    discard: bool,
    last_progress: Instant,
}

enum Resp {
    Waiting,
    Streaming { rx: ChunkRx, chunked: bool, remaining: Option<u64> },
    Written,
}

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
    body_error: Option<HttpError>,
}

enum Phase {
    Idle,
    Busy(Box<Exchange>),
    Closing { linger: bool, shut: bool, since: Instant },
}

/// A client connection.
pub struct Conn {
    /// Identity across slab reuse.
    pub id: ConnId,
    sock: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    listener: usize,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    wpos: usize,
    /// Edge-triggered readiness not yet consumed.
    pub readable: bool,
    /// Edge-triggered readiness not yet consumed.
    pub writable: bool,
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

impl Conn {
    /// A freshly accepted connection.
    pub fn new(
        id: ConnId,
        sock: TcpStream,
        peer: SocketAddr,
        local: SocketAddr,
        listener: usize,
        now: Instant,
    ) -> Conn {
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
            writable: true,
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
                let b = ex.body.as_ref()?;
                let feeding = (b.wanted || b.discard) && !b.ended && b.pending.is_none();
                feeding.then(|| b.last_progress + s.body_timeout)
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
                    return Err(Close);
                }
            }
            Phase::Busy(ex) => {
                if self.wpos < self.wbuf.len() {
                    log::debug!("{}: closing: client stopped reading the response", self.peer);
                    return Err(Close);
                }
                let Some(b) = ex.body.as_mut() else { return Ok(()) };
                if b.discard || !matches!(ex.resp, Resp::Waiting) {
                    return Err(Close);
                }
                log::info!(
                    "{}: request body stalled for {:?}: aborting {}",
                    self.peer,
                    cx.settings.body_timeout,
                    ex.target
                );
                ex.body_error = Some(HttpError::Timeout("request body not received in time"));
                ex.keep_alive = false;
                b.tx = None;
                b.pending = None;
                b.ended = true;
            }
            Phase::Closing { .. } => return Err(Close),
        }
        self.drive(cx)
    }

    fn read_some(&mut self, scratch: &mut [u8]) -> Result<usize, Close> {
        read_into(&mut self.sock, &mut self.rbuf, &mut self.readable, &mut self.eof, self.peer, scratch)
    }

    fn flush(&mut self, now: Instant) -> Step {
        let mut progressed = false;
        while self.writable && self.wpos < self.wbuf.len() {
            match self.sock.write(self.wbuf.get(self.wpos..).unwrap_or(&[])) {
                Ok(0) => return Err(Close),
                Ok(n) => {
                    self.wpos += n;
                    self.last_write = now;
                    progressed = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("{}: write failed: {e}", self.peer);
                    return Err(Close);
                }
            }
        }
        if self.wpos >= self.wbuf.len() && self.wpos > 0 {
            self.wbuf.clear();
            self.wpos = 0;
            if self.wbuf.capacity() > 4 * WRITE_HIGH_WATER {
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
            return Err(Close);
        }
        if cx.draining && self.rbuf.is_empty() && self.served > 0 {
            // Between requests, with nothing more arrived: close our side
            // and read until the client closes too, so a request it sends
            // meanwhile meets a clean end of stream, never a reset.
            self.phase = Phase::Closing { linger: true, shut: false, since: cx.now };
            return Ok(true);
        }
        Ok(false)
    }

    /// Answer a protocol error and close.
    fn fail(&mut self, e: HttpError, cx: &mut Cx<'_>) {
        let status = e.status();
        let body = e.body();
        let headers = [Header::new("Content-Type", &b"text/plain; charset=UTF-8"[..])];
        write_head(
            &mut self.wbuf,
            status,
            &headers,
            Framing::Length(body.len() as u64),
            Version::Http11,
            false,
            cx.date,
        );
        self.wbuf.extend_from_slice(body.as_bytes());
        log::info!(
            target: crate::log::ACCESS,
            "peer={} method=- path=- status={} in=0 out={} dur_ms=0.000 wait_ms=- error=\"{}\"",
            self.peer,
            status.0,
            body.len(),
            e
        );
        self.rbuf = Vec::new();
        cx.slot.add_requests(1);
        self.phase = Phase::Closing { linger: true, shut: false, since: cx.now };
    }

    fn start_exchange(&mut self, parsed: crate::http::ParsedHead, cx: &mut Cx<'_>) {
        let len = parsed.len;
        let raw: Vec<u8> = self.rbuf.get(..len).unwrap_or(&[]).to_vec();
        self.rbuf.drain(..len.min(self.rbuf.len()));
        self.head_started = None;
        let listener = match cx.listeners.get(self.listener) {
            Some(l) => l,
            None => {
                self.fail(HttpError::BadRequest("no such listener"), cx);
                return;
            }
        };
        let head = RequestHead::new(RequestHeadParts {
            raw,
            method: parsed.method,
            target: parsed.target,
            version: parsed.version,
            headers: parsed.headers,
            peer: self.peer,
            local: self.local,
            framing: parsed.framing,
            expect_continue: parsed.expect_continue,
        });
        if parsed.framing == BodyFraming::None && listener.length_required.contains(head.method()) {
            self.fail(HttpError::LengthRequired, cx);
            return;
        }
        if let BodyFraming::Length(n) = parsed.framing {
            if n > listener.max_body_size {
                self.fail(HttpError::PayloadTooLarge, cx);
                return;
            }
        }
        let mut target = String::from_utf8_lossy(head.target()).into_owned();
        if target.len() > LOG_TARGET_MAX {
            let mut cut = LOG_TARGET_MAX;
            while !target.is_char_boundary(cut) {
                cut -= 1;
            }
            target.truncate(cut);
        }
        let decoder = match parsed.framing {
            BodyFraming::None | BodyFraming::Length(0) => None,
            BodyFraming::Length(n) => Some(BodyDecoder::Length(n)),
            BodyFraming::Chunked => {
                Some(BodyDecoder::Chunked(ChunkedDecoder::new(cx.settings.limits.max_header_bytes)))
            }
        };
        let body = decoder.map(|decoder| ReqBody {
            decoder,
            received: 0,
            max: listener.max_body_size,
            wanted: false,
            expect_continue: head.expect_continue(),
            continue_sent: false,
            tx: None,
            pending: None,
            ended: false,
            discard: false,
            last_progress: cx.now,
        });
        let mut ex = Box::new(Exchange {
            started: cx.now,
            method: head.method().clone(),
            target,
            version: head.version(),
            keep_alive: parsed.keep_alive,
            body,
            resp: Resp::Waiting,
            status: Status::OK,
            bytes_out: 0,
            queue_wait: None,
            body_error: None,
        });
        let pipeline = listener.route(head.raw_path()).clone();
        if let Some(allowed) = pipeline.processor.allowed_methods() {
            if !allowed.contains(head.method()) {
                let allow = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
                self.phase = Phase::Busy(ex);
                let resp = aerie_api::Response::text(Status::METHOD_NOT_ALLOWED, "method not allowed\n")
                    .with_header("Allow", allow.into_bytes());
                self.on_response(resp.status, resp.headers, into_response_body(resp.body), Duration::ZERO, cx);
                return;
            }
        }
        match pipeline.processor.executor(&head) {
            Executor::Inline => {
                let body = if ex.body.is_some() {
                    RequestBody::from_source(Box::new(InlineBody))
                } else {
                    RequestBody::empty()
                };
                self.phase = Phase::Busy(ex);
                // A panic here unwinds out of the loop and ends the worker;
                // the master starts a new one. Inline code must not panic.
                let resp = pipeline.processor.call(Request { head, body });
                self.on_response(resp.status, resp.headers, into_response_body(resp.body), Duration::ZERO, cx);
            }
            Executor::Pooled(key) => {
                let body = match ex.body.as_mut() {
                    Some(b) => {
                        let (tx, source) = body_pipe(cx.notifier.clone(), self.id);
                        b.tx = Some(tx);
                        RequestBody::from_source(Box::new(source))
                    }
                    None => RequestBody::empty(),
                };
                let job = Job {
                    processor: pipeline.processor.clone(),
                    request: Request { head, body },
                    conn: self.id,
                    enqueued: cx.now,
                };
                let refused = cx.pools.submit(pipeline.terminal, key.clone(), job);
                self.phase = Phase::Busy(ex);
                match refused {
                    Ok(()) => {}
                    Err(Refused::Full) => {
                        log::debug!("{}: queue {}:{key} is full: 503", self.peer, pipeline.terminal);
                        self.answer_503("queue full", cx);
                    }
                    Err(Refused::NoQueue(why)) => {
                        log::warn!("no queue for {}:{key}: {why}", pipeline.terminal);
                        self.answer_503("no queue available", cx);
                    }
                }
            }
        }
    }

    fn answer_503(&mut self, why: &'static str, cx: &mut Cx<'_>) {
        let resp = aerie_api::Response::text(Status::SERVICE_UNAVAILABLE, format!("{why}; retry later\n"))
            .with_header("Retry-After", &b"1"[..]);
        self.on_response(resp.status, resp.headers, into_response_body(resp.body), Duration::ZERO, cx);
    }

    /// The processor asked for the body.
    pub fn on_want_body(&mut self, headers: Vec<Header>, cx: &mut Cx<'_>) -> Result<(), Close> {
        if let Phase::Busy(ex) = &mut self.phase {
            if let Some(b) = ex.body.as_mut() {
                if !b.wanted {
                    b.wanted = true;
                    b.last_progress = cx.now;
                    if b.expect_continue && !b.continue_sent && matches!(ex.resp, Resp::Waiting) {
                        write_continue(&mut self.wbuf, &headers);
                        b.continue_sent = true;
                    }
                }
            }
        }
        self.drive(cx)
    }

    /// The processor answered.
    pub fn on_response(
        &mut self,
        mut status: Status,
        mut headers: Vec<Header>,
        mut body: ResponseBody,
        queue_wait: Duration,
        cx: &mut Cx<'_>,
    ) {
        let Phase::Busy(ex) = &mut self.phase else { return };
        if !matches!(ex.resp, Resp::Waiting) {
            return;
        }
        ex.queue_wait = Some(queue_wait);
        if let Some(e) = ex.body_error.take() {
            // The server ended the body (limit, framing error, timeout); that,
            // not what the processor made of the truncated body, is the answer.
            status = e.status();
            headers = vec![Header::new("Content-Type", &b"text/plain; charset=UTF-8"[..])];
            body = ResponseBody::Bytes(e.body().into_bytes().into());
            ex.keep_alive = false;
        }
        if status.0 < 200 {
            log::error!("processor answered {} to {}: sending 500 instead", status.0, ex.target);
            status = Status::INTERNAL_SERVER_ERROR;
            headers.clear();
            body = ResponseBody::Empty;
        }
        if let Some(b) = ex.body.as_mut() {
            b.tx = None;
            b.pending = None;
            if !b.ended && !b.decoder.is_done() {
                let unsent_expected = b.expect_continue && !b.continue_sent;
                let small = b.decoder.remaining().is_some_and(|r| r <= DISCARD_LIMIT);
                if !unsent_expected && small && ex.keep_alive {
                    b.discard = true;
                } else {
                    ex.keep_alive = false;
                    b.ended = true;
                }
            }
        }
        if cx.draining {
            ex.keep_alive = false;
        }
        let head_request = ex.method == Method::Head;
        let len = match &body {
            ResponseBody::Empty => Some(0),
            ResponseBody::Bytes(b) => Some(b.len() as u64),
            ResponseBody::Stream { len, .. } => *len,
        };
        let fr = framing(status, ex.version, head_request, len, declared_length(&headers));
        if fr == Framing::Close {
            ex.keep_alive = false;
        }
        ex.status = status;
        write_head(&mut self.wbuf, status, &headers, fr, ex.version, ex.keep_alive, cx.date);
        let sends_body = matches!(fr, Framing::Length(_) | Framing::Chunked | Framing::Close);
        ex.resp = match body {
            ResponseBody::Stream { len, rx } if sends_body => {
                Resp::Streaming { rx, chunked: fr == Framing::Chunked, remaining: len }
            }
            ResponseBody::Bytes(b) if sends_body => {
                self.wbuf.extend_from_slice(&b);
                ex.bytes_out += b.len() as u64;
                Resp::Written
            }
            _ => Resp::Written,
        };
    }

    /// A pipe has room or data again.
    pub fn on_pipe_ready(&mut self, cx: &mut Cx<'_>) -> Result<(), Close> {
        self.drive(cx)
    }

    fn step_busy(&mut self, cx: &mut Cx<'_>) -> Step {
        let mut progressed = self.pump_body(cx)?;
        progressed |= self.pull_response()?;
        if self.pending_write() > 0 {
            progressed |= self.flush(cx.now)?;
        }
        let pending = self.pending_write();
        let Phase::Busy(ex) = &mut self.phase else { return Ok(progressed) };
        if !matches!(ex.resp, Resp::Written) || pending > 0 {
            return Ok(progressed);
        }
        let body_open = ex.body.as_ref().is_some_and(|b| !b.ended && !b.decoder.is_done());
        if body_open {
            // Discarding the rest of a body we did not need.
            return Ok(progressed);
        }
        self.finish(cx)?;
        Ok(true)
    }

    fn finish(&mut self, cx: &mut Cx<'_>) -> Result<(), Close> {
        let Phase::Busy(ex) = std::mem::replace(&mut self.phase, Phase::Idle) else { return Ok(()) };
        self.served += 1;
        let bytes_in = ex.body.as_ref().map_or(0, |b| b.received);
        cx.slot.add_requests(1);
        cx.slot.add_bytes_in(bytes_in);
        cx.slot.add_bytes_out(ex.bytes_out);
        let body_clean = ex.body.as_ref().is_none_or(|b| b.decoder.is_done());
        let wait = ex.queue_wait.map_or_else(|| "-".to_string(), |w| format!("{:.3}", w.as_secs_f64() * 1e3));
        log::info!(
            target: crate::log::ACCESS,
            "peer={} method={} path={} status={} in={} out={} dur_ms={:.3} wait_ms={}",
            self.peer,
            ex.method,
            ex.target,
            ex.status.0,
            bytes_in,
            ex.bytes_out,
            Instant::now().saturating_duration_since(ex.started).as_secs_f64() * 1e3,
            wait
        );
        if ex.keep_alive && !cx.draining && body_clean {
            self.idle_since = cx.now;
            if self.rbuf.capacity() > 2 * cx.settings.limits.max_header_bytes && self.rbuf.is_empty() {
                self.rbuf = Vec::new();
            }
            Ok(())
        } else {
            let linger = !body_clean || !self.rbuf.is_empty();
            self.phase = Phase::Closing { linger, shut: false, since: cx.now };
            Ok(())
        }
    }

    fn pump_body(&mut self, cx: &mut Cx<'_>) -> Step {
        let Phase::Busy(ex) = &mut self.phase else { return Ok(false) };
        let Some(b) = ex.body.as_mut() else { return Ok(false) };
        if !(b.wanted || b.discard) {
            return Ok(false);
        }
        let mut progressed = false;
        loop {
            if let Some(msg) = b.pending.take() {
                match b.tx.as_ref().map(|tx| tx.offer(msg)) {
                    Some(Sent::Yes) => progressed = true,
                    Some(Sent::Full(msg)) => {
                        b.pending = Some(msg);
                        break;
                    }
                    Some(Sent::Gone) | None => b.tx = None,
                }
            }
            if b.ended {
                break;
            }
            if b.decoder.is_done() {
                b.ended = true;
                if !b.discard && b.tx.is_some() {
                    b.pending = Some(BodyMsg::End);
                }
                progressed = true;
                continue;
            }
            if !self.rbuf.is_empty() {
                let room = if b.discard { READ_AHEAD } else { BODY_CHUNK };
                let mut chunk = Vec::with_capacity(self.rbuf.len().min(room));
                match b.decoder.decode(&self.rbuf, &mut chunk, room) {
                    Ok(consumed) => {
                        self.rbuf.drain(..consumed.min(self.rbuf.len()));
                    }
                    Err(e) => {
                        log::debug!("{}: bad request body: {e}", self.peer);
                        abort_body(ex, e);
                        return Ok(true);
                    }
                }
                progressed = true;
                if !chunk.is_empty() {
                    b.received += chunk.len() as u64;
                    b.last_progress = cx.now;
                    if b.received > b.max {
                        log::debug!("{}: request body over {} bytes", self.peer, b.max);
                        abort_body(ex, HttpError::PayloadTooLarge);
                        return Ok(true);
                    }
                    if !b.discard && b.tx.is_some() {
                        b.pending = Some(BodyMsg::Data(chunk));
                    }
                }
                continue;
            }
            if self.readable && !self.eof {
                if read_into(&mut self.sock, &mut self.rbuf, &mut self.readable, &mut self.eof, self.peer, cx.scratch)?
                    > 0
                {
                    progressed = true;
                    continue;
                }
                if !self.eof {
                    break;
                }
            }
            if self.eof {
                // The client went away mid-body: the reader sees an error,
                // and nothing more can be sent on this connection.
                log::debug!("{}: client closed the connection during the request body", self.peer);
                b.tx = None;
                b.pending = None;
                b.ended = true;
                ex.keep_alive = false;
                progressed = true;
            }
            break;
        }
        Ok(progressed)
    }

    fn pull_response(&mut self) -> Step {
        let Phase::Busy(ex) = &mut self.phase else { return Ok(false) };
        let Resp::Streaming { rx, chunked, remaining } = &mut ex.resp else { return Ok(false) };
        let mut progressed = false;
        while self.wbuf.len() - self.wpos < WRITE_HIGH_WATER {
            match rx.poll() {
                None => break,
                Some(ChunkMsg::Data(d)) => {
                    if let Some(r) = remaining {
                        if d.len() as u64 > *r {
                            log::error!("response body of {} is longer than its Content-Length: aborting", ex.target);
                            return Err(Close);
                        }
                        *r -= d.len() as u64;
                    }
                    if *chunked {
                        encode_chunk(&mut self.wbuf, &d);
                    } else {
                        self.wbuf.extend_from_slice(&d);
                    }
                    ex.bytes_out += d.len() as u64;
                    progressed = true;
                }
                Some(ChunkMsg::End) => {
                    if remaining.is_some_and(|r| r > 0) {
                        log::error!("response body of {} is shorter than its Content-Length: aborting", ex.target);
                        return Err(Close);
                    }
                    if *chunked {
                        self.wbuf.extend_from_slice(LAST_CHUNK);
                    }
                    ex.resp = Resp::Written;
                    return Ok(true);
                }
                Some(ChunkMsg::Error) => {
                    log::warn!("{}: response body of {} failed mid-stream: aborting", self.peer, ex.target);
                    return Err(Close);
                }
            }
        }
        Ok(progressed)
    }

    fn step_closing(&mut self, cx: &mut Cx<'_>) -> Step {
        let mut progressed = false;
        if self.pending_write() > 0 {
            progressed = self.flush(cx.now)?;
            if self.pending_write() > 0 {
                return Ok(progressed);
            }
        }
        let Phase::Closing { linger, shut, .. } = &mut self.phase else { return Ok(progressed) };
        if !*linger {
            return Err(Close);
        }
        if !*shut {
            *shut = true;
            // Our response is out; tell the client, then read whatever it is
            // still sending so that closing does not reset the connection and
            // destroy the response before the client has read it.
            if self.sock.shutdown(Shutdown::Write).is_err() {
                return Err(Close);
            }
        }
        while self.readable && !self.eof {
            self.rbuf.clear();
            self.read_some(cx.scratch)?;
            self.rbuf.clear();
            progressed = true;
        }
        if self.eof {
            return Err(Close);
        }
        Ok(progressed)
    }
}

/// Read once from the socket into `rbuf`. `Ok(0)` means nothing now
/// (`WouldBlock`, which clears `readable`) or end of stream (sets `eof`).
fn read_into(
    sock: &mut TcpStream,
    rbuf: &mut Vec<u8>,
    readable: &mut bool,
    eof: &mut bool,
    peer: SocketAddr,
    scratch: &mut [u8],
) -> Result<usize, Close> {
    loop {
        match sock.read(scratch) {
            Ok(0) => {
                *eof = true;
                *readable = false;
                return Ok(0);
            }
            Ok(n) => {
                rbuf.extend_from_slice(scratch.get(..n).unwrap_or(&[]));
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                *readable = false;
                return Ok(0);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::debug!("{peer}: read failed: {e}");
                return Err(Close);
            }
        }
    }
}

/// The server ends a request body itself (limit or framing error).
fn abort_body(ex: &mut Exchange, e: HttpError) {
    if matches!(ex.resp, Resp::Waiting) {
        ex.body_error = Some(e);
    }
    ex.keep_alive = false;
    if let Some(b) = ex.body.as_mut() {
        b.tx = None;
        b.pending = None;
        b.ended = true;
    }
}

/// A processor's body as it goes to the connection. Inline processors'
/// streams are drained here, on the loop thread: the interface requires
/// inline streams to be in memory already.
pub fn into_response_body(body: Body) -> ResponseBody {
    match body {
        Body::Empty => ResponseBody::Empty,
        Body::Bytes(b) => ResponseBody::Bytes(b),
        Body::Stream { mut stream, .. } => {
            let mut all = Vec::new();
            loop {
                match stream.next_chunk() {
                    Ok(Some(c)) => all.extend_from_slice(&c),
                    Ok(None) => break,
                    Err(e) => {
                        log::error!("inline response stream failed: {e}");
                        break;
                    }
                }
            }
            ResponseBody::Bytes(all.into())
        }
    }
}
