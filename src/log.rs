//! Logging: our own `log::Log`, so that
//!
//! * every line is tagged with the role and pid (`master[123]`,
//!   `worker.2[456]`);
//! * error lines and access lines (the `aerie::access` target, one per
//!   request, `key=value` pairs) can go to different files;
//! * files are reopened on SIGUSR1 (logrotate's `postrotate`) and both the
//!   files and the level change on a reload.
//!
//! Filtering uses env_logger's filter (so `RUST_LOG` directives work and
//! override `log.level`). Each line is formatted into one buffer and
//! written with one `write(2)` on an `O_APPEND` file, so lines from several
//! processes never interleave. The sinks sit behind a mutex: the master is
//! single-threaded and never forks while holding it; a worker never forks.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// The target of access-log lines.
pub const ACCESS: &str = "aerie::access";

const MASTER: usize = usize::MAX;
const OBJECT_UPDATER: usize = usize::MAX - 1;
const CONTAINER_UPDATER: usize = usize::MAX - 2;
static ROLE: AtomicUsize = AtomicUsize::new(MASTER);

/// Mark this process as worker `index` (right after fork).
pub fn set_worker(index: usize) {
    ROLE.store(index, Ordering::Relaxed);
}

/// Mark this process as an updater (right after fork).
pub fn set_updater(kind: crate::updater::Kind) {
    let role = match kind {
        crate::updater::Kind::Object => OBJECT_UPDATER,
        crate::updater::Kind::Container => CONTAINER_UPDATER,
    };
    ROLE.store(role, Ordering::Relaxed);
}

/// Where lines go and which pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// Error-log level.
    pub level: log::LevelFilter,
    /// Whether access lines are written.
    pub access: bool,
    /// Error-log file; `None` is standard error.
    pub error_log: Option<PathBuf>,
    /// Access-log file; `None` is the error log's destination.
    pub access_log: Option<PathBuf>,
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

struct State {
    filter: env_filter::Filter,
    error: Sink,
    /// `None`: access lines go to `error`.
    access: Option<Sink>,
}

struct Logger {
    state: Mutex<Option<State>>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

fn build_filter(s: &LogSettings) -> env_filter::Filter {
    let mut b = env_filter::Builder::new();
    b.filter_level(s.level);
    b.filter_module(ACCESS, if s.access { log::LevelFilter::Info } else { log::LevelFilter::Off });
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse(&spec);
    }
    b.build()
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.state.lock().map(|s| s.as_ref().is_some_and(|s| s.filter.enabled(metadata))).unwrap_or(false)
    }

    fn log(&self, record: &log::Record<'_>) {
        let Ok(mut guard) = self.state.lock() else { return };
        let Some(state) = guard.as_mut() else { return };
        if !state.filter.matches(record) {
            return;
        }
        let line = format_line(record);
        if record.target() == ACCESS {
            match state.access.as_mut() {
                Some(sink) => sink.write_line(line.as_bytes()),
                None => state.error.write_line(line.as_bytes()),
            }
        } else {
            state.error.write_line(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

fn format_line(record: &log::Record<'_>) -> String {
    let ts = timestamp();
    let pid = std::process::id();
    let role = ROLE.load(Ordering::Relaxed);
    let who = match role {
        MASTER => format!("master[{pid}]"),
        OBJECT_UPDATER => format!("object-updater[{pid}]"),
        CONTAINER_UPDATER => format!("container-updater[{pid}]"),
        n => format!("worker.{n}[{pid}]"),
    };
    if record.target() == ACCESS {
        format!("{ts} access {who} {}\n", record.args())
    } else {
        format!("{ts} {:5} {who} {}\n", record.level(), record.args())
    }
}

/// `2026-11-22T21:03:17.390Z`
fn timestamp() -> String {
    let ms = crate::scoreboard::unix_ms();
    let secs = ms / 1000;
    let (y, mo, d) = crate::http::date::civil_from_days((secs / 86_400) as i64);
    let t = secs % 86_400;
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", t / 3600, t / 60 % 60, t % 60, ms % 1000)
}

/// Install the logger, or (on reload) replace its filter and files.
pub fn configure(settings: &LogSettings) -> std::io::Result<()> {
    let error = Sink::open(settings.error_log.as_deref())?;
    let access = match &settings.access_log {
        Some(p) => Some(Sink::open(Some(p))?),
        None => None,
    };
    let state = State { filter: build_filter(settings), error, access };
    let max = state.filter.filter();
    let logger = LOGGER.get_or_init(|| Logger { state: Mutex::new(None) });
    if let Ok(mut g) = logger.state.lock() {
        *g = Some(state);
    }
    // The first call installs it; later calls have already changed the state.
    let _ = log::set_logger(logger);
    log::set_max_level(max);
    Ok(())
}

/// Install a stderr logger at `level` (for early errors and tests).
pub fn init(level: log::LevelFilter, access: bool) {
    let _ = configure(&LogSettings { level, access, error_log: None, access_log: None });
}

/// Reopen the log files (SIGUSR1).
pub fn reopen() -> std::io::Result<()> {
    let Some(logger) = LOGGER.get() else { return Ok(()) };
    let Ok(mut g) = logger.state.lock() else { return Ok(()) };
    let Some(state) = g.as_mut() else { return Ok(()) };
    state.error.reopen()?;
    if let Some(a) = state.access.as_mut() {
        a.reopen()?;
    }
    Ok(())
}
