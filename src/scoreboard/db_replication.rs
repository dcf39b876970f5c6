//! The database replicators' table: for each of the two services
//! (containers, accounts) a list of cells, one per local device, written by
//! that service's replicator process as its pass goes and read by `/status`
//! and `/metrics`. Each service has its own list and count, so the two
//! processes never claim the same cell. Totals live here, not in the
//! process: a restarted replicator carries on from them.

use super::cells::{fields, name, set_name, NAME_WORDS};
use std::sync::atomic::AtomicU64;

/// The services with a database replicator, in table order.
pub const DB_SERVICES: [&str; 2] = ["container", "account"];
/// Devices per service.
pub const DB_REPLICATION_DEVICES: usize = 32;
const D_DATABASES: usize = NAME_WORDS;
const D_DONE: usize = NAME_WORDS + 1;
const D_PASS_STARTED: usize = NAME_WORDS + 2;
const D_LAST_PASS_MS: usize = NAME_WORDS + 3;
const D_LAST_PASS_END: usize = NAME_WORDS + 4;
const D_PASSES: usize = NAME_WORDS + 5;
const D_SUCCESS: usize = NAME_WORDS + 6;
const D_FAILURE: usize = NAME_WORDS + 7;
const D_NO_CHANGE: usize = NAME_WORDS + 8;
const D_HASHMATCH: usize = NAME_WORDS + 9;
const D_RSYNC: usize = NAME_WORDS + 10;
const D_REMOTE_MERGE: usize = NAME_WORDS + 11;
const D_DIFF: usize = NAME_WORDS + 12;
const D_DIFF_CAPPED: usize = NAME_WORDS + 13;
const D_ROWS_SENT: usize = NAME_WORDS + 14;
const D_REMOVE: usize = NAME_WORDS + 15;
const D_RECLAIMED: usize = NAME_WORDS + 16;
const D_ATTEMPTED: usize = NAME_WORDS + 17;
const D_UNOPENED: usize = NAME_WORDS + 18;
/// Words of one cell.
pub const DB_REPLICATION_WORDS: usize = NAME_WORDS + 19;
/// Words of the table: a count per service, then the cells.
pub const DB_TABLE_WORDS: usize = DB_SERVICES.len() + DB_SERVICES.len() * DB_REPLICATION_DEVICES * DB_REPLICATION_WORDS;

/// One device's database replication figures.
#[derive(Clone, Copy)]
pub struct DbReplicationCell {
    pub(super) w: &'static [AtomicU64],
}

fields!(DbReplicationCell {
    gauge databases / set_databases = D_DATABASES;
    gauge done / set_done = D_DONE;
    gauge pass_started_unix_ms / set_pass_started_unix_ms = D_PASS_STARTED;
    gauge last_pass_ms / set_last_pass_ms = D_LAST_PASS_MS;
    gauge last_pass_end_unix_ms / set_last_pass_end_unix_ms = D_LAST_PASS_END;
    counter passes / add_passes = D_PASSES;
    gauge attempted / set_attempted = D_ATTEMPTED;
    gauge success / set_success = D_SUCCESS;
    gauge failure / set_failure = D_FAILURE;
    gauge no_change / set_no_change = D_NO_CHANGE;
    gauge hashmatch / set_hashmatch = D_HASHMATCH;
    gauge rsync / set_rsync = D_RSYNC;
    gauge remote_merge / set_remote_merge = D_REMOTE_MERGE;
    gauge diff / set_diff = D_DIFF;
    gauge diff_capped / set_diff_capped = D_DIFF_CAPPED;
    gauge rows_sent / set_rows_sent = D_ROWS_SENT;
    gauge remove / set_remove = D_REMOVE;
    gauge reclaimed_rows / set_reclaimed_rows = D_RECLAIMED;
    gauge unopened / set_unopened = D_UNOPENED;
});

impl DbReplicationCell {
    /// Store the device's name.
    pub fn set_device(&self, device: &str) {
        set_name(self.w, 0, NAME_WORDS, device);
    }

    /// The device's name.
    pub fn device(&self) -> String {
        name(self.w, 0, NAME_WORDS)
    }
}
