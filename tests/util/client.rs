//! A tiny HTTP client: raw requests, responses with their headers and
//! body, keep-alive connections with their own read buffer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// A client connection with its own read buffer.
pub struct Client {
    pub reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        s.set_nodelay(true).expect("nodelay");
        Client { reader: BufReader::new(s) }
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        self.reader.get_mut()
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream().write_all(bytes).expect("send");
    }

    pub fn set_timeout(&mut self, d: Duration) {
        self.stream().set_read_timeout(Some(d)).expect("timeout");
    }

    /// Read one response (not for HEAD requests: use `read_head_response`).
    pub fn read_response(&mut self) -> Response {
        self.try_read_response(false).expect("a response")
    }

    pub fn read_head_response(&mut self) -> Response {
        self.try_read_response(true).expect("a response")
    }

    /// Read a response; `None` if the connection closed first.
    pub fn try_read_response(&mut self, head: bool) -> Option<Response> {
        loop {
            let (status, headers) = self.read_head()?;
            if status == 100 {
                continue;
            }
            let body = if head || status == 204 || status == 304 { Vec::new() } else { self.read_body(&headers) };
            return Some(Response { status, headers, body });
        }
    }

    /// Read a status line and headers (also interim ones).
    pub fn read_head(&mut self) -> Option<(u16, Vec<(String, String)>)> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let status: u16 = line.split(' ').nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let mut l = String::new();
            self.reader.read_line(&mut l).ok()?;
            let l = l.trim_end_matches(['\r', '\n']);
            if l.is_empty() {
                break;
            }
            let (n, v) = l.split_once(':')?;
            headers.push((n.to_string(), v.trim().to_string()));
        }
        Some((status, headers))
    }

    fn read_body(&mut self, headers: &[(String, String)]) -> Vec<u8> {
        let get = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
        if let Some(len) = get("content-length") {
            let mut body = vec![0u8; len.parse().expect("length")];
            self.reader.read_exact(&mut body).expect("body");
            body
        } else if get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
            let mut body = Vec::new();
            loop {
                let mut l = String::new();
                self.reader.read_line(&mut l).expect("chunk size");
                let n = usize::from_str_radix(l.trim(), 16).expect("hex size");
                if n == 0 {
                    let mut end = String::new();
                    self.reader.read_line(&mut end).expect("final CRLF");
                    return body;
                }
                let mut chunk = vec![0u8; n + 2];
                self.reader.read_exact(&mut chunk).expect("chunk");
                body.extend_from_slice(&chunk[..n]);
            }
        } else {
            let mut body = Vec::new();
            let _ = self.reader.read_to_end(&mut body);
            body
        }
    }

    /// Whether the server has closed the connection (reads EOF or reset).
    /// Whether the server closes the connection (end of stream, not an
    /// error or a timeout) within `within`.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        self.set_timeout(within);
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0))
    }

    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0) | Err(_))
    }
}

/// One request on a fresh connection.
pub fn request(addr: SocketAddr, raw: &str) -> Response {
    let mut c = Client::connect(addr);
    c.send(raw.as_bytes());
    c.read_response()
}

/// GET a path on a fresh connection.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"))
}

/// MD5 of bytes, hex.
pub fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// A request on a fresh connection whose answer may never come (the
/// connection closed or timed out, e.g. on a killed worker or a slow
/// disk): None then.
pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<Response> {
    let mut c = Client::connect(addr);
    c.set_timeout(Duration::from_secs(120));
    let mut raw =
        format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body);
    c.stream().write_all(&bytes).ok()?;
    c.try_read_response(method == "HEAD")
}
