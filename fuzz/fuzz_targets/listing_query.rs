//! Listing query strings: parameter splitting and decoding, format
//! negotiation and limits. Never panics.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::listing_query(data));
