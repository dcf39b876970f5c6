//! The request-head parser: never panics; an accepted head's ranges are in
//! bounds of what was parsed, and feeding the same bytes in two pieces
//! gives the same answer as feeding them whole.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::http_head(data));
