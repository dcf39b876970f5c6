//! Object GET and HEAD (§4.3–4.5): the full header set, conditional
//! requests in Swift's order, single and multiple ranges. Bodies stream
//! from the file in 64 KiB chunks on the device's pool thread, so a large
//! GET never sits in memory.
//!
//! A GET of the whole object checks what it read, as Swift's
//! `DiskFileReader` does: the MD5 of the bytes is compared with the stored
//! ETag once the file has been read to its end, and a mismatch, a file
//! shorter than its metadata says or an `EIO` while reading moves the
//! object to quarantine. The bytes already went out (Swift sends them
//! too); the next GET is a 404, so the proxy reads another replica and the
//! replicator restores this one.

use crate::conditional::{etag_list, parse_http_date, Conditions, Outcome};
use crate::diskfile::{DiskFile, OpenError, Opened};
use crate::meta::is_returned;
use crate::range::{resolve, Ranges, Span};
use crate::{open_error_response, page, text, Ctx};
use aerie_api::{Body, Header, Response, Status};
use aerie_storage::Timestamp;
use std::fs::File;
use std::io;

const CHUNK: usize = 64 * 1024;

/// Reads spans of a file, with optional text between them (multipart).
struct FileStream {
    file: File,
    parts: std::collections::VecDeque<Part>,
    /// Set when the stream reads the whole file from its start.
    check: Option<Check>,
}

/// What a whole-file read verifies at its end.
struct Check {
    md5: md5::Md5,
    etag: String,
    df: DiskFile,
    data_path: std::path::PathBuf,
}

impl Check {
    /// Move the object aside, unless it was replaced meanwhile (a newer
    /// PUT's files must not go to quarantine with the bad one).
    fn quarantine(&self, why: &str) {
        if self.data_path.exists() {
            self.df.quarantine(why);
        }
    }

    /// At the end of the file: the bytes must hash to the stored ETag.
    fn finish(&mut self) {
        use md5::Digest;
        let got = aerie_storage::hash::hex(&std::mem::take(&mut self.md5).finalize());
        if got != self.etag {
            self.quarantine(&format!("ETag {} and file's md5 {got} do not match", self.etag));
        }
    }
}

enum Part {
    Text(Vec<u8>),
    Span(u64, u64),
}

impl Iterator for FileStream {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.parts.pop_front()? {
                Part::Text(t) => return Some(Ok(t)),
                Part::Span(start, end) if start >= end => continue,
                Part::Span(start, end) => {
                    let n = ((end - start) as usize).min(CHUNK);
                    let mut buf = vec![0u8; n];
                    let r = std::os::unix::fs::FileExt::read_exact_at(&self.file, &mut buf, start);
                    if let Err(e) = r {
                        if let Some(c) = self.check.take() {
                            if e.kind() == io::ErrorKind::UnexpectedEof {
                                c.quarantine(&format!("Bytes read: {start}, does not match metadata: {end}"));
                            } else if e.raw_os_error() == Some(nix::libc::EIO) {
                                c.quarantine(&e.to_string());
                            }
                        }
                        return Some(Err(e));
                    }
                    if let Some(c) = &mut self.check {
                        md5::Digest::update(&mut c.md5, &buf);
                    }
                    if start + (n as u64) < end {
                        self.parts.push_front(Part::Span(start + n as u64, end));
                    } else if let Some(mut c) = self.check.take() {
                        c.finish();
                    }
                    return Some(Ok(buf));
                }
            }
        }
    }
}

fn conditions(ctx: &Ctx<'_>) -> Conditions {
    Conditions {
        if_match: ctx.header("if-match").map(etag_list),
        if_none_match: ctx.header("if-none-match").map(etag_list),
        if_modified_since: ctx.header("if-modified-since").and_then(parse_http_date),
        if_unmodified_since: ctx.header("if-unmodified-since").and_then(parse_http_date),
    }
}

/// Whether this GET is one of the `pct` percent that are checked (Swift
/// draws a random number per request; a counter spreads them as evenly).
fn sampled(pct: f64) -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static GETS: AtomicU64 = AtomicU64::new(0);
    if pct >= 100.0 {
        return true;
    }
    if pct <= 0.0 {
        return false;
    }
    let n = GETS.fetch_add(1, Ordering::Relaxed);
    // The n-th GET is checked when the running share falls behind pct.
    ((n + 1) as f64 * pct / 100.0).floor() > (n as f64 * pct / 100.0).floor()
}

fn boundary() -> String {
    use md5::{Digest, Md5};
    let seed = format!("{:?}{}{:?}", std::time::SystemTime::now(), std::process::id(), std::thread::current().id());
    aerie_storage::hash::hex(&Md5::digest(seed.as_bytes()))
}

pub(crate) fn get_or_head(ctx: &Ctx<'_>, head: bool) -> Response {
    let now = match ctx.header("x-timestamp") {
        None => Timestamp::now(),
        Some(v) => match Timestamp::parse(v) {
            Ok(t) => t,
            Err(_) => {
                return text(
                    Status::BAD_REQUEST,
                    format!("X-Timestamp should be a UNIX timestamp float value; was '{v}'"),
                )
            }
        },
    };
    let df = match ctx.diskfile() {
        Ok(d) => d,
        Err(r) => return r,
    };
    let open_expired = ctx.is_true("x-backend-open-expired") || ctx.is_true("x-backend-replication");
    let opened = match df.open(now, open_expired) {
        Ok(o) => o,
        Err(e) => {
            let resp = open_error_response(&e, &ctx.path.device, &ctx.path.name());
            if matches!(e, OpenError::Io(_) | OpenError::Collision) {
                return resp;
            }
            return match conditions(ctx).evaluate(None) {
                Outcome::Failed => {
                    let mut r = page(Status::PRECONDITION_FAILED);
                    r.headers.extend(
                        resp.headers.into_iter().filter(|h| h.name.eq_ignore_ascii_case("X-Backend-Timestamp")),
                    );
                    r
                }
                _ => resp,
            };
        }
    };
    let Opened { meta, data_timestamp, file, data_path, size, durable_timestamp, fragments, .. } = opened;
    let x_ts = meta.get_str("X-Timestamp").and_then(|t| Timestamp::parse(t).ok()).unwrap_or(data_timestamp);
    let stored_etag = meta.get_str("ETag").unwrap_or("").to_string();
    let content_type =
        meta.get("Content-Type").map(<[u8]>::to_vec).unwrap_or_else(|| b"application/octet-stream".to_vec());
    let mut headers = vec![Header::new("Content-Type", content_type.clone())];
    for (k, v) in &meta.0 {
        if is_returned(k) {
            headers.push(Header::new(k.clone(), v.clone()));
        }
    }
    let last_modified = x_ts.ceil_secs();
    headers.push(Header::new("Etag", format!("\"{stored_etag}\"").into_bytes()));
    headers.push(Header::new("Last-Modified", aerie_storage::timestamp::http_date(last_modified).into_bytes()));
    headers.push(Header::new("X-Timestamp", x_ts.normal().into_bytes()));
    headers.push(Header::new("X-Backend-Timestamp", x_ts.internal().into_bytes()));
    headers.push(Header::new("X-Backend-Data-Timestamp", data_timestamp.internal().into_bytes()));
    if let Some(d) = durable_timestamp {
        headers.push(Header::new("X-Backend-Durable-Timestamp", d.internal().into_bytes()));
    }
    if !fragments.is_empty() {
        headers.push(Header::new("X-Backend-Fragments", fragments_header(&fragments).into_bytes()));
    }

    // The conditional ETag may live elsewhere (X-Backend-Etag-Is-At).
    let conditional_etag = ctx
        .header("x-backend-etag-is-at")
        .and_then(|names| names.split(',').map(str::trim).find_map(|n| meta.get_str(n)))
        .map(str::to_string)
        .unwrap_or_else(|| stored_etag.clone());
    match conditions(ctx).evaluate(Some((&conditional_etag, last_modified))) {
        Outcome::NotModified => {
            return Response { status: Status::NOT_MODIFIED, headers, body: Body::Empty }
                .with_header("Content-Length", &b"0"[..]);
        }
        Outcome::Failed => {
            let mut r = page(Status::PRECONDITION_FAILED);
            headers.retain(|h| !h.name.eq_ignore_ascii_case("Content-Type"));
            r.headers.extend(headers);
            return r;
        }
        Outcome::Proceed => {}
    }
    if head {
        return Response { status: Status::OK, headers, body: Body::Empty }
            .with_header("Content-Length", size.to_string().into_bytes());
    }
    let ignore_range = ctx
        .header("x-backend-ignore-range-if-metadata-present")
        .is_some_and(|names| names.split(',').map(str::trim).any(|n| !n.is_empty() && meta.get(n).is_some()));
    let range_header = if ignore_range { None } else { ctx.header("range") };
    let check = || Check { md5: md5::Md5::default(), etag: stored_etag.clone(), df: df.clone(), data_path };
    let validate = sampled(ctx.cfg.etag_validate_pct);
    match resolve(range_header, size) {
        Ranges::Whole | Ranges::Spans(_) if size == 0 => {
            // Nothing to stream: an empty file either matches its ETag or
            // not, now.
            if validate {
                check().finish();
            }
            whole(headers, file, size, None)
        }
        Ranges::Whole => whole(headers, file, size, validate.then(check)),
        Ranges::Unsatisfiable => {
            let mut r = page(Status::RANGE_NOT_SATISFIABLE);
            // Keep the object's headers (its Content-Type included).
            r.headers.clear();
            r.headers.extend(headers);
            r.headers.push(Header::new("Content-Range", format!("bytes */{size}").into_bytes()));
            let body = crate::status_page(Status::RANGE_NOT_SATISFIABLE, None).unwrap_or_default();
            r.body = Body::Bytes(body.into_bytes().into());
            r
        }
        Ranges::Spans(spans) if spans.len() == 1 => {
            let (s, e) = spans[0];
            headers.push(Header::new("Content-Range", format!("bytes {}-{}/{size}", s, e - 1).into_bytes()));
            let stream = FileStream { file, parts: [Part::Span(s, e)].into_iter().collect(), check: None };
            Response {
                status: Status::PARTIAL_CONTENT,
                headers,
                body: Body::Stream { len: Some(e - s), stream: Box::new(stream) },
            }
        }
        Ranges::Spans(spans) => multipart(headers, file, size, &content_type, &spans),
    }
}

fn whole(headers: Vec<Header>, file: File, size: u64, check: Option<Check>) -> Response {
    let stream = FileStream { file, parts: [Part::Span(0, size)].into_iter().collect(), check };
    Response { status: Status::OK, headers, body: Body::Stream { len: Some(size), stream: Box::new(stream) } }
}

fn multipart(mut headers: Vec<Header>, file: File, size: u64, ctype: &[u8], spans: &[Span]) -> Response {
    let b = boundary();
    let mut parts = std::collections::VecDeque::new();
    let mut len = 0u64;
    for (i, (s, e)) in spans.iter().enumerate() {
        let mut head = Vec::new();
        if i > 0 {
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(format!("--{b}\r\nContent-Type: ").as_bytes());
        head.extend_from_slice(ctype);
        head.extend_from_slice(format!("\r\nContent-Range: bytes {}-{}/{size}\r\n\r\n", s, e - 1).as_bytes());
        len += head.len() as u64 + (e - s);
        parts.push_back(Part::Text(head));
        parts.push_back(Part::Span(*s, *e));
    }
    let tail = format!("\r\n--{b}--").into_bytes();
    len += tail.len() as u64;
    parts.push_back(Part::Text(tail));
    headers.retain(|h| !h.name.eq_ignore_ascii_case("Content-Type"));
    headers.insert(0, Header::new("Content-Type", format!("multipart/byteranges;boundary={b}").into_bytes()));
    Response {
        status: Status::PARTIAL_CONTENT,
        headers,
        body: Body::Stream { len: Some(len), stream: Box::new(FileStream { file, parts, check: None }) },
    }
}

/// `X-Backend-Fragments`: `json.dumps({ts.internal: [frag indexes]})` of
/// every frag set, newest first (Swift's `_make_backend_fragments_header`).
fn fragments_header(fragments: &[(Timestamp, Vec<u32>)]) -> String {
    let sets: Vec<String> = fragments
        .iter()
        .map(|(ts, idx)| {
            let list: Vec<String> = idx.iter().map(u32::to_string).collect();
            format!("\"{}\": [{}]", ts.internal(), list.join(", "))
        })
        .collect();
    format!("{{{}}}", sets.join(", "))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_share_of_gets_is_sampled_evenly() {
        assert!((0..10).all(|_| super::sampled(100.0)));
        assert!((0..10).all(|_| !super::sampled(0.0)));
        let n = (0..1000).filter(|_| super::sampled(25.0)).count();
        assert!((245..=255).contains(&n), "{n}");
    }
}
