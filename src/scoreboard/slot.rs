//! A child process's slot: its identity and state, its counters, and the
//! figures of its queues (one cell per `processor:key` queue).

use super::cells::{fields, histogram, name, set, set_histogram, set_name, word, Histogram, HIST_WORDS, NAME_WORDS};
use crate::role::ProcessKind;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Queues reported per worker.
pub const QUEUES: usize = 32;
/// Connection-close reasons counted per worker (`http::CloseReason`).
pub const CLOSE_REASONS: usize = 16;

const S_PID: usize = 0;
const S_STATE: usize = 1;
const S_RECYCLE: usize = 2;
const S_GENERATION: usize = 3;
const S_INDEX: usize = 4;
const S_STARTED: usize = 5;
const S_HEARTBEAT: usize = 6;
const S_REQUESTS: usize = 7;
const S_BYTES_IN: usize = 8;
const S_BYTES_OUT: usize = 9;
const S_CONNECTIONS: usize = 10;
const S_ACCEPTED: usize = 11;
const S_QUEUE_COUNT: usize = 12;
const S_KIND: usize = 13;
const S_LOG_DROPPED: usize = 14;
const S_UNKNOWN_DEVICE: usize = 15;
const S_CLOSED: usize = 16;
/// Words of a slot's own region.
pub const SLOT_WORDS: usize = S_CLOSED + CLOSE_REASONS;

const Q_NAME: usize = 0;
const Q_NAME_LEN: usize = NAME_WORDS;
const Q_DEPTH: usize = NAME_WORDS + 1;
const Q_ACTIVE: usize = NAME_WORDS + 2;
const Q_THREADS: usize = NAME_WORDS + 3;
const Q_CAPACITY: usize = NAME_WORDS + 4;
const Q_SHED_FULL: usize = NAME_WORDS + 5;
const Q_SHED_AGE: usize = NAME_WORDS + 6;
const Q_COMPLETED: usize = NAME_WORDS + 7;
const Q_RECENT_IO: usize = NAME_WORDS + 8;
const Q_WAIT_HIST: usize = NAME_WORDS + 9;
const Q_IO_HIST: usize = Q_WAIT_HIST + HIST_WORDS;
/// Words of one queue cell.
pub const QUEUE_WORDS: usize = Q_IO_HIST + HIST_WORDS;
/// Words of a slot's queue region.
pub const SLOT_QUEUE_WORDS: usize = QUEUES * QUEUE_WORDS;

/// What a slot's process is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No process.
    Free,
    /// Forked, not yet serving.
    Starting,
    /// Serving.
    Ready,
    /// Stopped accepting; finishing in-flight requests.
    Draining,
}

impl State {
    fn from_word(v: u64) -> State {
        match v {
            1 => State::Starting,
            2 => State::Ready,
            3 => State::Draining,
            _ => State::Free,
        }
    }

    /// Lower-case name for status output.
    pub fn name(self) -> &'static str {
        match self {
            State::Free => "free",
            State::Starting => "starting",
            State::Ready => "ready",
            State::Draining => "draining",
        }
    }
}

/// A queue's identity across processes: the processor it belongs to and
/// its key (for the storage services, a device). Stored and shown as
/// `processor:key`; processor names never hold a `:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId {
    /// The processor (its catalog name).
    pub processor: String,
    /// The queue key within it.
    pub key: String,
}

impl QueueId {
    /// A queue id.
    pub fn new(processor: &str, key: &str) -> QueueId {
        QueueId { processor: processor.to_string(), key: key.to_string() }
    }

    /// `processor:key`, as a slot stores it.
    pub fn encode(&self) -> String {
        format!("{}:{}", self.processor, self.key)
    }

    /// Read back what [`QueueId::encode`] wrote.
    pub fn decode(s: &str) -> QueueId {
        let (processor, key) = s.split_once(':').unwrap_or((s, ""));
        QueueId::new(processor, key)
    }
}

/// One child's slot.
#[derive(Clone, Copy)]
pub struct Slot {
    pub(super) w: &'static [AtomicU64],
    pub(super) q: &'static [AtomicU64],
}

fields!(Slot {
    gauge pid / set_pid = S_PID;
    gauge recycle / set_recycle = S_RECYCLE;
    gauge generation / set_generation = S_GENERATION;
    gauge index / set_index = S_INDEX;
    gauge started_unix_ms / set_started_unix_ms = S_STARTED;
    gauge heartbeat_ms / set_heartbeat_ms = S_HEARTBEAT;
    counter requests / add_requests = S_REQUESTS;
    counter bytes_in / add_bytes_in = S_BYTES_IN;
    counter bytes_out / add_bytes_out = S_BYTES_OUT;
    gauge connections / set_connections = S_CONNECTIONS;
    counter accepted / add_accepted = S_ACCEPTED;
    gauge queue_count / set_queue_count = S_QUEUE_COUNT;
    gauge log_dropped / set_log_dropped = S_LOG_DROPPED;
    counter unknown_device / add_unknown_device = S_UNKNOWN_DEVICE;
});

impl Slot {
    /// The slot's state.
    pub fn state(&self) -> State {
        State::from_word(word(self.w, S_STATE))
    }

    /// Set the state.
    pub fn set_state(&self, s: State) {
        set(self.w, S_STATE, s as u64);
    }

    /// What the process is.
    pub fn kind(&self) -> ProcessKind {
        ProcessKind::from_code(word(self.w, S_KIND))
    }

    /// Record what the process is.
    pub fn set_kind(&self, kind: ProcessKind) {
        set(self.w, S_KIND, kind.code());
    }

    /// Zero every field (the slot becomes free).
    pub fn reset(&self) {
        for a in self.w.iter().chain(self.q) {
            a.store(0, Relaxed);
        }
    }

    /// Tick the heartbeat.
    pub fn beat(&self) {
        self.set_heartbeat_ms(crate::clock::monotonic_ms());
    }

    /// Connections closed for reason number `i`.
    pub fn closed(&self, i: usize) -> u64 {
        if i >= CLOSE_REASONS {
            return 0;
        }
        word(self.w, S_CLOSED + i)
    }

    /// Count a connection closed for reason number `i`.
    pub fn add_closed(&self, i: usize) {
        if i < CLOSE_REASONS {
            super::cells::add(self.w, S_CLOSED + i, 1);
        }
    }

    /// Queue cell `i`.
    pub fn queue(&self, i: usize) -> Option<QueueCell> {
        if i >= QUEUES {
            return None;
        }
        let start = i * QUEUE_WORDS;
        self.q.get(start..start + QUEUE_WORDS).map(|w| QueueCell { w })
    }

    /// The queues in use.
    pub fn queues(&self) -> impl Iterator<Item = QueueCell> + '_ {
        let n = (self.queue_count() as usize).min(QUEUES);
        (0..n).filter_map(move |i| self.queue(i))
    }
}

/// One queue's figures in a slot.
#[derive(Clone, Copy)]
pub struct QueueCell {
    w: &'static [AtomicU64],
}

fields!(QueueCell {
    gauge depth / set_depth = Q_DEPTH;
    gauge active / set_active = Q_ACTIVE;
    gauge threads / set_threads = Q_THREADS;
    gauge capacity / set_capacity = Q_CAPACITY;
    gauge shed_full / set_shed_full = Q_SHED_FULL;
    gauge shed_age / set_shed_age = Q_SHED_AGE;
    gauge completed / set_completed = Q_COMPLETED;
    gauge recent_io_us / set_recent_io_us = Q_RECENT_IO;
});

impl QueueCell {
    /// Store which queue this is.
    pub fn set_id(&self, id: &QueueId) {
        set_name(self.w, Q_NAME, Q_NAME_LEN, &id.encode());
    }

    /// Which queue this is (lossy: a worker may have died mid-write).
    pub fn id(&self) -> QueueId {
        QueueId::decode(&name(self.w, Q_NAME, Q_NAME_LEN))
    }

    /// Store the queue-wait histogram.
    pub fn set_wait_histogram(&self, h: &Histogram) {
        set_histogram(self.w, Q_WAIT_HIST, h);
    }

    /// The queue-wait histogram.
    pub fn wait_histogram(&self) -> Histogram {
        histogram(self.w, Q_WAIT_HIST)
    }

    /// Store the I/O-time histogram.
    pub fn set_io_histogram(&self, h: &Histogram) {
        set_histogram(self.w, Q_IO_HIST, h);
    }

    /// The I/O-time histogram.
    pub fn io_histogram(&self) -> Histogram {
        histogram(self.w, Q_IO_HIST)
    }
}
