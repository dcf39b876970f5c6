//! Logging: our own `log::Log`, so that
//!
//! * every line is tagged with the process's role and pid (`master[123]`,
//!   `worker.2[456]`, `object-updater[789]`);
//! * error lines and access lines (the `aerie::access` target, one per
//!   request, `key=value` pairs) can go to different files;
//! * files are reopened on SIGUSR1 (logrotate's `postrotate`) and both the
//!   files and the level change on a reload;
//! * **a child never waits for a log file.** In the master (single-threaded,
//!   serving no request) a line is written where it is made. A worker or a
//!   background role switches, right after fork, to a bounded in-memory
//!   queue drained by one writer thread it starts then ([`start_writer`]):
//!   a log call formats its line and offers it to the queue without
//!   blocking; when the queue is full (the disk under the log file is slow)
//!   the line is dropped and counted ([`dropped`], `/metrics`), so the event
//!   loop and the pool threads never stall on the log's disk. Reopening on
//!   SIGUSR1 is the writer thread's job too.
//!
//! Filtering uses env_logger's filter (so `RUST_LOG` directives work and
//! override `log.level`). Each line is formatted into one buffer and
//! written with one `write(2)` on an `O_APPEND` file, so lines from several
//! processes never interleave. The state sits behind a read-write lock that
//! only `configure` (master) and `start_writer` (a child, before it has
//! other threads) ever take for writing.

use crate::config::LogConfig;
use crate::role::{ProcessKind, Role};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

/// The target of access-log lines.
pub const ACCESS: &str = "aerie::access";

/// Lines a child's queue holds before it drops them.
pub const QUEUE_LINES: usize = 8192;

/// `u64::MAX` is the master; otherwise kind code << 32 | index.
static ROLE: AtomicU64 = AtomicU64::new(u64::MAX);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static REOPEN: AtomicBool = AtomicBool::new(false);

/// Record what this process is (right after fork), for line tags.
pub fn set_role(role: Role) {
    let v = match role {
        Role::Master => u64::MAX,
        Role::Child(kind, index) => (kind.code() << 32) | (index as u64 & 0xffff_ffff),
    };
    ROLE.store(v, Ordering::Relaxed);
}

fn role() -> Role {
    match ROLE.load(Ordering::Relaxed) {
        u64::MAX => Role::Master,
        v => Role::Child(ProcessKind::from_code(v >> 32), (v & 0xffff_ffff) as usize),
    }
}

/// Lines this process dropped because its queue was full.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

enum Sink {
    Stderr,
    File { path: PathBuf, file: File },
}

impl Sink {
    fn open(path: Option<&Path>) -> std::io::Result<Sink> {
        match path {
            None => Ok(Sink::Stderr),
            Some(p) => {
                let file = OpenOptions::new().create(true).append(true).open(p)?;
                Ok(Sink::File { path: p.to_path_buf(), file })
            }
        }
    }

    fn write_line(&mut self, line: &[u8]) {
        let _ = match self {
            Sink::Stderr => std::io::stderr().write_all(line),
            Sink::File { file, .. } => file.write_all(line),
        };
    }

    fn reopen(&mut self) -> std::io::Result<()> {
        if let Sink::File { path, file } = self {
            *file = OpenOptions::new().create(true).append(true).open(&*path)?;
        }
        Ok(())
    }
}

/// Where lines end up: the error log, and the access log if separate.
struct Sinks {
    error: Sink,
    access: Option<Sink>,
}

impl Sinks {
    fn write(&mut self, access: bool, line: &[u8]) {
        match (access, self.access.as_mut()) {
            (true, Some(a)) => a.write_line(line),
            _ => self.error.write_line(line),
        }
    }

    fn reopen(&mut self) -> std::io::Result<()> {
        self.error.reopen()?;
        if let Some(a) = self.access.as_mut() {
            a.reopen()?;
        }
        Ok(())
    }
}

/// A message to a child's writer thread.
enum Msg {
    Line {
        access: bool,
        line: String,
    },
    /// Write everything before this, then answer.
    Flush(Sender<()>),
}

enum Out {
    /// Written by the caller (the master).
    Direct(Mutex<Option<Sinks>>),
    /// Offered to the writer thread (a child).
    Queue(Sender<Msg>),
}

struct State {
    config: LogConfig,
    filter: env_filter::Filter,
    out: Out,
}

struct Logger {
    state: RwLock<Option<Arc<State>>>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

fn build_filter(c: &LogConfig) -> env_filter::Filter {
    let mut b = env_filter::Builder::new();
    b.filter_level(c.level);
    b.filter_module(ACCESS, if c.access { log::LevelFilter::Info } else { log::LevelFilter::Off });
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse(&spec);
    }
    b.build()
}

impl Logger {
    fn current(&self) -> Option<Arc<State>> {
        self.state.read().ok().and_then(|s| s.clone())
    }
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.current().is_some_and(|s| s.filter.enabled(metadata))
    }

    fn log(&self, record: &log::Record<'_>) {
        let Some(state) = self.current() else { return };
        if !state.filter.matches(record) {
            return;
        }
        let access = record.target() == ACCESS;
        let line = format_line(record);
        match &state.out {
            Out::Direct(sinks) => {
                if let Ok(mut g) = sinks.lock() {
                    if let Some(s) = g.as_mut() {
                        s.write(access, line.as_bytes());
                    }
                }
            }
            Out::Queue(tx) => match tx.try_send(Msg::Line { access, line }) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    DROPPED.fetch_add(1, Ordering::Relaxed);
                }
            },
        }
    }

    fn flush(&self) {}
}

/// A line the writer thread writes itself (it cannot log through the
/// queue it drains).
fn own_line(level: &str, msg: &str) -> String {
    format!(
        "{} {level:5} {}[{}] {msg}\n",
        crate::clock::iso_ms(crate::clock::unix_ms()),
        role().tag(),
        std::process::id()
    )
}

fn format_line(record: &log::Record<'_>) -> String {
    let ts = crate::clock::iso_ms(crate::clock::unix_ms());
    let who = format!("{}[{}]", role().tag(), std::process::id());
    if record.target() == ACCESS {
        format!("{ts} access {who} {}\n", record.args())
    } else {
        format!("{ts} {:5} {who} {}\n", record.level(), record.args())
    }
}

fn open_sinks(c: &LogConfig) -> std::io::Result<Sinks> {
    let error = Sink::open(c.error_log.as_deref())?;
    let access = match &c.access_log {
        Some(p) => Some(Sink::open(Some(p))?),
        None => None,
    };
    Ok(Sinks { error, access })
}

fn install(state: State) {
    let max = state.filter.filter();
    let logger = LOGGER.get_or_init(|| Logger { state: RwLock::new(None) });
    if let Ok(mut g) = logger.state.write() {
        *g = Some(Arc::new(state));
    }
    // The first call installs it; later calls have already changed the state.
    let _ = log::set_logger(logger);
    log::set_max_level(max);
}

/// Install the logger writing where it is called (the master), or (on
/// reload) replace its filter and files.
pub fn configure(c: &LogConfig) -> std::io::Result<()> {
    let sinks = open_sinks(c)?;
    install(State { config: c.clone(), filter: build_filter(c), out: Out::Direct(Mutex::new(Some(sinks))) });
    Ok(())
}

/// Install a stderr logger at `level` (for early errors and tests).
pub fn init(level: log::LevelFilter, access: bool) {
    let _ = configure(&LogConfig { level, access, error_log: None, access_log: None });
}

/// In a child, right after fork and before it starts any other thread:
/// hand the files to a writer thread of its own and make every later log
/// call offer its line to a bounded queue instead of writing it.
pub fn start_writer() -> std::io::Result<()> {
    let Some(logger) = LOGGER.get() else { return Ok(()) };
    let Ok(mut g) = logger.state.write() else { return Ok(()) };
    let Some(old) = g.as_ref() else { return Ok(()) };
    let Out::Direct(sinks) = &old.out else { return Ok(()) };
    let Some(sinks) = sinks.lock().ok().and_then(|mut s| s.take()) else { return Ok(()) };
    let (tx, rx) = crossbeam_channel::bounded(QUEUE_LINES);
    std::thread::Builder::new().name("log-writer".into()).spawn(move || writer(sinks, rx))?;
    let config = old.config.clone();
    *g = Some(Arc::new(State { filter: build_filter(&config), config, out: Out::Queue(tx) }));
    Ok(())
}

fn writer(mut sinks: Sinks, rx: Receiver<Msg>) {
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Line { access, line } => sinks.write(access, line.as_bytes()),
            Msg::Flush(done) => {
                let _ = done.send(());
            }
        }
        if REOPEN.swap(false, Ordering::Relaxed) {
            let line = match sinks.reopen() {
                Ok(()) => own_line("INFO", "log files reopened"),
                Err(e) => own_line("ERROR", &format!("could not reopen the log files: {e}")),
            };
            sinks.write(false, line.as_bytes());
        }
    }
}

/// Reopen the log files (SIGUSR1). In a child the writer thread does it,
/// after the line it is writing: this never blocks.
pub fn reopen() -> std::io::Result<()> {
    let Some(state) = LOGGER.get().and_then(Logger::current) else { return Ok(()) };
    match &state.out {
        Out::Direct(sinks) => match sinks.lock().ok().as_mut().and_then(|g| g.as_mut()) {
            Some(s) => s.reopen(),
            None => Ok(()),
        },
        Out::Queue(tx) => {
            REOPEN.store(true, Ordering::Relaxed);
            // Wake the writer if it is idle; a full queue wakes it anyway.
            let (done, _) = crossbeam_channel::bounded(1);
            let _ = tx.try_send(Msg::Flush(done));
            Ok(())
        }
    }
}

/// Before a child exits: let its writer write what is queued, for at most
/// `wait`.
pub fn flush(wait: Duration) {
    let Some(state) = LOGGER.get().and_then(Logger::current) else { return };
    if let Out::Queue(tx) = &state.out {
        let (done, rx) = crossbeam_channel::bounded(1);
        if tx.send_timeout(Msg::Flush(done), wait).is_ok() {
            let _ = rx.recv_timeout(wait);
        }
    }
}
