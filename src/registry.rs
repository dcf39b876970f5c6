//! The compiled-in processors and middleware, by config name.
//!
//! This is the only place the server names an app crate. Config validation
//! asks it which names exist and what kind each is; a worker asks it, after
//! fork, to build each listener's pipelines.

use crate::config::Config;
use aerie_api::{BuildError, SharedProcessor};
use std::sync::Arc;

/// What a registered name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A processor that runs on the loop thread (no pool to configure).
    Inline,
    /// A processor that runs on per-key pools (`[processors.<name>]`).
    Pooled,
    /// Middleware: wraps the rest of the pipeline.
    Middleware,
}

enum Build {
    Processor(fn(&Config) -> Result<SharedProcessor, BuildError>),
    Middleware(fn(&Config, SharedProcessor) -> Result<SharedProcessor, BuildError>),
}

/// One registered name.
pub struct Entry {
    /// The config name.
    pub name: &'static str,
    /// What it is.
    pub kind: Kind,
    /// One line for `--help`-style listings and the man page.
    pub summary: &'static str,
    /// A storage service (needs `[storage]` and swift.conf).
    pub storage: bool,
    build: Build,
}

fn build_object(config: &Config) -> Result<SharedProcessor, BuildError> {
    let swift = config.storage.swift.clone().ok_or_else(|| BuildError("swift.conf was not loaded".into()))?;
    let server = aerie_object::ObjectServer::new(aerie_object::ObjectConfig {
        devices: config.storage.devices.clone(),
        swift,
        reserve: config.storage.reserve,
        container_update_timeout: config.object.container_update_timeout,
        conn_timeout: config.object.conn_timeout,
        node_timeout: config.object.node_timeout,
    })?;
    Ok(Arc::new(server))
}

fn build_container(config: &Config) -> Result<SharedProcessor, BuildError> {
    let swift = config.storage.swift.clone().ok_or_else(|| BuildError("swift.conf was not loaded".into()))?;
    Ok(Arc::new(aerie_container::ContainerServer::new(aerie_container::ContainerConfig {
        devices: config.storage.devices.clone(),
        swift,
        reserve: config.storage.reserve,
        conn_timeout: config.container.conn_timeout,
        node_timeout: config.container.node_timeout,
    })))
}

fn build_account(config: &Config) -> Result<SharedProcessor, BuildError> {
    let swift = config.storage.swift.clone().ok_or_else(|| BuildError("swift.conf was not loaded".into()))?;
    Ok(Arc::new(aerie_account::AccountServer::new(aerie_account::AccountConfig {
        devices: config.storage.devices.clone(),
        swift,
        reserve: config.storage.reserve,
    })))
}

static ENTRIES: &[Entry] = &[
    Entry {
        name: "account",
        kind: Kind::Pooled,
        summary: "the Swift account service (SQLite databases, one queue and pool per device)",
        storage: true,
        build: Build::Processor(build_account),
    },
    Entry {
        name: "container",
        kind: Kind::Pooled,
        summary: "the Swift container service (SQLite databases, one queue and pool per device)",
        storage: true,
        build: Build::Processor(build_container),
    },
    Entry {
        name: "object",
        kind: Kind::Pooled,
        summary: "the Swift object service (one queue and pool per device)",
        storage: true,
        build: Build::Processor(build_object),
    },
    Entry {
        name: "hello",
        kind: Kind::Inline,
        summary: "200 text/plain \"test\" (benchmark target)",
        storage: false,
        build: Build::Processor(|_| Ok(Arc::new(aerie_builtin::Hello))),
    },
    Entry {
        name: "echo",
        kind: Kind::Pooled,
        summary: "reads the body and answers a JSON description of the request",
        storage: false,
        build: Build::Processor(|_| Ok(Arc::new(aerie_builtin::Echo::default()))),
    },
    Entry {
        name: "fault",
        kind: Kind::Pooled,
        summary: "fault injection for tests: /sleep?ms=N, /panic, /abort",
        storage: false,
        build: Build::Processor(|_| Ok(Arc::new(aerie_builtin::Fault::new()))),
    },
    Entry {
        name: "healthcheck",
        kind: Kind::Middleware,
        summary: "GET /healthcheck answers 200 OK; everything else passes through",
        storage: false,
        build: Build::Middleware(|_, inner| Ok(Arc::new(aerie_builtin::Healthcheck::new(inner)))),
    },
];

/// Every registered name.
pub fn all() -> &'static [Entry] {
    ENTRIES
}

/// The entry for a name.
pub fn lookup(name: &str) -> Option<&'static Entry> {
    ENTRIES.iter().find(|e| e.name == name)
}

/// A built pipeline: the outermost processor, and the name of the processor
/// at its end (whose `[processors.<name>]` pool runs its pooled requests).
#[derive(Clone)]
pub struct Pipeline {
    /// The outermost processor (middleware wrapping the rest).
    pub processor: SharedProcessor,
    /// The terminal processor's name.
    pub terminal: &'static str,
}

/// Run a constructor, turning an error or a panic into a `BuildError` that
/// names the processor (a worker that cannot build its pipelines exits with
/// the boot-failure code instead of crashing in a restart loop).
fn guarded<F>(name: &str, f: F) -> Result<SharedProcessor, BuildError>
where
    F: FnOnce() -> Result<SharedProcessor, BuildError>,
{
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => Err(BuildError(format!("{name}: {e}"))),
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            Err(BuildError(format!("{name} panicked while starting: {msg}")))
        }
    }
}

/// Build a pipeline from validated names (outermost first). Runs in the
/// worker, after fork.
pub fn build_pipeline(config: &Config, names: &[String]) -> Result<Pipeline, BuildError> {
    let (last, middleware) = names.split_last().ok_or_else(|| BuildError("empty pipeline".into()))?;
    let entry = lookup(last).ok_or_else(|| BuildError(format!("unknown processor `{last}`")))?;
    let Build::Processor(make) = &entry.build else {
        return Err(BuildError(format!("`{last}` is middleware, not a processor")));
    };
    let mut processor = guarded(last, || make(config))?;
    for name in middleware.iter().rev() {
        let e = lookup(name).ok_or_else(|| BuildError(format!("unknown middleware `{name}`")))?;
        let Build::Middleware(wrap) = &e.build else {
            return Err(BuildError(format!("`{name}` is a processor, not middleware")));
        };
        let inner = processor.clone();
        processor = guarded(name, move || wrap(config, inner))?;
    }
    Ok(Pipeline { processor, terminal: entry.name })
}
