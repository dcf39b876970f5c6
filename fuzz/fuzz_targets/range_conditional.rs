//! Range and conditional headers: never panic, and every satisfiable
//! range lies inside the object.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::range_conditional(data));
