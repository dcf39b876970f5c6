//! Logging: one `env_logger` per process, every line tagged with the role
//! and pid (`master[123]`, `worker.2[456]`).
//!
//! The role is a process-wide value set once after fork (each process is one
//! role for its whole life). Access lines go to the `aerie::access` target
//! at info level, one per request, as `key=value` pairs; `log.access = false`
//! turns them off. `RUST_LOG` overrides `log.level`.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The target of access-log lines.
pub const ACCESS: &str = "aerie::access";

const MASTER: usize = usize::MAX;
static ROLE: AtomicUsize = AtomicUsize::new(MASTER);

/// Mark this process as worker `index` (called once, right after fork).
pub fn set_worker(index: usize) {
    ROLE.store(index, Ordering::Relaxed);
}

/// Install the logger (once per process; the child inherits it across fork).
pub fn init(level: log::LevelFilter, access: bool) {
    let mut b = env_logger::Builder::new();
    b.filter_level(level);
    if !access {
        b.filter_module(ACCESS, log::LevelFilter::Off);
    } else if level < log::LevelFilter::Info {
        b.filter_module(ACCESS, log::LevelFilter::Info);
    }
    b.parse_env(env_logger::Env::default());
    b.format(|buf, record| {
        let ts = buf.timestamp_millis();
        let pid = std::process::id();
        let role = ROLE.load(Ordering::Relaxed);
        if record.target() == ACCESS {
            return writeln!(buf, "{ts} access worker.{role}[{pid}] {}", record.args());
        }
        if role == MASTER {
            writeln!(buf, "{ts} {:5} master[{pid}] {}", record.level(), record.args())
        } else {
            writeln!(buf, "{ts} {:5} worker.{role}[{pid}] {}", record.level(), record.args())
        }
    });
    // A second init (tests) keeps the first logger.
    let _ = b.try_init();
}
