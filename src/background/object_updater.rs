//! The object updater's pass (§4.11, §8.1): every async pending under
//! `<devices>/<dev>/async_pending*/<sfx>/<hash>-<ts>` is sent to every
//! container replica it names. A replica that accepts it (2xx) is removed
//! from the record; when none is left the file is unlinked, otherwise the
//! record is rewritten with the replicas still to do. Records without
//! targets (written by Swift's servers, which rely on the ring) go to the
//! container replicas of the container ring (`container.ring.gz` beside
//! swift.conf), as Swift's updater does; with no ring they are left for
//! Swift's own updater.

use crate::scoreboard::Slot;
use aerie_object::update::{pending_targets, pending_update, send, Target};
use aerie_storage::hash::HashSalt;
use aerie_storage::pickle::{dumps, loads, Value};
use aerie_storage::ring::Ring;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Accounts/containers whose updates a sweep tracks at most (Swift's
/// `async_tracker_max_entries`): the newest are let go first.
const TRACKED_MAX: usize = 100;

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sweep {
    /// For each account and container an update still failed to reach,
    /// the oldest such update's timestamp (Swift's
    /// `OldestAsyncPendingTracker`, for recon).
    pub oldest_failed: std::collections::BTreeMap<(String, String), f64>,
    /// Records fully delivered and removed.
    pub delivered: usize,
    /// Records still pending after this sweep.
    pub pending: usize,
    /// Records left for a ring-based updater.
    pub skipped: usize,
}

fn pending_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(devices) = std::fs::read_dir(root) else { return out };
    for dev in devices.flatten() {
        let Ok(dirs) = std::fs::read_dir(dev.path()) else { continue };
        for d in dirs.flatten() {
            if !d.file_name().to_string_lossy().starts_with("async_pending") {
                continue;
            }
            let Ok(sfxs) = std::fs::read_dir(d.path()) else { continue };
            for sfx in sfxs.flatten() {
                let Ok(files) = std::fs::read_dir(sfx.path()) else { continue };
                out.extend(files.flatten().map(|f| f.path()).filter(|p| p.is_file()));
            }
        }
    }
    out.sort();
    out
}

fn rewrite(path: &Path, record: &Value, remaining: &[Target]) -> std::io::Result<()> {
    let Value::Dict(items) = record else { return Ok(()) };
    let mut items = items.clone();
    let list = Value::List(
        remaining
            .iter()
            .map(|t| Value::Tuple(vec![Value::Str(t.host.clone()), Value::Str(t.device.clone())]))
            .collect(),
    );
    let mut set = |key: &str, v: Value| match items.iter_mut().find(|(k, _)| k.as_bytes() == Some(key.as_bytes())) {
        Some(slot) => slot.1 = v,
        None => items.push((Value::Str(key.into()), v)),
    };
    set("aerie_targets", list);
    if let Some(t) = remaining.first() {
        set("aerie_partition", Value::Str(t.partition.clone()));
    }
    let tmp = path.with_extension("tmp-rewrite");
    std::fs::write(&tmp, dumps(&Value::Dict(items)))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The container replicas of an update, from the container ring.
fn ring_targets(ring: Option<(&Ring, &HashSalt)>, account: &str, container: &str) -> Vec<Target> {
    let Some((ring, salt)) = ring else { return Vec::new() };
    let part = ring.partition(salt, account, Some(container), None);
    ring.nodes(part)
        .into_iter()
        .map(|d| Target { host: d.replication_host(), device: d.device.clone(), partition: part.to_string() })
        .collect()
}

/// Remember `ts` for this account and container if it is the oldest yet,
/// keeping at most [`TRACKED_MAX`] of them (the oldest).
fn track_failure(t: &mut std::collections::BTreeMap<(String, String), f64>, account: &str, container: &str, ts: f64) {
    let key = (account.to_string(), container.to_string());
    let e = t.entry(key).or_insert(ts);
    if ts < *e {
        *e = ts;
    }
    if t.len() > TRACKED_MAX {
        let newest = t.iter().max_by(|a, b| a.1.total_cmp(b.1)).map(|(k, _)| k.clone());
        if let Some(k) = newest {
            t.remove(&k);
        }
    }
}

/// One pass over every device's async pendings; `ring` is the container
/// ring, for records that name no replicas.
pub fn sweep(
    root: &Path,
    ring: Option<(&Ring, &HashSalt)>,
    conn_timeout: Duration,
    node_timeout: Duration,
    slot: Option<&Slot>,
) -> Sweep {
    let mut s = Sweep::default();
    for path in pending_files(root) {
        if let Some(slot) = slot {
            slot.beat();
        }
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let record = match loads(&bytes) {
            Ok(r) => r,
            Err(e) => {
                log::error!("unreadable async pending {}: {e}", path.display());
                s.pending += 1;
                continue;
            }
        };
        let (Some(update), targets) = (pending_update(&record), pending_targets(&record)) else {
            log::error!("async pending {} lacks op/account/container/obj", path.display());
            s.pending += 1;
            continue;
        };
        let targets = if targets.is_empty() { ring_targets(ring, &update.account, &update.container) } else { targets };
        if targets.is_empty() {
            s.skipped += 1;
            continue;
        }
        let mut remaining = Vec::new();
        for t in targets {
            match send(&t, &update, conn_timeout, node_timeout) {
                Ok(()) => log::info!(
                    "delivered async {} /{}/{}/{} to {}/{}",
                    update.op,
                    update.account,
                    update.container,
                    update.obj,
                    t.host,
                    t.device
                ),
                Err(why) => {
                    log::debug!("async update to {}/{} still failing: {why}", t.host, t.device);
                    remaining.push(t);
                }
            }
        }
        if !remaining.is_empty() {
            let ts = update
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("x-timestamp"))
                .and_then(|(_, v)| v.parse::<f64>().ok());
            if let Some(ts) = ts {
                track_failure(&mut s.oldest_failed, &update.account, &update.container, ts);
            }
        }
        if remaining.is_empty() {
            match std::fs::remove_file(&path) {
                Ok(()) => s.delivered += 1,
                Err(e) => log::error!("could not remove delivered {}: {e}", path.display()),
            }
        } else {
            s.pending += 1;
            if let Err(e) = rewrite(&path, &record, &remaining) {
                log::error!("could not update {}: {e}", path.display());
            }
        }
    }
    s
}
