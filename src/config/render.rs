//! Going back: the validated [`Config`] as a file would say it, which
//! `--check-config` prints (every key, defaults included).

use super::raw::{RawAdmin, RawConfig, RawListen, RawLog, RawPool, RawReplication, RawRoute, RawServer, RawStorage};
use super::*;

impl Config {
    /// Load, override and validate in one step.
    pub fn load(source: &Source, overrides: &Overrides, catalog: &dyn Catalog) -> Result<Config, ConfigError> {
        let mut raw = RawConfig::load(source)?;
        raw.apply(overrides)?;
        raw.validate(catalog)
    }

    /// The configuration as a file would say it (every key, defaults included).
    pub fn to_raw(&self) -> RawConfig {
        let secs = |d: Duration| d.as_secs_f64();
        let s = &self.server;
        RawConfig {
            server: RawServer {
                workers: s.workers,
                graceful_timeout: secs(s.graceful_timeout),
                bind_timeout: secs(s.bind_timeout),
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
                    (
                        k.clone(),
                        RawPool {
                            threads_per_device: p.threads_per_device,
                            queue_per_device: p.queue_per_device,
                            max_queue_wait: p.max_queue_wait.map_or(0.0, |d| d.as_secs_f64()),
                            slow_latency: p.slow_latency.as_secs_f64(),
                            container_update_timeout: p.settings.container_update_timeout.map(|d| d.as_secs_f64()),
                            conn_timeout: p.settings.conn_timeout.map(|d| d.as_secs_f64()),
                            node_timeout: p.settings.node_timeout.map(|d| d.as_secs_f64()),
                            etag_validate_pct: p.settings.etag_validate_pct,
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
                reclaim_age: self.storage.reclaim_age.as_secs_f64(),
                allowed_sync_hosts: self.storage.allowed_sync_hosts.clone(),
                recon_cache_path: self.storage.recon_cache_path.display().to_string(),
            },
            replication: {
                let r = &self.replication;
                RawReplication {
                    object_replicator: r.object_replicator,
                    interval: secs(r.interval),
                    concurrency: r.concurrency,
                    concurrency_per_device: r.concurrency_per_device,
                    handoffs_first: r.handoffs_first,
                    max_bytes_per_second: r.max_bytes_per_second,
                    max_objects_per_second: r.max_objects_per_second,
                    conn_timeout: secs(r.conn_timeout),
                    node_timeout: secs(r.node_timeout),
                    http_timeout: secs(r.http_timeout),
                    replication_concurrency_per_device: r.receive_per_device,
                    replication_lock_timeout: secs(r.lock_timeout),
                    replication_failure_threshold: r.failure_threshold,
                    replication_failure_ratio: r.failure_ratio,
                    nice_priority: r.nice_priority,
                    db_replicator: r.db_replicator,
                    per_diff: r.per_diff,
                    max_diffs: r.max_diffs,
                    databases_per_second: r.databases_per_second,
                    container_rsync_module: r.container_rsync_module.clone(),
                    account_rsync_module: r.account_rsync_module.clone(),
                    rsync_compress: r.rsync_compress,
                }
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
