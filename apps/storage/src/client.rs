//! A small blocking HTTP/1.1 client for what storage nodes send each other
//! (SWIFT-REPLICATION.md §1.4): container and account updates (one request
//! per connection, [`request`]), `REPLICATE`, and the connection an SSYNC
//! session runs on — a request with a chunked body written while the
//! chunked response is read line by line ([`PeerConn`]). A connect timeout,
//! a send timeout (`node_timeout`) and an answer timeout (`http_timeout`)
//! on every read. Runs on pool threads or background processes only.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long the other side may take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    /// To connect.
    pub conn: Duration,
    /// To accept what is sent.
    pub node: Duration,
    /// To answer.
    pub http: Duration,
}

/// Why a request to a peer did not give an answer.
#[derive(Debug)]
pub enum PeerError {
    /// The peer's device is not there (507): try another node.
    Unmounted,
    /// Another status.
    Status(u16, String),
    /// Connecting, sending or reading failed, or the answer made no sense.
    Failed(String),
}

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerError::Unmounted => f.write_str("507 Insufficient Storage"),
            PeerError::Status(s, body) => write!(f, "status {s} ({body})"),
            PeerError::Failed(why) => f.write_str(why),
        }
    }
}

fn resolve(host: &str) -> Result<SocketAddr, PeerError> {
    host.to_socket_addrs()
        .map_err(|e| PeerError::Failed(format!("bad address {host}: {e}")))?
        .next()
        .ok_or_else(|| PeerError::Failed(format!("bad address {host}")))
}

/// A request to a peer, the head of its answer read.
pub struct PeerConn {
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
    /// Where it goes (`ip:port`), for messages.
    pub host: String,
    /// The answer's status.
    pub status: u16,
    /// The answer's headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Left of the current response chunk (`None`: the body is not chunked;
    /// `Some(0)` between chunks).
    chunk_left: Option<u64>,
    /// The chunked body ended.
    body_done: bool,
}

impl PeerConn {
    /// Connect and send a request head (`path` as sent: quoted).
    pub fn open(
        host: &str,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        t: &Timeouts,
    ) -> Result<PeerConn, PeerError> {
        let mut c = PeerConn::connect(host, t)?;
        c.send_request(method, path, headers, &[])?;
        Ok(c)
    }

    /// Connect, with the timeouts set on the socket.
    fn connect(host: &str, t: &Timeouts) -> Result<PeerConn, PeerError> {
        let addr = resolve(host)?;
        let s =
            TcpStream::connect_timeout(&addr, t.conn).map_err(|e| PeerError::Failed(format!("connect {addr}: {e}")))?;
        let _ = s.set_nodelay(true);
        s.set_write_timeout(Some(t.node)).map_err(|e| PeerError::Failed(e.to_string()))?;
        s.set_read_timeout(Some(t.http)).map_err(|e| PeerError::Failed(e.to_string()))?;
        let r = s.try_clone().map_err(|e| PeerError::Failed(e.to_string()))?;
        Ok(PeerConn {
            reader: BufReader::with_capacity(64 * 1024, r),
            writer: BufWriter::with_capacity(64 * 1024, s),
            host: host.to_string(),
            status: 0,
            headers: Vec::new(),
            chunk_left: None,
            body_done: false,
        })
    }

    /// Send a request head and `body` (its `Content-Length` is the
    /// caller's header), forgetting the previous answer.
    fn send_request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<(), PeerError> {
        self.status = 0;
        self.headers.clear();
        self.chunk_left = None;
        self.body_done = false;
        let host = &self.host;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: identity\r\n");
        for (k, v) in headers {
            let v: String = v.chars().map(|c| if c == '\r' || c == '\n' { ' ' } else { c }).collect();
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let r = self.writer.write_all(head.as_bytes()).and_then(|_| self.writer.write_all(body));
        r.and_then(|_| self.writer.flush()).map_err(|e| self.send_error(&e))
    }

    fn send_error(&self, e: &io::Error) -> PeerError {
        PeerError::Failed(format!("send to {}: {e}", self.host))
    }

    fn read_error(&self, e: &io::Error) -> PeerError {
        PeerError::Failed(format!("read from {}: {e}", self.host))
    }

    /// Read the answer's status line and headers.
    pub fn read_head(&mut self) -> Result<(), PeerError> {
        let mut line = Vec::new();
        let mut first = true;
        let mut total = 0usize;
        loop {
            line.clear();
            let n = (&mut self.reader).take(16 * 1024).read_until(b'\n', &mut line).map_err(|e| self.read_error(&e))?;
            total += n;
            if n == 0 || total > 256 * 1024 {
                return Err(PeerError::Failed(format!("{} closed the connection before answering", self.host)));
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end();
            if first {
                first = false;
                let code = text.split_whitespace().nth(1).and_then(|c| c.parse::<u16>().ok());
                self.status = code.ok_or_else(|| PeerError::Failed(format!("bad status line {text:?}")))?;
                continue;
            }
            if text.is_empty() {
                if (100..200).contains(&self.status) {
                    first = true;
                    self.headers.clear();
                    continue;
                }
                break;
            }
            if let Some((k, v)) = text.split_once(':') {
                self.headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let chunked = self.header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        self.chunk_left = chunked.then_some(0);
        Ok(())
    }

    /// An answer that has no body whatever its headers say (204, 304).
    fn bodiless(&self) -> bool {
        matches!(self.status, 204 | 304)
    }

    /// Whether the answer's end is known without the connection closing
    /// (chunked, a length, or no body at all).
    fn framed(&self) -> bool {
        self.bodiless() || self.chunk_left.is_some() || self.header("content-length").is_some()
    }

    /// The first value of a header of the answer.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Read a whole (small) answer body, at most `max` bytes.
    pub fn read_body(&mut self, max: usize) -> Result<Vec<u8>, PeerError> {
        let mut out = Vec::new();
        if self.bodiless() {
            return Ok(out);
        }
        if self.chunk_left.is_some() {
            while out.len() < max {
                let mut buf = [0u8; 8192];
                let n = self.read_chunked(&mut buf)?;
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
            return Ok(out);
        }
        let len = self.header("content-length").and_then(|v| v.parse::<usize>().ok());
        let want = len.unwrap_or(max).min(max);
        (&mut self.reader).take(want as u64).read_to_end(&mut out).map_err(|e| self.read_error(&e))?;
        if len.is_some_and(|l| out.len() < l && l <= max) {
            return Err(PeerError::Failed(format!("{} sent a short body", self.host)));
        }
        Ok(out)
    }

    fn read_chunked(&mut self, buf: &mut [u8]) -> Result<usize, PeerError> {
        if self.body_done {
            return Ok(0);
        }
        if self.chunk_left == Some(0) {
            let mut line = Vec::new();
            (&mut self.reader).take(1024).read_until(b'\n', &mut line).map_err(|e| self.read_error(&e))?;
            let text = String::from_utf8_lossy(&line);
            let size = text.split(';').next().unwrap_or("").trim();
            let n = u64::from_str_radix(size, 16)
                .map_err(|_| PeerError::Failed(format!("Early disconnect from {}", self.host)))?;
            if n == 0 {
                self.body_done = true;
                // The trailer: lines up to an empty one.
                loop {
                    line.clear();
                    let got =
                        (&mut self.reader).take(1024).read_until(b'\n', &mut line).map_err(|e| self.read_error(&e))?;
                    if got == 0 || line.trim_ascii().is_empty() {
                        break;
                    }
                }
                return Ok(0);
            }
            self.chunk_left = Some(n);
        }
        let left = self.chunk_left.unwrap_or(0);
        let want = (buf.len() as u64).min(left) as usize;
        let n = self.reader.read(&mut buf[..want]).map_err(|e| self.read_error(&e))?;
        if n == 0 {
            return Err(PeerError::Failed(format!("Early disconnect from {}", self.host)));
        }
        let left = left - n as u64;
        if left == 0 {
            let mut crlf = [0u8; 2];
            self.reader.read_exact(&mut crlf).map_err(|e| self.read_error(&e))?;
        }
        self.chunk_left = Some(left);
        Ok(n)
    }

    /// A line of the chunked answer (at most `max` bytes), without its
    /// line end; `None` at the end of the body.
    pub fn read_line(&mut self, max: usize) -> Result<Option<Vec<u8>>, PeerError> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            // Lines are short and chunks hold many: a byte at a time out of
            // the buffered reader costs little.
            if self.read_chunked(&mut byte)? == 0 {
                return Ok((!line.is_empty()).then_some(line));
            }
            if byte[0] == b'\n' {
                let end = line.len() - usize::from(line.last() == Some(&b'\r'));
                line.truncate(end);
                return Ok(Some(line));
            }
            line.push(byte[0]);
            if line.len() > max {
                return Err(PeerError::Failed(format!("{} sent an over-long line", self.host)));
            }
        }
    }

    /// Write one chunk of the request body (buffered).
    pub fn send_chunk(&mut self, data: &[u8]) -> Result<(), PeerError> {
        if data.is_empty() {
            return Ok(());
        }
        let r = write!(self.writer, "{:x}\r\n", data.len())
            .and_then(|_| self.writer.write_all(data))
            .and_then(|_| self.writer.write_all(b"\r\n"));
        r.map_err(|e| self.send_error(&e))
    }

    /// Push what is buffered to the peer.
    pub fn flush(&mut self) -> Result<(), PeerError> {
        self.writer.flush().map_err(|e| self.send_error(&e))
    }

    /// End the request body and close (errors do not matter any more).
    pub fn finish(mut self) {
        let _ = self.writer.write_all(b"0\r\n\r\n");
        let _ = self.writer.flush();
    }
}

/// Send `method path` (quoted) with `headers` and no body to `host`
/// (`ip:port`), one request on its own connection; the answer's status.
pub fn request(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    conn_timeout: Duration,
    node_timeout: Duration,
) -> Result<u16, String> {
    let mut all: Vec<(&str, String)> = headers.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    all.push(("Content-Length", "0".into()));
    all.push(("Connection", "close".into()));
    let t = Timeouts { conn: conn_timeout, node: node_timeout, http: node_timeout };
    let mut c = PeerConn::open(host, method, path, &all, &t).map_err(|e| e.to_string())?;
    c.read_head().map_err(|e| e.to_string())?;
    Ok(c.status)
}

/// Requests with small bodies one after another on one connection, as
/// Python's `http.client` sends Swift's database replicator's calls: the
/// connection is kept while the peer keeps it, and a call that finds it
/// closed (the peer's idle timeout) is sent again once on a new one.
pub struct Calls {
    host: String,
    t: Timeouts,
    conn: Option<PeerConn>,
}

impl Calls {
    /// Calls to `host` (`ip:port`); nothing is connected yet.
    pub fn new(host: &str, t: Timeouts) -> Calls {
        Calls { host: host.to_string(), t, conn: None }
    }

    /// The timeouts of the next calls (the connection kept too).
    pub fn set_timeouts(&mut self, t: Timeouts) {
        if t == self.t {
            return;
        }
        self.t = t;
        if let Some(c) = &self.conn {
            let s = c.reader.get_ref();
            if s.set_read_timeout(Some(t.http)).and_then(|()| s.set_write_timeout(Some(t.node))).is_err() {
                self.conn = None;
            }
        }
    }

    /// Where the calls go.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Send `method path` with `headers` (a `Content-Length` for `body` is
    /// added) and read the whole answer, at most `max` bytes of body: its
    /// status and body.
    pub fn call(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
        max: usize,
    ) -> Result<(u16, Vec<u8>), PeerError> {
        let mut all: Vec<(&str, String)> = headers.to_vec();
        all.push(("Content-Length", body.len().to_string()));
        for attempt in 0..2 {
            let kept = self.conn.take();
            let reused = kept.is_some();
            let mut c = match kept {
                Some(c) => c,
                None => PeerConn::connect(&self.host, &self.t)?,
            };
            let sent = c.send_request(method, path, &all, body);
            let answer = sent.and_then(|()| c.read_head()).and_then(|()| c.read_body(max));
            match answer {
                Ok(got) => {
                    let closes = c.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
                    let length = c.header("content-length").and_then(|v| v.parse::<usize>().ok());
                    let whole = c.framed()
                        && (c.chunk_left.is_none() || c.body_done)
                        && (c.bodiless() || length.is_none_or(|l| l == got.len()));
                    let status = c.status;
                    if !closes && whole {
                        self.conn = Some(c);
                    }
                    return Ok((status, got));
                }
                // A kept connection the peer had closed: once more, anew.
                Err(PeerError::Failed(why)) if reused && attempt == 0 && c.status == 0 && !is_timeout(&why) => {
                    log::debug!("{}: kept connection gone ({why}); reconnecting", self.host);
                }
                Err(e) => return Err(e),
            }
        }
        Err(PeerError::Failed(format!("{}: the connection closed twice", self.host)))
    }
}

/// The connections a replication thread keeps, one per peer.
#[derive(Default)]
pub struct Peers {
    calls: std::collections::HashMap<String, Calls>,
}

impl Peers {
    /// The calls to `host`, with these timeouts.
    pub fn to(&mut self, host: &str, t: Timeouts) -> &mut Calls {
        if self.calls.len() > 64 && !self.calls.contains_key(host) {
            self.calls.clear();
        }
        let calls = self.calls.entry(host.to_string()).or_insert_with(|| Calls::new(host, t));
        calls.set_timeouts(t);
        calls
    }
}

/// Whether a failure message is a socket timeout's (the peer is slow, not
/// gone: sending again would only wait twice).
fn is_timeout(why: &str) -> bool {
    why.contains("timed out") || why.contains("temporarily unavailable")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A peer that answers `per_conn` requests on each connection it
    /// accepts, then closes it; the request lines it saw.
    fn peer(per_conn: usize, conns: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let host = l.local_addr().expect("addr").to_string();
        let t = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..conns {
                let (s, _) = l.accept().expect("accept");
                let mut r = BufReader::new(s.try_clone().expect("clone"));
                let mut w = s;
                for _ in 0..per_conn {
                    let mut line = String::new();
                    let mut len = 0usize;
                    let mut first = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).expect("read") == 0 {
                            return seen;
                        }
                        if first.is_empty() {
                            first = line.trim().to_string();
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().expect("length");
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0u8; len];
                    r.read_exact(&mut body).expect("body");
                    seen.push(format!("{first} {}", String::from_utf8_lossy(&body)));
                    let answer = if body == b"none" {
                        "HTTP/1.1 204 No Content\r\n\r\n".to_string()
                    } else {
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}",
                            body.len(),
                            String::from_utf8_lossy(&body)
                        )
                    };
                    w.write_all(answer.as_bytes()).expect("answer");
                }
            }
            seen
        });
        (host, t)
    }

    fn t() -> Timeouts {
        let s = Duration::from_secs(5);
        Timeouts { conn: s, node: s, http: s }
    }

    #[test]
    fn calls_share_a_connection_and_reconnect_once_when_the_peer_closed_it() {
        let (host, seen) = peer(2, 2);
        let mut c = Calls::new(&host, t());
        for (i, body) in ["one", "none", "three", "four"].iter().enumerate() {
            let (status, got) = c.call("REPLICATE", "/d/1/h", &[], body.as_bytes(), 1024).expect("call");
            if *body == "none" {
                assert_eq!((status, got.as_slice()), (204, &b""[..]), "a 204 has no body to wait for");
            } else {
                assert_eq!((status, got.as_slice()), (200, body.as_bytes()), "call {i}");
            }
        }
        // Two connections of two calls each: the third call found the first
        // connection closed and went again on a new one.
        let seen = seen.join().expect("peer");
        assert_eq!(
            seen,
            [
                "REPLICATE /d/1/h HTTP/1.1 one",
                "REPLICATE /d/1/h HTTP/1.1 none",
                "REPLICATE /d/1/h HTTP/1.1 three",
                "REPLICATE /d/1/h HTTP/1.1 four"
            ]
        );
    }

    #[test]
    fn a_peer_that_is_gone_is_an_error_not_a_retry_loop() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let host = l.local_addr().expect("addr").to_string();
        drop(l);
        let mut c = Calls::new(&host, t());
        assert!(matches!(c.call("REPLICATE", "/d/1/h", &[], b"x", 1024), Err(PeerError::Failed(_))));
    }
}
