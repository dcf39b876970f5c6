//! A request's response on the loop side: the head written once the
//! answer ([`Outgoing`]) arrives, with framing and `Connection` decided
//! here; an in-memory body copied into the write buffer; a streamed body
//! pulled from its chunk pipe while the buffer is below its high-water mark.

use super::{body_error_answer, Close, Conn, Cx, Phase, Step, Stream};
use crate::http::framing::{encode_chunk, LAST_CHUNK};
use crate::http::response::{declared_length, framing, write_head, Framing, Owned};
use crate::http::CloseReason;
use crate::worker::bridge::{ChunkMsg, ChunkRx, OutBody, Outgoing};
use aerie_api::{Method, Status};

/// Stop pulling response chunks while this much is waiting to be written.
pub(super) const WRITE_HIGH_WATER: usize = 128 * 1024;

pub(super) enum Resp {
    Waiting,
    /// `duplex`: the request body is still fed to the producer, which
    /// answers as it reads (the body's pipe is kept until the stream ends).
    Streaming {
        rx: ChunkRx,
        chunked: bool,
        remaining: Option<u64>,
        duplex: bool,
    },
    Written,
}

impl<S: Stream> Conn<S> {
    /// The answer arrived (from a pool thread, an inline processor or the
    /// loop itself).
    pub fn on_response(&mut self, out: Outgoing, cx: &mut Cx<'_>) {
        let Phase::Busy(ex) = &mut self.phase else { return };
        if !matches!(ex.resp, Resp::Waiting) {
            return;
        }
        let Outgoing { mut status, mut headers, mut body, queue_wait } = match ex.body_error.take() {
            // The server ended the body (limit, framing error, timeout); that,
            // not what the processor made of the truncated body, is the answer.
            Some(e) => {
                ex.keep_alive = false;
                Outgoing { queue_wait: out.queue_wait, ..body_error_answer(&e) }
            }
            None => out,
        };
        ex.queue_wait = Some(queue_wait);
        if status.0 < 200 {
            log::error!("processor answered {} to {}: sending 500 instead", status.0, ex.target);
            status = Status::INTERNAL_SERVER_ERROR;
            headers.clear();
            body = OutBody::Empty;
        }
        let duplex = matches!(body, OutBody::Stream { duplex: true, .. });
        if let Some(b) = ex.body.as_mut() {
            if !duplex {
                ex.keep_alive = b.on_response(ex.keep_alive);
            }
        }
        if cx.draining {
            ex.keep_alive = false;
        }
        let len = match &body {
            OutBody::Empty => Some(0),
            OutBody::Bytes(b) => Some(b.len() as u64),
            OutBody::Stream { len, .. } => *len,
        };
        let fr = framing(status, ex.version, ex.method == Method::Head, len, declared_length(&headers));
        if fr == Framing::Close {
            ex.keep_alive = false;
        }
        ex.status = status;
        let owned = Owned { date: cx.date, server: cx.listeners.get(self.listener).is_none_or(|l| l.server_header) };
        write_head(&mut self.wbuf, status, &headers, fr, ex.version, ex.keep_alive, owned);
        let sends_body = matches!(fr, Framing::Length(_) | Framing::Chunked | Framing::Close);
        if duplex && !sends_body {
            // No body goes out (HEAD): no conversation either.
            if let Some(b) = ex.body.as_mut() {
                ex.keep_alive = b.on_response(ex.keep_alive);
            }
        }
        ex.resp = match body {
            OutBody::Stream { len, rx, duplex } if sends_body => {
                Resp::Streaming { rx, chunked: fr == Framing::Chunked, remaining: len, duplex }
            }
            OutBody::Bytes(b) if sends_body => {
                self.wbuf.extend_from_slice(&b);
                ex.bytes_out += b.len() as u64;
                Resp::Written
            }
            _ => Resp::Written,
        };
    }

    pub(super) fn pull_response(&mut self, now: std::time::Instant) -> Step {
        let Phase::Busy(ex) = &mut self.phase else { return Ok(false) };
        let Resp::Streaming { rx, chunked, remaining, duplex } = &mut ex.resp else { return Ok(false) };
        let aborted = Err(Close(CloseReason::ResponseAborted));
        let mut progressed = false;
        while self.wbuf.len() - self.wpos < WRITE_HIGH_WATER {
            match rx.poll() {
                None => break,
                Some(ChunkMsg::Data(d)) => {
                    if let Some(r) = remaining {
                        if d.len() as u64 > *r {
                            log::error!("response body of {} is longer than its Content-Length: aborting", ex.target);
                            return aborted;
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
                    if *duplex {
                        // An answer is progress of the conversation: the
                        // body's deadline counts from it too.
                        if let Some(b) = ex.body.as_mut() {
                            b.touch(now);
                        }
                    }
                }
                Some(ChunkMsg::End) => {
                    if remaining.is_some_and(|r| r > 0) {
                        log::error!("response body of {} is shorter than its Content-Length: aborting", ex.target);
                        return aborted;
                    }
                    if *chunked {
                        self.wbuf.extend_from_slice(LAST_CHUNK);
                    }
                    if *duplex {
                        // The conversation is over: whatever the client
                        // still sends is discarded or ends the connection.
                        if let Some(b) = ex.body.as_mut() {
                            ex.keep_alive = b.on_response(ex.keep_alive);
                        }
                    }
                    ex.resp = Resp::Written;
                    return Ok(true);
                }
                Some(ChunkMsg::Error) => {
                    log::warn!("{}: response body of {} failed mid-stream: aborting", self.peer, ex.target);
                    return aborted;
                }
            }
        }
        Ok(progressed)
    }
}
