//! A tiny blocking HTTP/1.1 client for the requests storage nodes send each
//! other (container and account updates). One request per connection
//! (`Connection: close`), bounded by a connect and a response timeout; the
//! answer is the status line's code. Runs on pool threads or background
//! processes only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Send `method path` with `headers` and no body to `host` (`ip:port`);
/// the response status.
pub fn request(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    conn_timeout: Duration,
    node_timeout: Duration,
) -> Result<u16, String> {
    let addr: SocketAddr = host
        .to_socket_addrs()
        .map_err(|e| format!("bad host {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("bad host {host}"))?;
    let mut s = TcpStream::connect_timeout(&addr, conn_timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_write_timeout(Some(node_timeout)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(node_timeout)).map_err(|e| e.to_string())?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (k, v) in headers {
        let v: String = v.chars().map(|c| if c == '\r' || c == '\n' { ' ' } else { c }).collect();
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).map_err(|e| format!("send to {addr}: {e}"))?;
    let mut resp = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                resp.extend_from_slice(&buf[..n]);
                if resp.len() > 1 << 20 {
                    break;
                }
            }
            Err(e) if resp.is_empty() => return Err(format!("no answer from {addr}: {e}")),
            Err(_) => break,
        }
    }
    let line = resp.split(|&b| b == b'\n').next().unwrap_or(&[]);
    std::str::from_utf8(line)
        .ok()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("no valid answer from {addr}"))
}
