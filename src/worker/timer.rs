//! Connection deadlines.
//!
//! An ordered set of (deadline, slab key, serial), at most one entry per
//! connection: the connection remembers the entry it has (`timer_at`), a
//! closing connection removes it, and a deadline that moves *later* does not
//! touch the set at all — when the early entry fires, the loop checks the
//! connection's real deadline and re-arms it. So a keep-alive connection
//! serving many requests costs no timer operations per request, and the set
//! never holds more entries than there are open connections (a lazily
//! expiring heap would keep one entry per closed connection until its
//! deadline, megabytes under a fresh-connection load).

use std::collections::BTreeSet;
use std::time::Instant;

/// The deadline set.
#[derive(Debug, Default)]
pub struct Timers {
    set: BTreeSet<(Instant, usize, u64)>,
}

impl Timers {
    /// Arm a deadline for a connection.
    pub fn schedule(&mut self, at: Instant, key: usize, serial: u64) {
        self.set.insert((at, key, serial));
    }

    /// Remove a connection's entry.
    pub fn cancel(&mut self, at: Instant, key: usize, serial: u64) {
        self.set.remove(&(at, key, serial));
    }

    /// The earliest deadline, if any.
    pub fn next(&self) -> Option<Instant> {
        self.set.first().map(|(at, _, _)| *at)
    }

    /// Remove and return the entries due at `now`, earliest first.
    pub fn due(&mut self, now: Instant) -> Vec<(usize, u64)> {
        let mut out = Vec::new();
        while let Some(&(at, key, serial)) = self.set.first() {
            if at > now {
                break;
            }
            self.set.pop_first();
            out.push((key, serial));
        }
        out
    }

    /// Entries armed.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether nothing is armed.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn due_returns_expired_entries_in_order_and_cancel_removes() {
        let now = Instant::now();
        let mut t = Timers::default();
        t.schedule(now + Duration::from_secs(2), 2, 0);
        t.schedule(now, 1, 0);
        t.schedule(now + Duration::from_secs(9), 3, 0);
        t.schedule(now + Duration::from_secs(1), 4, 7);
        t.cancel(now + Duration::from_secs(1), 4, 7);
        assert_eq!(t.due(now + Duration::from_secs(3)), vec![(1, 0), (2, 0)]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.next(), Some(now + Duration::from_secs(9)));
    }
}
