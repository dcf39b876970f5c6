//! Per-key thread pools, created inside the worker after fork.
//!
//! A pooled processor names a queue key per request (for the storage
//! services, the device). Each (processor, key) pair gets its own bounded
//! queue of `queue_per_device` jobs and `threads_per_device` OS threads, made
//! the first time the key is seen, so a slow device backs up only its own
//! queue. `submit` never blocks: a full queue hands the job back and the loop
//! answers `503` with `Retry-After` at once.
//!
//! Pool threads run the processor inside `catch_unwind`: a panic becomes a
//! logged `500`, the thread lives on. Everything a job produces goes back to
//! the loop through the [`Notifier`].

use super::body::{chunk_pipe, ChunkMsg};
use super::completion::{Completion, ConnId, Notifier, ResponseBody};
use crate::config::PoolConfig;
use aerie_api::{Body, QueueKey, Request, Response, SharedProcessor, Status};
use crossbeam_channel::{Sender, TrySendError};
use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// Queue keys per worker beyond which new keys are refused (503): a client
/// must not be able to make a worker start threads without bound.
pub const MAX_QUEUES: usize = 256;

/// Stack size of pool threads: processors stream through small buffers, and
/// untouched stack costs address space only, but a smaller reservation keeps
/// many pools cheap.
const POOL_STACK: usize = 512 * 1024;

/// One unit of pooled work.
pub struct Job {
    /// The pipeline to call.
    pub processor: SharedProcessor,
    /// The request.
    pub request: Request,
    /// Where the answer goes.
    pub conn: ConnId,
    /// When it was queued.
    pub enqueued: Instant,
}

struct Queue {
    tx: Sender<Job>,
}

/// Why a job was not queued (the job is dropped: the loop answers 503).
pub enum Refused {
    /// The key's queue is full.
    Full,
    /// Too many distinct keys, or a thread could not be started.
    NoQueue(String),
}

/// All pools of a worker.
pub struct Pools {
    queues: HashMap<(&'static str, QueueKey), Queue>,
    settings: BTreeMap<String, PoolConfig>,
    notifier: Notifier,
}

impl Pools {
    /// Pools with per-processor settings; no thread exists until a key is used.
    pub fn new(settings: BTreeMap<String, PoolConfig>, notifier: Notifier) -> Pools {
        Pools { queues: HashMap::new(), settings, notifier }
    }

    /// Queue a job for `(processor, key)` without blocking.
    pub fn submit(&mut self, processor: &'static str, key: QueueKey, job: Job) -> Result<(), Refused> {
        let id = (processor, key);
        if !self.queues.contains_key(&id) {
            if self.queues.len() >= MAX_QUEUES {
                return Err(Refused::NoQueue(format!("more than {MAX_QUEUES} queues")));
            }
            match self.start_queue(processor, &id.1) {
                Ok(q) => {
                    self.queues.insert(id.clone(), q);
                }
                Err(e) => return Err(Refused::NoQueue(e)),
            }
        }
        let Some(q) = self.queues.get(&id) else {
            return Err(Refused::NoQueue("queue vanished".into()));
        };
        match q.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(Refused::Full),
            Err(TrySendError::Disconnected(_)) => Err(Refused::NoQueue("queue threads are gone".into())),
        }
    }

    /// Depth of every queue, for status output.
    pub fn depths(&self) -> Vec<(&'static str, &QueueKey, usize)> {
        self.queues.iter().map(|((p, k), q)| (*p, k, q.tx.len())).collect()
    }

    fn start_queue(&self, processor: &'static str, key: &QueueKey) -> Result<Queue, String> {
        let cfg = self.settings.get(processor).copied().unwrap_or(PoolConfig {
            threads_per_device: crate::config::defaults::THREADS_PER_DEVICE,
            queue_per_device: crate::config::defaults::QUEUE_PER_DEVICE,
        });
        let (tx, rx) = crossbeam_channel::bounded::<Job>(cfg.queue_per_device);
        for i in 0..cfg.threads_per_device {
            let rx = rx.clone();
            let notifier = self.notifier.clone();
            let name = format!("{processor}:{key}:{i}");
            std::thread::Builder::new()
                .name(name.clone())
                .stack_size(POOL_STACK)
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        run_job(job, &notifier);
                    }
                })
                .map_err(|e| format!("could not start pool thread {name}: {e}"))?;
        }
        log::debug!(
            "started queue {processor}:{key} ({} threads, depth {})",
            cfg.threads_per_device,
            cfg.queue_per_device
        );
        Ok(Queue { tx })
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic".to_string()
    }
}

fn internal_error() -> Response {
    Response::text(Status::INTERNAL_SERVER_ERROR, "internal error\n")
}

/// Run one job on this pool thread and send everything it produces.
fn run_job(job: Job, notifier: &Notifier) {
    let Job { processor, request, conn, enqueued } = job;
    let queue_wait = enqueued.elapsed();
    let target = String::from_utf8_lossy(request.head.target()).into_owned();
    let response = catch_unwind(AssertUnwindSafe(|| processor.call(request))).unwrap_or_else(|p| {
        log::error!("processor panicked on {target}: {}", panic_message(&*p));
        internal_error()
    });
    deliver(response, conn, queue_wait, notifier);
}

fn deliver(response: Response, conn: ConnId, queue_wait: Duration, notifier: &Notifier) {
    let Response { status, headers, body } = response;
    match body {
        Body::Empty => {
            notifier.send(Completion::Response { conn, status, headers, body: ResponseBody::Empty, queue_wait })
        }
        Body::Bytes(b) => {
            notifier.send(Completion::Response { conn, status, headers, body: ResponseBody::Bytes(b), queue_wait })
        }
        Body::Stream { len, mut stream } => {
            let (tx, rx) = chunk_pipe(notifier.clone(), conn);
            notifier.send(Completion::Response {
                conn,
                status,
                headers,
                body: ResponseBody::Stream { len, rx },
                queue_wait,
            });
            loop {
                let next = catch_unwind(AssertUnwindSafe(|| stream.next_chunk()));
                let msg = match next {
                    Ok(Ok(Some(chunk))) if chunk.is_empty() => continue,
                    Ok(Ok(Some(chunk))) => ChunkMsg::Data(chunk),
                    Ok(Ok(None)) => ChunkMsg::End,
                    Ok(Err(e)) => {
                        log::warn!("response body stream failed: {e}");
                        ChunkMsg::Error
                    }
                    Err(p) => {
                        log::error!("response body stream panicked: {}", panic_message(&*p));
                        ChunkMsg::Error
                    }
                };
                let last = !matches!(msg, ChunkMsg::Data(_));
                if !tx.send(msg) || last {
                    break;
                }
            }
        }
    }
}
