//! Per-key thread pools, created inside the worker after fork.
//!
//! A pooled processor names a queue key per request (for the storage
//! services, the device). Each (processor, key) pair gets its own bounded
//! queue of `queue_per_device` jobs and `threads_per_device` OS threads, made
//! the first time the key is seen, so a slow device backs up only its own
//! queue. `submit` never blocks: a full queue hands the job back and the loop
//! answers `503` with `Retry-After` at once.
//!
//! A job that waited in its queue longer than the processor's
//! `max_queue_wait` is answered `503` by the thread that picks it up,
//! without running it: its client has likely moved on, and a slow device
//! should not spend its time on abandoned work.
//!
//! Pool threads run the processor inside `catch_unwind`: a panic becomes a
//! logged `500`, the thread lives on. Everything a job produces goes back to
//! the loop through the [`Notifier`].
//!
//! Per queue the threads keep a histogram of queue waits and one of I/O
//! time per request — time on the pool thread less the time spent waiting
//! for the client's body or for the client to take the response — and the
//! recent mean I/O time (or the age of the oldest running job, if larger:
//! a hung disk completes nothing), which the master turns into the
//! device's slow flag.

use super::bridge::{chunk_pipe, take_body_wait, ChunkMsg, Completion, ConnId, Notifier, OutBody, Outgoing};
use super::queue::{self, Sender, TrySendError};
use crate::config::PoolConfig;
use crate::scoreboard::{Histogram, HIST_BOUNDS_MS};
use aerie_api::{Body, QueueKey, Request, Response, SharedProcessor, Status};
use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Queues per worker beyond which new keys that are not devices are
/// refused (503): a client must not be able to make a worker start threads
/// without bound. (Device keys need a device the node has.)
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

/// A histogram the pool threads add to (buckets of [`HIST_BOUNDS_MS`] and
/// one more for larger values; sum in microseconds).
#[derive(Default)]
pub struct AtomicHistogram {
    buckets: [AtomicU64; HIST_BOUNDS_MS.len() + 1],
    sum_us: AtomicU64,
}

impl AtomicHistogram {
    fn observe(&self, d: Duration) {
        let ms = d.as_secs_f64() * 1000.0;
        let i = HIST_BOUNDS_MS.iter().position(|&b| ms <= b as f64).unwrap_or(HIST_BOUNDS_MS.len());
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_us.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Histogram {
        let mut h = Histogram::default();
        for (dst, src) in h.buckets.iter_mut().zip(&self.buckets) {
            *dst = src.load(Ordering::Relaxed);
        }
        h.sum_us = self.sum_us.load(Ordering::Relaxed);
        h
    }
}

/// Figures pool threads update while they run jobs.
#[derive(Default)]
struct QueueStats {
    active: AtomicU64,
    completed: AtomicU64,
    shed_age: AtomicU64,
    wait: AtomicHistogram,
    io: AtomicHistogram,
    /// I/O time and jobs since the last report (for the recent mean).
    recent_io_us: AtomicU64,
    recent_jobs: AtomicU64,
    /// Per thread: when its current job started (µs on the monotonic
    /// clock since the queue started; 0 when idle).
    running_since: Vec<AtomicU64>,
    started: Option<Instant>,
}

impl QueueStats {
    fn now_us(&self) -> u64 {
        self.started.map_or(0, |s| s.elapsed().as_micros() as u64).max(1)
    }

    /// The recent I/O time per request: the mean over the jobs finished
    /// since the last call, or the age of the oldest running job if that is
    /// larger.
    fn take_recent_io(&self) -> Duration {
        let sum = self.recent_io_us.swap(0, Ordering::Relaxed);
        let n = self.recent_jobs.swap(0, Ordering::Relaxed);
        let mean = sum.checked_div(n).unwrap_or(0);
        let now = self.now_us();
        let oldest = self
            .running_since
            .iter()
            .map(|t| t.load(Ordering::Relaxed))
            .filter(|&t| t > 0)
            .map(|t| now.saturating_sub(t))
            .max()
            .unwrap_or(0);
        Duration::from_micros(mean.max(oldest))
    }
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
    /// Per processor, per key.
    queues: HashMap<&'static str, HashMap<QueueKey, Queue>>,
    settings: BTreeMap<String, PoolConfig>,
    notifier: Notifier,
    /// The `nice` of lanes' threads (0: as the worker's).
    lane_nice: i32,
}

impl Pools {
    /// Pools with per-processor settings; no thread exists until a key is used.
    pub fn new(settings: BTreeMap<String, PoolConfig>, notifier: Notifier) -> Pools {
        Pools { queues: HashMap::new(), settings, notifier, lane_nice: 0 }
    }

    /// Run device lanes' threads (replication, which can wait) at this CPU
    /// priority, so that client requests on the same cores come first.
    pub fn with_lane_nice(mut self, nice: i32) -> Pools {
        self.lane_nice = nice;
        self
    }

    /// Whether `(processor, key)` has a queue already.
    pub fn has_queue(&self, processor: &'static str, key: &QueueKey) -> bool {
        self.queues.get(processor).is_some_and(|q| q.contains_key(key))
    }

    fn count(&self) -> usize {
        self.queues.values().map(HashMap::len).sum()
    }

    /// Queue a job for `(processor, key)` without blocking. Queues of keys
    /// that are not devices are bounded in number ([`MAX_QUEUES`]); device
    /// keys are checked against the node's devices before they get here.
    pub fn submit(&mut self, processor: &'static str, key: QueueKey, job: Job) -> Result<(), Refused> {
        if !self.has_queue(processor, &key) {
            if !key.is_device() && self.count() >= MAX_QUEUES {
                return Err(Refused::NoQueue(format!("more than {MAX_QUEUES} queues")));
            }
            match self.start_queue(processor, &key) {
                Ok(q) => {
                    self.queues.entry(processor).or_default().insert(key.clone(), q);
                }
                Err(e) => return Err(Refused::NoQueue(e)),
            }
        }
        let Some(q) = self.queues.get_mut(processor).and_then(|m| m.get_mut(&key)) else {
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
        let mut all: Vec<(&'static str, &QueueKey, &Queue)> =
            self.queues.iter().flat_map(|(p, m)| m.iter().map(move |(k, q)| (*p, k, q))).collect();
        all.sort_by_key(|(p, k, q)| (std::cmp::Reverse(q.tx.len()), *p, (*k).clone()));
        let mut n = 0;
        for (i, (processor, key, q)) in all.into_iter().enumerate() {
            let Some(cell) = slot.queue(i) else { break };
            cell.set_id(&crate::scoreboard::QueueId::new(processor, key.as_str()));
            cell.set_depth(q.tx.len() as u64);
            cell.set_active(q.stats.active.load(Ordering::Relaxed));
            cell.set_completed(q.stats.completed.load(Ordering::Relaxed));
            cell.set_threads(q.threads as u64);
            cell.set_capacity(q.capacity as u64);
            cell.set_shed_full(q.shed_full);
            cell.set_shed_age(q.stats.shed_age.load(Ordering::Relaxed));
            cell.set_recent_io_us(q.stats.take_recent_io().as_micros() as u64);
            cell.set_wait_histogram(&q.stats.wait.snapshot());
            cell.set_io_histogram(&q.stats.io.snapshot());
            n += 1;
        }
        slot.set_queue_count(n as u64);
    }

    fn start_queue(&self, processor: &'static str, key: &QueueKey) -> Result<Queue, String> {
        let cfg = self.settings.get(processor).copied().unwrap_or_default();
        let (tx, rx) = queue::bounded::<Job>(cfg.queue_per_device);
        let stats = Arc::new(QueueStats {
            running_since: (0..cfg.threads_per_device).map(|_| AtomicU64::new(0)).collect(),
            started: Some(Instant::now()),
            ..QueueStats::default()
        });
        for i in 0..cfg.threads_per_device {
            let rx = rx.clone();
            let notifier = self.notifier.clone();
            let stats = stats.clone();
            let name = format!("{processor}:{key}:{i}");
            let max_wait = cfg.max_queue_wait;
            let nice = if key.is_lane() { self.lane_nice } else { 0 };
            std::thread::Builder::new()
                .name(name.clone())
                .stack_size(POOL_STACK)
                .spawn(move || {
                    if nice != 0 {
                        if let Err(e) = crate::sys::process::set_thread_nice(nice) {
                            log::warn!("could not set the priority of a replication thread: {e}");
                        }
                    }
                    while let Ok(job) = rx.recv() {
                        let waited = job.enqueued.elapsed();
                        stats.wait.observe(waited);
                        if max_wait.is_some_and(|m| waited > m) {
                            stats.shed_age.fetch_add(1, Ordering::Relaxed);
                            shed_stale(job, waited, &notifier);
                            continue;
                        }
                        stats.active.fetch_add(1, Ordering::Relaxed);
                        if let Some(t) = stats.running_since.get(i) {
                            t.store(stats.now_us(), Ordering::Relaxed);
                        }
                        let io = run_job(job, &notifier);
                        if let Some(t) = stats.running_since.get(i) {
                            t.store(0, Ordering::Relaxed);
                        }
                        stats.io.observe(io);
                        stats.recent_io_us.fetch_add(io.as_micros() as u64, Ordering::Relaxed);
                        stats.recent_jobs.fetch_add(1, Ordering::Relaxed);
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

/// Answer a job that waited too long, without running it.
fn shed_stale(job: Job, waited: Duration, notifier: &Notifier) {
    log::debug!(
        "{}: waited {} ms in its queue (max_queue_wait): 503",
        String::from_utf8_lossy(job.request.head.target()),
        waited.as_millis()
    );
    notifier.send(Completion::Response(job.conn, Outgoing::overloaded("waited too long in the device queue", waited)));
}

/// Run one job on this pool thread and send everything it produces; the
/// time it spent on I/O (see the module comment).
fn run_job(job: Job, notifier: &Notifier) -> Duration {
    let Job { processor, request, conn, enqueued } = job;
    let queue_wait = enqueued.elapsed();
    let target = String::from_utf8_lossy(request.head.target()).into_owned();
    let started = Instant::now();
    take_body_wait();
    let response = catch_unwind(AssertUnwindSafe(|| processor.call(request))).unwrap_or_else(|p| {
        log::error!("processor panicked on {target}: {}", panic_message(&*p));
        internal_error()
    });
    let call = started.elapsed().saturating_sub(take_body_wait());
    call + deliver(response, conn, queue_wait, notifier)
}

/// Send a response; the time spent producing its streamed body (reading
/// it from disk), not counting waits for the client to take it.
fn deliver(response: Response, conn: ConnId, queue_wait: Duration, notifier: &Notifier) -> Duration {
    let Response { status, headers, body } = response;
    let send = |body| notifier.send(Completion::Response(conn, Outgoing { status, headers, body, queue_wait }));
    match body {
        Body::Empty => {
            send(OutBody::Empty);
            Duration::ZERO
        }
        Body::Bytes(b) => {
            send(OutBody::Bytes(b));
            Duration::ZERO
        }
        Body::Stream { len, stream } => pump(stream, len, false, conn, notifier, send),
        Body::Duplex(stream) => pump(stream, None, true, conn, notifier, send),
    }
}

/// Pull a streamed body's chunks into its pipe; the time spent producing
/// them.
fn pump(
    mut stream: Box<dyn aerie_api::BodyStream>,
    len: Option<u64>,
    duplex: bool,
    conn: ConnId,
    notifier: &Notifier,
    send: impl FnOnce(OutBody),
) -> Duration {
    let mut producing = Duration::ZERO;
    let (tx, rx) = chunk_pipe(notifier.clone(), conn);
    send(OutBody::Stream { len, rx, duplex });
    loop {
        let t = Instant::now();
        take_body_wait();
        let next = catch_unwind(AssertUnwindSafe(|| stream.next_chunk()));
        // A duplex stream waits for the client's body too: not I/O.
        producing += t.elapsed().saturating_sub(take_body_wait());
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
    producing
}
