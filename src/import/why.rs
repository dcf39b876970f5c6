//! Why a Swift setting is not taken over: one sentence per setting, for the
//! comment block at the end of the imported configuration.

use super::ini::Entry;
use super::Instance;

/// The reason for one setting no aerie key took. `in_pipeline` lists the
/// app and filter sections the server's pipeline loads.
pub fn why(inst: &Instance, e: &Entry, in_pipeline: &[&String]) -> String {
    let s = e.section.as_str();
    let k = e.key.as_str();
    let paste = s.starts_with("app:") || s.starts_with("filter:");
    if e.value.trim().is_empty() {
        return "empty: aerie keeps its own default".into();
    }
    if paste && !e.set && inst.ini.defaults.iter().any(|d| d.key == k) {
        return format!(
            "Swift ignores this line too: [DEFAULT] also sets {k}, and paste-deploy lets [DEFAULT] win (`set {k} = …` would override it)"
        );
    }
    if paste && !in_pipeline.iter().any(|p| p.as_str() == s) {
        return format!("[{s}] is not in [pipeline:main]: Swift does not load it either");
    }
    if let Some(what) = s.strip_prefix("filter:").and_then(|_| inst.ini.uses(s)) {
        if what != "healthcheck" && what != "recon" {
            return format!(
                "a setting of Swift's {what} filter, which aerie does not take over (see its pipeline entry)"
            );
        }
    }
    if let Some(daemon) = kept_daemon(s) {
        return format!(
            "read by swift-{daemon}, which aerie does not replace: keep running it on this file (it works on the same files as aerie)"
        );
    }
    if let Some(w) = common(k) {
        return w.to_string();
    }
    let specific = match (s, k) {
        (_, "allowed_headers") => {
            "aerie's object service keeps Swift's default allowed_headers; a longer list is not kept (see the warning)"
        }
        (_, "stale_worker_timeout") => {
            "aerie's old workers finish their requests within server.graceful_timeout after a reload, then exit"
        }
        (_, "replication_concurrency") => {
            "aerie limits incoming SSYNC per device (replication.replication_concurrency_per_device), not per server"
        }
        (_, "servers_per_port") => "only Swift's object server runs a server per port",
        (_, "ring_ip") => "only used with servers_per_port",
        (_, "run_pause") => "the old name of interval, which is set and wins",
        (_, "daemonize") => "aerie's replicators and updaters always run, supervised by the master",
        (_, "replicator_workers") | (_, "updater_workers") => {
            "aerie's replicator and updater are one process each, working on every device at once (replication.concurrency, replication.concurrency_per_device)"
        }
        (_, "stats_interval") | (_, "report_interval") => {
            "aerie's replicators and updaters report as they go: admin /status and /metrics, and one line per pass"
        }
        (_, "lockup_timeout") => {
            "aerie's master replaces a replicator that made no progress for ten times max(node_timeout, http_timeout), at least a minute"
        }
        (_, "ring_check_interval") => "aerie rereads a ring whose file changed at the start of every pass",
        (_, "handoff_delete") => "aerie removes a handoff partition or database once every primary has it",
        (_, "handoffs_only") => {
            "aerie has no handoffs-only mode; replication.handoffs_first pushes handoffs before the primaries"
        }
        (s, _) if s == "object-replicator" && (k.starts_with("rsync") || k == "sync_method" || k == "log_rsync_transfers") => {
            "aerie's object replicator sends objects with SSYNC, never rsync; keep the rsync daemon's object modules for Swift's replicators on other nodes"
        }
        (_, "http_timeout") => "only the object replicator's http_timeout has an aerie key",
        ("object-updater", _) | ("container-updater", _) => {
            "aerie's updaters replay every pending update each interval with the services' conn_timeout and node_timeout; they have no rate limits or worker counts"
        }
        (_, "recon_lock_path") => "aerie takes the recon documents' own .lock, as Swift's daemons do by default",
        (_, "disable_path") => {
            "aerie's healthcheck has no disable file: take the node out of the rings, or stop it, instead"
        }
        (_, "allow_versions") => {
            "deprecated in Swift (the proxy's versioned_writes replaces it); aerie's container service stores no new X-Versions-Location (see the warning when it is on)"
        }
        (_, "db_preallocation") => "aerie does not preallocate its SQLite databases",
        (_, "db_query_logging") => "aerie does not log SQL statements",
        (_, "commit_window") => "aerie keeps a non-durable fragment for Swift's default commit window (60 s)",
        ("DEFAULT", _) => "aerie has no equivalent, and no Swift server or daemon aerie replaces reads it from [DEFAULT]",
        _ => "aerie has no equivalent of this setting",
    };
    specific.to_string()
}

/// The daemon a section configures when it is one aerie keeps Swift's.
fn kept_daemon(section: &str) -> Option<&'static str> {
    Some(match section {
        "object-auditor" => "object-auditor",
        "object-reconstructor" => "object-reconstructor",
        "object-expirer" => "object-expirer",
        "object-relinker" => "object-relinker",
        "container-auditor" => "container-auditor",
        "container-sync" => "container-sync",
        "container-sharder" => "container-sharder",
        "account-auditor" => "account-auditor",
        "account-reaper" => "account-reaper",
        _ => return None,
    })
}

/// Settings every Swift server and daemon shares.
fn common(key: &str) -> Option<&'static str> {
    Some(match key {
        "log_name" => "aerie's log lines name the aerie role that wrote them",
        "log_facility" | "log_address" | "log_udp_host" | "log_udp_port" => {
            "aerie does not log to syslog: it writes log.error_log and log.access_log, or stderr (the journal under systemd)"
        }
        "log_max_line_length" | "log_custom_handlers" => "aerie's logger has no such setting",
        "log_format" | "log_anonymization_method" | "log_anonymization_salt" => {
            "aerie's access log has one format (README, Operating it), without anonymisation"
        }
        "log_level" => "aerie has one log level for the node: the servers' one is used",
        "log_time" => "aerie has no auditor",
        k if k.starts_with("log_statsd_") => {
            "aerie has no StatsD client: its figures are Prometheus text at the admin listener's /metrics"
        }
        "eventlet_debug" | "cooperative_period" | "eventlet_tpool_num_threads" => {
            "aerie has no eventlet: every device has its own queue and threads (processors.<service>.threads_per_device)"
        }
        "nice_priority" | "ionice_class" | "ionice_priority" => {
            "aerie does not change its servers' priorities; replication runs at replication.nice_priority, and no I/O priority is set"
        }
        "keep_idle" => "aerie sets no TCP keepalive: an idle connection is closed after server.keepalive_timeout",
        "disable_fallocate" => {
            "aerie always preallocates with fallocate where the filesystem can, and checks storage.fallocate_reserve"
        }
        "network_chunk_size" | "disk_chunk_size" => "aerie sizes its own reads and writes (128 KiB)",
        "max_upload_time" => "aerie bounds each wait for body bytes (server.body_timeout), not an upload's total time",
        "slow" => "a test setting (a delay per PUT) aerie does not have",
        "keep_cache_size" | "keep_cache_private" | "keep_cache_slo_manifest" => {
            "aerie leaves the page cache to the kernel: it never drops cached object data"
        }
        "slow_delete_log_threshold_seconds" => "aerie's slow-device detection is processors.<service>.slow_latency",
        "mb_per_sync" => "aerie syncs an object's data once, before the rename that makes it visible",
        "splice" => "removed from Swift; aerie reads with pread",
        "conn_timeout" | "node_timeout" | "interval" | "concurrency" | "reclaim_age" | "recon_cache_path" => {
            "aerie has one value for the node, taken from the server or replicator sections"
        }
        "workers" | "user" | "devices" | "swift_dir" | "mount_check" | "fallocate_reserve" | "bind_ip" | "bind_port" => {
            "a server setting, taken from the server's own section"
        }
        _ => return None,
    })
}
