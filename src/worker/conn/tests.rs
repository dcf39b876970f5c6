//! The connection's rules over an in-memory pipe: keep-alive, pipelining,
//! discarding an unread body versus closing, lingering after an error,
//! `100 Continue`, deadlines. The pipelines are the embedded default's
//! (`hello` inline at `/`, `echo` pooled under `/echo`); pooled work runs on
//! real pool threads and its completions are applied here, as the event
//! loop would.

use super::*;
use crate::config::{Config, Overrides, Source};
use crate::scoreboard::Scoreboard;
use crate::worker::bridge::{Completion, Notifier};
use crate::worker::pool::Pools;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

/// Both ends of a connection in memory.
#[derive(Default)]
struct Pipe {
    /// What the client sent and the server has not read.
    to_server: VecDeque<u8>,
    /// The client closed its side.
    client_closed: bool,
    /// What the server wrote.
    to_client: Vec<u8>,
    /// The server shut its side down.
    server_shut: bool,
    /// Read calls the server made.
    reads: usize,
}

#[derive(Clone, Default)]
struct MemStream(Rc<RefCell<Pipe>>);

impl Read for MemStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut p = self.0.borrow_mut();
        p.reads += 1;
        if p.to_server.is_empty() {
            return if p.client_closed { Ok(0) } else { Err(io::ErrorKind::WouldBlock.into()) };
        }
        let n = buf.len().min(p.to_server.len());
        for (i, b) in p.to_server.drain(..n).enumerate() {
            buf[i] = b;
        }
        Ok(n)
    }
}

impl Write for MemStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut p = self.0.borrow_mut();
        if p.server_shut {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        p.to_client.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for MemStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.0.borrow_mut().server_shut = true;
        Ok(())
    }
}

/// A connection with everything a worker would give it.
struct Rig {
    conn: Conn<MemStream>,
    pipe: MemStream,
    listeners: Vec<ListenerInfo>,
    pools: Pools,
    notifier: Notifier,
    completions: crossbeam_channel::Receiver<Completion>,
    scoreboard: Scoreboard,
    settings: Settings,
    scratch: Vec<u8>,
    _poll: mio::Poll,
    closed: Option<CloseReason>,
}

impl Rig {
    fn new() -> Rig {
        let config =
            Config::load(&Source::Embedded, &Overrides::default(), &crate::catalog::CATALOG).expect("embedded");
        let listeners = vec![ListenerInfo::build(&config, &config.listen[0]).expect("pipelines")];
        let poll = mio::Poll::new().expect("poll");
        let waker = std::sync::Arc::new(mio::Waker::new(poll.registry(), mio::Token(1)).expect("waker"));
        let (notifier, completions) = Notifier::new(waker);
        let pools = Pools::new(config.pools.clone(), notifier.clone());
        let scoreboard = Scoreboard::create().expect("scoreboard");
        let pipe = MemStream::default();
        let now = Instant::now();
        let id = ConnId { key: 0, serial: 1 };
        let local = "127.0.0.1:80".parse().expect("addr");
        let conn = Conn::new(id, pipe.clone(), "127.0.0.1:9".parse().expect("addr"), local, 0, now);
        let settings = Settings::from_server(&config.server);
        Rig {
            conn,
            pipe,
            listeners,
            pools,
            notifier,
            completions,
            scoreboard,
            settings,
            scratch: vec![0; 64 * 1024],
            _poll: poll,
            closed: None,
        }
    }

    /// Run one step of the connection (or its timeout) like the loop does.
    fn step(&mut self, f: impl FnOnce(&mut Conn<MemStream>, &mut Cx<'_>) -> Result<(), Close>) {
        if self.closed.is_some() {
            return;
        }
        let slot = self.scoreboard.slot(0).expect("slot");
        let mut cx = Cx {
            settings: &self.settings,
            listeners: &self.listeners,
            dispatch: Dispatcher {
                pools: &mut self.pools,
                notifier: &self.notifier,
                scoreboard: self.scoreboard,
                slot,
            },
            now: Instant::now(),
            date: b"Tue, 01 Dec 2026 00:00:00 GMT",
            scratch: &mut self.scratch,
            draining: false,
        };
        self.conn.readable = true;
        self.conn.writable = true;
        if let Err(Close(reason)) = f(&mut self.conn, &mut cx) {
            self.closed = Some(reason);
        }
    }

    /// Drive the connection and apply pool completions until nothing
    /// happens for a while.
    fn settle(&mut self) {
        self.step(|c, cx| c.drive(cx));
        while let Ok(done) = self.completions.recv_timeout(Duration::from_millis(200)) {
            match done {
                Completion::WantBody { headers, .. } => self.step(|c, cx| c.on_want_body(headers, cx)),
                Completion::InterimContinue(_) => self.step(|c, cx| c.on_interim_continue(cx)),
                Completion::BodyRoom(_) | Completion::ChunksReady(_) => self.step(|c, cx| c.on_pipe_ready(cx)),
                Completion::Response(_, out) => self.step(|c, cx| {
                    c.on_response(out, cx);
                    c.drive(cx)
                }),
            }
        }
        self.step(|c, cx| c.drive(cx));
    }

    fn send(&mut self, bytes: &[u8]) {
        self.pipe.0.borrow_mut().to_server.extend(bytes.iter().copied());
        self.settle();
    }

    fn client_close(&mut self) {
        self.pipe.0.borrow_mut().client_closed = true;
        self.settle();
    }

    /// What the server wrote since the last call.
    fn take_output(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.pipe.0.borrow_mut().to_client)).into_owned()
    }

    fn shut(&self) -> bool {
        self.pipe.0.borrow().server_shut
    }
}

fn statuses(out: &str) -> Vec<&str> {
    out.split("HTTP/1.1 ").skip(1).map(|r| r.get(..3).unwrap_or("")).collect()
}

#[test]
fn keep_alive_serves_request_after_request_and_pipelined_ones_in_order() {
    let mut r = Rig::new();
    r.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let out = r.take_output();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("\r\n\r\ntest"), "{out}");
    assert!(!out.contains("Connection: close"));
    r.send(b"GET / HTTP/1.1\r\n\r\nGET /healthcheck HTTP/1.1\r\n\r\nGET /echo/x HTTP/1.1\r\n\r\n");
    let out = r.take_output();
    assert_eq!(statuses(&out), ["200", "200", "200"], "{out}");
    let (a, b) = (out.find("\r\n\r\ntest").expect("hello"), out.find("\r\n\r\nOK").expect("healthcheck"));
    assert!(a < b && b < out.find("\"method\":\"GET\"").expect("echo"), "in order: {out}");
    assert_eq!(r.closed, None);
    r.client_close();
    assert_eq!(r.closed, Some(CloseReason::ClientClosed));
}

#[test]
fn a_short_read_ends_the_readiness_only_when_the_loop_says_it_may() {
    // As after a readiness event without RDHUP: the short read is the last.
    let mut r = Rig::new();
    r.conn.short_read_drains = true;
    r.pipe.0.borrow_mut().to_server.extend(b"GET / HTTP/1.1\r\n\r\n".iter().copied());
    r.step(|c, cx| c.drive(cx));
    assert_eq!(statuses(&r.take_output()), ["200"]);
    assert_eq!(r.pipe.0.borrow().reads, 1, "no read just to learn the socket is empty");
    assert!(!r.conn.readable);
    // The peer's close came with the data (an RDHUP event): read on to it.
    let mut r = Rig::new();
    r.conn.short_read_drains = false;
    {
        let mut p = r.pipe.0.borrow_mut();
        p.to_server.extend(b"GET / HTTP/1.1\r\n\r\n".iter().copied());
        p.client_closed = true;
    }
    r.step(|c, cx| c.drive(cx));
    assert_eq!(statuses(&r.take_output()), ["200"]);
    assert_eq!(r.pipe.0.borrow().reads, 2);
    assert_eq!(r.closed, Some(CloseReason::ClientClosed));
}

#[test]
fn connection_close_and_http_1_0_end_the_connection_after_the_response() {
    let mut r = Rig::new();
    r.send(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(r.take_output().contains("Connection: close\r\n"));
    assert_eq!(r.closed, Some(CloseReason::Done));
    let mut r = Rig::new();
    r.send(b"GET / HTTP/1.0\r\n\r\n");
    assert!(r.take_output().contains("Connection: close\r\n"));
    assert_eq!(r.closed, Some(CloseReason::Done));
    let mut r = Rig::new();
    r.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert!(r.take_output().contains("Connection: keep-alive\r\n"));
    assert_eq!(r.closed, None);
}

#[test]
fn a_small_unread_body_is_discarded_and_the_connection_kept() {
    let mut r = Rig::new();
    // hello never reads its body; 1 KiB is read and dropped after the answer.
    let body = vec![b'x'; 1024];
    let mut req = format!("PUT / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    req.extend_from_slice(&body[..512]);
    r.send(&req);
    let out = r.take_output();
    assert!(out.starts_with("HTTP/1.1 200"), "answered before the body is all in: {out}");
    assert!(!out.contains("Connection: close"), "{out}");
    r.send(&body[512..]);
    r.send(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(statuses(&r.take_output()), ["200"], "the next request on the same connection");
    assert_eq!(r.closed, None);
}

#[test]
fn a_large_unread_body_closes_the_connection_after_the_answer_with_a_linger() {
    let mut r = Rig::new();
    let n = request_body::DISCARD_LIMIT + 1;
    r.send(format!("PUT / HTTP/1.1\r\nContent-Length: {n}\r\n\r\nxxxx").as_bytes());
    let out = r.take_output();
    assert!(out.starts_with("HTTP/1.1 200") && out.contains("Connection: close\r\n"), "{out}");
    assert!(r.shut(), "our side is shut so the client reads the answer, then its end");
    assert_eq!(r.closed, None, "still reading what the client sends");
    r.send(&vec![b'x'; 4096]);
    assert_eq!(r.closed, None);
    r.client_close();
    assert_eq!(r.closed, Some(CloseReason::Done));
}

#[test]
fn continue_is_sent_when_the_processor_reads_the_body_and_never_otherwise() {
    let mut r = Rig::new();
    r.send(b"PUT /echo/x HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    let out = r.take_output();
    assert_eq!(out, "HTTP/1.1 100 Continue\r\n\r\n", "echo asked for the body");
    r.send(b"abc");
    let out = r.take_output();
    assert!(out.starts_with("HTTP/1.1 200") && out.contains("\"bytes\":3"), "{out}");
    assert_eq!(r.closed, None);
    // hello answers without reading: no 100, and the unsent body means the
    // connection cannot be kept.
    let mut r = Rig::new();
    r.send(b"PUT / HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    let out = r.take_output();
    assert!(!out.contains("100 Continue"), "{out}");
    assert!(out.starts_with("HTTP/1.1 200") && out.contains("Connection: close\r\n"), "{out}");
}

#[test]
fn a_bad_request_is_answered_then_the_connection_lingers_and_closes() {
    let mut r = Rig::new();
    r.send(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
    let out = r.take_output();
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n") && out.contains("Connection: close"), "{out}");
    assert!(r.shut());
    r.send(b"more junk the client had in flight");
    assert_eq!(r.take_output(), "", "nothing after the answer");
    r.client_close();
    assert_eq!(r.closed, Some(CloseReason::BadRequest));
}

#[test]
fn deadlines_close_idle_connections_and_answer_a_slow_head_with_408() {
    let mut r = Rig::new();
    r.settle();
    assert!(r.conn.deadline.is_some(), "a first request is awaited for header_timeout");
    r.step(|c, cx| c.on_timeout(cx));
    assert_eq!(r.closed, Some(CloseReason::IdleTimeout));
    let mut r = Rig::new();
    r.send(b"GET / HT");
    r.step(|c, cx| c.on_timeout(cx));
    assert!(r.take_output().starts_with("HTTP/1.1 408"), "a head that did not complete in time");
    r.client_close();
    assert_eq!(r.closed, Some(CloseReason::HeadTimeout));
}

#[test]
fn a_client_gone_mid_body_is_counted_as_such() {
    let mut r = Rig::new();
    r.send(b"PUT /echo/x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
    r.client_close();
    r.settle();
    let out = r.take_output();
    assert!(out.starts_with("HTTP/1.1 499"), "the processor saw the body cut short: {out}");
    assert_eq!(r.closed, Some(CloseReason::ClientGone));
}

#[test]
fn a_duplex_answer_starts_before_the_body_and_converses_line_by_line() {
    let mut r = Rig::new();
    r.send(b"POST /echo/x?lines HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    let out = r.take_output();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n") && out.contains("Transfer-Encoding: chunked\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\n"), "only the head, before any body byte: {out:?}");
    r.send(b"6\r\nhello\n\r\n");
    assert_eq!(r.take_output(), "6\r\nhello\n\r\n", "answered while the body is still open");
    r.send(b"3\r\nab\n\r\n");
    assert_eq!(r.take_output(), "3\r\nab\n\r\n");
    r.send(b"0\r\n\r\n");
    assert_eq!(r.take_output(), "0\r\n\r\n", "the body's end ends the answer");
    r.send(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(statuses(&r.take_output()), ["200"], "and the connection is kept");
    assert_eq!(r.closed, None);
}
