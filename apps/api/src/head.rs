//! The request head: method, target, version, headers, peer and body framing.
//!
//! A head owns one byte buffer (a copy of the bytes the client sent) and keeps
//! ranges into it, so building one costs two allocations however many headers
//! it has. Header names are ASCII tokens (the server's parser guarantees it);
//! values are bytes, since HTTP allows latin-1 and Swift metadata may hold any
//! byte.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;

/// An HTTP method. The common ones are variants; anything else that is a valid
/// token (Swift's `REPLICATE`, `SSYNC`, `UPDATE`) is kept as `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// PUT
    Put,
    /// POST
    Post,
    /// DELETE
    Delete,
    /// OPTIONS
    Options,
    /// Any other token, as sent (methods are case-sensitive).
    Other(Box<str>),
}

impl Method {
    /// Parse a method token as sent on the wire.
    pub fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "PUT" => Method::Put,
            "POST" => Method::Post,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.into()),
        }
    }

    /// The method as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The HTTP version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: keep-alive only when the client asks for it.
    Http10,
    /// HTTP/1.1: keep-alive unless either side says `Connection: close`.
    Http11,
}

/// How the request body is framed on the wire. The body a processor reads is
/// already decoded either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// Neither Content-Length nor Transfer-Encoding: no body.
    None,
    /// `Content-Length: n` (n may be 0).
    Length(u64),
    /// `Transfer-Encoding: chunked`: length unknown until the last chunk.
    Chunked,
}

/// The parts a server assembles into a [`RequestHead`]. Ranges index `raw`.
#[derive(Debug)]
pub struct RequestHeadParts {
    /// The head bytes as received (request line and header lines).
    pub raw: Vec<u8>,
    /// The parsed method.
    pub method: Method,
    /// The request target (path and query, as sent).
    pub target: Range<usize>,
    /// The version.
    pub version: Version,
    /// Each header's name and value ranges, in the order sent.
    pub headers: Vec<(Range<usize>, Range<usize>)>,
    /// The client's address.
    pub peer: SocketAddr,
    /// The local address the request arrived on.
    pub local: SocketAddr,
    /// How the body is framed.
    pub framing: BodyFraming,
    /// Whether the client sent `Expect: 100-continue`.
    pub expect_continue: bool,
}

/// A request head. Cheap to read from; built once by the server.
pub struct RequestHead {
    raw: Box<[u8]>,
    method: Method,
    target: Range<usize>,
    query_start: Option<usize>,
    version: Version,
    headers: Vec<(Range<usize>, Range<usize>)>,
    peer: SocketAddr,
    local: SocketAddr,
    framing: BodyFraming,
    expect_continue: bool,
}

impl RequestHead {
    /// Assemble a head. The server guarantees the ranges are in bounds and the
    /// header names are ASCII; a range that is not simply yields an empty
    /// slice, never a panic.
    pub fn new(parts: RequestHeadParts) -> RequestHead {
        let RequestHeadParts { raw, method, target, version, headers, peer, local, framing, expect_continue } = parts;
        let query_start =
            raw.get(target.clone()).and_then(|t| t.iter().position(|&b| b == b'?')).map(|i| target.start + i);
        RequestHead {
            raw: raw.into_boxed_slice(),
            method,
            target,
            query_start,
            version,
            headers,
            peer,
            local,
            framing,
            expect_continue,
        }
    }

    /// A head a processor makes for a request of its own (a subrequest:
    /// Swift's SSYNC applies each update through the object service's
    /// PUT/POST/DELETE). The target is the path (and query) as it would be
    /// sent; the peer and local addresses are the outer request's.
    pub fn synthetic(
        method: Method,
        target: &[u8],
        headers: &[(&str, &[u8])],
        framing: BodyFraming,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> RequestHead {
        let mut raw = Vec::with_capacity(target.len() + headers.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>());
        raw.extend_from_slice(target);
        let target_range = 0..raw.len();
        let mut ranges = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            let n = raw.len()..raw.len() + name.len();
            raw.extend_from_slice(name.as_bytes());
            let v = raw.len()..raw.len() + value.len();
            raw.extend_from_slice(value);
            ranges.push((n, v));
        }
        RequestHead::new(RequestHeadParts {
            raw,
            method,
            target: target_range,
            version: Version::Http11,
            headers: ranges,
            peer,
            local,
            framing,
            expect_continue: false,
        })
    }

    fn slice(&self, r: &Range<usize>) -> &[u8] {
        self.raw.get(r.clone()).unwrap_or(&[])
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The request target exactly as sent (path and query).
    pub fn target(&self) -> &[u8] {
        self.slice(&self.target)
    }

    /// The path as sent, still percent-encoded, without the query.
    pub fn raw_path(&self) -> &[u8] {
        let end = self.query_start.unwrap_or(self.target.end);
        self.slice(&(self.target.start..end))
    }

    /// The raw query string (after `?`), if there is one.
    pub fn query(&self) -> Option<&[u8]> {
        self.query_start.map(|q| self.slice(&(q + 1..self.target.end)))
    }

    /// Every header as (name, value), in the order sent. Names keep the
    /// client's case.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.headers.iter().map(move |(n, v)| {
            let name = std::str::from_utf8(self.slice(n)).unwrap_or("");
            (name, self.slice(v))
        })
    }

    /// The number of headers.
    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// The first value of a header as a string, if it is UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of a header, by case-insensitive name.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The local address (listener) the request came in on.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// How the body is framed.
    pub fn framing(&self) -> BodyFraming {
        self.framing
    }

    /// Whether the client sent `Expect: 100-continue`.
    pub fn expect_continue(&self) -> bool {
        self.expect_continue
    }
}

impl fmt::Debug for RequestHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestHead")
            .field("method", &self.method)
            .field("target", &String::from_utf8_lossy(self.target()))
            .field("version", &self.version)
            .field("headers", &self.headers.len())
            .field("peer", &self.peer)
            .field("framing", &self.framing)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str, target: Range<usize>, headers: Vec<(Range<usize>, Range<usize>)>) -> RequestHead {
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("literal address");
        RequestHead::new(RequestHeadParts {
            raw: raw.as_bytes().to_vec(),
            method: Method::Get,
            target,
            version: Version::Http11,
            headers,
            peer: addr,
            local: addr,
            framing: BodyFraming::None,
            expect_continue: false,
        })
    }

    #[test]
    fn a_synthetic_head_reads_like_a_parsed_one() {
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("literal address");
        let h = RequestHead::synthetic(
            Method::Put,
            b"/d/1/a/c/o?x",
            &[("X-Timestamp", b"1.00000"), ("content-length", b"3")],
            BodyFraming::Length(3),
            addr,
            addr,
        );
        assert_eq!((h.raw_path(), h.query()), (&b"/d/1/a/c/o"[..], Some(&b"x"[..])));
        assert_eq!(h.header("x-timestamp"), Some(&b"1.00000"[..]));
        assert_eq!(h.header_str("Content-Length"), Some("3"));
        assert_eq!((h.framing(), h.method()), (BodyFraming::Length(3), &Method::Put));
    }

    #[test]
    fn path_and_query_are_split_at_the_first_question_mark() {
        let h = head("/a/b?x=1?y", 0..10, vec![]);
        assert_eq!(h.raw_path(), b"/a/b");
        assert_eq!(h.query(), Some(&b"x=1?y"[..]));
        let h = head("/a", 0..2, vec![]);
        assert_eq!(h.query(), None);
    }

    #[test]
    fn headers_are_found_case_insensitively_and_out_of_range_is_empty() {
        let h = head("/Host: xX-A: 1", 0..1, vec![(1..5, 7..8), (8..11, 13..14), (50..60, 70..80)]);
        assert_eq!(h.header("host"), Some(&b"x"[..]));
        assert_eq!(h.header("x-a"), Some(&b"1"[..]));
        assert_eq!(h.headers().count(), 3);
        assert_eq!(h.headers().nth(2), Some(("", &b""[..])));
    }
}
