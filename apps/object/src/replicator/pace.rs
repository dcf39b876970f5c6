//! A device's replication pace: token buckets for object bytes and objects
//! per second, shared by the device's replication threads, so that the
//! disk keeps room for client requests (`replication.max_bytes_per_second`,
//! `replication.max_objects_per_second`; 0 is no limit).

use crate::ssync::sender::Pace;
use aerie_storage::pass::Bucket;
use std::sync::Mutex;

/// A device's pace; every object taken also tells `alive` that the
/// replication is moving (the process's heartbeat).
pub struct DevicePace<'a> {
    buckets: Mutex<(Bucket, Bucket)>,
    alive: &'a (dyn Fn() + Sync),
}

impl<'a> DevicePace<'a> {
    /// At most `bytes` object bytes and `objects` objects per second.
    pub fn new(bytes: u64, objects: u64, alive: &'a (dyn Fn() + Sync)) -> DevicePace<'a> {
        DevicePace { buckets: Mutex::new((Bucket::new(bytes as f64), Bucket::new(objects as f64))), alive }
    }
}

impl Pace for DevicePace<'_> {
    fn take(&self, objects: u64, bytes: u64) {
        (self.alive)();
        let wait = {
            let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
            let w1 = b.0.take(bytes as f64);
            let w2 = b.1.take(objects as f64);
            w1.max(w2)
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}
