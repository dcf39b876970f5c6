//! A request's body on the loop side: decoded off the socket into the body
//! pipe once the processor asks for it (sending `100 Continue` then, if the
//! client expects it), or read and dropped after the response when it is
//! small enough to keep the connection ([`DISCARD_LIMIT`]).

use super::{read_into, read_some, Conn, Cx, Exchange, Phase, Readiness, Resp, Step, Stream};
use crate::http::response::write_continue;
use crate::http::{BodyDecoder, HttpError};
use crate::worker::bridge::{BodyMsg, BodyTx, Sent};
use aerie_api::Header;
use std::time::{Duration, Instant};

/// Largest decoded chunk handed to a pool thread at once.
const BODY_CHUNK: usize = 128 * 1024;
/// A run of unframed body data at least this long is read straight into
/// the chunk for the pool thread, not through the connection's buffer.
const DIRECT_READ_MIN: u64 = 8 * 1024;
/// Read no further ahead of the body decoder than this.
const READ_AHEAD: usize = 64 * 1024;
/// An unread request body up to this size is read and discarded after the
/// response so the connection can be kept; a larger one closes it.
pub(super) const DISCARD_LIMIT: u64 = 1024 * 1024;

pub(super) struct ReqBody {
    decoder: BodyDecoder,
    pub(super) received: u64,
    max: u64,
    wanted: bool,
    expect_continue: bool,
    continue_sent: bool,
    pub(super) tx: Option<BodyTx>,
    pending: Option<BodyMsg>,
    /// Nothing more will be decoded (complete, failed or abandoned).
    ended: bool,
    /// Decode and drop the rest (the processor answered without it).
    pub(super) discard: bool,
    /// The processor asked for another `100 Continue`: past the
    /// terminating chunk, read more chunks (Swift's multiphase commit).
    resume_after_end: bool,
    last_progress: Instant,
    /// A direct-read buffer a read that found nothing handed back, for the
    /// next one (the socket runs dry at the end of every burst).
    spare: Vec<u8>,
}

impl ReqBody {
    pub(super) fn new(decoder: BodyDecoder, max: u64, expect_continue: bool, now: Instant) -> ReqBody {
        ReqBody {
            decoder,
            received: 0,
            max,
            wanted: false,
            expect_continue,
            continue_sent: false,
            tx: None,
            pending: None,
            ended: false,
            discard: false,
            resume_after_end: false,
            last_progress: now,
            spare: Vec::new(),
        }
    }

    /// When the body is being fed or discarded and waits for the client:
    /// its deadline.
    pub(super) fn deadline(&self, timeout: Duration) -> Option<Instant> {
        let feeding = (self.wanted || self.discard) && !self.ended && self.pending.is_none();
        feeding.then(|| self.last_progress + timeout)
    }

    /// The processor asked for the body; `100 Continue` goes out unless the
    /// response already did.
    pub(super) fn want(&mut self, wbuf: &mut Vec<u8>, headers: &[Header], answered: bool, now: Instant) {
        if self.wanted {
            return;
        }
        self.wanted = true;
        self.last_progress = now;
        if self.expect_continue && !self.continue_sent && !answered {
            write_continue(wbuf, headers);
            self.continue_sent = true;
        }
    }

    /// Another `100 Continue` mid-body, if one went out before and the
    /// answer has not started.
    pub(super) fn interim_continue(&mut self, wbuf: &mut Vec<u8>, answered: bool, now: Instant) {
        if !self.continue_sent || answered || self.tx.is_none() {
            return;
        }
        write_continue(wbuf, &[]);
        self.last_progress = now;
        if self.decoder.is_done() && self.ended {
            // The data phase's end already went to the reader: read on.
            if self.decoder.resume() {
                self.ended = false;
            }
        } else {
            self.resume_after_end = true;
        }
    }

    /// The exchange progressed (a duplex answer went out): the body's
    /// deadline counts from now.
    pub(super) fn touch(&mut self, now: Instant) {
        self.last_progress = now;
    }

    /// Stop feeding: the reader sees the end (an error, as it is cut).
    pub(super) fn end(&mut self) {
        self.tx = None;
        self.pending = None;
        self.ended = true;
    }

    /// Bytes of it may still arrive.
    pub(super) fn open(&self) -> bool {
        !self.ended && !self.decoder.is_done()
    }

    /// Every byte of it was read off the connection.
    pub(super) fn complete(&self) -> bool {
        self.decoder.is_done()
    }

    /// The response is being written: drop the pipe and either discard the
    /// rest (small, and no `100 Continue` promised but unsent) or give up
    /// the connection. Returns whether keep-alive survives.
    pub(super) fn on_response(&mut self, keep_alive: bool) -> bool {
        self.tx = None;
        self.pending = None;
        if !self.open() {
            return keep_alive;
        }
        let unsent_expected = self.expect_continue && !self.continue_sent;
        let small = self.decoder.remaining().is_some_and(|r| r <= DISCARD_LIMIT);
        if !unsent_expected && small && keep_alive {
            self.discard = true;
            keep_alive
        } else {
            self.ended = true;
            false
        }
    }
}

impl<S: Stream> Conn<S> {
    pub(super) fn pump_body(&mut self, cx: &mut Cx<'_>) -> Step {
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
                if !b.discard && b.tx.is_some() {
                    b.pending = Some(BodyMsg::End);
                }
                if b.resume_after_end && b.decoder.resume() {
                    // The reader sees this end, then asked for more.
                    b.resume_after_end = false;
                } else {
                    b.ended = true;
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
            let run = if b.discard { 0 } else { b.decoder.data_run() };
            if self.readable && !self.eof && run >= DIRECT_READ_MIN {
                // Body data with no framing next: straight off the socket
                // into the chunk the reader gets.
                let mut chunk = std::mem::take(&mut b.spare);
                chunk.resize(run.min(BODY_CHUNK as u64) as usize, 0);
                let mut r =
                    Readiness { readable: &mut self.readable, drains: self.short_read_drains, eof: &mut self.eof };
                let n = read_some(&mut self.sock, &mut chunk, &mut r, self.peer)?;
                if n == 0 {
                    b.spare = chunk;
                } else {
                    chunk.truncate(n);
                    b.decoder.skip_data(n as u64);
                    b.received += n as u64;
                    b.last_progress = cx.now;
                    if b.received > b.max {
                        log::debug!("{}: request body over {} bytes", self.peer, b.max);
                        abort_body(ex, HttpError::PayloadTooLarge);
                        return Ok(true);
                    }
                    if b.tx.is_some() {
                        b.pending = Some(BodyMsg::Data(chunk));
                    }
                    progressed = true;
                    continue;
                }
                if !self.eof {
                    break;
                }
            } else if self.readable && !self.eof {
                let mut r =
                    Readiness { readable: &mut self.readable, drains: self.short_read_drains, eof: &mut self.eof };
                let n = read_into(&mut self.sock, &mut self.rbuf, &mut r, self.peer, cx.scratch)?;
                if n > 0 {
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
                b.end();
                ex.keep_alive = false;
                ex.client_gone = true;
                progressed = true;
            }
            break;
        }
        Ok(progressed)
    }
}

/// The server ends a request body itself (limit or framing error).
fn abort_body(ex: &mut Exchange, e: HttpError) {
    if matches!(ex.resp, Resp::Waiting) {
        ex.body_error = Some(e);
    }
    ex.keep_alive = false;
    if let Some(b) = ex.body.as_mut() {
        b.end();
    }
}
