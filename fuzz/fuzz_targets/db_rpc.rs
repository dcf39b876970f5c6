//! The database replication RPC fed arbitrary bodies: it never panics,
//! answers a status Swift's client knows, leaves the database readable and
//! writes nothing outside its device.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::db_rpc(data));
