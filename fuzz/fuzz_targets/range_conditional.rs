//! Range and conditional headers: never panic, and every satisfiable
//! range lies inside the object.
#![no_main]
use aerie_object::conditional::{etag_list, parse_http_date};
use aerie_object::range::{resolve, Ranges};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let len = s.len() as u64 * 7919 % 100_000;
    if let Ranges::Spans(spans) = resolve(Some(s), len) {
        assert!(!spans.is_empty());
        for (start, end) in spans {
            // [start, end) inside the object, never empty.
            assert!(start < end && end <= len, "[{start}, {end}) outside 0..{len}");
        }
    }
    let _ = etag_list(s);
    let _ = parse_http_date(s);
});
