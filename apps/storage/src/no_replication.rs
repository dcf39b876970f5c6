//! The `no-replication` middleware: a storage listener that does not serve
//! replication, as a Swift server with `replication_server = false` (the
//! public half of a node whose replication traffic has its own network and
//! port). `REPLICATE` and `SSYNC` answer `405 Method Not Allowed` with
//! Swift's page and no `Allow` header, as Swift's `__call__` does, and an
//! `OPTIONS` answer's `Allow` no longer names them; everything else goes to
//! the wrapped service.

use crate::swob::page;
use aerie_api::{Executor, Method, Processor, Request, RequestHead, Response, SharedProcessor, Status};

/// The methods Swift marks `@replication`.
const REPLICATION_METHODS: &[&str] = &["REPLICATE", "SSYNC"];

/// The middleware.
pub struct NoReplication {
    inner: SharedProcessor,
}

impl NoReplication {
    /// Wrap a storage service.
    pub fn new(inner: SharedProcessor) -> NoReplication {
        NoReplication { inner }
    }

    fn refused(head: &RequestHead) -> bool {
        REPLICATION_METHODS.contains(&head.method().as_str())
    }
}

impl Processor for NoReplication {
    fn executor(&self, head: &RequestHead) -> Executor {
        if Self::refused(head) {
            Executor::Inline
        } else {
            self.inner.executor(head)
        }
    }

    fn call(&self, req: Request) -> Response {
        if Self::refused(&req.head) {
            return page(Status::METHOD_NOT_ALLOWED);
        }
        let options = *req.head.method() == Method::Options;
        let mut resp = self.inner.call(req);
        if options {
            for h in resp.headers.iter_mut().filter(|h| h.name.eq_ignore_ascii_case("allow")) {
                let kept: Vec<&str> = std::str::from_utf8(&h.value)
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty() && !REPLICATION_METHODS.contains(m))
                    .collect();
                h.value = kept.join(", ").into_bytes().into();
            }
        }
        resp
    }

    fn allowed_methods(&self) -> Option<&[Method]> {
        self.inner.allowed_methods()
    }

    fn unknown_device(&self, head: &RequestHead, device: &str) -> Response {
        if Self::refused(head) {
            return page(Status::METHOD_NOT_ALLOWED);
        }
        self.inner.unknown_device(head, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aerie_api::{Body, BodyFraming, RequestBody, RequestHeadParts, Version};
    use std::sync::Arc;

    /// A service that allows everything and says so on OPTIONS.
    struct Service;

    impl Processor for Service {
        fn executor(&self, _head: &RequestHead) -> Executor {
            Executor::Inline
        }

        fn call(&self, _req: Request) -> Response {
            Response::new(Status::OK).with_header("Allow", &b"DELETE, GET, REPLICATE, SSYNC, PUT"[..])
        }
    }

    fn request(method: &str) -> Request {
        let raw = b"/sda1/0".to_vec();
        let addr = "127.0.0.1:9".parse().expect("literal address");
        let head = RequestHead::new(RequestHeadParts {
            target: 0..raw.len(),
            raw,
            method: Method::from_token(method),
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
    fn refuses_replication_verbs_and_hides_them_from_options() {
        let m = NoReplication::new(Arc::new(Service));
        for verb in ["REPLICATE", "SSYNC"] {
            let r = m.call(request(verb));
            assert_eq!(r.status, Status::METHOD_NOT_ALLOWED);
            assert!(r.header("allow").is_none());
            let Body::Bytes(b) = r.body else { panic!("a page") };
            assert!(String::from_utf8_lossy(&b).contains("Method Not Allowed"));
            assert_eq!(m.unknown_device(&request(verb).head, "sdz").status, Status::METHOD_NOT_ALLOWED);
        }
        assert_eq!(m.call(request("GET")).status, Status::OK);
        let r = m.call(request("OPTIONS"));
        assert_eq!(r.header("allow"), Some(&b"DELETE, GET, PUT"[..]));
    }
}
