//! The processor interface of aerie.
//!
//! A *processor* is a value the server calls once per request, like a WSGI
//! application: it receives a [`Request`] (an immutable [`RequestHead`] plus a
//! [`RequestBody`] reader) and returns a [`Response`] (status, headers and a
//! [`Body`]). Middleware wraps a processor and is itself a processor, so a
//! pipeline such as `["healthcheck", "echo"]` is a chain of values.
//!
//! Every processor also says *where* it runs, per request, through
//! [`Processor::executor`]:
//!
//! * [`Executor::Inline`]: on the worker's event-loop thread. Only for code that
//!   never blocks (no disk, no database, no sleeping) and that does not read the
//!   request body; an inline processor that tries to read a body gets an error.
//! * [`Executor::Pooled`]: on a thread of the pool named by the queue key (for
//!   the storage services: the device). Each key has its own bounded queue; when
//!   it is full the server answers `503` with `Retry-After` without calling the
//!   processor.
//!
//! This crate owns no sockets and no event loop and depends on nothing of the
//! server: that boundary is what keeps processors cheap to add and the server
//! safe to change. What the server promises a processor:
//!
//! * the head is complete and within the configured limits; the body is framed
//!   (Content-Length or chunked, already decoded) and bounded by the listener's
//!   `max_body_size`;
//! * `100 Continue` is sent only when the body is first read (or when
//!   [`RequestBody::send_continue`] is called), so a processor can refuse a
//!   request before the client sends the body;
//! * the response gets `Date`, `Server`, `Content-Length` or chunked framing and
//!   `Connection` from the server; a processor must not set those itself.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod body;
mod head;
mod response;

pub use body::{BodySource, BodyStream, RequestBody};
pub use head::{BodyFraming, Method, RequestHead, RequestHeadParts, Version};
pub use response::{Body, Header, Response, Status};

use std::sync::Arc;

/// Where a request runs. See the crate documentation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Executor {
    /// On the event-loop thread; must never block.
    Inline,
    /// On a thread of the pool for this queue key (e.g. a device name).
    Pooled(QueueKey),
}

/// The device lane the storage services run replication in (`REPLICATE`,
/// `SSYNC`).
pub const REPLICATION_LANE: &str = "replication";

/// The name of a bounded request queue inside one processor's pool. Keys
/// are compared by value; each distinct key gets its own queue and threads.
///
/// A **device** key (the storage services' queues) gets a queue only if
/// the node has that device (a directory of the devices root, as the
/// master lists them): a request naming another device is answered with
/// [`Processor::unknown_device`] on the loop thread, so a client cannot
/// make a worker start threads for devices that do not exist, nor take a
/// real device's queue away. Other keys are bounded in number per worker.
///
/// A device may have **lanes** besides its queue: a lane is a queue and
/// threads of its own for one kind of work on the device (the storage
/// services run replication in the [`REPLICATION_LANE`], so long SSYNC
/// sessions and database merges never hold the threads client requests
/// wait for), checked
/// against the node's devices like the device's queue. Its key reads
/// `<device>/<lane>` (device names have no `/`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueKey {
    name: Box<str>,
    device: bool,
}

impl QueueKey {
    /// A queue key from any string.
    pub fn new(key: impl Into<Box<str>>) -> Self {
        QueueKey { name: key.into(), device: false }
    }

    /// The queue of a device of the devices root.
    pub fn device(name: impl Into<Box<str>>) -> Self {
        QueueKey { name: name.into(), device: true }
    }

    /// A lane of a device (see the type's documentation).
    pub fn device_lane(name: &str, lane: &str) -> Self {
        QueueKey { name: format!("{name}/{lane}").into(), device: true }
    }

    /// The key as a string (`<device>/<lane>` for a lane).
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Whether the key is a lane of a device.
    pub fn is_lane(&self) -> bool {
        self.device && self.name.contains('/')
    }

    /// Whether the key names a device (or a device's lane).
    pub fn is_device(&self) -> bool {
        self.device
    }

    /// The device a device key names, without its lane.
    pub fn device_name(&self) -> &str {
        self.name.split('/').next().unwrap_or("")
    }

    /// The lane of a device key, if it is one.
    pub fn lane(&self) -> Option<&str> {
        self.name.split_once('/').map(|(_, l)| l).filter(|_| self.device)
    }
}

impl std::fmt::Display for QueueKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// A request handler. See the crate documentation for the contract.
///
/// A processor is shared by the loop thread and every pool thread of a
/// worker, hence `Send + Sync`; it must keep per-request state in the request,
/// not in itself. What it cannot do: write to the socket, send a second
/// interim response, or run a response body stream on the loop thread that
/// blocks (an inline processor's streams must be in memory).
pub trait Processor: Send + Sync {
    /// Where this request runs. Called on the loop thread: must be cheap and
    /// must not block.
    fn executor(&self, head: &RequestHead) -> Executor;

    /// Handle one request. Runs on the thread chosen by [`Processor::executor`].
    /// Errors are responses: a processor answers every request, and a panic is
    /// turned into a `500` by the server (pooled) or crashes the worker
    /// (inline; the master restarts it).
    fn call(&self, req: Request) -> Response;

    /// The methods this processor implements, if it wants the server to answer
    /// others with `405 Method Not Allowed` and an `Allow` header before the
    /// processor is called. `None` (the default) passes every method through.
    fn allowed_methods(&self) -> Option<&[Method]> {
        None
    }

    /// The answer to a request whose queue is a device this node does not
    /// have ([`QueueKey::device`]). Called on the loop thread instead of
    /// [`Processor::call`]: must not block. The default is a plain `507`.
    fn unknown_device(&self, head: &RequestHead, device: &str) -> Response {
        let _ = head;
        Response::text(Status::INSUFFICIENT_STORAGE, format!("no such device: {device}\n"))
    }
}

/// A shared, type-erased processor, as pipelines hold them.
pub type SharedProcessor = Arc<dyn Processor>;

/// A complete request as a processor receives it.
#[derive(Debug)]
pub struct Request {
    /// Method, target, headers, peer and framing.
    pub head: RequestHead,
    /// The decoded body; empty when the request has none.
    pub body: RequestBody,
}

/// Why a processor could not be built (bad settings, a missing resource). A
/// worker whose processor fails to build exits with the boot-failure code and
/// the master stops instead of restarting it in a loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError(pub String);

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BuildError {}
