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
        let addr = resolve(host)?;
        let s =
            TcpStream::connect_timeout(&addr, t.conn).map_err(|e| PeerError::Failed(format!("connect {addr}: {e}")))?;
        let _ = s.set_nodelay(true);
        s.set_write_timeout(Some(t.node)).map_err(|e| PeerError::Failed(e.to_string()))?;
        s.set_read_timeout(Some(t.http)).map_err(|e| PeerError::Failed(e.to_string()))?;
        let r = s.try_clone().map_err(|e| PeerError::Failed(e.to_string()))?;
        let mut c = PeerConn {
            reader: BufReader::with_capacity(64 * 1024, r),
            writer: BufWriter::with_capacity(64 * 1024, s),
            host: host.to_string(),
            status: 0,
            headers: Vec::new(),
            chunk_left: None,
            body_done: false,
        };
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: identity\r\n");
        for (k, v) in headers {
            let v: String = v.chars().map(|c| if c == '\r' || c == '\n' { ' ' } else { c }).collect();
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        c.writer.write_all(head.as_bytes()).map_err(|e| c.send_error(&e))?;
        c.writer.flush().map_err(|e| c.send_error(&e))?;
        Ok(c)
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

    /// The first value of a header of the answer.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Read a whole (small) answer body, at most `max` bytes.
    pub fn read_body(&mut self, max: usize) -> Result<Vec<u8>, PeerError> {
        let mut out = Vec::new();
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
