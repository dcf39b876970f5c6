//! Connection deadlines.
//!
//! A min-heap of (deadline, slab key, serial). Each connection keeps its
//! current deadline and the earliest time it has in the heap; a new entry is
//! pushed only when the deadline moves *earlier* than that, and when an
//! entry fires the connection's real deadline is checked (and re-armed if it
//! moved later). So a keep-alive connection serving many requests adds no
//! heap entries per request, and the heap stays within a small multiple of
//! the number of connections.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// The deadline heap.
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
}

impl Timers {
    /// Arm a deadline for a connection.
    pub fn schedule(&mut self, at: Instant, key: usize, serial: u64) {
        self.heap.push(Reverse((at, key, serial)));
    }

    /// The earliest deadline, if any.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Remove and return the entries due at `now`.
    pub fn due(&mut self, now: Instant) -> Vec<(usize, u64)> {
        let mut out = Vec::new();
        while let Some(Reverse((at, key, serial))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            out.push((key, serial));
        }
        out
    }

    /// Entries in the heap (for tests and status).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether the heap is empty.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn due_returns_expired_entries_in_order() {
        let now = Instant::now();
        let mut t = Timers::default();
        t.schedule(now + Duration::from_secs(2), 2, 0);
        t.schedule(now, 1, 0);
        t.schedule(now + Duration::from_secs(9), 3, 0);
        assert_eq!(t.due(now + Duration::from_secs(3)), vec![(1, 0), (2, 0)]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.next(), Some(now + Duration::from_secs(9)));
    }
}
