//! Response heads: status line, the processor's headers, and the headers the
//! server owns (`Date`, `Server`, framing, `Connection`).
//!
//! Framing rules: a body of known length gets `Content-Length`; one of
//! unknown length is chunked to HTTP/1.1 clients and close-delimited to
//! HTTP/1.0 clients. 1xx, 204 and 304 carry no body and no framing header.
//! A processor's own `Content-Length` is kept only on HEAD responses (where it
//! describes the body a GET would have sent); `Transfer-Encoding`,
//! `Connection`, `Date` and `Keep-Alive` from a processor are dropped. A
//! processor may name itself in `Server` (Swift's servers answer OPTIONS with
//! `Server: object-server/2.38.3`); then it replaces the server's own. The
//! storage listeners send none of their own, as Swift's servers send none
//! (the proxy passes a backend's `Server` on to its clients).

use aerie_api::{Header, Status, Version};

/// The product token sent in `Server`.
pub const SERVER: &[u8] = concat!("aerie/", env!("CARGO_PKG_VERSION")).as_bytes();

/// How a response body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body may follow (1xx/204/304, or a HEAD response); `Content-Length`
    /// is written if given.
    NoBody(Option<u64>),
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// The body ends when the connection closes (HTTP/1.0, unknown length).
    Close,
}

/// Decide the framing of a response.
pub fn framing(
    status: Status,
    version: Version,
    head_request: bool,
    body_len: Option<u64>,
    declared: Option<u64>,
) -> Framing {
    if !status.allows_body() {
        return Framing::NoBody(None);
    }
    if head_request {
        return Framing::NoBody(declared.or(body_len));
    }
    match (body_len, version) {
        (Some(n), _) => Framing::Length(n),
        (None, Version::Http11) => Framing::Chunked,
        (None, Version::Http10) => Framing::Close,
    }
}

fn is_server_owned(name: &str) -> bool {
    ["content-length", "transfer-encoding", "connection", "date", "keep-alive"]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
}

/// The first `Content-Length` a processor set, if it is a valid number.
pub fn declared_length(headers: &[Header]) -> Option<u64> {
    let h = headers.iter().find(|h| h.name.eq_ignore_ascii_case("content-length"))?;
    std::str::from_utf8(&h.value).ok()?.trim().parse().ok()
}

fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Header values may not contain CR, LF or NUL (a processor echoing client
/// input must not be able to split the response); such bytes become spaces.
fn push_value(out: &mut Vec<u8>, v: &[u8]) {
    if v.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
        out.extend(v.iter().map(|&b| if b == b'\r' || b == b'\n' || b == 0 { b' ' } else { b }));
    } else {
        out.extend_from_slice(v);
    }
}

/// The headers of a head the server owns besides framing and `Connection`.
#[derive(Debug, Clone, Copy)]
pub struct Owned<'a> {
    /// This second's `Date` value.
    pub date: &'a [u8],
    /// Whether to name the server in `Server` (when the processor did not).
    pub server: bool,
}

/// Write a final response head. `keep_alive` is whether the connection stays
/// open; HTTP/1.0 clients that asked for keep-alive are told so explicitly.
pub fn write_head(
    out: &mut Vec<u8>,
    status: Status,
    headers: &[Header],
    framing: Framing,
    version: Version,
    keep_alive: bool,
    owned: Owned<'_>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_u64(out, u64::from(status.0));
    out.push(b' ');
    out.extend_from_slice(status.reason().as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut named = false;
    for h in headers {
        if is_server_owned(&h.name) || h.name.bytes().any(|b| !b.is_ascii_graphic() || b == b':') {
            continue;
        }
        if h.name.eq_ignore_ascii_case("server") {
            if named {
                continue;
            }
            named = true;
        }
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        push_value(out, &h.value);
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        Framing::Length(n) | Framing::NoBody(Some(n)) => {
            out.extend_from_slice(b"Content-Length: ");
            push_u64(out, n);
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Framing::NoBody(None) | Framing::Close => {}
    }
    out.extend_from_slice(b"Date: ");
    out.extend_from_slice(owned.date);
    out.extend_from_slice(b"\r\n");
    if !named && owned.server {
        out.extend_from_slice(b"Server: ");
        out.extend_from_slice(SERVER);
        out.extend_from_slice(b"\r\n");
    }
    if !keep_alive || framing == Framing::Close {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if version == Version::Http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Write an interim `100 Continue`, optionally with headers.
pub fn write_continue(out: &mut Vec<u8>, headers: &[Header]) {
    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n");
    for h in headers {
        if h.name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            out.extend_from_slice(h.name.as_bytes());
            out.extend_from_slice(b": ");
            push_value(out, &h.value);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: Status, headers: &[Header], framing: Framing, v: Version, ka: bool) -> String {
        let mut out = Vec::new();
        write_head(&mut out, status, headers, framing, v, ka, Owned { date: b"DATE", server: true });
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn writes_status_headers_and_server_owned_fields() {
        let h = [Header::new("Content-Type", &b"text/plain"[..]), Header::new("content-length", &b"99"[..])];
        let s = head(Status::OK, &h, Framing::Length(4), Version::Http11, true);
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nDate: DATE\r\nServer: aerie/0.1.0\r\n\r\n"
        );
    }

    #[test]
    fn a_processor_may_name_itself_in_server() {
        let h = [Header::new("Server", &b"object-server/2.38.3"[..]), Header::new("server", &b"twice"[..])];
        let s = head(Status::OK, &h, Framing::Length(0), Version::Http11, true);
        assert!(s.contains("\r\nServer: object-server/2.38.3\r\n"), "{s}");
        assert!(!s.contains("aerie/") && !s.contains("twice"), "one Server header, the processor's: {s}");
        let mut out = Vec::new();
        write_head(
            &mut out,
            Status::OK,
            &[],
            Framing::Length(0),
            Version::Http11,
            true,
            Owned { date: b"D", server: false },
        );
        assert!(!String::from_utf8_lossy(&out).contains("Server"), "a storage listener names no server");
    }

    #[test]
    fn framing_rules() {
        assert_eq!(framing(Status::NO_CONTENT, Version::Http11, false, Some(3), None), Framing::NoBody(None));
        assert_eq!(framing(Status::OK, Version::Http11, true, None, Some(10)), Framing::NoBody(Some(10)));
        assert_eq!(framing(Status::OK, Version::Http11, true, Some(4), None), Framing::NoBody(Some(4)));
        assert_eq!(framing(Status::OK, Version::Http11, false, None, Some(10)), Framing::Chunked);
        assert_eq!(framing(Status::OK, Version::Http10, false, None, None), Framing::Close);
    }

    #[test]
    fn connection_header_follows_keep_alive_and_version() {
        assert!(head(Status::OK, &[], Framing::Length(0), Version::Http11, false).contains("Connection: close\r\n"));
        assert!(head(Status::OK, &[], Framing::Length(0), Version::Http10, true).contains("Connection: keep-alive\r\n"));
        assert!(head(Status::OK, &[], Framing::Close, Version::Http10, true).contains("Connection: close\r\n"));
    }

    #[test]
    fn header_values_cannot_split_the_response() {
        let h = [Header::new("X-Evil", &b"a\r\nSet-Cookie: x"[..])];
        let s = head(Status::OK, &h, Framing::Length(0), Version::Http11, true);
        assert!(s.contains("X-Evil: a  Set-Cookie: x\r\n"), "{s}");
    }
}
