//! The master's two device tables: the devices that exist under the
//! devices root (listed by the master every few seconds; a worker starts a
//! storage queue only for a name in it, so a client cannot make a worker
//! start threads for devices that do not exist), and each queue's health
//! verdict (the slow flag, judged by the master from the workers' figures).

use super::cells::{fields, name, set_name, NAME_WORDS};
use super::slot::QueueId;
use std::sync::atomic::AtomicU64;

/// Devices the master reports health for.
pub const DEVICES: usize = 64;
const D_NAME: usize = 0;
const D_NAME_LEN: usize = NAME_WORDS;
const D_SLOW: usize = NAME_WORDS + 1;
const D_RECENT_IO: usize = NAME_WORDS + 2;
const D_SINCE: usize = NAME_WORDS + 3;
/// Words of one health cell.
pub const DEVICE_WORDS: usize = NAME_WORDS + 4;

/// Devices of the devices root the table holds.
pub const KNOWN_DEVICES: usize = 512;
/// Words of one known-device entry: the name and its length.
pub const KNOWN_WORDS: usize = NAME_WORDS + 1;

/// One queue's health, as the master judges it.
#[derive(Clone, Copy)]
pub struct DeviceCell {
    pub(super) w: &'static [AtomicU64],
}

fields!(DeviceCell {
    gauge slow / set_slow = D_SLOW;
    gauge recent_io_us / set_recent_io_us = D_RECENT_IO;
    gauge since_unix_ms / set_since_unix_ms = D_SINCE;
});

impl DeviceCell {
    /// Store which queue this is.
    pub fn set_id(&self, id: &QueueId) {
        set_name(self.w, D_NAME, D_NAME_LEN, &id.encode());
    }

    /// Which queue this is.
    pub fn id(&self) -> QueueId {
        QueueId::decode(&name(self.w, D_NAME, D_NAME_LEN))
    }
}

/// One entry of the known-devices table.
#[derive(Clone, Copy)]
pub struct KnownDevice {
    pub(super) w: &'static [AtomicU64],
}

impl KnownDevice {
    /// Store a device name.
    pub fn set(&self, device: &str) {
        set_name(self.w, 0, NAME_WORDS, device);
    }

    /// The device name.
    pub fn get(&self) -> String {
        name(self.w, 0, NAME_WORDS)
    }
}
