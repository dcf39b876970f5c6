//! The request-head parser: never panics; an accepted head's ranges are in
//! bounds of what was parsed, and feeding the same bytes in two pieces
//! gives the same answer as feeding them whole.
#![no_main]
use aerie::http::request::{parse_head, HeadLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = HeadLimits { max_request_line: 8192, max_header_bytes: 65536, max_headers: 256 };
    let whole = parse_head(data, &limits);
    if let Ok(Some(head)) = &whole {
        assert!(head.len <= data.len());
        assert!(head.target.end <= head.len && head.target.start <= head.target.end);
        for (n, v) in &head.headers {
            assert!(n.end <= head.len && v.end <= head.len);
        }
    }
    // A head complete within a prefix is the same head in the whole.
    if let Some(cut) = data.first().map(|&b| b as usize % (data.len() + 1)) {
        if let Ok(Some(h)) = parse_head(&data[..cut], &limits) {
            match &whole {
                Ok(Some(w)) => assert_eq!(&h, w),
                other => panic!("a prefix parsed as {h:?}, the whole as {other:?}"),
            }
        }
    }
});
