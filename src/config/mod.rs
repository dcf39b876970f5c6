//! Configuration: one TOML file, parsed in two stages.
//!
//! ```text
//! TOML text ──serde──► RawConfig ──validate(catalog)──► Config
//! ```
//!
//! [`RawConfig`] (`raw.rs`) mirrors the file (`deny_unknown_fields`, every
//! field defaulted from [`defaults`]); [`RawConfig::validate`]
//! (`validate.rs`) turns it into a [`Config`] of checked, typed values
//! (`Duration`, `SocketAddr`, non-zero counts, known processor names) or a
//! [`ConfigError`] that names the key path and the reason. Which names are
//! processors, middleware or storage services, and which processor takes
//! which [`Setting`], is the [`Catalog`]'s to say: this module names no
//! processor. Only the master reads the file; children inherit the
//! validated `Config` across fork. [`Config::to_raw`] (`render.rs`) goes
//! back the other way, which `--check-config` uses to print the effective
//! configuration.

pub mod defaults;
mod raw;
mod render;
mod validate;

pub use raw::{RawAdmin, RawConfig, RawListen, RawLog, RawPool, RawReplication, RawRoute, RawServer, RawStorage};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("could not read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML did not parse, or had a key of the wrong type or an unknown key.
    #[error("{origin}: {message}")]
    Parse {
        /// The file, or "embedded config".
        origin: String,
        /// toml's message, which names the key and the line.
        message: String,
    },
    /// A value parsed but is not acceptable.
    #[error("{key}: {reason}")]
    Invalid {
        /// The key path, e.g. `listen[0].address`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ConfigError {
    /// A configuration error is the operator's to fix: exit 2.
    pub fn exit_code(&self) -> crate::exit::ExitCode {
        crate::exit::ExitCode::Usage
    }
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), reason: reason.into() }
}

/// What a name in a pipeline is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessorKind {
    /// A processor that runs on the loop thread (no pool to configure).
    Inline,
    /// A processor that runs on per-key pools (`[processors.<name>]`).
    Pooled,
    /// Middleware: wraps the rest of the pipeline.
    Middleware,
}

/// A setting a `[processors.<name>]` section takes besides the pool's,
/// for the processors the catalog names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// `container_update_timeout`: how long a write waits for its updates.
    ContainerUpdateTimeout,
    /// `conn_timeout`: connect timeout towards other storage servers.
    ConnTimeout,
    /// `node_timeout`: response timeout towards other storage servers.
    NodeTimeout,
    /// `etag_validate_pct`: the share (percent) of whole-object GETs whose
    /// bytes are checked against the stored ETag as they are read (Swift's
    /// object-server setting of the same name).
    EtagValidatePct,
}

impl Setting {
    /// Every setting.
    pub const ALL: [Setting; 4] =
        [Setting::ContainerUpdateTimeout, Setting::ConnTimeout, Setting::NodeTimeout, Setting::EtagValidatePct];

    /// The key in the file.
    pub fn key(self) -> &'static str {
        match self {
            Setting::ContainerUpdateTimeout => "container_update_timeout",
            Setting::ConnTimeout => "conn_timeout",
            Setting::NodeTimeout => "node_timeout",
            Setting::EtagValidatePct => "etag_validate_pct",
        }
    }

    /// The default (seconds, or a percentage for [`Setting::is_percent`]).
    pub fn default_value(self) -> f64 {
        match self {
            Setting::ContainerUpdateTimeout => defaults::CONTAINER_UPDATE_TIMEOUT,
            Setting::ConnTimeout => defaults::CONN_TIMEOUT,
            Setting::NodeTimeout => defaults::NODE_TIMEOUT,
            Setting::EtagValidatePct => defaults::ETAG_VALIDATE_PCT,
        }
    }

    /// Whether the value is a percentage (0 to 100) rather than seconds.
    pub fn is_percent(self) -> bool {
        self == Setting::EtagValidatePct
    }

    /// The default of a setting in seconds.
    pub fn default(self) -> Duration {
        Duration::from_secs_f64(self.default_value())
    }
}

/// What validation needs to know of the processors compiled in (the
/// server's catalog implements it; tests may pass their own).
pub trait Catalog {
    /// What `name` is, if it is known.
    fn kind(&self, name: &str) -> Option<ProcessorKind>;
    /// Every known name (for error messages and defaults).
    fn names(&self) -> Vec<&'static str>;
    /// The settings `[processors.<name>]` takes besides the pool's.
    fn settings(&self, name: &str) -> &'static [Setting];
    /// Whether `name` is a storage service (then swift.conf is read).
    fn is_storage(&self, name: &str) -> bool;
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[server]`
    pub server: ServerConfig,
    /// `[[listen]]`, in file order.
    pub listen: Vec<ListenConfig>,
    /// Pool settings for every pooled processor (configured or defaulted).
    pub pools: BTreeMap<String, PoolConfig>,
    /// `[log]`
    pub log: LogConfig,
    /// `[admin]`: where status and metrics are served, if anywhere.
    pub admin: Option<SocketAddr>,
    /// `[storage]`
    pub storage: StorageConfig,
    /// `[replication]`
    pub replication: ReplicationConfig,
}

/// `[replication]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicationConfig {
    /// Whether the master runs the object replicator.
    pub object_replicator: bool,
    /// The pause between passes.
    pub interval: Duration,
    /// Partitions in flight on the node.
    pub concurrency: usize,
    /// Partitions in flight per device.
    pub concurrency_per_device: usize,
    /// Handoff partitions before primaries.
    pub handoffs_first: bool,
    /// Object bytes read per second per device (0: no limit).
    pub max_bytes_per_second: u64,
    /// Objects sent per second per device (0: no limit).
    pub max_objects_per_second: u64,
    /// Connect timeout towards peers.
    pub conn_timeout: Duration,
    /// How long a peer may take to accept what is sent.
    pub node_timeout: Duration,
    /// How long a peer may take to answer.
    pub http_timeout: Duration,
    /// Incoming SSYNC sessions per device (0: no limit).
    pub receive_per_device: usize,
    /// How long an incoming SSYNC waits for its locks.
    pub lock_timeout: Duration,
    /// Failed updates that abandon an incoming SSYNC.
    pub failure_threshold: u64,
    /// With the threshold, the failures-to-successes ratio that does.
    pub failure_ratio: f64,
    /// CPU priority of replication work (`nice`, -20..19; 0 unchanged).
    pub nice_priority: i32,
    /// Whether the master runs the container and account replicators.
    pub db_replicator: bool,
    /// Rows per `merge_items`.
    pub per_diff: i64,
    /// `merge_items` calls per database and pass.
    pub max_diffs: u64,
    /// Databases started per second (0: no limit).
    pub databases_per_second: f64,
    /// The rsync destination template of container databases.
    pub container_rsync_module: String,
    /// The rsync destination template of account databases.
    pub account_rsync_module: String,
    /// Compress database rsyncs to other regions.
    pub rsync_compress: bool,
}

/// `[storage]`, validated. swift.conf is read only when a storage service
/// is in a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    /// The devices root and mount check.
    pub devices: aerie_storage::fs::Devices,
    /// Where swift.conf is.
    pub swift_conf_path: PathBuf,
    /// Its contents, when a storage service needs it.
    pub swift: Option<aerie_storage::swift_conf::SwiftConf>,
    /// `fallocate_reserve` as written.
    pub reserve_text: String,
    /// `fallocate_reserve`.
    pub reserve: aerie_storage::fs::Reserve,
    /// How often the object updater sweeps.
    pub object_updater_interval: Duration,
    /// How often the container updater sweeps.
    pub container_updater_interval: Duration,
    /// How long the container updater leaves an account alone after an
    /// update to it failed.
    pub container_updater_suppression: Duration,
    /// Tombstones (and deleted rows) older than this are reclaimed.
    pub reclaim_age: Duration,
    /// The hosts an `X-Container-Sync-To` URL may name.
    pub allowed_sync_hosts: Vec<String>,
    /// Where the background roles keep their recon documents and the
    /// `recon` middleware reads them (Swift's `recon_cache_path`).
    pub recon_cache_path: PathBuf,
}

/// `[server]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub workers: usize,
    pub graceful_timeout: Duration,
    /// At start, how long to keep trying an address in use.
    pub bind_timeout: Duration,
    pub worker_timeout: Duration,
    pub max_connections: usize,
    pub keepalive_timeout: Duration,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub write_timeout: Duration,
    pub max_request_line: usize,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub accept_balance: bool,
    pub max_requests: u64,
    pub max_requests_jitter: u64,
    pub pid_file: Option<PathBuf>,
    /// The user workers run as (name as configured, uid, gid of the user).
    pub user: Option<(String, u32, u32)>,
    /// The group workers run as (name as configured, gid).
    pub group: Option<(String, u32)>,
}

/// One listener, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenConfig {
    /// Where to bind (port 0 picks a free port).
    pub address: SocketAddr,
    /// listen(2) backlog.
    pub backlog: u32,
    /// Largest request body accepted.
    pub max_body_size: u64,
    /// Methods that need Content-Length or chunked framing (411 otherwise).
    pub length_required: Vec<String>,
    /// The default pipeline, outermost middleware first, processor last.
    pub pipeline: Vec<String>,
    /// Prefix routes, longest prefix first.
    pub routes: Vec<RouteConfig>,
}

/// A prefix route, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    /// Starts with `/`, no trailing `/` (except the root itself).
    pub prefix: String,
    /// The pipeline for matching requests.
    pub pipeline: Vec<String>,
}

/// A pooled processor's pool, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolConfig {
    /// Threads per queue key.
    pub threads_per_device: usize,
    /// Waiting requests per queue key.
    pub queue_per_device: usize,
    /// A request that waited longer than this in its queue is answered 503
    /// without being run (None: never).
    pub max_queue_wait: Option<Duration>,
    /// A queue key whose recent per-request I/O time stays above this is
    /// flagged slow.
    pub slow_latency: Duration,
    /// The processor's own [`Setting`]s (`None`: it takes no such setting).
    pub settings: ProcessorSettings,
}

/// The settings some processors take besides their pool's; the catalog
/// says which ([`Catalog::settings`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessorSettings {
    /// How long a write waits for the updates it sends to other servers.
    pub container_update_timeout: Option<Duration>,
    /// Connect timeout towards other storage servers.
    pub conn_timeout: Option<Duration>,
    /// Response timeout towards other storage servers.
    pub node_timeout: Option<Duration>,
    /// Percent of whole-object GETs checked against their ETag.
    pub etag_validate_pct: Option<f64>,
}

impl ProcessorSettings {
    /// The connect timeout, or its default.
    pub fn conn(&self) -> Duration {
        self.conn_timeout.unwrap_or_else(|| Setting::ConnTimeout.default())
    }

    /// The response timeout, or its default.
    pub fn node(&self) -> Duration {
        self.node_timeout.unwrap_or_else(|| Setting::NodeTimeout.default())
    }

    /// The update wait, or its default.
    pub fn update_wait(&self) -> Duration {
        self.container_update_timeout.unwrap_or_else(|| Setting::ContainerUpdateTimeout.default())
    }

    /// The share of GETs checked, or its default.
    pub fn etag_validate_pct(&self) -> f64 {
        self.etag_validate_pct.unwrap_or(Setting::EtagValidatePct.default_value())
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            threads_per_device: defaults::THREADS_PER_DEVICE,
            queue_per_device: defaults::QUEUE_PER_DEVICE,
            max_queue_wait: Some(Duration::from_secs_f64(defaults::MAX_QUEUE_WAIT)),
            slow_latency: Duration::from_secs_f64(defaults::SLOW_LATENCY),
            settings: ProcessorSettings::default(),
        }
    }
}

/// `[log]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// The error-log level filter.
    pub level: log::LevelFilter,
    /// Whether access lines are written.
    pub access: bool,
    /// Error-log file (None: standard error).
    pub error_log: Option<PathBuf>,
    /// Access-log file (None: with the error log).
    pub access_log: Option<PathBuf>,
}

/// Where a configuration came from, for messages and for reloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `-c FILE`.
    File(PathBuf),
    /// No file: [`defaults::EMBEDDED_CONFIG`].
    Embedded,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Embedded => f.write_str("embedded config"),
        }
    }
}

/// Command-line overrides applied on top of the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--workers N`
    pub workers: Option<usize>,
    /// `--bind ADDR`, repeatable: the i-th replaces the i-th listener's address.
    pub bind: Vec<String>,
    /// `--admin ADDR`: replaces `admin.address`.
    pub admin: Option<String>,
}

/// The path of a config file, made absolute so a reload after a `chdir`
/// still finds it.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests;
