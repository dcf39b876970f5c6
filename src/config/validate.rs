//! Stage two: [`RawConfig::validate`] checks every value and builds the
//! typed [`Config`], or names the key path that is wrong. What a processor
//! name is comes from the [`Catalog`] the caller passes in (config knows no
//! processor).

use super::raw::{RawConfig, RawListen, RawPool};
use super::*;
use crate::scoreboard::MAX_WORKERS;

impl RawConfig {
    /// Check every value and build the typed configuration.
    pub fn validate(&self, catalog: &dyn Catalog) -> Result<Config, ConfigError> {
        let s = &self.server;
        if s.workers == 0 || s.workers > MAX_WORKERS {
            return Err(invalid("server.workers", format!("{} is not between 1 and {}", s.workers, MAX_WORKERS)));
        }
        let server = ServerConfig {
            workers: s.workers,
            graceful_timeout: seconds("server.graceful_timeout", s.graceful_timeout)?,
            bind_timeout: seconds_or_zero("server.bind_timeout", s.bind_timeout)?,
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
            listen.push(validate_listen(&format!("listen[{i}]"), l, catalog)?);
        }
        for (i, a) in listen.iter().enumerate() {
            if a.address.port() != 0 && listen.iter().skip(i + 1).any(|b| b.address == a.address) {
                return Err(invalid(format!("listen[{i}].address"), format!("{} is listed twice", a.address)));
            }
        }
        let mut pools = BTreeMap::new();
        for (name, p) in &self.processors {
            let key = format!("processors.{name}");
            match catalog.kind(name) {
                Some(ProcessorKind::Pooled) => {}
                Some(_) => return Err(invalid(key, format!("`{name}` runs inline and has no pool to configure"))),
                None => return Err(invalid(key, format!("unknown processor `{name}`"))),
            }
            pools.insert(name.clone(), validate_pool(&key, p, catalog.settings(name))?);
        }
        for name in catalog.names() {
            if catalog.kind(name) == Some(ProcessorKind::Pooled) && !pools.contains_key(name) {
                pools.insert(name.to_string(), validate_pool("", &RawPool::default(), catalog.settings(name))?);
            }
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
        let storage = StorageConfig {
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
            reclaim_age: seconds("storage.reclaim_age", st.reclaim_age)?,
            allowed_sync_hosts: st
                .allowed_sync_hosts
                .iter()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .collect(),
            recon_cache_path: {
                if st.recon_cache_path.trim().is_empty() {
                    return Err(invalid("storage.recon_cache_path", "must name a directory"));
                }
                absolute(Path::new(&st.recon_cache_path))
            },
        };
        let r = &self.replication;
        if !(r.replication_failure_ratio.is_finite() && r.replication_failure_ratio >= 0.0) {
            return Err(invalid("replication.replication_failure_ratio", "must be a number of at least 0"));
        }
        if !(-20..=19).contains(&r.nice_priority) {
            return Err(invalid("replication.nice_priority", "must be between -20 and 19"));
        }
        if r.per_diff < 1 {
            return Err(invalid("replication.per_diff", format!("{} is below the minimum of 1", r.per_diff)));
        }
        if r.max_diffs < 1 {
            return Err(invalid("replication.max_diffs", format!("{} is below the minimum of 1", r.max_diffs)));
        }
        if !(r.databases_per_second.is_finite() && r.databases_per_second >= 0.0) {
            return Err(invalid("replication.databases_per_second", "must be a number of at least 0 (0: no limit)"));
        }
        for (key, module) in [
            ("replication.container_rsync_module", &r.container_rsync_module),
            ("replication.account_rsync_module", &r.account_rsync_module),
        ] {
            if module.trim().is_empty() || module.contains(char::is_whitespace) {
                return Err(invalid(key, format!("{module:?} is not an rsync destination")));
            }
        }
        let replication = ReplicationConfig {
            object_replicator: r.object_replicator,
            interval: seconds("replication.interval", r.interval)?,
            concurrency: at_least("replication.concurrency", r.concurrency, 1)?,
            concurrency_per_device: at_least("replication.concurrency_per_device", r.concurrency_per_device, 1)?,
            handoffs_first: r.handoffs_first,
            max_bytes_per_second: r.max_bytes_per_second,
            max_objects_per_second: r.max_objects_per_second,
            conn_timeout: seconds("replication.conn_timeout", r.conn_timeout)?,
            node_timeout: seconds("replication.node_timeout", r.node_timeout)?,
            http_timeout: seconds("replication.http_timeout", r.http_timeout)?,
            receive_per_device: r.replication_concurrency_per_device,
            lock_timeout: seconds("replication.replication_lock_timeout", r.replication_lock_timeout)?,
            failure_threshold: r.replication_failure_threshold,
            failure_ratio: r.replication_failure_ratio,
            nice_priority: r.nice_priority,
            db_replicator: r.db_replicator,
            per_diff: r.per_diff,
            max_diffs: r.max_diffs,
            databases_per_second: r.databases_per_second,
            container_rsync_module: r.container_rsync_module.trim_end_matches('/').to_string(),
            account_rsync_module: r.account_rsync_module.trim_end_matches('/').to_string(),
            rsync_compress: r.rsync_compress,
        };
        let mut config = Config { server, listen, pools, log, admin, storage, replication };
        if catalog.names().into_iter().any(|n| catalog.is_storage(n) && config.uses(n)) {
            let path = &config.storage.swift_conf_path;
            let text = std::fs::read_to_string(path)
                .map_err(|e| invalid("storage.swift_conf", format!("could not read {}: {e}", path.display())))?;
            let swift = aerie_storage::swift_conf::parse(&text)
                .map_err(|e| invalid("storage.swift_conf", format!("{}: {e}", path.display())))?;
            config.storage.swift = Some(swift);
        }
        Ok(config)
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

/// [`seconds`], where 0 (none) is allowed too.
fn seconds_or_zero(key: &str, v: f64) -> Result<Duration, ConfigError> {
    if v == 0.0 {
        return Ok(Duration::ZERO);
    }
    seconds(key, v).map_err(|_| invalid(key, format!("{v} is not zero or a positive number of seconds")))
}

fn at_least(key: &str, v: usize, min: usize) -> Result<usize, ConfigError> {
    if v < min {
        return Err(invalid(key, format!("{v} is below the minimum of {min}")));
    }
    Ok(v)
}

fn validate_pipeline(key: &str, names: &[String], catalog: &dyn Catalog) -> Result<Vec<String>, ConfigError> {
    let Some((last, middleware)) = names.split_last() else {
        return Err(invalid(key, "a pipeline needs at least a processor"));
    };
    for (i, m) in middleware.iter().enumerate() {
        match catalog.kind(m) {
            Some(ProcessorKind::Middleware) => {}
            Some(_) => {
                return Err(invalid(
                    format!("{key}[{i}]"),
                    format!("`{m}` is a processor; only middleware may come before the last element"),
                ))
            }
            None => return Err(invalid(format!("{key}[{i}]"), format!("unknown middleware `{m}`"))),
        }
    }
    match catalog.kind(last) {
        Some(k) if k != ProcessorKind::Middleware => {}
        Some(_) => {
            return Err(invalid(
                format!("{key}[{}]", names.len() - 1),
                format!("`{last}` is middleware; a pipeline must end with a processor"),
            ))
        }
        None => {
            let known = catalog.names();
            return Err(invalid(
                format!("{key}[{}]", names.len() - 1),
                format!("unknown processor `{last}` (known: {})", known.join(", ")),
            ));
        }
    }
    Ok(names.to_vec())
}

fn validate_listen(key: &str, l: &RawListen, catalog: &dyn Catalog) -> Result<ListenConfig, ConfigError> {
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
    let pipeline = validate_pipeline(&format!("{key}.pipeline"), &l.pipeline, catalog)?;
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
        routes.push(RouteConfig {
            prefix,
            pipeline: validate_pipeline(&format!("{rkey}.pipeline"), &r.pipeline, catalog)?,
        });
    }
    routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
    Ok(ListenConfig { address, backlog: l.backlog, max_body_size: l.max_body_size, length_required, pipeline, routes })
}

/// A pool section; the [`Setting`]s the processor takes get their value
/// (or their default), the others must be absent.
fn validate_pool(key: &str, p: &RawPool, takes: &[Setting]) -> Result<PoolConfig, ConfigError> {
    let sub = |k: &str| format!("{key}.{k}");
    let threads = at_least(&sub("threads_per_device"), p.threads_per_device, 1)?;
    let queue = at_least(&sub("queue_per_device"), p.queue_per_device, 1)?;
    let max_queue_wait =
        if p.max_queue_wait == 0.0 { None } else { Some(seconds(&sub("max_queue_wait"), p.max_queue_wait)?) };
    let slow_latency = seconds(&sub("slow_latency"), p.slow_latency)?;
    let mut settings = ProcessorSettings::default();
    for s in Setting::ALL {
        let given = match s {
            Setting::ContainerUpdateTimeout => p.container_update_timeout,
            Setting::ConnTimeout => p.conn_timeout,
            Setting::NodeTimeout => p.node_timeout,
            Setting::EtagValidatePct => p.etag_validate_pct,
        };
        if !takes.contains(&s) {
            if given.is_some() {
                return Err(invalid(sub(s.key()), "this processor has no such setting"));
            }
            continue;
        }
        let v = given.unwrap_or(s.default_value());
        if s.is_percent() {
            if !(0.0..=100.0).contains(&v) {
                return Err(invalid(sub(s.key()), format!("{v} is not a percentage from 0 to 100")));
            }
            settings.etag_validate_pct = Some(v);
            continue;
        }
        let d = seconds(&sub(s.key()), v)?;
        match s {
            Setting::ContainerUpdateTimeout => settings.container_update_timeout = Some(d),
            Setting::ConnTimeout => settings.conn_timeout = Some(d),
            Setting::NodeTimeout => settings.node_timeout = Some(d),
            Setting::EtagValidatePct => {}
        }
    }
    Ok(PoolConfig { threads_per_device: threads, queue_per_device: queue, max_queue_wait, slow_latency, settings })
}
