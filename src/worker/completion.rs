//! Messages from pool threads back to the loop, and the one path they take:
//! an unbounded channel plus the loop's single `mio::Waker`.
//!
//! The channel is unbounded but its occupancy is bounded by construction:
//! each in-flight job produces at most one `Response` and each pipe at most
//! one outstanding wake-up per direction (see `body.rs`).

use aerie_api::{Header, Status};
use crossbeam_channel::{Receiver, Sender};
use mio::Waker;
use std::sync::Arc;
use std::time::Duration;

/// Identifies a connection across slab reuse: the slab key and a serial
/// number unique within the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnId {
    /// The slab key.
    pub key: usize,
    /// The serial number of the connection that had the key.
    pub serial: u64,
}

/// The response body as it crosses to the loop.
pub enum ResponseBody {
    /// No bytes.
    Empty,
    /// In memory.
    Bytes(std::borrow::Cow<'static, [u8]>),
    /// Produced by the pool thread, chunk by chunk.
    Stream {
        /// The exact length, if known.
        len: Option<u64>,
        /// The receiving end of the chunk pipe.
        rx: super::body::ChunkRx,
    },
}

/// A message from a pool thread.
pub enum Completion {
    /// The processor started reading the body: send `100 Continue` (with
    /// these headers) if the client expects it, and start feeding the pipe.
    WantBody {
        /// The connection.
        conn: ConnId,
        /// Headers for the interim response.
        headers: Vec<Header>,
    },
    /// The request-body pipe has room again.
    BodyRoom(ConnId),
    /// The processor answered.
    Response {
        /// The connection.
        conn: ConnId,
        /// The status.
        status: Status,
        /// The headers.
        headers: Vec<Header>,
        /// The body.
        body: ResponseBody,
        /// Time the request waited in its queue.
        queue_wait: Duration,
    },
    /// The response-body pipe has chunks again.
    ChunksReady(ConnId),
}

/// The sending side, cloned into every pool thread and pipe.
#[derive(Clone)]
pub struct Notifier {
    tx: Sender<Completion>,
    waker: Arc<Waker>,
}

impl Notifier {
    /// A notifier and the loop's receiving end.
    pub fn new(waker: Arc<Waker>) -> (Notifier, Receiver<Completion>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        (Notifier { tx, waker }, rx)
    }

    /// Send a message and wake the loop. Fails only when the loop is gone
    /// (the worker is exiting), in which case nobody is waiting.
    pub fn send(&self, c: Completion) {
        if self.tx.send(c).is_ok() {
            if let Err(e) = self.waker.wake() {
                log::error!("could not wake the event loop: {e}");
            }
        }
    }
}
