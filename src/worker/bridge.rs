//! The bridge between the loop and the pool threads: the messages pool
//! threads send back ([`Completion`], through one unbounded channel plus the
//! loop's single `mio::Waker`), the response they carry ([`Outgoing`], the
//! one shape every producer of a response uses), and the two bounded body
//! pipes per pooled request, one per direction.
//!
//! * Request bodies: the loop decodes bytes off the socket and `try_send`s
//!   chunks into a small bounded channel; the pool thread reads them through
//!   [`PoolBody`] (an `aerie_api::BodySource`). When the channel is full the
//!   loop stops reading that socket — back-pressure all the way to the client
//!   — until the reader signals `BodyRoom`.
//! * Response bodies: the pool thread pulls a `BodyStream` and `send`s chunks
//!   (blocking when full); the loop `try_recv`s when the socket can take more,
//!   and waits for `ChunksReady` when the channel is empty.
//!
//! The wake-up rule avoids one message per chunk: the side on the loop sets
//! a `waiting` flag only when it finds the channel full (or empty), then
//! retries once; the pool side, after each operation, swaps the flag and
//! notifies only if it was set. With a SeqCst fence between the flag and the
//! channel operation on both sides, at least one of them sees the other's
//! update, so a wake-up cannot be lost.
//!
//! The completion channel is unbounded but its occupancy is bounded by
//! construction: each in-flight job produces at most one `Response` and each
//! pipe at most one outstanding wake-up per direction.

use super::queue::{self, TryRecvError, TrySendError};
use aerie_api::{Body, BodySource, Header, Status};
use crossbeam_channel::{Receiver, Sender};
use mio::Waker;
use std::io;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Identifies a connection across slab reuse: the slab key and a serial
/// number unique within the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnId {
    /// The slab key.
    pub key: usize,
    /// The serial number of the connection that had the key.
    pub serial: u64,
}

/// A response on its way to the wire: what every producer hands the
/// connection — a pool thread's processor, an inline processor, and the
/// loop's own answers (405, 503, body errors). Built once from the
/// processor's `aerie_api::Response`; the connection writes it.
pub struct Outgoing {
    /// The status.
    pub status: Status,
    /// The headers, as the producer set them.
    pub headers: Vec<Header>,
    /// The body.
    pub body: OutBody,
    /// Time the request waited in its queue (zero when not queued).
    pub queue_wait: Duration,
}

/// An outgoing body.
pub enum OutBody {
    /// No bytes.
    Empty,
    /// In memory.
    Bytes(std::borrow::Cow<'static, [u8]>),
    /// Produced by the pool thread, chunk by chunk.
    Stream {
        /// The exact length, if known.
        len: Option<u64>,
        /// The receiving end of the chunk pipe.
        rx: ChunkRx,
        /// A conversation (`aerie_api::Body::Duplex`): the request body
        /// keeps flowing to the pool thread while this streams.
        duplex: bool,
    },
}

impl Outgoing {
    /// A plain-text answer the server makes itself (`Retry-After` and the
    /// like go in `headers`).
    pub fn text(status: Status, text: String, headers: Vec<Header>) -> Outgoing {
        let mut all = vec![Header::new("Content-Type", &b"text/plain; charset=UTF-8"[..])];
        all.extend(headers);
        Outgoing { status, headers: all, body: OutBody::Bytes(text.into_bytes().into()), queue_wait: Duration::ZERO }
    }

    /// `503` with `Retry-After: 1`, the one overload answer (a full or
    /// missing queue, a job that waited too long).
    pub fn overloaded(why: &str, queue_wait: Duration) -> Outgoing {
        let mut o = Outgoing::text(
            Status::SERVICE_UNAVAILABLE,
            format!("{why}; retry later\n"),
            vec![Header::new("Retry-After", &b"1"[..])],
        );
        o.queue_wait = queue_wait;
        o
    }

    /// A processor's response made on the loop thread (inline). Inline
    /// streams are drained here: the interface requires them to be in
    /// memory already.
    pub fn inline(response: aerie_api::Response) -> Outgoing {
        let aerie_api::Response { status, headers, body } = response;
        let body = match body {
            Body::Empty => OutBody::Empty,
            Body::Bytes(b) => OutBody::Bytes(b),
            Body::Stream { mut stream, .. } | Body::Duplex(mut stream) => {
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
                OutBody::Bytes(all.into())
            }
        };
        Outgoing { status, headers, body, queue_wait: Duration::ZERO }
    }
}

/// A message from a pool thread.
pub enum Completion {
    /// The processor started reading the body: send `100 Continue` (with
    /// these headers) if the client expects it, and start feeding the pipe.
    WantBody {
        /// The connection.
        conn: ConnId,
        /// Headers for the interim response.
        headers: Vec<Header>,
    },
    /// The processor asks for one more `100 Continue` mid-body.
    InterimContinue(ConnId),
    /// The request-body pipe has room again.
    BodyRoom(ConnId),
    /// The processor answered.
    Response(ConnId, Outgoing),
    /// The response-body pipe has chunks again.
    ChunksReady(ConnId),
}

/// The sending side, cloned into every pool thread and pipe.
#[derive(Clone)]
pub struct Notifier {
    tx: Sender<Completion>,
    waker: Arc<Waker>,
}

impl Notifier {
    /// A notifier and the loop's receiving end.
    pub fn new(waker: Arc<Waker>) -> (Notifier, Receiver<Completion>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        (Notifier { tx, waker }, rx)
    }

    /// Send a message and wake the loop. Fails only when the loop is gone
    /// (the worker is exiting), in which case nobody is waiting.
    pub fn send(&self, c: Completion) {
        if self.tx.send(c).is_ok() {
            if let Err(e) = self.waker.wake() {
                log::error!("could not wake the event loop: {e}");
            }
        }
    }
}

/// Chunks in flight per request-body pipe.
pub const BODY_PIPE_CHUNKS: usize = 4;
/// Chunks in flight per response-body pipe.
pub const RESPONSE_PIPE_CHUNKS: usize = 4;

/// A request-body message.
pub enum BodyMsg {
    /// Decoded body bytes.
    Data(Vec<u8>),
    /// The body is complete.
    End,
    /// The body will never complete; the reader gets this error.
    Abort(io::ErrorKind, &'static str),
}

/// The loop's end of a request-body pipe.
pub struct BodyTx {
    tx: queue::Sender<BodyMsg>,
    waiting: Arc<AtomicBool>,
}

/// Whether a message went into the pipe.
pub enum Sent {
    /// Accepted.
    Yes,
    /// The pipe is full; the message is handed back. A `BodyRoom` will come.
    Full(BodyMsg),
    /// The reader is gone (the processor answered or panicked).
    Gone,
}

impl BodyTx {
    /// Offer a message without blocking.
    pub fn offer(&self, msg: BodyMsg) -> Sent {
        match self.tx.try_send(msg) {
            Ok(()) => Sent::Yes,
            Err(TrySendError::Disconnected(_)) => Sent::Gone,
            Err(TrySendError::Full(msg)) => {
                self.waiting.store(true, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                match self.tx.try_send(msg) {
                    Ok(()) => Sent::Yes,
                    Err(TrySendError::Disconnected(_)) => Sent::Gone,
                    Err(TrySendError::Full(msg)) => Sent::Full(msg),
                }
            }
        }
    }
}

/// The pool thread's end of a request-body pipe.
pub struct PoolBody {
    rx: queue::Receiver<BodyMsg>,
    waiting: Arc<AtomicBool>,
    notifier: Notifier,
    conn: ConnId,
    asked: bool,
    chunk: Vec<u8>,
    pos: usize,
    done: bool,
    /// The next end is the data phase's, not the body's (multiphase PUT).
    swallow_end: bool,
}

/// Make a request-body pipe for a connection.
pub fn body_pipe(notifier: Notifier, conn: ConnId) -> (BodyTx, PoolBody) {
    let (tx, rx) = queue::bounded(BODY_PIPE_CHUNKS);
    let waiting = Arc::new(AtomicBool::new(false));
    (
        BodyTx { tx, waiting: waiting.clone() },
        PoolBody {
            rx,
            waiting,
            notifier,
            conn,
            asked: false,
            chunk: Vec::new(),
            pos: 0,
            done: false,
            swallow_end: false,
        },
    )
}

impl PoolBody {
    fn ask(&mut self, headers: Vec<Header>) {
        if !self.asked {
            self.asked = true;
            self.notifier.send(Completion::WantBody { conn: self.conn, headers });
        }
    }
}

thread_local! {
    /// Time this pool thread spent waiting for request-body bytes from the
    /// client since the last [`take_body_wait`] (network time, not I/O).
    static BODY_WAIT: std::cell::Cell<std::time::Duration> = const { std::cell::Cell::new(std::time::Duration::ZERO) };
}

/// Time this thread waited for request-body bytes since the last call.
pub fn take_body_wait() -> std::time::Duration {
    BODY_WAIT.with(|w| w.replace(std::time::Duration::ZERO))
}

impl BodySource for PoolBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.ask(Vec::new());
        loop {
            if self.pos < self.chunk.len() {
                let avail = self.chunk.get(self.pos..).unwrap_or(&[]);
                let n = avail.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), avail.get(..n)) {
                    dst.copy_from_slice(src);
                }
                self.pos += n;
                return Ok(n);
            }
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            let waited = std::time::Instant::now();
            let msg = self.rx.recv();
            BODY_WAIT.with(|w| w.set(w.get() + waited.elapsed()));
            fence(Ordering::SeqCst);
            if self.waiting.swap(false, Ordering::SeqCst) {
                self.notifier.send(Completion::BodyRoom(self.conn));
            }
            match msg {
                Ok(BodyMsg::Data(d)) => {
                    self.chunk = d;
                    self.pos = 0;
                }
                Ok(BodyMsg::End) if self.swallow_end => self.swallow_end = false,
                Ok(BodyMsg::End) => self.done = true,
                Ok(BodyMsg::Abort(kind, why)) => {
                    self.done = true;
                    return Err(io::Error::new(kind, why));
                }
                Err(_) => {
                    self.done = true;
                    return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "client connection closed"));
                }
            }
        }
    }

    fn send_continue(&mut self, headers: Vec<Header>) -> io::Result<()> {
        self.ask(headers);
        Ok(())
    }

    fn send_interim_continue(&mut self) -> io::Result<()> {
        self.ask(Vec::new());
        // The loop reads past the end of the data phase: an end already
        // seen is undone, one still coming is not the body's.
        if self.done {
            self.done = false;
        } else {
            self.swallow_end = true;
        }
        self.notifier.send(Completion::InterimContinue(self.conn));
        Ok(())
    }
}

/// A response-body message.
pub enum ChunkMsg {
    /// Body bytes.
    Data(Vec<u8>),
    /// The stream ended normally.
    End,
    /// The stream failed; the connection must be aborted.
    Error,
}

/// The pool thread's end of a response-body pipe.
pub struct ChunkTx {
    tx: queue::Sender<ChunkMsg>,
    waiting: Arc<AtomicBool>,
    notifier: Notifier,
    conn: ConnId,
}

/// The loop's end of a response-body pipe.
pub struct ChunkRx {
    rx: queue::Receiver<ChunkMsg>,
    waiting: Arc<AtomicBool>,
}

/// Make a response-body pipe for a connection.
pub fn chunk_pipe(notifier: Notifier, conn: ConnId) -> (ChunkTx, ChunkRx) {
    let (tx, rx) = queue::bounded(RESPONSE_PIPE_CHUNKS);
    let waiting = Arc::new(AtomicBool::new(false));
    (ChunkTx { tx, waiting: waiting.clone(), notifier, conn }, ChunkRx { rx, waiting })
}

impl ChunkTx {
    /// Send a chunk, blocking while the pipe is full. `false` when the loop
    /// dropped the other end (the client went away): stop producing.
    pub fn send(&self, msg: ChunkMsg) -> bool {
        let ok = self.tx.send(msg).is_ok();
        fence(Ordering::SeqCst);
        if self.waiting.swap(false, Ordering::SeqCst) {
            self.notifier.send(Completion::ChunksReady(self.conn));
        }
        ok
    }
}

impl ChunkRx {
    /// Take a chunk if one is ready. `None` means none yet (a `ChunksReady`
    /// will come); a vanished producer reads as `Error`.
    pub fn poll(&self) -> Option<ChunkMsg> {
        match self.rx.try_recv() {
            Ok(m) => Some(m),
            Err(TryRecvError::Disconnected) => Some(ChunkMsg::Error),
            Err(TryRecvError::Empty) => {
                self.waiting.store(true, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                match self.rx.try_recv() {
                    Ok(m) => Some(m),
                    Err(TryRecvError::Disconnected) => Some(ChunkMsg::Error),
                    Err(TryRecvError::Empty) => None,
                }
            }
        }
    }
}

/// The body source of an inline request: inline processors must not block,
/// so reading a body there is refused.
pub struct InlineBody;

impl BodySource for InlineBody {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "an inline processor cannot read a request body"))
    }

    fn send_continue(&mut self, _headers: Vec<Header>) -> io::Result<()> {
        Ok(())
    }
}
