//! Responses: status, headers and body.

use crate::BodyStream;
use std::borrow::Cow;
use std::fmt;

/// An HTTP status code. Reason phrases follow Swift's where Swift has its own
/// (`499 Client Disconnect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Status(pub u16);

#[allow(missing_docs)]
impl Status {
    pub const CONTINUE: Status = Status(100);
    pub const OK: Status = Status(200);
    pub const CREATED: Status = Status(201);
    pub const ACCEPTED: Status = Status(202);
    pub const NO_CONTENT: Status = Status(204);
    pub const PARTIAL_CONTENT: Status = Status(206);
    pub const NOT_MODIFIED: Status = Status(304);
    pub const BAD_REQUEST: Status = Status(400);
    pub const FORBIDDEN: Status = Status(403);
    pub const NOT_FOUND: Status = Status(404);
    pub const METHOD_NOT_ALLOWED: Status = Status(405);
    pub const NOT_ACCEPTABLE: Status = Status(406);
    pub const REQUEST_TIMEOUT: Status = Status(408);
    pub const CONFLICT: Status = Status(409);
    pub const LENGTH_REQUIRED: Status = Status(411);
    pub const PRECONDITION_FAILED: Status = Status(412);
    pub const PAYLOAD_TOO_LARGE: Status = Status(413);
    pub const URI_TOO_LONG: Status = Status(414);
    pub const RANGE_NOT_SATISFIABLE: Status = Status(416);
    pub const EXPECTATION_FAILED: Status = Status(417);
    pub const UNPROCESSABLE: Status = Status(422);
    pub const HEADERS_TOO_LARGE: Status = Status(431);
    pub const CLIENT_DISCONNECT: Status = Status(499);
    pub const INTERNAL_SERVER_ERROR: Status = Status(500);
    pub const NOT_IMPLEMENTED: Status = Status(501);
    pub const SERVICE_UNAVAILABLE: Status = Status(503);
    pub const VERSION_NOT_SUPPORTED: Status = Status(505);
    pub const INSUFFICIENT_STORAGE: Status = Status(507);

    /// The reason phrase sent on the status line.
    pub fn reason(self) -> &'static str {
        match self.0 {
            100 => "Continue",
            200 => "OK",
            201 => "Created",
            202 => "Accepted",
            204 => "No Content",
            206 => "Partial Content",
            301 => "Moved Permanently",
            302 => "Found",
            304 => "Not Modified",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            406 => "Not Acceptable",
            408 => "Request Timeout",
            409 => "Conflict",
            410 => "Gone",
            411 => "Length Required",
            412 => "Precondition Failed",
            413 => "Request Entity Too Large",
            414 => "Request URI Too Long",
            415 => "Unsupported Media Type",
            416 => "Requested Range Not Satisfiable",
            417 => "Expectation Failed",
            422 => "Unprocessable Entity",
            429 => "Too Many Requests",
            431 => "Request Header Fields Too Large",
            499 => "Client Disconnect",
            500 => "Internal Error",
            501 => "Not Implemented",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Gateway Timeout",
            505 => "HTTP Version Not Supported",
            507 => "Insufficient Storage",
            _ => "Unknown",
        }
    }

    /// Whether a response with this status may carry a body (not 1xx, 204 or 304).
    pub fn allows_body(self) -> bool {
        !(self.0 < 200 || self.0 == 204 || self.0 == 304)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.reason())
    }
}

/// One response header. Names are sent as given; values are bytes (latin-1 on
/// the wire). Static strings cost no allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name, e.g. `Content-Type`.
    pub name: Cow<'static, str>,
    /// The value.
    pub value: Cow<'static, [u8]>,
}

impl Header {
    /// A header from anything string-like and anything byte-like.
    pub fn new(name: impl Into<Cow<'static, str>>, value: impl Into<Cow<'static, [u8]>>) -> Header {
        Header { name: name.into(), value: value.into() }
    }
}

/// A response body.
pub enum Body {
    /// No body (`Content-Length: 0` where a body is allowed).
    Empty,
    /// A body held in memory.
    Bytes(Cow<'static, [u8]>),
    /// A body produced chunk by chunk. With `len`, it is sent with
    /// `Content-Length` and the stream must yield exactly that many bytes;
    /// without, it is sent chunked (or close-delimited to HTTP/1.0 clients).
    Stream {
        /// The exact length, if known.
        len: Option<u64>,
        /// The chunks.
        stream: Box<dyn BodyStream>,
    },
    /// A conversation: the head goes out at once and the stream's chunks
    /// follow (chunked) while the server keeps feeding the request body to
    /// the stream, which holds the request's body reader and reads it as it
    /// goes. Swift's SSYNC is one: the sender waits for the `200` before it
    /// sends a byte, then expects answers to what it sends.
    Duplex(Box<dyn BodyStream>),
}

impl Body {
    /// The body's length when it is known up front.
    pub fn len(&self) -> Option<u64> {
        match self {
            Body::Empty => Some(0),
            Body::Bytes(b) => Some(b.len() as u64),
            Body::Stream { len, .. } => *len,
            Body::Duplex(_) => None,
        }
    }

    /// Whether the body is known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Body::Empty"),
            Body::Bytes(b) => write!(f, "Body::Bytes({} bytes)", b.len()),
            Body::Stream { len, .. } => write!(f, "Body::Stream(len={len:?})"),
            Body::Duplex(_) => f.write_str("Body::Duplex"),
        }
    }
}

/// A response.
#[derive(Debug)]
pub struct Response {
    /// The status.
    pub status: Status,
    /// Headers, in the order they will be sent, after the server's own
    /// `Date`, `Server` and framing headers.
    pub headers: Vec<Header>,
    /// The body. For HEAD requests the server sends the headers only, but
    /// keeps a known length as `Content-Length`.
    pub body: Body,
}

impl Response {
    /// A response with no headers and no body.
    pub fn new(status: Status) -> Response {
        Response { status, headers: Vec::new(), body: Body::Empty }
    }

    /// Add a header.
    pub fn with_header(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<Cow<'static, [u8]>>) -> Response {
        self.headers.push(Header::new(name, value));
        self
    }

    /// Set the body.
    pub fn with_body(mut self, body: Body) -> Response {
        self.body = body;
        self
    }

    /// A small `text/plain` response, Swift's style for error messages.
    pub fn text(status: Status, text: impl Into<Cow<'static, str>>) -> Response {
        let body = match text.into() {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        };
        Response::new(status)
            .with_header("Content-Type", &b"text/plain; charset=UTF-8"[..])
            .with_body(Body::Bytes(body))
    }

    /// The first value of a header by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| &*h.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_response_has_content_type_and_body() {
        let r = Response::text(Status::BAD_REQUEST, "nope");
        assert_eq!(r.header("content-type"), Some(&b"text/plain; charset=UTF-8"[..]));
        assert_eq!(r.body.len(), Some(4));
    }

    #[test]
    fn bodyless_statuses() {
        assert!(!Status::NO_CONTENT.allows_body());
        assert!(!Status::NOT_MODIFIED.allows_body());
        assert!(!Status::CONTINUE.allows_body());
        assert!(Status::OK.allows_body());
        assert_eq!(Status::CLIENT_DISCONNECT.reason(), "Client Disconnect");
    }
}
