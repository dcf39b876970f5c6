//! Listing query strings: parameter splitting and decoding, format
//! negotiation and limits. Never panics.
#![no_main]
use aerie_api::{BodyFraming, Method, RequestHead, RequestHeadParts, Version};
use aerie_container::common::{listing_limit, negotiate, query_pairs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut raw = b"GET /sda1/0/a/c?".to_vec();
    raw.extend_from_slice(data);
    let target = 4..raw.len();
    raw.extend_from_slice(b" HTTP/1.1\r\n\r\n");
    let head = RequestHead::new(RequestHeadParts {
        raw,
        method: Method::Get,
        target,
        version: Version::Http11,
        headers: Vec::new(),
        peer: "127.0.0.1:1".parse().expect("addr"),
        local: "127.0.0.1:2".parse().expect("addr"),
        framing: BodyFraming::None,
        expect_continue: false,
    });
    if let Ok(q) = query_pairs(&head) {
        let _ = negotiate(&head, &q);
        let limit = q.iter().find(|(k, _)| k == "limit").map(|(_, v)| v.as_str());
        if let Ok(n) = listing_limit(limit, 10_000) {
            assert!(n <= 10_000);
        }
    }
});
