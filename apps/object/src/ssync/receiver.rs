//! The SSYNC receiver (SWIFT-REPLICATION.md §4): a conversation carried by
//! one request. The `200` and the response's first bytes go out before the
//! request body is read (`aerie_api::Body::Duplex`); then, on the device's
//! pool thread, the session takes the partition's `.lock-replication` and
//! one of the device's `.lock` slots, answers the MISSING_CHECK with the
//! objects it wants, and applies the UPDATES through the object service's
//! own PUT, POST and DELETE with `X-Backend-Replication` semantics (the
//! sender's timestamps and metadata kept, no container or expirer updates).
//!
//! After the `200`, errors are `:ERROR: <code> <repr>` lines, as Swift's
//! receiver writes them; a sender that hung up gets nothing. Nothing a
//! sender writes can name a file outside the partition: offered hashes must
//! be object hashes, and updates are object paths, stored by their hash.

use super::wire::{
    cap, decode_missing, encode_wanted, py_repr, wanted, Local, MAX_LINE, MISSING_CHECK_END, MISSING_CHECK_START,
    UPDATES_END, UPDATES_START,
};
use crate::diskfile::{DiskFile, OpenError};
use crate::ssync::wire::Offer;
use crate::staging::Staging;
use crate::{Ctx, ObjectConfig};
use aerie_api::{BodyFraming, BodySource, BodyStream, Header, Method, RequestBody, RequestHead, Status};
use aerie_storage::fs::{lock_any, lock_path, Lock};
use aerie_storage::path::ObjectPath;
use aerie_storage::Timestamp;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// How SSYNC sessions from other nodes are admitted and judged (Swift's
/// object-server settings of the same names).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceiverSettings {
    /// How long a session waits for its partition's and its device's locks.
    pub lock_timeout: std::time::Duration,
    /// Sessions at once per device (0: no device limit).
    pub concurrency_per_device: usize,
    /// After this many failed updates a session is abandoned, if failures
    /// also outnumber successes by `failure_ratio`.
    pub failure_threshold: u64,
    /// See `failure_threshold`.
    pub failure_ratio: f64,
}

impl Default for ReceiverSettings {
    fn default() -> Self {
        ReceiverSettings {
            lock_timeout: std::time::Duration::from_secs(15),
            concurrency_per_device: 1,
            failure_threshold: 100,
            failure_ratio: 1.0,
        }
    }
}

/// Why reading the sender's body stopped.
#[derive(Debug)]
enum ReadError {
    /// The sender hung up or the body broke: nobody to tell.
    Gone(String),
    /// A line longer than the protocol allows.
    TooLong(String),
}

/// The session's request body: lines and update bodies, read through a
/// buffer. Once a read fails every later one fails the same way (Swift's
/// `SsyncInputProxy`), so a PUT that saw its body cut and the session
/// reading on agree.
struct Input {
    body: RequestBody,
    buf: Vec<u8>,
    pos: usize,
    failed: Option<String>,
    /// Bytes of the current PUT body not read yet.
    sub_remaining: u64,
}

impl Input {
    fn fill(&mut self, context: &str) -> Result<bool, ReadError> {
        if let Some(f) = &self.failed {
            return Err(ReadError::Gone(f.clone()));
        }
        if self.pos >= self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + 64 * 1024, 0);
        let r = loop {
            match self.body.read(&mut self.buf[old..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r,
            }
        };
        match r {
            Ok(n) => {
                self.buf.truncate(old + n);
                Ok(n > 0)
            }
            Err(e) => {
                self.buf.truncate(old);
                let why = format!("{context}: {e}");
                self.failed = Some(why.clone());
                Err(ReadError::Gone(why))
            }
        }
    }

    /// The next line with its `\n`; `None` at the end of the body.
    fn read_line(&mut self, context: &str) -> Result<Option<Vec<u8>>, ReadError> {
        loop {
            let avail = &self.buf[self.pos..];
            if let Some(i) = avail.iter().position(|&b| b == b'\n') {
                if i + 1 > MAX_LINE {
                    break;
                }
                let line = avail[..=i].to_vec();
                self.pos += i + 1;
                return Ok(Some(line));
            }
            if avail.len() >= MAX_LINE {
                break;
            }
            if !self.fill(context)? {
                if self.pos < self.buf.len() {
                    let why = format!("{context}: missing newline");
                    self.failed = Some(why.clone());
                    return Err(ReadError::Gone(why));
                }
                return Ok(None);
            }
        }
        let why = format!("{context}: line longer than {MAX_LINE} bytes");
        self.failed = Some(why.clone());
        Err(ReadError::TooLong(why))
    }

    /// Up to `max` bytes of a PUT body; the end of the body is an error.
    fn read_some(&mut self, out: &mut [u8], context: &str) -> Result<usize, ReadError> {
        if self.pos >= self.buf.len() && !self.fill(context)? {
            let why = format!("Early termination for {context}");
            self.failed = Some(why.clone());
            return Err(ReadError::Gone(why));
        }
        let avail = &self.buf[self.pos..];
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.pos += n;
        Ok(n)
    }
}

fn locked(input: &Mutex<Input>) -> MutexGuard<'_, Input> {
    input.lock().unwrap_or_else(|e| e.into_inner())
}

/// A PUT update's body: exactly its Content-Length of the session's body.
struct SubBody {
    input: Arc<Mutex<Input>>,
    context: String,
}

impl BodySource for SubBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut input = locked(&self.input);
        let want = (input.sub_remaining.min(buf.len() as u64)) as usize;
        if want == 0 {
            return Ok(0);
        }
        match input.read_some(&mut buf[..want], &self.context) {
            Ok(n) => {
                input.sub_remaining -= n as u64;
                Ok(n)
            }
            Err(ReadError::Gone(why)) | Err(ReadError::TooLong(why)) => {
                Err(io::Error::new(io::ErrorKind::ConnectionAborted, why))
            }
        }
    }

    fn send_continue(&mut self, _headers: Vec<Header>) -> io::Result<()> {
        Ok(())
    }
}

/// Where the session is.
enum Step {
    /// Send the first bytes (the head goes out with them).
    Start,
    /// Take the locks.
    Lock,
    /// Read the offers, answer the wants.
    MissingCheck,
    /// Apply the updates.
    Updates,
    /// Over.
    Done,
}

/// How a phase ended badly.
enum Failure {
    /// Tell the sender: `:ERROR: <code> <repr(message)>`.
    Error(u16, String),
    /// Tell the sender an HTTP error's body: `:ERROR: <code> b'<message>'`.
    Http(u16, String),
    /// The sender is gone or broke the framing: log it and stop.
    Quiet(String),
}

impl From<ReadError> for Failure {
    fn from(e: ReadError) -> Failure {
        match e {
            ReadError::Gone(why) => Failure::Quiet(format!("read failed: {why}")),
            ReadError::TooLong(why) => Failure::Error(0, why),
        }
    }
}

/// One SSYNC session.
pub(crate) struct Receiver {
    cfg: Arc<ObjectConfig>,
    device: String,
    partition: String,
    policy: u32,
    device_dir: PathBuf,
    peer: SocketAddr,
    local: SocketAddr,
    input: Arc<Mutex<Input>>,
    out: VecDeque<Vec<u8>>,
    step: Step,
    locks: Vec<Lock>,
    started: Instant,
    wanted: usize,
    applied: u64,
    /// The session's writes, made durable together (`crate::staging`).
    staging: Staging,
    /// Updates a flush could not publish, not yet counted as failures.
    lost: u64,
    /// How the policy names data files.
    layout: crate::ondisk::Layout,
    /// EC: the fragment index this session is about
    /// (`X-Backend-Ssync-Frag-Index`).
    frag_index: Option<u32>,
}

impl Receiver {
    /// A session for `/<device>/<partition>` of `policy`, whose device has
    /// been found at `device_dir`.
    pub(crate) fn new(
        cfg: Arc<ObjectConfig>,
        head: &RequestHead,
        body: RequestBody,
        device: String,
        partition: String,
        policy: u32,
        device_dir: PathBuf,
    ) -> Receiver {
        let input = Input { body, buf: Vec::new(), pos: 0, failed: None, sub_remaining: 0 };
        let layout = crate::ondisk::Layout::of(cfg.swift.policy(policy));
        let frag_index = head
            .header_str("x-backend-ssync-frag-index")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|_| layout.is_ec());
        Receiver {
            layout,
            frag_index,
            cfg,
            device,
            partition,
            policy,
            device_dir: device_dir.clone(),
            peer: head.peer(),
            local: head.local(),
            input: Arc::new(Mutex::new(input)),
            out: VecDeque::new(),
            step: Step::Start,
            locks: Vec::new(),
            started: Instant::now(),
            wanted: 0,
            applied: 0,
            staging: Staging::new(device_dir.clone()),
            lost: 0,
        }
    }

    fn part_dir(&self) -> PathBuf {
        crate::hashes::partition_dir(&self.device_dir, self.policy, &self.partition)
    }

    fn log_prefix(&self) -> String {
        format!("ssync receiver (remote_addr: {}, path: {}/{})", self.peer.ip(), self.device, self.partition)
    }

    fn lock(&mut self) -> Result<(), Failure> {
        let s = self.cfg.ssync;
        let deadline = Instant::now() + s.lock_timeout;
        let part = lock_path(&self.part_dir(), ".lock-replication", s.lock_timeout)
            .map_err(|e| lock_failure(&e, &self.log_prefix()))?;
        self.locks.push(part);
        if s.concurrency_per_device > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            let dev = lock_any(&self.device_dir, ".lock", s.concurrency_per_device, left)
                .map_err(|e| lock_failure(&e, &self.log_prefix()))?;
            self.locks.push(dev);
        }
        Ok(())
    }

    fn read_line(&self, context: &str) -> Result<Option<Vec<u8>>, ReadError> {
        locked(&self.input).read_line(context)
    }

    /// What this node has of an offered object (Swift's `_check_local`).
    fn check_local(&self, hash: &str, offer: &Offer, make_durable: bool) -> Local {
        let mut df = DiskFile::for_hash(self.device_dir.clone(), self.policy, self.partition.clone(), hash.to_string());
        df.layout = self.layout;
        df.choice = crate::ondisk::Choice { frag_index: self.frag_index, frag_prefs: None };
        let mut local = match df.open(Timestamp::now(), true) {
            Ok(o) => Local {
                ts_data: Some(o.data_timestamp),
                ts_meta: Some(o.timestamp()),
                ts_ctype: Some(o.content_type_timestamp()),
            },
            Err(OpenError::Deleted(t)) => Local { ts_data: Some(t), ..Local::default() },
            Err(_) => Local::default(),
        };
        let (Some(fi), true) = (self.frag_index, self.layout.is_ec()) else { return local };
        // EC: the offered fragment may be here already, newer than anything
        // durable (a failed open says nothing of it: look at the names).
        let Ok(files) = crate::ondisk::gather(&df.datadir(), self.layout, &df.choice) else { return local };
        let here = files.durable_timestamp.is_none_or(|d| d < offer.ts_data)
            && files.fragments.iter().any(|(ts, idx)| *ts == offer.ts_data && idx.contains(&fi));
        if !here {
            return local;
        }
        if !offer.durable {
            // A non-durable fragment already held: not wanted.
            local.ts_data = Some(offer.ts_data);
            return local;
        }
        if !make_durable {
            return local;
        }
        // Only the durable state is missing: commit it and look again, once.
        match df.commit_durable(offer.ts_data, fi) {
            Ok(()) => self.check_local(hash, offer, false),
            Err(e) => {
                log::error!("{} could not make {hash} durable: {e}", self.log_prefix());
                local
            }
        }
    }

    fn missing_check(&mut self) -> Result<(), Failure> {
        let Some(line) = self.read_line("missing_check start")? else {
            return Err(Failure::Quiet("client disconnected".into()));
        };
        if line.trim_ascii() != MISSING_CHECK_START {
            return Err(Failure::Error(
                0,
                format!("Looking for :MISSING_CHECK: START got {}", cap(&String::from_utf8_lossy(&line))),
            ));
        }
        let mut want_lines: Vec<String> = Vec::new();
        while let Some(line) = self.read_line("missing_check line")? {
            let line = line.trim_ascii();
            if line == MISSING_CHECK_END {
                break;
            }
            let (hash, offer) = decode_missing(line).map_err(|e| Failure::Error(0, e))?;
            let local = self.check_local(&hash, &offer, true);
            if let Some(w) = encode_wanted(&hash, wanted(&offer, &local)) {
                want_lines.push(w);
            }
        }
        self.wanted = want_lines.len();
        self.out.push_back(b":MISSING_CHECK: START\r\n".to_vec());
        if !want_lines.is_empty() {
            self.out.push_back(want_lines.join("\r\n").into_bytes());
        }
        self.out.push_back(b"\r\n".to_vec());
        self.out.push_back(b":MISSING_CHECK: END\r\n".to_vec());
        Ok(())
    }

    fn updates(&mut self) -> Result<(), Failure> {
        let Some(line) = self.read_line("updates start")? else {
            // A check-only session (the sender only wanted to know).
            return Err(Failure::Quiet("client disconnected".into()));
        };
        if line.trim_ascii() != UPDATES_START {
            return Err(Failure::Error(
                0,
                format!("Looking for :UPDATES: START got {}", cap(&String::from_utf8_lossy(&line))),
            ));
        }
        let (mut successes, mut failures) = (0u64, 0u64);
        while let Some(line) = self.read_line("updates line")? {
            let line = line.trim_ascii();
            if line == UPDATES_END {
                break;
            }
            let context = String::from_utf8_lossy(line).into_owned();
            let Some((method, path)) = context.split_once(' ') else {
                return Err(Failure::Error(0, format!("not enough values to unpack: {}", cap(&context))));
            };
            let (method, path) = (method.to_string(), path.to_string());
            let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
            let mut content_length: Option<u64> = None;
            loop {
                let Some(line) = self.read_line("updates line")? else {
                    return Err(Failure::Error(0, format!("Got no headers for {context}")));
                };
                let line = line.trim_ascii();
                if line.is_empty() {
                    break;
                }
                let Some(colon) = line.iter().position(|&b| b == b':') else {
                    return Err(Failure::Error(
                        0,
                        format!("bad header line {} for {context}", cap(&String::from_utf8_lossy(line))),
                    ));
                };
                let name = String::from_utf8_lossy(line[..colon].trim_ascii()).to_ascii_lowercase();
                let value = line[colon + 1..].trim_ascii().to_vec();
                if name == "content-length" {
                    let v = String::from_utf8_lossy(&value).into_owned();
                    content_length = Some(v.parse::<u64>().map_err(|_| {
                        Failure::Error(0, format!("invalid literal for int() with base 10: {}", py_repr(&v)))
                    })?);
                }
                if name.is_empty() || headers.len() >= 256 {
                    return Err(Failure::Error(0, format!("bad headers for {context}")));
                }
                headers.push((name, value));
            }
            let method = match method.as_str() {
                "PUT" => {
                    let Some(n) = content_length else {
                        return Err(Failure::Error(0, format!("No content-length sent for {context}")));
                    };
                    locked(&self.input).sub_remaining = n;
                    Method::Put
                }
                "POST" | "DELETE" => {
                    if content_length.is_some_and(|n| n != 0) {
                        return Err(Failure::Error(0, format!("{method} subrequest with content-length {path}")));
                    }
                    if method == "POST" {
                        Method::Post
                    } else {
                        Method::Delete
                    }
                }
                _ => return Err(Failure::Error(0, format!("Invalid subrequest method {}", cap(&method)))),
            };
            let status = self.apply(method, &path, headers, content_length, &context);
            if (200..300).contains(&status.0) || status == Status::NOT_FOUND {
                successes += 1;
            } else {
                log::warn!("{} subrequest failed with {}: {context}", self.log_prefix(), status.0);
                failures += 1;
            }
            if self.staging.full() {
                let f = self.staging.flush_behind();
                self.count_flushed(f);
            }
            let lost = std::mem::take(&mut self.lost);
            successes = successes.saturating_sub(lost);
            failures += lost;
            let threshold = self.cfg.ssync.failure_threshold.max(1);
            if failures >= threshold
                && (successes == 0 || failures as f64 / successes as f64 > self.cfg.ssync.failure_ratio)
            {
                return Err(Failure::Error(0, format!("Too many {failures} failures to {successes} successes")));
            }
            // Read what the update did not (a refused PUT's body), so the
            // next line is where it should be.
            self.drain(&context)?;
        }
        // Everything received is durable before the sender hears so.
        self.flush();
        let lost = std::mem::take(&mut self.lost);
        successes = successes.saturating_sub(lost);
        failures += lost;
        self.applied = successes;
        if failures > 0 {
            return Err(Failure::Http(
                500,
                format!("ERROR: With :UPDATES: {failures} failures to {successes} successes"),
            ));
        }
        self.out.push_back(b":UPDATES: START\r\n".to_vec());
        self.out.push_back(b":UPDATES: END\r\n".to_vec());
        Ok(())
    }

    /// Publish the staged writes; those that could not be are counted
    /// as failed updates.
    fn flush(&mut self) {
        let f = self.staging.flush();
        self.count_flushed(f);
    }

    fn count_flushed(&mut self, f: crate::staging::Flushed) {
        if f.failed > 0 {
            log::warn!("{} {} received updates could not be made durable", self.log_prefix(), f.failed);
        }
        self.lost += f.failed as u64;
    }

    fn drain(&self, context: &str) -> Result<(), ReadError> {
        let mut input = locked(&self.input);
        let mut buf = vec![0u8; 64 * 1024];
        while input.sub_remaining > 0 {
            let want = input.sub_remaining.min(buf.len() as u64) as usize;
            let n = input.read_some(&mut buf[..want], context)?;
            input.sub_remaining -= n as u64;
        }
        // A PUT that failed on its body left the error behind.
        match &input.failed {
            Some(f) => Err(ReadError::Gone(f.clone())),
            None => Ok(()),
        }
    }

    /// Apply one update through the object service, as a request of its
    /// own: the session's device, partition and policy, the sender's
    /// headers, and `X-Backend-Replication`.
    fn apply(
        &mut self,
        method: Method,
        path: &str,
        headers: Vec<(String, Vec<u8>)>,
        content_length: Option<u64>,
        context: &str,
    ) -> Status {
        // What the session sets is the session's: a sender cannot turn the
        // replication semantics off (and so make this node send container
        // or expirer updates) by sending values of its own.
        let sent: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .filter(|(n, _)| {
                !matches!(
                    *n,
                    "x-backend-storage-policy-index"
                        | "x-backend-replication"
                        | "x-backend-replication-headers"
                        | "x-backend-ssync-frag-index"
                )
            })
            .collect();
        // Every header is metadata to keep, but the ETag (stored as the
        // object server computes it) and the commit flag (Swift's rule).
        let replication_headers: Vec<&str> =
            sent.iter().map(|(n, _)| *n).filter(|n| *n != "etag" && *n != "x-backend-no-commit").collect();
        let replication_headers = replication_headers.join(" ");
        let policy = self.policy.to_string();
        let frag_index = self.frag_index.map(|f| f.to_string());
        let mut all = sent;
        all.push(("X-Backend-Storage-Policy-Index", policy.as_bytes()));
        all.push(("X-Backend-Replication", b"True"));
        if let Some(f) = &frag_index {
            all.push(("X-Backend-Ssync-Frag-Index", f.as_bytes()));
        }
        if !replication_headers.is_empty() {
            all.push(("X-Backend-Replication-Headers", replication_headers.as_bytes()));
        }
        let target = format!("/{}/{}{}", self.device, self.partition, path);
        let framing = match (method.clone(), content_length) {
            (Method::Put, Some(n)) => BodyFraming::Length(n),
            _ => BodyFraming::None,
        };
        let head = RequestHead::synthetic(method.clone(), target.as_bytes(), &all, framing, self.peer, self.local);
        let parsed = match ObjectPath::parse(head.raw_path()) {
            Ok(p) if p.device == self.device && p.partition == self.partition => p,
            _ => {
                log::warn!("{} bad update path in {}", self.log_prefix(), cap(context));
                return Status::BAD_REQUEST;
            }
        };
        // A later update of an object staged in this session (the POST
        // after its PUT) must find the earlier one in place.
        let hash = self.cfg.swift.salt.hash_path(&parsed.account, Some(&parsed.container), Some(&parsed.object));
        if self.staging.holds(&hash) {
            self.flush();
        }
        // EC fragments are made durable by renaming them in place after the
        // write: those writes are not staged.
        let staging = (!self.layout.is_ec()).then_some(&self.staging);
        let ctx = Ctx { cfg: &self.cfg, head: &head, path: parsed, policy: self.policy, staging };
        let response = match method {
            Method::Put => {
                let body = SubBody { input: self.input.clone(), context: context.to_string() };
                crate::put::put(&ctx, RequestBody::from_source(Box::new(body)))
            }
            Method::Post => crate::post_delete::post(&ctx),
            _ => crate::post_delete::delete(&ctx),
        };
        response.status
    }

    fn run(&mut self) -> Result<(), Failure> {
        match self.step {
            Step::Start => {
                // Bytes before anything else, as Swift's receiver sends
                // them: the sender ignores blank lines.
                self.out.push_back(b"\r\n".to_vec());
                self.step = Step::Lock;
            }
            Step::Lock => {
                self.step = Step::Done;
                self.lock()?;
                self.step = Step::MissingCheck;
            }
            Step::MissingCheck => {
                self.step = Step::Done;
                self.missing_check()?;
                self.step = Step::Updates;
            }
            Step::Updates => {
                self.step = Step::Done;
                let done = self.updates();
                // What a broken session received whole is kept too.
                self.flush();
                self.lost = 0;
                done?;
                log::debug!(
                    "{} done in {:.3}s: {} wanted, {} updates applied",
                    self.log_prefix(),
                    self.started.elapsed().as_secs_f64(),
                    self.wanted,
                    self.applied
                );
            }
            Step::Done => {}
        }
        Ok(())
    }
}

fn lock_failure(e: &io::Error, prefix: &str) -> Failure {
    if e.kind() == io::ErrorKind::TimedOut {
        log::debug!("{prefix} LOCK TIMEOUT: {e}");
    } else {
        log::error!("{prefix} could not lock: {e}");
    }
    Failure::Error(0, e.to_string())
}

impl BodyStream for Receiver {
    fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(c) = self.out.pop_front() {
                return Ok(Some(c));
            }
            if matches!(self.step, Step::Done) {
                // Released before the last chunk goes: the sender may start
                // its next session on this partition at once.
                self.locks.clear();
                return Ok(None);
            }
            match self.run() {
                Ok(()) => {}
                Err(Failure::Error(code, message)) => {
                    log::warn!("{} {message}", self.log_prefix());
                    self.out.push_back(format!(":ERROR: {code} {}\n", py_repr(&message)).into_bytes());
                }
                Err(Failure::Http(code, message)) => {
                    log::warn!("{} {message}", self.log_prefix());
                    self.out.push_back(format!(":ERROR: {code} b{}\n", py_repr(&message)).into_bytes());
                }
                Err(Failure::Quiet(why)) => log::info!("{} {why}", self.log_prefix()),
            }
        }
    }
}
