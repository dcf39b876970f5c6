//! The pickle reader fed arbitrary xattr bytes (Swift's object metadata):
//! never panics, never loops, and what it accepts as metadata survives a
//! dump and load.
#![no_main]
use aerie_storage::pickle::{dumps, loads, loads_metadata};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = loads(data) {
        let again = loads(&dumps(&v)).expect("a dumped value loads");
        assert_eq!(dumps(&again), dumps(&v));
    }
    let _ = loads_metadata(data);
});
