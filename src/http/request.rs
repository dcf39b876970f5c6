//! Request heads: bytes → [`ParsedHead`], within configured limits.
//!
//! `parse_head` is called with everything buffered so far. It returns
//! `Ok(None)` while the head is incomplete and within limits, `Ok(Some(head))`
//! once it is complete, and an [`HttpError`] as soon as the bytes can no
//! longer become an acceptable request: a request line over
//! `max_request_line` (414) or a head over `max_header_bytes` or with more than
//! `max_headers` fields (431) are detected before the head is complete, so a
//! client cannot make the server buffer without bound.
//!
//! Header names are those Swift's servers take: any visible ASCII but the
//! colon (Swift's proxy forwards names such as s3api's `X-Object-Meta-A=5FB`
//! that are no RFC 9110 token). Anything else in a name — a space (also
//! before the colon), a control character, a byte past ASCII — and obs-fold
//! are refused (400).
//!
//! Framing follows RFC 9112 §6: `Transfer-Encoding` must be exactly `chunked`
//! (one other coding: 400; several: 501, as Swift answers), it may not come
//! with `Content-Length` (400: a smuggling pattern), Content-Length values
//! must all agree and be plain digits (400), and HTTP/1.0 requests may not use
//! Transfer-Encoding (400).

use super::HttpError;
use aerie_api::{BodyFraming, Method, Version};
use std::ops::Range;

/// Head-size limits, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// Longest request line (414 beyond).
    pub max_request_line: usize,
    /// Largest head (431 beyond).
    pub max_header_bytes: usize,
    /// Most header fields (431 beyond).
    pub max_headers: usize,
}

/// A complete, checked request head. Ranges index the buffer it was parsed
/// from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedHead {
    /// Bytes of the buffer the head occupies (including the final blank line).
    pub len: usize,
    /// The method.
    pub method: Method,
    /// The request target.
    pub target: Range<usize>,
    /// The version.
    pub version: Version,
    /// Each header's name and value.
    pub headers: Vec<(Range<usize>, Range<usize>)>,
    /// How the body is framed.
    pub framing: BodyFraming,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
    /// The client allows the connection to stay open after this request
    /// (HTTP/1.1 without `close`, or HTTP/1.0 with `keep-alive`).
    pub keep_alive: bool,
}

/// Headers parsed on the stack before falling back to a heap buffer.
const STACK_HEADERS: usize = 64;

fn offset(buf: &[u8], part: &[u8]) -> Range<usize> {
    // Both slices come from `buf`, so the subtraction cannot underflow; the
    // saturating form keeps it panic-free regardless.
    let start = (part.as_ptr() as usize).saturating_sub(buf.as_ptr() as usize);
    start..start + part.len()
}

fn map_parse_error(e: httparse::Error) -> HttpError {
    match e {
        httparse::Error::TooManyHeaders => HttpError::HeadersTooLarge("too many header fields"),
        httparse::Error::Version => HttpError::VersionNotSupported,
        httparse::Error::HeaderName => HttpError::BadRequest(INVALID_NAME),
        httparse::Error::HeaderValue => HttpError::BadRequest("invalid header value"),
        httparse::Error::NewLine => HttpError::BadRequest("invalid line ending"),
        httparse::Error::Status | httparse::Error::Token => HttpError::BadRequest("invalid request line"),
    }
}

/// Try to parse a request head from the start of `buf`.
pub fn parse_head(buf: &[u8], limits: &HeadLimits) -> Result<Option<ParsedHead>, HttpError> {
    // The request line limit is checked on the raw bytes so that a huge line
    // is refused before the rest of the head arrives. Leading blank lines
    // (tolerated by RFC 9112 §2.2) do not count.
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(buf.len());
    let line_zone = buf.get(start..).unwrap_or(&[]);
    let scan = line_zone.get(..limits.max_request_line + 2).unwrap_or(line_zone);
    if !scan.contains(&b'\n') && line_zone.len() > limits.max_request_line + 1 {
        return Err(HttpError::UriTooLong);
    }

    match parse_checked(buf, buf, limits) {
        Err(HttpError::BadRequest(INVALID_NAME)) => {
            // A name with visible punctuation no token allows: parse a copy
            // where those bytes are a token's, then read the ranges from the
            // original, which has the same length.
            let masked = mask_names(buf, start);
            parse_checked(&masked, buf, limits)
        }
        other => other,
    }
}

const INVALID_NAME: &str = "invalid header name (or obs-fold)";

/// Whether a header-name byte is one Swift's servers take but an RFC 9110
/// token does not (`"(),/;<=>?@[\]{}`).
fn is_extra_name_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != b':' && !is_token_byte(b)
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `buf` with every [`is_extra_name_byte`] of a header name (the bytes of a
/// field line before its colon, or of a last line still arriving) turned
/// into `-`. Lines that start with white space (obs-fold) and names with
/// any other byte are left for the parser to refuse.
fn mask_names(buf: &[u8], request_line: usize) -> Vec<u8> {
    let mut out = buf.to_vec();
    // The field lines start after the request line's LF.
    let Some(first) = buf.get(request_line..).and_then(|b| b.iter().position(|&c| c == b'\n')) else { return out };
    let mut line = request_line + first + 1;
    while line < buf.len() {
        let rest = buf.get(line..).unwrap_or(&[]);
        let end = rest.iter().position(|&c| c == b'\n').map_or(rest.len(), |i| i + 1);
        let text = rest.get(..end).unwrap_or(&[]);
        if text.first().is_some_and(|&c| c == b'\r' || c == b'\n') {
            break; // the blank line that ends the head
        }
        let name_len = text.iter().position(|&c| c == b':').unwrap_or_else(|| {
            // No colon: only a line still arriving can have a name yet.
            if text.ends_with(b"\n") {
                0
            } else {
                text.len()
            }
        });
        let name = text.get(..name_len).unwrap_or(&[]);
        if name.iter().all(|&c| is_token_byte(c) || is_extra_name_byte(c)) {
            for (i, &c) in name.iter().enumerate() {
                if is_extra_name_byte(c) {
                    if let Some(slot) = out.get_mut(line + i) {
                        *slot = b'-';
                    }
                }
            }
        }
        line += end;
    }
    out
}

/// Parse and check `parse` (the buffer, or a masked copy of it of the same
/// length); ranges index `original`.
fn parse_checked(parse: &[u8], original: &[u8], limits: &HeadLimits) -> Result<Option<ParsedHead>, HttpError> {
    let buf = parse;
    let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
    let mut heap;
    let headers: &mut [httparse::Header] =
        if limits.max_headers <= STACK_HEADERS { &mut stack[..limits.max_headers] } else { &mut stack[..] };
    let mut req = httparse::Request::new(headers);
    let status = match req.parse(buf) {
        Err(httparse::Error::TooManyHeaders) if limits.max_headers > STACK_HEADERS => {
            heap = vec![httparse::EMPTY_HEADER; limits.max_headers];
            req = httparse::Request::new(&mut heap);
            req.parse(buf)
        }
        other => other,
    };
    let len = match status {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            if buf.len() >= limits.max_header_bytes {
                return Err(HttpError::HeadersTooLarge("request head too large"));
            }
            return Ok(None);
        }
        Err(e) => return Err(map_parse_error(e)),
    };
    if len > limits.max_header_bytes {
        return Err(HttpError::HeadersTooLarge("request head too large"));
    }
    let (Some(method), Some(path), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HttpError::BadRequest("incomplete request line"));
    };
    if !path.starts_with('/') {
        // Absolute-form and asterisk-form targets are for proxies and
        // server-wide OPTIONS; a storage node serves origin-form only.
        return Err(HttpError::BadRequest("request target must be an absolute path"));
    }
    let version = match version {
        0 => Version::Http10,
        1 => Version::Http11,
        _ => return Err(HttpError::VersionNotSupported),
    };

    let mut content_length: Option<u64> = None;
    let mut transfer_encoding: Option<TransferCoding> = None;
    let mut expect_continue = false;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut ranges = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let value = h.value;
        // The name as sent (a masked `Content=Length` is no Content-Length).
        let name_at = offset(buf, h.name.as_bytes());
        let name = original.get(name_at.clone()).unwrap_or(&[]);
        if name.eq_ignore_ascii_case(b"content-length") {
            for part in value.split(|&b| b == b',') {
                let n = parse_content_length(trim(part))?;
                match content_length {
                    Some(prev) if prev != n => return Err(HttpError::BadRequest("differing Content-Length values")),
                    _ => content_length = Some(n),
                }
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_encoding = Some(TransferCoding::merge(transfer_encoding, value)?);
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',') {
                let token = trim(token);
                if token.eq_ignore_ascii_case(b"close") {
                    conn_close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    conn_keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            if trim(value).eq_ignore_ascii_case(b"100-continue") {
                expect_continue = true;
            } else {
                return Err(HttpError::ExpectationFailed);
            }
        }
        ranges.push((name_at, offset(buf, value)));
    }

    let framing = match (transfer_encoding, content_length) {
        (Some(_), Some(_)) => return Err(HttpError::BadRequest("both Content-Length and Transfer-Encoding")),
        (Some(_), None) if version == Version::Http10 => {
            return Err(HttpError::BadRequest("Transfer-Encoding in an HTTP/1.0 request"))
        }
        (Some(te), None) => te.framing()?,
        (None, Some(n)) => BodyFraming::Length(n),
        (None, None) => BodyFraming::None,
    };
    let keep_alive = match version {
        Version::Http11 => !conn_close,
        Version::Http10 => conn_keep_alive && !conn_close,
    };
    Ok(Some(ParsedHead {
        len,
        method: Method::from_token(method),
        target: offset(buf, path.as_bytes()),
        version,
        headers: ranges,
        framing,
        // 100-continue means nothing to an HTTP/1.0 client (RFC 9110 §10.1.1).
        expect_continue: expect_continue && version == Version::Http11,
        keep_alive,
    }))
}

fn trim(v: &[u8]) -> &[u8] {
    let s = v.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(v.len());
    let e = v.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(s, |i| i + 1);
    v.get(s..e).unwrap_or(&[])
}

fn parse_content_length(v: &[u8]) -> Result<u64, HttpError> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::BadRequest("invalid Content-Length"));
    }
    v.iter()
        .try_fold(0u64, |acc, &d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')))
        .ok_or(HttpError::BadRequest("invalid Content-Length"))
}

/// The transfer codings seen so far (several header lines are one list).
#[derive(Debug, Clone, Copy)]
struct TransferCoding {
    codings: usize,
    last_is_chunked: bool,
    chunked_seen: usize,
}

impl TransferCoding {
    fn merge(prev: Option<TransferCoding>, value: &[u8]) -> Result<TransferCoding, HttpError> {
        let mut tc = prev.unwrap_or(TransferCoding { codings: 0, last_is_chunked: false, chunked_seen: 0 });
        for token in value.split(|&b| b == b',') {
            let token = trim(token);
            if token.is_empty() {
                continue;
            }
            tc.codings += 1;
            tc.last_is_chunked = token.eq_ignore_ascii_case(b"chunked");
            if tc.last_is_chunked {
                tc.chunked_seen += 1;
            }
        }
        Ok(tc)
    }

    fn framing(self) -> Result<BodyFraming, HttpError> {
        match (self.codings, self.last_is_chunked) {
            (1, true) => Ok(BodyFraming::Chunked),
            (0, _) => Err(HttpError::BadRequest("empty Transfer-Encoding")),
            (1, false) => Err(HttpError::BadRequest("unsupported Transfer-Encoding")),
            _ => Err(HttpError::NotImplemented("more than one transfer coding")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits { max_request_line: 64, max_header_bytes: 256, max_headers: 8 };

    fn parse(s: &str) -> Result<Option<ParsedHead>, HttpError> {
        parse_head(s.as_bytes(), &LIMITS)
    }

    fn complete(s: &str) -> ParsedHead {
        parse(s).expect("parses").expect("complete")
    }

    #[test]
    fn simple_get_keeps_alive_and_has_no_body() {
        let h = complete("GET /a?b HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(h.method, Method::Get);
        assert_eq!(h.framing, BodyFraming::None);
        assert!(h.keep_alive);
        assert_eq!(h.len, 30);
    }

    #[test]
    fn incomplete_head_waits() {
        assert_eq!(parse("GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
    }

    #[test]
    fn http10_keep_alive_only_when_asked() {
        assert!(!complete("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(complete("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(!complete("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
    }

    #[test]
    fn smuggling_patterns_are_refused() {
        let cases = [
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\0b\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET http://x/ HTTP/1.1\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\n\r\n",
        ];
        for c in cases {
            let e = parse(c).expect_err(c);
            assert_eq!(e.status().0, 400, "{c:?} gave {e:?}");
        }
        let e = parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n").expect_err("two codings");
        assert_eq!(e.status().0, 501);
        let e = parse("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").expect_err("two codings");
        assert_eq!(e.status().0, 501);
    }

    #[test]
    fn equal_duplicate_content_lengths_are_one() {
        let h = complete("PUT / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(h.framing, BodyFraming::Length(5));
    }

    #[test]
    fn chunked_and_expect() {
        let h = complete("PUT / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\nExpect: 100-continue\r\n\r\n");
        assert_eq!(h.framing, BodyFraming::Chunked);
        assert!(h.expect_continue);
        assert_eq!(parse("PUT / HTTP/1.1\r\nExpect: nope\r\n\r\n"), Err(HttpError::ExpectationFailed));
    }

    #[test]
    fn limits_give_414_and_431_before_the_head_completes() {
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(100));
        assert_eq!(parse(&long), Err(HttpError::UriTooLong));
        assert_eq!(parse(&"G".repeat(70)), Err(HttpError::UriTooLong));
        let many: String = (0..9).map(|i| format!("X-{i}: v\r\n")).collect();
        let e = parse(&format!("GET / HTTP/1.1\r\n{many}\r\n")).expect_err("too many");
        assert_eq!(e.status().0, 431);
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "v".repeat(300));
        assert_eq!(parse(&big).map_err(|e| e.status().0), Err(431));
    }

    #[test]
    fn versions_other_than_1x_are_refused() {
        assert!(parse("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").is_err());
        assert!(parse("GET / HTTP/1.2\r\n\r\n").is_err());
        assert!(parse("GET /\r\n\r\n").is_err());
    }
}
