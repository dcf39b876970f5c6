//! What each background role leaves in the recon cache after a pass, in
//! the keys and shapes Swift's daemons write (`swift/obj/replicator.py`
//! `update_recon`, `swift/common/db_replicator.py` `_report_stats`,
//! `swift/obj/updater.py` `aggregate_and_dump_recon`,
//! `swift/container/updater.py`, `swift-recon-cron`'s `async_pending`), so
//! `/recon/*` and `swift-recon` read aerie's figures as they read Swift's.

use super::object_updater::Sweep;
use crate::config::Config;
use aerie_object::replicator::PassSummary;
use aerie_storage::db::replicator::DbStats;
use aerie_storage::recon::{self, ACCOUNT_FILE, CONTAINER_FILE, OBJECT_FILE};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// How many of the oldest failing accounts/containers the updater's
/// report lists (Swift's `async_tracker_dump_count`).
const DUMP_COUNT: usize = 5;

fn fields(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn write(config: &Config, file: &str, v: Value) {
    recon::dump_logged(&config.storage.recon_cache_path.join(file), fields(v));
}

/// The object replicator's pass (Swift's `replication_stats`, times in
/// minutes).
pub fn object_replication(config: &Config, s: &PassSummary) {
    let t = &s.totals;
    let minutes = s.took.as_secs_f64() / 60.0;
    let end = recon::now();
    write(
        config,
        OBJECT_FILE,
        json!({
            "replication_stats": {
                "attempted": t.done,
                "failure": t.failures,
                "failure_nodes": {},
                "hashmatch": t.hashmatch,
                "remove": t.handoffs_removed,
                "rsync": t.syncs,
                "success": t.success,
                "suffix_count": t.suffix_count,
                "suffix_hash": t.suffixes_hashed,
                "suffix_sync": t.suffixes_synced,
            },
            "replication_time": minutes,
            "replication_last": end,
            "object_replication_time": minutes,
            "object_replication_last": end,
        }),
    );
}

/// A database replicator's pass (`service` 0 containers, 1 accounts;
/// times in seconds, as Swift's db replicator reports them).
pub fn db_replication(config: &Config, service: usize, t: &DbStats, took: Duration) {
    let end = recon::now();
    let file = if service == 0 { CONTAINER_FILE } else { ACCOUNT_FILE };
    write(
        config,
        file,
        json!({
            "replication_stats": {
                "attempted": t.attempted,
                "success": t.success,
                "failure": t.failure,
                "ts_repl": 0,
                "no_change": t.no_change,
                "hashmatch": t.hashmatch,
                "rsync": t.rsync,
                "diff": t.diff,
                "remove": t.remove,
                "empty": 0,
                "remote_merge": t.remote_merge,
                "start": end - took.as_secs_f64(),
                "diff_capped": t.diff_capped,
                "deferred": 0,
                "failure_nodes": {},
            },
            "replication_time": took.as_secs_f64(),
            "replication_last": end,
        }),
    );
}

/// The object updater's sweep: its time, the oldest updates still
/// failing, and (as `swift-recon-cron` counts them) the async pendings
/// left on the devices.
pub fn object_updater(config: &Config, s: &Sweep, took: Duration) {
    let now = recon::now();
    let mut oldest: Vec<(&(String, String), &f64)> = s.oldest_failed.iter().collect();
    oldest.sort_by(|a, b| a.1.total_cmp(b.1));
    let entries: Vec<Value> = oldest
        .iter()
        .take(DUMP_COUNT)
        .map(|((a, c), ts)| json!({"timestamp": ts, "account": a, "container": c}))
        .collect();
    let first = oldest.first().map(|(_, ts)| **ts);
    // What the tracker holds, roughly as Python's getsizeof would count it.
    // (a float, as Swift's average over devices is).
    let memory = (s.oldest_failed.keys().map(|(a, c)| 200 + a.len() + c.len()).sum::<usize>() + 232) as f64;
    write(
        config,
        OBJECT_FILE,
        json!({
            "object_updater_sweep": took.as_secs_f64(),
            "object_updater_stats": {
                "failures_account_container_count": s.oldest_failed.len(),
                "tracker_memory_usage": memory,
                "failures_oldest_timestamp": first,
                "failures_oldest_timestamp_age": first.map(|ts| now - ts),
                "failures_oldest_timestamp_account_containers": {
                    "oldest_count": entries.len(),
                    "oldest_entries": entries,
                },
            },
            "object_updater_last": now,
            "async_pending": s.pending + s.skipped,
            "async_pending_last": now,
        }),
    );
}

/// The container updater's sweep.
pub fn container_updater(config: &Config, took: Duration) {
    write(config, CONTAINER_FILE, json!({ "container_updater_sweep": took.as_secs_f64() }));
}
