//! The file as written: serde structs that mirror the TOML
//! (`deny_unknown_fields`, every field defaulted from [`defaults`]), the
//! embedded default, and command-line overrides.

use super::{defaults, invalid, ConfigError, Overrides, Source};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// `[replication]`
    pub replication: RawReplication,
}

/// `[replication]`: aerie's object and database replicators, and how this
/// node receives replication.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawReplication {
    pub object_replicator: bool,
    pub interval: f64,
    pub concurrency: usize,
    pub concurrency_per_device: usize,
    pub handoffs_first: bool,
    pub max_bytes_per_second: u64,
    pub max_objects_per_second: u64,
    pub conn_timeout: f64,
    pub node_timeout: f64,
    pub http_timeout: f64,
    pub replication_concurrency_per_device: usize,
    pub replication_lock_timeout: f64,
    pub replication_failure_threshold: u64,
    pub replication_failure_ratio: f64,
    pub nice_priority: i32,
    pub db_replicator: bool,
    pub per_diff: i64,
    pub max_diffs: u64,
    pub databases_per_second: f64,
    pub container_rsync_module: String,
    pub account_rsync_module: String,
    pub rsync_compress: bool,
}

impl Default for RawReplication {
    fn default() -> Self {
        RawReplication {
            object_replicator: defaults::REPLICATION_OBJECT_REPLICATOR,
            interval: defaults::REPLICATION_INTERVAL,
            concurrency: defaults::REPLICATION_CONCURRENCY,
            concurrency_per_device: defaults::REPLICATION_CONCURRENCY_PER_DEVICE,
            handoffs_first: defaults::REPLICATION_HANDOFFS_FIRST,
            max_bytes_per_second: defaults::REPLICATION_MAX_BYTES_PER_SECOND,
            max_objects_per_second: defaults::REPLICATION_MAX_OBJECTS_PER_SECOND,
            conn_timeout: defaults::REPLICATION_CONN_TIMEOUT,
            node_timeout: defaults::REPLICATION_NODE_TIMEOUT,
            http_timeout: defaults::REPLICATION_HTTP_TIMEOUT,
            replication_concurrency_per_device: defaults::REPLICATION_RECEIVE_PER_DEVICE,
            replication_lock_timeout: defaults::REPLICATION_LOCK_TIMEOUT,
            replication_failure_threshold: defaults::REPLICATION_FAILURE_THRESHOLD,
            replication_failure_ratio: defaults::REPLICATION_FAILURE_RATIO,
            nice_priority: defaults::REPLICATION_NICE_PRIORITY,
            db_replicator: defaults::REPLICATION_DB_REPLICATOR,
            per_diff: defaults::REPLICATION_PER_DIFF,
            max_diffs: defaults::REPLICATION_MAX_DIFFS,
            databases_per_second: defaults::REPLICATION_DATABASES_PER_SECOND,
            container_rsync_module: defaults::REPLICATION_CONTAINER_RSYNC_MODULE.to_string(),
            account_rsync_module: defaults::REPLICATION_ACCOUNT_RSYNC_MODULE.to_string(),
            rsync_compress: defaults::REPLICATION_RSYNC_COMPRESS,
        }
    }
}

/// `[storage]`: where the storage services keep their data.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawStorage {
    pub devices: String,
    pub mount_check: bool,
    pub swift_conf: String,
    pub fallocate_reserve: String,
    pub object_updater_interval: f64,
    pub container_updater_interval: f64,
    pub container_updater_suppression: f64,
    pub reclaim_age: f64,
    pub allowed_sync_hosts: Vec<String>,
    pub recon_cache_path: String,
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
            reclaim_age: defaults::STORAGE_RECLAIM_AGE,
            allowed_sync_hosts: defaults::STORAGE_ALLOWED_SYNC_HOSTS.iter().map(|h| h.to_string()).collect(),
            recon_cache_path: defaults::STORAGE_RECON_CACHE_PATH.to_string(),
        }
    }
}

/// `[admin]`: the status and metrics listener.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
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
pub struct RawServer {
    pub workers: usize,
    pub graceful_timeout: f64,
    pub bind_timeout: f64,
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
            bind_timeout: defaults::BIND_TIMEOUT,
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
pub struct RawRoute {
    pub prefix: String,
    pub pipeline: Vec<String>,
}

/// `[processors.<name>]`: the pool of a pooled processor.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawPool {
    pub threads_per_device: usize,
    pub queue_per_device: usize,
    pub max_queue_wait: f64,
    pub slow_latency: f64,
    /// A [`Setting`](super::Setting): only the processors the catalog
    /// lets take it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_update_timeout: Option<f64>,
    /// A [`Setting`](super::Setting).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn_timeout: Option<f64>,
    /// A [`Setting`](super::Setting).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_timeout: Option<f64>,
    /// A [`Setting`](super::Setting).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag_validate_pct: Option<f64>,
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
            etag_validate_pct: None,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
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
}
