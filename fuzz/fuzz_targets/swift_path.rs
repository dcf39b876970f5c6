//! Swift path handling: percent-decoding, UTF-8 checks, splitting, device
//! names. Never panics; a device name accepted as safe cannot leave the
//! devices root (no `/`, NUL, `.` or `..`); quoting round-trips through
//! decoding. (NUL may appear in names: it marks Swift's reserved
//! namespace, checked separately.)
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::swift_path(data));
