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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
    stats: Arc<QueueStats>,
    threads: usize,
    capacity: usize,
    shed_full: u64,
}

/// Figures pool threads update while they run jobs.
#[derive(Default)]
struct QueueStats {
    active: AtomicU64,
    completed: AtomicU64,
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
        let Some(q) = self.queues.get_mut(&id) else {
            return Err(Refused::NoQueue("queue vanished".into()));
        };
        match q.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                q.shed_full += 1;
                Err(Refused::Full)
            }
            Err(TrySendError::Disconnected(_)) => Err(Refused::NoQueue("queue threads are gone".into())),
        }
    }

    /// Write every queue's figures into the worker's scoreboard slot (the
    /// busiest first when there are more queues than cells).
    pub fn report(&self, slot: &crate::scoreboard::Slot) {
        let mut all: Vec<(&(&'static str, QueueKey), &Queue)> = self.queues.iter().collect();
        all.sort_by_key(|(id, q)| (std::cmp::Reverse(q.tx.len()), id.0, id.1.clone()));
        let mut n = 0;
        for (i, ((processor, key), q)) in all.into_iter().enumerate() {
            let Some(cell) = slot.queue(i) else { break };
            cell.set_name(&format!("{processor}:{key}"));
            cell.set_depth(q.tx.len() as u64);
            cell.set_active(q.stats.active.load(Ordering::Relaxed));
            cell.set_completed(q.stats.completed.load(Ordering::Relaxed));
            cell.set_threads(q.threads as u64);
            cell.set_capacity(q.capacity as u64);
            cell.set_shed_full(q.shed_full);
            n += 1;
        }
        slot.set_queue_count(n as u64);
    }

    fn start_queue(&self, processor: &'static str, key: &QueueKey) -> Result<Queue, String> {
        let cfg = self.settings.get(processor).copied().unwrap_or(PoolConfig {
            threads_per_device: crate::config::defaults::THREADS_PER_DEVICE,
            queue_per_device: crate::config::defaults::QUEUE_PER_DEVICE,
        });
        let (tx, rx) = crossbeam_channel::bounded::<Job>(cfg.queue_per_device);
        let stats = Arc::new(QueueStats::default());
        for i in 0..cfg.threads_per_device {
            let rx = rx.clone();
            let notifier = self.notifier.clone();
            let stats = stats.clone();
            let name = format!("{processor}:{key}:{i}");
            std::thread::Builder::new()
                .name(name.clone())
                .stack_size(POOL_STACK)
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        stats.active.fetch_add(1, Ordering::Relaxed);
                        run_job(job, &notifier);
                        stats.active.fetch_sub(1, Ordering::Relaxed);
                        stats.completed.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .map_err(|e| format!("could not start pool thread {name}: {e}"))?;
        }
        log::debug!(
            "started queue {processor}:{key} ({} threads, depth {})",
            cfg.threads_per_device,
            cfg.queue_per_device
        );
        Ok(Queue { tx, stats, threads: cfg.threads_per_device, capacity: cfg.queue_per_device, shed_full: 0 })
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
