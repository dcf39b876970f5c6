//! SSYNC's MISSING_CHECK and UPDATES fed arbitrary bytes: the offer parser
//! round-trips what it accepts, and a receiver session never panics, ends,
//! and writes nothing outside its device.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::ssync(data));
