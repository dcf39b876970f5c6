//! aerie's built-in processors.
//!
//! * [`Hello`]: `200 text/plain` with body `test`, inline. The classic
//!   benchmark target; it never reads the body and never blocks.
//! * [`Echo`]: the debugging processor, pooled. It reads the whole request
//!   body (however it was framed) while hashing it, and answers a JSON
//!   description of the request: method, raw path, query, every header in
//!   order, peer, the worker's pid/uid/gid, the body's byte count and MD5.
//!   With the query `lines` it converses instead (`Body::Duplex`): the
//!   `200` goes out at once, and each line of the body is answered with
//!   the same line as soon as it arrives.
//! * [`Healthcheck`]: middleware; `GET /healthcheck` answers `200 OK` inline,
//!   everything else goes to the wrapped processor.
//! * [`Fault`]: fault injection for testing the server's supervision, pooled:
//!   `/sleep?ms=N` holds a pool thread for N ms, `/panic` panics in the
//!   processor, `/abort` aborts the whole worker process. Never put it on a
//!   production listener.
#![forbid(unsafe_code)]

use aerie_api::{Body, Executor, Method, Processor, QueueKey, Request, RequestHead, Response, SharedProcessor, Status};
use md5::{Digest, Md5};
use std::io::Read;

/// The `hello` processor.
#[derive(Debug, Default)]
pub struct Hello;

impl Processor for Hello {
    fn executor(&self, _head: &RequestHead) -> Executor {
        Executor::Inline
    }

    fn call(&self, _req: Request) -> Response {
        Response::new(Status::OK)
            .with_header("Content-Type", &b"text/plain"[..])
            .with_body(Body::Bytes((&b"test"[..]).into()))
    }
}

/// The `echo` processor. All its requests share one queue, `echo`.
#[derive(Debug)]
pub struct Echo {
    key: QueueKey,
}

impl Default for Echo {
    fn default() -> Self {
        Echo { key: QueueKey::new("echo") }
    }
}

/// What the echo processor learnt from reading a body.
struct BodySummary {
    bytes: u64,
    md5: String,
    error: Option<String>,
}

fn read_body(req: &mut Request) -> BodySummary {
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    let mut error = None;
    loop {
        match req.body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let chunk = buf.get(..n).unwrap_or(&[]);
                hasher.update(chunk);
                bytes += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    let md5 = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    BodySummary { bytes, md5, error }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Processor for Echo {
    fn executor(&self, _head: &RequestHead) -> Executor {
        Executor::Pooled(self.key.clone())
    }

    fn call(&self, mut req: Request) -> Response {
        if req.head.query() == Some(&b"lines"[..]) {
            return Response::new(Status::OK)
                .with_header("Content-Type", &b"text/plain"[..])
                .with_body(Body::Duplex(Box::new(LineEcho { body: req.body, line: Vec::new() })));
        }
        let body = read_body(&mut req);
        if let Some(error) = body.error {
            // The client went away or sent a broken body: nobody will read a
            // JSON answer, but the status tells the access log what happened.
            return Response::text(Status::CLIENT_DISCONNECT, format!("could not read the request body: {error}\n"));
        }
        let head = &req.head;
        let headers: Vec<serde_json::Value> = head.headers().map(|(n, v)| serde_json::json!([n, lossy(v)])).collect();
        let doc = serde_json::json!({
            "method": head.method().as_str(),
            "path": lossy(head.raw_path()),
            "query": head.query().map(lossy),
            "headers": headers,
            "peer": head.peer().to_string(),
            "worker": {
                "pid": std::process::id(),
                "uid": current_uid(),
                "gid": current_gid(),
            },
            "body": { "bytes": body.bytes, "md5": body.md5 },
        });
        let mut text = doc.to_string();
        text.push('\n');
        Response::new(Status::OK)
            .with_header("Content-Type", &b"application/json"[..])
            .with_body(Body::Bytes(text.into_bytes().into()))
    }
}

/// Echo's conversation: the body read a byte at a time up to each newline
/// (a line is answered the moment it is complete, whatever the framing).
struct LineEcho {
    body: aerie_api::RequestBody,
    line: Vec<u8>,
}

impl aerie_api::BodyStream for LineEcho {
    fn next_chunk(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        const MAX_LINE: usize = 64 * 1024;
        let mut byte = [0u8; 1];
        loop {
            if self.body.read(&mut byte)? == 0 {
                // The end: what is left of a last line without a newline.
                return Ok((!self.line.is_empty()).then(|| std::mem::take(&mut self.line)));
            }
            self.line.push(byte[0]);
            if byte[0] == b'\n' || self.line.len() >= MAX_LINE {
                return Ok(Some(std::mem::take(&mut self.line)));
            }
        }
    }
}

/// The owner of this process, read from `/proc/self/status` (this crate
/// stays free of `libc`/`nix`: the interface boundary allows no system
/// bindings).
fn current_uid() -> Option<u32> {
    proc_status_id("Uid:")
}

fn current_gid() -> Option<u32> {
    proc_status_id("Gid:")
}

fn proc_status_id(field: &str) -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    // "Uid:\treal\teffective\tsaved\tfs": the effective id is the second.
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The `fault` processor (testing only; see the crate docs).
#[derive(Debug)]
pub struct Fault {
    key: QueueKey,
}

/// The environment variable that makes building [`Fault`] panic, to test
/// how a worker that cannot boot is handled.
pub const FAULT_PANIC_AT_BUILD: &str = "AERIE_FAULT_PANIC_AT_BUILD";

impl Fault {
    /// Build it; panics when [`FAULT_PANIC_AT_BUILD`] is set (on purpose).
    pub fn new() -> Fault {
        if std::env::var_os(FAULT_PANIC_AT_BUILD).is_some() {
            panic!("fault: {FAULT_PANIC_AT_BUILD} is set: failing at build time");
        }
        Fault { key: QueueKey::new("fault") }
    }
}

impl Default for Fault {
    fn default() -> Self {
        Fault::new()
    }
}

fn query_u64(head: &RequestHead, name: &str) -> Option<u64> {
    let q = std::str::from_utf8(head.query()?).ok()?;
    q.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

impl Processor for Fault {
    fn executor(&self, _head: &RequestHead) -> Executor {
        Executor::Pooled(self.key.clone())
    }

    fn call(&self, req: Request) -> Response {
        let path = req.head.raw_path();
        if path.ends_with(b"/panic") {
            panic!("fault: /panic requested");
        }
        if path.ends_with(b"/abort") {
            std::process::abort();
        }
        if path.ends_with(b"/sleep") {
            let ms = query_u64(&req.head, "ms").unwrap_or(1000).min(600_000);
            std::thread::sleep(std::time::Duration::from_millis(ms));
            return Response::text(Status::OK, format!("slept {ms} ms\n"));
        }
        Response::text(Status::NOT_FOUND, "fault: try /sleep?ms=N, /panic or /abort\n")
    }
}

/// The `healthcheck` middleware.
pub struct Healthcheck {
    inner: SharedProcessor,
}

impl Healthcheck {
    /// Wrap a processor.
    pub fn new(inner: SharedProcessor) -> Healthcheck {
        Healthcheck { inner }
    }

    fn is_check(head: &RequestHead) -> bool {
        *head.method() == Method::Get && head.raw_path() == b"/healthcheck"
    }
}

impl Processor for Healthcheck {
    fn executor(&self, head: &RequestHead) -> Executor {
        if Self::is_check(head) {
            Executor::Inline
        } else {
            self.inner.executor(head)
        }
    }

    fn call(&self, req: Request) -> Response {
        if Self::is_check(&req.head) {
            return Response::new(Status::OK)
                .with_header("Content-Type", &b"text/plain"[..])
                .with_body(Body::Bytes((&b"OK"[..]).into()));
        }
        self.inner.call(req)
    }

    fn allowed_methods(&self) -> Option<&[Method]> {
        // The check itself is a GET; anything else is the inner processor's
        // business, so defer to it entirely.
        self.inner.allowed_methods()
    }

    fn unknown_device(&self, head: &RequestHead, device: &str) -> Response {
        self.inner.unknown_device(head, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aerie_api::{BodyFraming, RequestBody, RequestHeadParts, Version};
    use std::sync::Arc;

    fn request(method: Method, target: &str) -> Request {
        let raw = target.as_bytes().to_vec();
        let addr = "127.0.0.1:9".parse().expect("literal address");
        let head = RequestHead::new(RequestHeadParts {
            target: 0..raw.len(),
            raw,
            method,
            version: Version::Http11,
            headers: vec![],
            peer: addr,
            local: addr,
            framing: BodyFraming::None,
            expect_continue: false,
        });
        Request { head, body: RequestBody::empty() }
    }

    #[test]
    fn hello_says_test_inline() {
        let r = request(Method::Get, "/");
        assert_eq!(Hello.executor(&r.head), Executor::Inline);
        let resp = Hello.call(r);
        assert_eq!(resp.status, Status::OK);
        match resp.body {
            Body::Bytes(b) => assert_eq!(&*b, b"test"),
            other => panic!("unexpected body {other:?}"),
        }
    }

    #[test]
    fn echo_reports_md5_of_empty_body_and_query() {
        let r = request(Method::Post, "/echo/x?a=1");
        let e = Echo::default();
        assert_eq!(e.executor(&r.head), Executor::Pooled(QueueKey::new("echo")));
        let resp = e.call(r);
        let Body::Bytes(b) = resp.body else { panic!("echo answers bytes") };
        let v: serde_json::Value = serde_json::from_slice(&b).expect("json");
        assert_eq!(v["body"]["md5"], "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(v["path"], "/echo/x");
        assert_eq!(v["query"], "a=1");
        assert_eq!(v["method"], "POST");
    }

    #[test]
    fn healthcheck_answers_only_get_healthcheck() {
        let h = Healthcheck::new(Arc::new(Echo::default()));
        let r = request(Method::Get, "/healthcheck");
        assert_eq!(h.executor(&r.head), Executor::Inline);
        assert_eq!(h.call(r).status, Status::OK);
        let r = request(Method::Put, "/healthcheck");
        assert!(matches!(h.executor(&r.head), Executor::Pooled(_)));
    }
}
