//! The pickle reader fed arbitrary xattr bytes (Swift's object metadata):
//! never panics, never loops, and what it accepts as metadata survives a
//! dump and load.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::pickle(data));
