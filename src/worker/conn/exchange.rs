//! An exchange's two ends: starting it once a head is parsed (the head
//! checks the listener makes, the body decoder, dispatch), answering a
//! protocol error (then closing), and finishing it (counters, the access
//! line, keep-alive or close).

use super::request_body::ReqBody;
use super::response::Resp;
use super::{Conn, Cx, Exchange, Phase, Stream, LOG_TARGET_MAX};
use crate::http::response::{write_head, Framing, Owned};
use crate::http::{BodyDecoder, ChunkedDecoder, CloseReason, HttpError, ParsedHead};
use crate::worker::dispatch::{dispatch, Dispatched};
use aerie_api::{BodyFraming, Header, RequestHead, RequestHeadParts, Status, Version};
use std::time::Instant;

impl<S: Stream> Conn<S> {
    /// Answer a protocol error and close.
    pub(super) fn fail(&mut self, e: HttpError, cx: &mut Cx<'_>) {
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
            Owned { date: cx.date, server: cx.listeners.get(self.listener).is_none_or(|l| l.server_header) },
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
        cx.dispatch.slot.add_requests(1);
        let reason =
            if matches!(e, HttpError::Timeout(_)) { CloseReason::HeadTimeout } else { CloseReason::BadRequest };
        self.phase = Phase::Closing { linger: true, shut: false, since: cx.now, reason };
    }

    pub(super) fn start_exchange(&mut self, parsed: ParsedHead, cx: &mut Cx<'_>) {
        let len = parsed.len;
        let raw: Vec<u8> = self.rbuf.get(..len).unwrap_or(&[]).to_vec();
        self.rbuf.drain(..len.min(self.rbuf.len()));
        self.head_started = None;
        let Some(listener) = cx.listeners.get(self.listener) else {
            self.fail(HttpError::BadRequest("no such listener"), cx);
            return;
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
        let body = decoder.map(|d| ReqBody::new(d, listener.max_body_size, head.expect_continue(), cx.now));
        let has_body = body.is_some();
        let ex = Box::new(Exchange {
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
            client_gone: false,
        });
        self.phase = Phase::Busy(ex);
        match dispatch(listener, head, has_body, self.id, cx.now, &mut cx.dispatch) {
            Dispatched::Answered(out) => self.on_response(out, cx),
            Dispatched::Queued(tx) => {
                if let Phase::Busy(ex) = &mut self.phase {
                    if let Some(b) = ex.body.as_mut() {
                        b.tx = tx;
                    }
                }
            }
        }
    }

    /// The exchange is over: count it, log it, and keep the connection or
    /// close it.
    pub(super) fn finish(&mut self, cx: &mut Cx<'_>) {
        let Phase::Busy(ex) = std::mem::replace(&mut self.phase, Phase::Idle) else { return };
        self.served += 1;
        let bytes_in = ex.body.as_ref().map_or(0, |b| b.received);
        let slot = cx.dispatch.slot;
        slot.add_requests(1);
        slot.add_bytes_in(bytes_in);
        slot.add_bytes_out(ex.bytes_out);
        let body_clean = ex.body.as_ref().is_none_or(ReqBody::complete);
        if log::log_enabled!(target: crate::log::ACCESS, log::Level::Info) {
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
        }
        if ex.keep_alive && !cx.draining && body_clean {
            self.idle_since = cx.now;
            if self.rbuf.capacity() > 2 * cx.settings.limits.max_header_bytes && self.rbuf.is_empty() {
                self.rbuf = Vec::new();
            }
        } else {
            let linger = !body_clean || !self.rbuf.is_empty();
            let reason = if ex.client_gone {
                CloseReason::ClientGone
            } else if cx.draining {
                CloseReason::Draining
            } else {
                CloseReason::Done
            };
            self.phase = Phase::Closing { linger, shut: false, since: cx.now, reason };
        }
    }
}
