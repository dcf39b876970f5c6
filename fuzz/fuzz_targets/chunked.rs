//! The chunked body decoder: never panics, never emits more than it was
//! given room for, and decodes the same bytes the same way whether they
//! arrive whole or split at an arbitrary point.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::chunked(data));
