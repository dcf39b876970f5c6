//! A device's replication pace: token buckets for object bytes and objects
//! per second, shared by the device's replication threads, so that the
//! disk keeps room for client requests (`replication.max_bytes_per_second`,
//! `replication.max_objects_per_second`; 0 is no limit).

use crate::ssync::sender::Pace;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One bucket: `rate` per second, holding at most one second's worth.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u64) -> Bucket {
        Bucket { rate: rate as f64, tokens: rate as f64, at: Instant::now() }
    }

    /// Take `n`; how long to wait first.
    fn take(&mut self, n: f64) -> Duration {
        if self.rate <= 0.0 {
            return Duration::ZERO;
        }
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.rate);
        self.at = now;
        self.tokens -= n;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// A device's pace; every object taken also tells `alive` that the
/// replication is moving (the process's heartbeat).
pub struct DevicePace<'a> {
    buckets: Mutex<(Bucket, Bucket)>,
    alive: &'a (dyn Fn() + Sync),
}

impl<'a> DevicePace<'a> {
    /// At most `bytes` object bytes and `objects` objects per second.
    pub fn new(bytes: u64, objects: u64, alive: &'a (dyn Fn() + Sync)) -> DevicePace<'a> {
        DevicePace { buckets: Mutex::new((Bucket::new(bytes), Bucket::new(objects))), alive }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_lets_a_second_through_then_spaces_the_rest() {
        let mut b = Bucket::new(10);
        for _ in 0..10 {
            assert_eq!(b.take(1.0), Duration::ZERO);
        }
        let w = b.take(1.0);
        assert!(w > Duration::from_millis(50) && w <= Duration::from_millis(100), "{w:?}");
        let mut free = Bucket::new(0);
        assert_eq!(free.take(1e9), Duration::ZERO, "0 is no limit");
    }
}
