//! Configuration: one TOML file, parsed in two stages.
//!
//! ```text
//! TOML text ──serde──► RawConfig ──validate()──► Config
//! ```
//!
//! [`RawConfig`] mirrors the file (`deny_unknown_fields`, every field
//! defaulted from [`defaults`]); [`RawConfig::validate`] turns it into a
//! [`Config`] of checked, typed values (`Duration`, `SocketAddr`, non-zero
//! counts, known processor names) or a [`ConfigError`] that names the key path
//! and the reason. Only the master reads the file; workers inherit the
//! validated `Config` across fork. [`Config::to_raw`] goes back the other way,
//! which `--check-config` uses to print the effective configuration.

pub mod defaults;

use crate::registry::{self, Kind};
use serde::{Deserialize, Serialize};
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

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), reason: reason.into() }
}

/// The file as written. See `man aerie.toml` for every key.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// `[server]`
    pub server: RawServer,
    /// `[[listen]]`
    pub listen: Vec<RawListen>,
    /// `[processors.<name>]`
    pub processors: BTreeMap<String, RawPool>,
    /// `[log]`
    pub log: RawLog,
    /// `[admin]`
    pub admin: RawAdmin,
    /// `[storage]`
    pub storage: RawStorage,
}

/// `[storage]`: where the storage services keep their data.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawStorage {
    pub devices: String,
    pub mount_check: bool,
    pub swift_conf: String,
    pub fallocate_reserve: String,
    pub object_updater_interval: f64,
    pub container_updater_interval: f64,
    pub container_updater_suppression: f64,
}

impl Default for RawStorage {
    fn default() -> Self {
        RawStorage {
            devices: defaults::STORAGE_DEVICES.to_string(),
            mount_check: defaults::STORAGE_MOUNT_CHECK,
            swift_conf: defaults::STORAGE_SWIFT_CONF.to_string(),
            fallocate_reserve: defaults::STORAGE_FALLOCATE_RESERVE.to_string(),
            object_updater_interval: defaults::STORAGE_OBJECT_UPDATER_INTERVAL,
            container_updater_interval: defaults::STORAGE_CONTAINER_UPDATER_INTERVAL,
            container_updater_suppression: defaults::STORAGE_CONTAINER_UPDATER_SUPPRESSION,
        }
    }
}

/// `[admin]`: the status and metrics listener.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawAdmin {
    pub address: String,
}

impl Default for RawAdmin {
    fn default() -> Self {
        RawAdmin { address: defaults::ADMIN_ADDRESS.to_string() }
    }
}

/// `[server]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawServer {
    pub workers: usize,
    pub graceful_timeout: f64,
    pub worker_timeout: f64,
    pub max_connections: usize,
    pub keepalive_timeout: f64,
    pub header_timeout: f64,
    pub body_timeout: f64,
    pub write_timeout: f64,
    pub max_request_line: usize,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub accept_balance: bool,
    pub max_requests: u64,
    pub max_requests_jitter: u64,
    pub pid_file: String,
    pub user: String,
    pub group: String,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            workers: defaults::WORKERS,
            graceful_timeout: defaults::GRACEFUL_TIMEOUT,
            worker_timeout: defaults::WORKER_TIMEOUT,
            max_connections: defaults::MAX_CONNECTIONS,
            keepalive_timeout: defaults::KEEPALIVE_TIMEOUT,
            header_timeout: defaults::HEADER_TIMEOUT,
            body_timeout: defaults::BODY_TIMEOUT,
            write_timeout: defaults::WRITE_TIMEOUT,
            max_request_line: defaults::MAX_REQUEST_LINE,
            max_header_bytes: defaults::MAX_HEADER_BYTES,
            max_headers: defaults::MAX_HEADERS,
            accept_balance: defaults::ACCEPT_BALANCE,
            max_requests: defaults::MAX_REQUESTS,
            max_requests_jitter: defaults::MAX_REQUESTS_JITTER,
            pid_file: defaults::PID_FILE.to_string(),
            user: defaults::USER.to_string(),
            group: defaults::GROUP.to_string(),
        }
    }
}

/// `[[listen]]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawListen {
    pub address: String,
    pub backlog: u32,
    pub max_body_size: u64,
    pub length_required: Vec<String>,
    pub pipeline: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<RawRoute>,
}

impl Default for RawListen {
    fn default() -> Self {
        RawListen {
            address: String::new(),
            backlog: defaults::BACKLOG,
            max_body_size: defaults::MAX_BODY_SIZE,
            length_required: defaults::LENGTH_REQUIRED.iter().map(|s| s.to_string()).collect(),
            pipeline: Vec::new(),
            route: Vec::new(),
        }
    }
}

/// `[[listen.route]]`: requests whose path starts with `prefix` (at a `/`
/// boundary) go to `pipeline` instead of the listener's own.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawRoute {
    pub prefix: String,
    pub pipeline: Vec<String>,
}

/// `[processors.<name>]`: the pool of a pooled processor.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawPool {
    pub threads_per_device: usize,
    pub queue_per_device: usize,
    pub max_queue_wait: f64,
    pub slow_latency: f64,
    /// `object` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_update_timeout: Option<f64>,
    /// `object` and `container` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn_timeout: Option<f64>,
    /// `object` and `container` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_timeout: Option<f64>,
}

impl Default for RawPool {
    fn default() -> Self {
        RawPool {
            threads_per_device: defaults::THREADS_PER_DEVICE,
            queue_per_device: defaults::QUEUE_PER_DEVICE,
            max_queue_wait: defaults::MAX_QUEUE_WAIT,
            slow_latency: defaults::SLOW_LATENCY,
            container_update_timeout: None,
            conn_timeout: None,
            node_timeout: None,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawLog {
    pub level: String,
    pub access: bool,
    pub error_log: String,
    pub access_log: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            level: defaults::LOG_LEVEL.to_string(),
            access: defaults::LOG_ACCESS,
            error_log: defaults::LOG_ERROR_LOG.to_string(),
            access_log: defaults::LOG_ACCESS_LOG.to_string(),
        }
    }
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
    /// `[processors.object]`'s own settings.
    pub object: ObjectSettings,
    /// `[processors.container]`'s timeouts towards account servers.
    pub container: RemoteTimeouts,
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
}

/// The object service's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObjectSettings {
    /// Wait for container updates this long.
    pub container_update_timeout: Duration,
    /// Connect timeout towards container servers.
    pub conn_timeout: Duration,
    /// Response timeout towards container servers.
    pub node_timeout: Duration,
}

/// Timeouts towards other storage servers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RemoteTimeouts {
    /// Connect timeout.
    pub conn_timeout: Duration,
    /// Response timeout.
    pub node_timeout: Duration,
}

/// `[server]`, validated.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct ServerConfig {
    pub workers: usize,
    pub graceful_timeout: Duration,
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
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            threads_per_device: defaults::THREADS_PER_DEVICE,
            queue_per_device: defaults::QUEUE_PER_DEVICE,
            max_queue_wait: Some(Duration::from_secs_f64(defaults::MAX_QUEUE_WAIT)),
            slow_latency: Duration::from_secs_f64(defaults::SLOW_LATENCY),
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

impl LogConfig {
    /// The logger's settings.
    pub fn settings(&self) -> crate::log::LogSettings {
        crate::log::LogSettings {
            level: self.level,
            access: self.access,
            error_log: self.error_log.clone(),
            access_log: self.access_log.clone(),
        }
    }
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

impl RawConfig {
    /// Parse TOML text.
    pub fn parse(text: &str, origin: &Source) -> Result<RawConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })
    }

    /// Read and parse a source.
    pub fn load(source: &Source) -> Result<RawConfig, ConfigError> {
        match source {
            Source::Embedded => RawConfig::parse(defaults::EMBEDDED_CONFIG, source),
            Source::File(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| ConfigError::Read { path: path.clone(), source: e })?;
                RawConfig::parse(&text, source)
            }
        }
    }

    /// Apply command-line overrides.
    pub fn apply(&mut self, o: &Overrides) -> Result<(), ConfigError> {
        if let Some(w) = o.workers {
            self.server.workers = w;
        }
        if o.bind.len() > self.listen.len() {
            return Err(invalid(
                "--bind",
                format!("given {} times but the config has {} [[listen]] sections", o.bind.len(), self.listen.len()),
            ));
        }
        for (l, b) in self.listen.iter_mut().zip(&o.bind) {
            l.address = b.clone();
        }
        if let Some(a) = &o.admin {
            self.admin.address = a.clone();
        }
        Ok(())
    }

    /// Check every value and build the typed configuration.
    pub fn validate(&self) -> Result<Config, ConfigError> {
        let s = &self.server;
        if s.workers == 0 || s.workers > crate::scoreboard::MAX_WORKERS {
            return Err(invalid(
                "server.workers",
                format!("{} is not between 1 and {}", s.workers, crate::scoreboard::MAX_WORKERS),
            ));
        }
        let server = ServerConfig {
            workers: s.workers,
            graceful_timeout: seconds("server.graceful_timeout", s.graceful_timeout)?,
            worker_timeout: seconds("server.worker_timeout", s.worker_timeout)?,
            max_connections: at_least("server.max_connections", s.max_connections, 1)?,
            keepalive_timeout: seconds("server.keepalive_timeout", s.keepalive_timeout)?,
            header_timeout: seconds("server.header_timeout", s.header_timeout)?,
            body_timeout: seconds("server.body_timeout", s.body_timeout)?,
            write_timeout: seconds("server.write_timeout", s.write_timeout)?,
            max_request_line: at_least("server.max_request_line", s.max_request_line, 16)?,
            max_header_bytes: at_least("server.max_header_bytes", s.max_header_bytes, 64)?,
            max_headers: at_least("server.max_headers", s.max_headers, 1)?,
            accept_balance: s.accept_balance,
            max_requests: s.max_requests,
            max_requests_jitter: s.max_requests_jitter,
            pid_file: non_empty_path(&s.pid_file),
            user: resolve_user(&s.user)?,
            group: resolve_group(&s.group)?,
        };
        if server.max_request_line > server.max_header_bytes {
            return Err(invalid("server.max_request_line", "must not exceed server.max_header_bytes"));
        }
        if self.listen.is_empty() {
            return Err(invalid("listen", "at least one [[listen]] section is required"));
        }
        let mut listen = Vec::with_capacity(self.listen.len());
        for (i, l) in self.listen.iter().enumerate() {
            listen.push(validate_listen(&format!("listen[{i}]"), l)?);
        }
        for (i, a) in listen.iter().enumerate() {
            if a.address.port() != 0 && listen.iter().skip(i + 1).any(|b| b.address == a.address) {
                return Err(invalid(format!("listen[{i}].address"), format!("{} is listed twice", a.address)));
            }
        }
        let mut pools = BTreeMap::new();
        let mut object = ObjectSettings {
            container_update_timeout: seconds("", defaults::OBJECT_CONTAINER_UPDATE_TIMEOUT)?,
            conn_timeout: seconds("", defaults::OBJECT_CONN_TIMEOUT)?,
            node_timeout: seconds("", defaults::OBJECT_NODE_TIMEOUT)?,
        };
        let mut container = RemoteTimeouts {
            conn_timeout: seconds("", defaults::CONTAINER_CONN_TIMEOUT)?,
            node_timeout: seconds("", defaults::CONTAINER_NODE_TIMEOUT)?,
        };
        for (name, p) in &self.processors {
            let object_keys = [
                ("container_update_timeout", p.container_update_timeout),
                ("conn_timeout", p.conn_timeout),
                ("node_timeout", p.node_timeout),
            ];
            for (k, v) in object_keys {
                let Some(v) = v else { continue };
                let d = seconds(&format!("processors.{name}.{k}"), v)?;
                match (name.as_str(), k) {
                    ("object", "container_update_timeout") => object.container_update_timeout = d,
                    ("object", "conn_timeout") => object.conn_timeout = d,
                    ("object", _) => object.node_timeout = d,
                    ("container", "conn_timeout") => container.conn_timeout = d,
                    ("container", "node_timeout") => container.node_timeout = d,
                    _ => {
                        return Err(invalid(
                            format!("processors.{name}.{k}"),
                            if k == "container_update_timeout" {
                                "only the object processor has this setting"
                            } else {
                                "only the object and container processors have this setting"
                            },
                        ))
                    }
                }
            }
            let key = format!("processors.{name}");
            match registry::lookup(name) {
                Some(e) if e.kind == Kind::Pooled => {}
                Some(_) => return Err(invalid(key, format!("`{name}` runs inline and has no pool to configure"))),
                None => return Err(invalid(key, format!("unknown processor `{name}`"))),
            }
            let threads = at_least(&format!("{key}.threads_per_device"), p.threads_per_device, 1)?;
            let queue = at_least(&format!("{key}.queue_per_device"), p.queue_per_device, 1)?;
            let max_queue_wait = if p.max_queue_wait == 0.0 {
                None
            } else {
                Some(seconds(&format!("{key}.max_queue_wait"), p.max_queue_wait)?)
            };
            let slow_latency = seconds(&format!("{key}.slow_latency"), p.slow_latency)?;
            pools.insert(
                name.clone(),
                PoolConfig { threads_per_device: threads, queue_per_device: queue, max_queue_wait, slow_latency },
            );
        }
        for e in registry::all().iter().filter(|e| e.kind == Kind::Pooled) {
            pools.entry(e.name.to_string()).or_default();
        }
        let level = self.log.level.parse::<log::LevelFilter>().map_err(|_| {
            invalid("log.level", format!("`{}` is not one of off, error, warn, info, debug, trace", self.log.level))
        })?;
        let admin = if self.admin.address.is_empty() {
            None
        } else {
            let a: SocketAddr = self.admin.address.parse().map_err(|_| {
                invalid("admin.address", format!("`{}` is not an IP address and port", self.admin.address))
            })?;
            if a.port() != 0 && listen.iter().any(|l| l.address == a) {
                return Err(invalid("admin.address", format!("{a} is also a [[listen]] address")));
            }
            Some(a)
        };
        let log = LogConfig {
            level,
            access: self.log.access,
            error_log: non_empty_path(&self.log.error_log),
            access_log: non_empty_path(&self.log.access_log),
        };
        let st = &self.storage;
        let reserve = aerie_storage::fs::Reserve::parse(&st.fallocate_reserve).ok_or_else(|| {
            invalid(
                "storage.fallocate_reserve",
                format!("`{}` is not a byte count or a percentage", st.fallocate_reserve),
            )
        })?;
        if st.devices.is_empty() {
            return Err(invalid("storage.devices", "is required"));
        }
        let mut storage = StorageConfig {
            devices: aerie_storage::fs::Devices { root: absolute(Path::new(&st.devices)), mount_check: st.mount_check },
            swift_conf_path: absolute(Path::new(&st.swift_conf)),
            swift: None,
            reserve_text: st.fallocate_reserve.clone(),
            reserve,
            object_updater_interval: seconds("storage.object_updater_interval", st.object_updater_interval)?,
            container_updater_interval: seconds("storage.container_updater_interval", st.container_updater_interval)?,
            container_updater_suppression: seconds(
                "storage.container_updater_suppression",
                st.container_updater_suppression,
            )?,
        };
        let config_uses = |n: &str| {
            listen.iter().any(|l| {
                l.pipeline.iter().any(|p| p == n) || l.routes.iter().any(|r| r.pipeline.iter().any(|p| p == n))
            })
        };
        if registry::all().iter().any(|e| e.storage && config_uses(e.name)) {
            let text = std::fs::read_to_string(&storage.swift_conf_path).map_err(|e| {
                invalid("storage.swift_conf", format!("could not read {}: {e}", storage.swift_conf_path.display()))
            })?;
            let swift = aerie_storage::swift_conf::parse(&text)
                .map_err(|e| invalid("storage.swift_conf", format!("{}: {e}", storage.swift_conf_path.display())))?;
            storage.swift = Some(swift);
        }
        Ok(Config { server, listen, pools, log, admin, storage, object, container })
    }
}

fn non_empty_path(s: &str) -> Option<PathBuf> {
    (!s.is_empty()).then(|| absolute(Path::new(s)))
}

fn resolve_user(name: &str) -> Result<Option<(String, u32, u32)>, ConfigError> {
    if name.is_empty() {
        return Ok(None);
    }
    let user = match name.parse::<u32>() {
        Ok(uid) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)),
        Err(_) => nix::unistd::User::from_name(name),
    };
    match user {
        Ok(Some(u)) => Ok(Some((name.to_string(), u.uid.as_raw(), u.gid.as_raw()))),
        Ok(None) => Err(invalid("server.user", format!("no such user `{name}`"))),
        Err(e) => Err(invalid("server.user", format!("could not look up `{name}`: {e}"))),
    }
}

fn resolve_group(name: &str) -> Result<Option<(String, u32)>, ConfigError> {
    if name.is_empty() {
        return Ok(None);
    }
    let group = match name.parse::<u32>() {
        Ok(gid) => nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid)),
        Err(_) => nix::unistd::Group::from_name(name),
    };
    match group {
        Ok(Some(g)) => Ok(Some((name.to_string(), g.gid.as_raw()))),
        Ok(None) => Err(invalid("server.group", format!("no such group `{name}`"))),
        Err(e) => Err(invalid("server.group", format!("could not look up `{name}`: {e}"))),
    }
}

fn seconds(key: &str, v: f64) -> Result<Duration, ConfigError> {
    if !v.is_finite() || v <= 0.0 || v > 1e9 {
        return Err(invalid(key, format!("{v} is not a positive number of seconds")));
    }
    Ok(Duration::from_secs_f64(v))
}

fn at_least(key: &str, v: usize, min: usize) -> Result<usize, ConfigError> {
    if v < min {
        return Err(invalid(key, format!("{v} is below the minimum of {min}")));
    }
    Ok(v)
}

fn validate_pipeline(key: &str, names: &[String]) -> Result<Vec<String>, ConfigError> {
    let Some((last, middleware)) = names.split_last() else {
        return Err(invalid(key, "a pipeline needs at least a processor"));
    };
    for (i, m) in middleware.iter().enumerate() {
        match registry::lookup(m) {
            Some(e) if e.kind == Kind::Middleware => {}
            Some(_) => {
                return Err(invalid(
                    format!("{key}[{i}]"),
                    format!("`{m}` is a processor; only middleware may come before the last element"),
                ))
            }
            None => return Err(invalid(format!("{key}[{i}]"), format!("unknown middleware `{m}`"))),
        }
    }
    match registry::lookup(last) {
        Some(e) if e.kind != Kind::Middleware => {}
        Some(_) => {
            return Err(invalid(
                format!("{key}[{}]", names.len() - 1),
                format!("`{last}` is middleware; a pipeline must end with a processor"),
            ))
        }
        None => {
            let known: Vec<&str> = registry::all().iter().map(|e| e.name).collect();
            return Err(invalid(
                format!("{key}[{}]", names.len() - 1),
                format!("unknown processor `{last}` (known: {})", known.join(", ")),
            ));
        }
    }
    Ok(names.to_vec())
}

fn validate_listen(key: &str, l: &RawListen) -> Result<ListenConfig, ConfigError> {
    if l.address.is_empty() {
        return Err(invalid(format!("{key}.address"), "is required"));
    }
    let address: SocketAddr = l.address.parse().map_err(|_| {
        invalid(format!("{key}.address"), format!("`{}` is not an IP address and port, e.g. 127.0.0.1:8080", l.address))
    })?;
    if l.backlog == 0 {
        return Err(invalid(format!("{key}.backlog"), "must be at least 1"));
    }
    let mut length_required = Vec::new();
    for (i, m) in l.length_required.iter().enumerate() {
        if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(invalid(
                format!("{key}.length_required[{i}]"),
                format!("`{m}` is not an upper-case method name"),
            ));
        }
        length_required.push(m.clone());
    }
    let pipeline = validate_pipeline(&format!("{key}.pipeline"), &l.pipeline)?;
    let mut routes = Vec::new();
    for (i, r) in l.route.iter().enumerate() {
        let rkey = format!("{key}.route[{i}]");
        if !r.prefix.starts_with('/') {
            return Err(invalid(format!("{rkey}.prefix"), format!("`{}` must start with /", r.prefix)));
        }
        let prefix = if r.prefix.len() > 1 { r.prefix.trim_end_matches('/').to_string() } else { r.prefix.clone() };
        if routes.iter().any(|x: &RouteConfig| x.prefix == prefix) {
            return Err(invalid(format!("{rkey}.prefix"), format!("`{prefix}` is routed twice")));
        }
        routes.push(RouteConfig { prefix, pipeline: validate_pipeline(&format!("{rkey}.pipeline"), &r.pipeline)? });
    }
    routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
    Ok(ListenConfig { address, backlog: l.backlog, max_body_size: l.max_body_size, length_required, pipeline, routes })
}

impl Config {
    /// Load, override and validate in one step.
    pub fn load(source: &Source, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut raw = RawConfig::load(source)?;
        raw.apply(overrides)?;
        raw.validate()
    }

    /// The configuration as a file would say it (every key, defaults included).
    pub fn to_raw(&self) -> RawConfig {
        let secs = |d: Duration| d.as_secs_f64();
        let s = &self.server;
        RawConfig {
            server: RawServer {
                workers: s.workers,
                graceful_timeout: secs(s.graceful_timeout),
                worker_timeout: secs(s.worker_timeout),
                max_connections: s.max_connections,
                keepalive_timeout: secs(s.keepalive_timeout),
                header_timeout: secs(s.header_timeout),
                body_timeout: secs(s.body_timeout),
                write_timeout: secs(s.write_timeout),
                max_request_line: s.max_request_line,
                max_header_bytes: s.max_header_bytes,
                max_headers: s.max_headers,
                accept_balance: s.accept_balance,
                max_requests: s.max_requests,
                max_requests_jitter: s.max_requests_jitter,
                pid_file: s.pid_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                user: s.user.as_ref().map(|u| u.0.clone()).unwrap_or_default(),
                group: s.group.as_ref().map(|g| g.0.clone()).unwrap_or_default(),
            },
            listen: self
                .listen
                .iter()
                .map(|l| RawListen {
                    address: l.address.to_string(),
                    backlog: l.backlog,
                    max_body_size: l.max_body_size,
                    length_required: l.length_required.clone(),
                    pipeline: l.pipeline.clone(),
                    route: l
                        .routes
                        .iter()
                        .map(|r| RawRoute { prefix: r.prefix.clone(), pipeline: r.pipeline.clone() })
                        .collect(),
                })
                .collect(),
            processors: self
                .pools
                .iter()
                .filter(|(name, _)| self.uses(name))
                .map(|(k, p)| {
                    let object = (k == "object").then_some(self.object);
                    let remote = match k.as_str() {
                        "object" => Some(RemoteTimeouts {
                            conn_timeout: self.object.conn_timeout,
                            node_timeout: self.object.node_timeout,
                        }),
                        "container" => Some(self.container),
                        _ => None,
                    };
                    (
                        k.clone(),
                        RawPool {
                            threads_per_device: p.threads_per_device,
                            queue_per_device: p.queue_per_device,
                            max_queue_wait: p.max_queue_wait.map_or(0.0, |d| d.as_secs_f64()),
                            slow_latency: p.slow_latency.as_secs_f64(),
                            container_update_timeout: object.map(|o| o.container_update_timeout.as_secs_f64()),
                            conn_timeout: remote.map(|o| o.conn_timeout.as_secs_f64()),
                            node_timeout: remote.map(|o| o.node_timeout.as_secs_f64()),
                        },
                    )
                })
                .collect(),
            log: RawLog {
                level: self.log.level.to_string().to_lowercase(),
                access: self.log.access,
                error_log: self.log.error_log.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                access_log: self.log.access_log.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            },
            admin: RawAdmin { address: self.admin.map(|a| a.to_string()).unwrap_or_default() },
            storage: RawStorage {
                devices: self.storage.devices.root.display().to_string(),
                mount_check: self.storage.devices.mount_check,
                swift_conf: self.storage.swift_conf_path.display().to_string(),
                fallocate_reserve: self.storage.reserve_text.clone(),
                object_updater_interval: self.storage.object_updater_interval.as_secs_f64(),
                container_updater_interval: self.storage.container_updater_interval.as_secs_f64(),
                container_updater_suppression: self.storage.container_updater_suppression.as_secs_f64(),
            },
        }
    }

    /// Whether any pipeline names this processor.
    pub fn uses(&self, name: &str) -> bool {
        self.listen.iter().any(|l| {
            l.pipeline.iter().any(|p| p == name) || l.routes.iter().any(|r| r.pipeline.iter().any(|p| p == name))
        })
    }

    /// The effective configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(&self.to_raw()).unwrap_or_else(|e| format!("# could not render the configuration: {e}\n"))
    }
}

/// The path of a config file, made absolute so a reload after a `chdir`
/// still finds it.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        RawConfig::parse(text, &Source::Embedded)?.validate()
    }

    #[test]
    fn embedded_config_serves_hello_and_echo_with_two_workers() {
        let c = Config::load(&Source::Embedded, &Overrides::default()).expect("embedded config is valid");
        assert_eq!(c.server.workers, 2);
        assert_eq!(c.listen[0].address, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(c.listen[0].pipeline, ["healthcheck", "hello"]);
        assert_eq!(c.listen[0].routes[0].prefix, "/echo");
    }

    #[test]
    fn unknown_keys_are_errors_that_name_the_key() {
        let e =
            parse("[server]\nworkerz = 3\n[[listen]]\naddress='127.0.0.1:1'\npipeline=['hello']").expect_err("invalid");
        assert!(e.to_string().contains("workerz"), "{e}");
    }

    #[test]
    fn bad_values_name_the_key_path() {
        let e = parse("[[listen]]\naddress='nope'\npipeline=['hello']").expect_err("invalid");
        assert!(e.to_string().starts_with("listen[0].address:"), "{e}");
        let e = parse("[server]\ngraceful_timeout = -1\n[[listen]]\naddress='127.0.0.1:1'\npipeline=['hello']")
            .expect_err("invalid");
        assert!(e.to_string().starts_with("server.graceful_timeout:"), "{e}");
        let e = parse("[[listen]]\naddress='127.0.0.1:1'\npipeline=['hello', 'healthcheck']").expect_err("invalid");
        assert!(e.to_string().starts_with("listen[0].pipeline[0]:"), "{e}");
        let e = parse("[[listen]]\naddress='127.0.0.1:1'\npipeline=['nosuch']").expect_err("invalid");
        assert!(e.to_string().contains("unknown processor `nosuch`"), "{e}");
        let e =
            parse("[[listen]]\naddress='127.0.0.1:1'\npipeline=['hello']\n[processors.hello]\nthreads_per_device=1")
                .expect_err("invalid");
        assert!(e.to_string().starts_with("processors.hello:"), "{e}");
        let e = parse("[[listen]]\naddress='127.0.0.1:1'\npipeline=['echo']\n[processors.echo]\nqueue_per_device=0")
            .expect_err("invalid");
        assert!(e.to_string().starts_with("processors.echo.queue_per_device:"), "{e}");
    }

    #[test]
    fn remote_timeouts_belong_to_the_object_and_container_processors() {
        let base = "[[listen]]\naddress='127.0.0.1:1'\npipeline=['hello']\n";
        let c =
            parse(&format!("{base}[processors.container]\nconn_timeout = 0.25\nnode_timeout = 7\n")).expect("valid");
        assert_eq!(c.container.conn_timeout, Duration::from_millis(250));
        assert_eq!(c.container.node_timeout, Duration::from_secs(7));
        assert_eq!(c.object.node_timeout, Duration::from_secs_f64(defaults::OBJECT_NODE_TIMEOUT));
        let e =
            parse(&format!("{base}[processors.container]\ncontainer_update_timeout = 1\n")).expect_err("object only");
        assert!(e.to_string().starts_with("processors.container.container_update_timeout:"), "{e}");
        let e = parse(&format!("{base}[processors.account]\nconn_timeout = 1\n")).expect_err("not account");
        assert!(e.to_string().starts_with("processors.account.conn_timeout:"), "{e}");
    }

    #[test]
    fn integer_seconds_are_accepted() {
        let c = parse("[server]\ngraceful_timeout = 5\n[[listen]]\naddress='127.0.0.1:1'\npipeline=['hello']")
            .expect("valid");
        assert_eq!(c.server.graceful_timeout, Duration::from_secs(5));
    }

    #[test]
    fn overrides_replace_workers_and_addresses() {
        let mut raw = RawConfig::load(&Source::Embedded).expect("parses");
        raw.apply(&Overrides { workers: Some(5), bind: vec!["127.0.0.1:0".into()], admin: None }).expect("applies");
        let c = raw.validate().expect("valid");
        assert_eq!(c.server.workers, 5);
        assert_eq!(c.listen[0].address.port(), 0);
        let mut raw = RawConfig::load(&Source::Embedded).expect("parses");
        assert!(raw.apply(&Overrides { workers: None, bind: vec!["a".into(), "b".into()], admin: None }).is_err());
    }

    #[test]
    fn effective_config_round_trips() {
        let c = Config::load(&Source::Embedded, &Overrides::default()).expect("valid");
        let again = parse(&c.to_toml()).expect("rendered config parses");
        assert_eq!(c, again);
    }

    #[test]
    fn routes_are_ordered_longest_prefix_first_and_trailing_slash_is_dropped() {
        let c = parse(
            "[[listen]]\naddress='127.0.0.1:1'\npipeline=['hello']\n[[listen.route]]\nprefix='/a/'\npipeline=['echo']\n[[listen.route]]\nprefix='/a/b'\npipeline=['hello']",
        )
        .expect("valid");
        let prefixes: Vec<&str> = c.listen[0].routes.iter().map(|r| r.prefix.as_str()).collect();
        assert_eq!(prefixes, ["/a/b", "/a"]);
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    #[test]
    fn the_annotated_example_is_the_embedded_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/aerie.toml");
        let example = Config::load(&Source::File(path), &Overrides::default()).expect("etc/aerie.toml is valid");
        let embedded = Config::load(&Source::Embedded, &Overrides::default()).expect("embedded config is valid");
        assert_eq!(example, embedded);
    }

    #[test]
    fn the_swift_node_example_is_valid_and_serves_the_three_rings_ports() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/swift-node.toml");
        let conf = std::env::temp_dir().join(format!("aerie-swift-node-test-{}.conf", std::process::id()));
        std::fs::write(
            &conf,
            "[swift-hash]\nswift_hash_path_suffix = x\n[storage-policy:0]\nname = gold\ndefault = yes\n",
        )
        .expect("write swift.conf");
        // The example runs as `swift`, which this machine may not have.
        let text = std::fs::read_to_string(&path)
            .expect("read example")
            .replace("user = \"swift\"", "user = \"\"")
            .replace("group = \"swift\"", "group = \"\"")
            .replace("/etc/swift/swift.conf", &conf.to_string_lossy());
        let cfg = RawConfig::parse(&text, &Source::File(path)).and_then(|r| r.validate());
        let _ = std::fs::remove_file(&conf);
        let cfg = cfg.expect("etc/swift-node.toml is valid");
        let ports: Vec<(u16, &str)> = cfg
            .listen
            .iter()
            .map(|l| (l.address.port(), l.pipeline.last().map(String::as_str).unwrap_or("")))
            .collect();
        assert_eq!(ports, [(6200, "object"), (6201, "container"), (6202, "account")]);
        assert!(cfg.listen.iter().all(|l| l.length_required.is_empty()), "the proxy sends bodiless PUTs and POSTs");
        assert!(cfg.storage.devices.mount_check);
    }

    /// `(section, key, default)` of every key documented in aerie.toml(5).
    fn man_page_keys() -> Vec<(String, String, toml::Value)> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("man/aerie.toml.5");
        let text = std::fs::read_to_string(path).expect("read man/aerie.toml.5");
        let mut out = Vec::new();
        let (mut section, mut key) = (String::new(), None::<String>);
        for line in text.lines() {
            if let Some(s) = line.strip_prefix(".SS ") {
                section = s.trim().to_string();
            } else if let Some(k) = line.strip_prefix(".B ").filter(|_| section.starts_with('[')) {
                key = Some(k.trim().to_string());
            } else if let (Some(d), Some(k)) = (line.strip_prefix("Default: "), key.take()) {
                let lit = d.trim().strip_suffix('.').unwrap_or(d).replace("\\-", "-").replace("\\e", "\\");
                let v: toml::Value = toml::from_str::<toml::Table>(&format!("v = {lit}"))
                    .unwrap_or_else(|e| panic!("{section} {k}: default {lit:?} is not TOML: {e}"))["v"]
                    .clone();
                out.push((section.clone(), k, v));
            }
        }
        out
    }

    #[test]
    fn the_config_man_page_documents_every_key_with_its_real_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/aerie.toml");
        let example: toml::Table = toml::from_str(&std::fs::read_to_string(path).expect("read")).expect("parses");
        // etc/aerie.toml spells out every key of the effective default
        // (tested above); the processor keys only some processors take are
        // added from the defaults.
        let mut want: Vec<(String, String, toml::Value)> = Vec::new();
        for (name, v) in &example {
            match (name.as_str(), v) {
                ("listen", toml::Value::Array(ls)) => {
                    for (k, v) in ls[0].as_table().expect("listen table") {
                        if k == "route" {
                            for (rk, rv) in v.as_array().expect("routes")[0].as_table().expect("route") {
                                want.push(("[[listen.route]]".into(), rk.clone(), rv.clone()));
                            }
                        } else {
                            want.push(("[[listen]]".into(), k.clone(), v.clone()));
                        }
                    }
                }
                ("processors", toml::Value::Table(ps)) => {
                    for (k, v) in ps["echo"].as_table().expect("echo pool") {
                        want.push(("[processors.NAME]".into(), k.clone(), v.clone()));
                    }
                }
                (section, toml::Value::Table(t)) => {
                    for (k, v) in t {
                        want.push((format!("[{section}]"), k.clone(), v.clone()));
                    }
                }
                other => panic!("unexpected top-level {other:?}"),
            }
        }
        for (k, v) in [
            ("container_update_timeout", defaults::OBJECT_CONTAINER_UPDATE_TIMEOUT),
            ("conn_timeout", defaults::OBJECT_CONN_TIMEOUT),
            ("node_timeout", defaults::OBJECT_NODE_TIMEOUT),
        ] {
            want.push(("[processors.NAME]".into(), k.into(), toml::Value::Float(v)));
        }
        assert_eq!(defaults::CONTAINER_CONN_TIMEOUT, defaults::OBJECT_CONN_TIMEOUT, "the page gives one default");
        assert_eq!(defaults::CONTAINER_NODE_TIMEOUT, defaults::OBJECT_NODE_TIMEOUT, "the page gives one default");
        let documented = man_page_keys();
        for w in &want {
            assert!(documented.contains(w), "aerie.toml(5) lacks {} {} = {} (or gives another default)", w.0, w.1, w.2);
        }
        for d in &documented {
            assert!(
                want.contains(d),
                "aerie.toml(5) documents {} {} = {}, which the parser does not have",
                d.0,
                d.1,
                d.2
            );
        }
    }

    #[test]
    fn the_example_spells_out_every_key_with_its_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/aerie.toml");
        let text = std::fs::read_to_string(path).expect("read example");
        let written: toml::Value = toml::from_str(&text).expect("parses");
        let effective = RawConfig::parse(defaults::EMBEDDED_CONFIG, &Source::Embedded)
            .and_then(|r| r.validate())
            .expect("valid")
            .to_raw();
        let effective = toml::Value::try_from(&effective).expect("renders");
        assert_eq!(written, effective, "etc/aerie.toml must spell out every key of the effective default config");
    }
}
