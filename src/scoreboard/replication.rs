//! The object replicator's table: one cell per local device, written by
//! the replicator process as its pass goes (the current pass's progress,
//! totals since the node started, the last pass's duration), read by
//! `/status` and `/metrics`. The totals live here, not in the process:
//! a restarted replicator carries on from them.

use super::cells::{fields, name, set_name, NAME_WORDS};
use std::sync::atomic::AtomicU64;

/// Devices the table holds.
pub const REPLICATION_DEVICES: usize = 64;
const R_NAME: usize = 0;
const R_NAME_LEN: usize = NAME_WORDS;
const R_PARTITIONS: usize = NAME_WORDS + 1;
const R_DONE: usize = NAME_WORDS + 2;
const R_PASS_STARTED: usize = NAME_WORDS + 3;
const R_LAST_PASS_MS: usize = NAME_WORDS + 4;
const R_LAST_PASS_END: usize = NAME_WORDS + 5;
const R_PASSES: usize = NAME_WORDS + 6;
const R_HASHED: usize = NAME_WORDS + 7;
const R_SYNCED: usize = NAME_WORDS + 8;
const R_HASHMATCH: usize = NAME_WORDS + 9;
const R_OBJECTS: usize = NAME_WORDS + 10;
const R_BYTES: usize = NAME_WORDS + 11;
const R_FAILURES: usize = NAME_WORDS + 12;
const R_HANDOFFS_REMOVED: usize = NAME_WORDS + 13;
const R_HANDOFF_OBJECTS_REMOVED: usize = NAME_WORDS + 14;
const R_HANDOFFS_REMAINING: usize = NAME_WORDS + 15;
/// Words of one cell.
pub const REPLICATION_WORDS: usize = NAME_WORDS + 16;

/// One device's replication figures.
#[derive(Clone, Copy)]
pub struct ReplicationCell {
    pub(super) w: &'static [AtomicU64],
}

fields!(ReplicationCell {
    gauge partitions / set_partitions = R_PARTITIONS;
    gauge done / set_done = R_DONE;
    gauge pass_started_unix_ms / set_pass_started_unix_ms = R_PASS_STARTED;
    gauge last_pass_ms / set_last_pass_ms = R_LAST_PASS_MS;
    gauge last_pass_end_unix_ms / set_last_pass_end_unix_ms = R_LAST_PASS_END;
    counter passes / add_passes = R_PASSES;
    gauge suffixes_hashed / set_suffixes_hashed = R_HASHED;
    gauge suffixes_synced / set_suffixes_synced = R_SYNCED;
    gauge hashmatch / set_hashmatch = R_HASHMATCH;
    gauge objects_sent / set_objects_sent = R_OBJECTS;
    gauge bytes_sent / set_bytes_sent = R_BYTES;
    gauge failures / set_failures = R_FAILURES;
    gauge handoffs_removed / set_handoffs_removed = R_HANDOFFS_REMOVED;
    gauge handoff_objects_removed / set_handoff_objects_removed = R_HANDOFF_OBJECTS_REMOVED;
    gauge handoffs_remaining / set_handoffs_remaining = R_HANDOFFS_REMAINING;
});

impl ReplicationCell {
    /// Store the device's name.
    pub fn set_device(&self, device: &str) {
        set_name(self.w, R_NAME, R_NAME_LEN, device);
    }

    /// The device's name.
    pub fn device(&self) -> String {
        name(self.w, R_NAME, R_NAME_LEN)
    }
}
