//! The processors and middleware compiled in, by config name: what each
//! is, what it does, which settings its `[processors.<name>]` section takes
//! and whether it is a storage service. Data only — building them is
//! `pipeline`'s job — so configuration validation can ask it about names
//! ([`config::Catalog`]) without knowing any processor itself.

use crate::config::{self, ProcessorKind, Setting};

/// One compiled-in name.
#[derive(Debug)]
pub struct Entry {
    /// The config name.
    pub name: &'static str,
    /// What it is.
    pub kind: ProcessorKind,
    /// One line for listings and the man page.
    pub summary: &'static str,
    /// A storage service: needs `[storage]` and swift.conf, and its queue
    /// keys are devices (only devices that exist get a queue).
    pub storage: bool,
    /// The settings of `[processors.<name>]` besides the pool's.
    pub settings: &'static [Setting],
}

const REMOTE: &[Setting] = &[Setting::ConnTimeout, Setting::NodeTimeout];

static ENTRIES: &[Entry] = &[
    Entry {
        name: "account",
        kind: ProcessorKind::Pooled,
        summary: "the Swift account service (SQLite databases, one queue and pool per device)",
        storage: true,
        settings: &[],
    },
    Entry {
        name: "container",
        kind: ProcessorKind::Pooled,
        summary: "the Swift container service (SQLite databases, one queue and pool per device)",
        storage: true,
        settings: REMOTE,
    },
    Entry {
        name: "object",
        kind: ProcessorKind::Pooled,
        summary: "the Swift object service (one queue and pool per device)",
        storage: true,
        settings: &Setting::ALL,
    },
    Entry {
        name: "hello",
        kind: ProcessorKind::Inline,
        summary: "200 text/plain \"test\" (benchmark target)",
        storage: false,
        settings: &[],
    },
    Entry {
        name: "echo",
        kind: ProcessorKind::Pooled,
        summary: "reads the body and answers a JSON description of the request",
        storage: false,
        settings: &[],
    },
    Entry {
        name: "fault",
        kind: ProcessorKind::Pooled,
        summary: "fault injection for tests: /sleep?ms=N, /panic, /abort",
        storage: false,
        settings: &[],
    },
    Entry {
        name: "recon",
        kind: ProcessorKind::Middleware,
        summary: "GET /recon/<check> answers as Swift's recon middleware (swift-recon); everything else passes through",
        storage: false,
        settings: &[],
    },
    Entry {
        name: "no-replication",
        kind: ProcessorKind::Middleware,
        summary: "REPLICATE and SSYNC answer 405, as a Swift server with replication_server = false; everything else passes through",
        storage: false,
        settings: &[],
    },
    Entry {
        name: "healthcheck",
        kind: ProcessorKind::Middleware,
        summary: "GET /healthcheck answers 200 OK; everything else passes through",
        storage: false,
        settings: &[],
    },
];

/// Every compiled-in name.
pub fn all() -> &'static [Entry] {
    ENTRIES
}

/// The entry for a name.
pub fn lookup(name: &str) -> Option<&'static Entry> {
    ENTRIES.iter().find(|e| e.name == name)
}

/// The catalog as configuration validation sees it.
#[derive(Debug, Clone, Copy)]
pub struct Builtin;

/// The server's catalog.
pub static CATALOG: Builtin = Builtin;

impl config::Catalog for Builtin {
    fn kind(&self, name: &str) -> Option<ProcessorKind> {
        lookup(name).map(|e| e.kind)
    }

    fn names(&self) -> Vec<&'static str> {
        ENTRIES.iter().map(|e| e.name).collect()
    }

    fn settings(&self, name: &str) -> &'static [Setting] {
        lookup(name).map_or(&[], |e| e.settings)
    }

    fn is_storage(&self, name: &str) -> bool {
        lookup(name).is_some_and(|e| e.storage)
    }
}
