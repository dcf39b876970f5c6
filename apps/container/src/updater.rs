//! Container statistics to the accounts (SWIFT-BACKEND.md §6.8, §8.2).
//!
//! A container PUT or DELETE names the account replicas in `X-Account-*`
//! headers (the proxy gives each container replica its share of them);
//! the container service tells those at once and remembers them beside the
//! database (`<hash>.db.accounts`: the partition on the first line, then
//! one `host device` per line). The container updater — a background
//! process the master forks — sweeps the databases and, for each one whose
//! put/delete timestamps, object count or bytes differ from what it last
//! reported, sends the current figures to **every** account replica, as
//! Swift's `ContainerUpdater.process_container` does:
//!
//! * the replicas come from the account ring (`account.ring.gz` beside
//!   swift.conf), at their replication addresses, in parallel, with
//!   `X-Account-Override-Deleted: yes`; only a node without the ring falls
//!   back to the remembered share (which reaches the other replicas only
//!   through replication — logged at start);
//! * a majority of 2xx answers marks the figures reported (Swift's
//!   `reported_*` columns); every replica answering 404 means no account
//!   database exists anywhere and the container database is quarantined;
//!   anything else is a failure: the account's containers are left alone
//!   for `suppression` (Swift's `account_suppression_time`), then retried;
//! * a container whose put timestamp is zero (created by a row update
//!   before its own PUT arrived) is not reported: its figures are not yet
//!   the container's.

use crate::db::{ContainerDb, Info};
use aerie_storage::hash::HashSalt;
use aerie_storage::path::quote;
use aerie_storage::ring::Ring;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Where a container's account replicas are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    /// The account's partition.
    pub partition: String,
    /// `(host:port, device)` of each replica.
    pub nodes: Vec<(String, String)>,
}

/// The file remembering a database's account replicas.
pub fn targets_path(db: &Path) -> PathBuf {
    db.with_extension("db.accounts")
}

/// Remember `t` beside `db` (temp file, fsync, rename), unless already so.
pub fn save_targets(db: &Path, t: &Targets) -> std::io::Result<()> {
    if load_targets(db).as_ref() == Some(t) {
        return Ok(());
    }
    let mut text = format!("{}\n", t.partition);
    for (host, dev) in &t.nodes {
        text.push_str(&format!("{host} {dev}\n"));
    }
    let dest = targets_path(db);
    let tmp = dest.with_extension(format!("accounts.tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &dest)?;
    if let Some(dir) = dest.parent() {
        aerie_storage::fs::fsync_dir(dir)?;
    }
    Ok(())
}

/// The remembered account replicas of `db`, if any.
pub fn load_targets(db: &Path) -> Option<Targets> {
    let text = std::fs::read_to_string(targets_path(db)).ok()?;
    let mut lines = text.lines();
    let partition = lines.next()?.trim().to_string();
    let nodes: Vec<(String, String)> = lines
        .filter_map(|l| {
            let (h, d) = l.trim().split_once(' ')?;
            Some((h.to_string(), d.to_string()))
        })
        .collect();
    (!partition.is_empty() && !nodes.is_empty()).then_some(Targets { partition, nodes })
}

/// How the replicas answered one update.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// 2xx answers.
    pub accepted: usize,
    /// 404 answers.
    pub not_found: usize,
    /// Replicas asked.
    pub asked: usize,
}

impl Outcome {
    /// A majority accepted.
    pub fn quorum(&self) -> bool {
        self.accepted * 2 > self.asked
    }
}

/// PUT the container's figures to every account replica, in parallel.
/// `extra` headers (the request's trans-id, referer) are added as given.
pub fn send_update(
    t: &Targets,
    info: &Info,
    extra: &[(String, String)],
    conn_timeout: Duration,
    node_timeout: Duration,
) -> Outcome {
    let mut headers = vec![
        ("X-Put-Timestamp".to_string(), info.put_timestamp.clone()),
        ("X-Delete-Timestamp".to_string(), info.delete_timestamp.clone()),
        ("X-Object-Count".to_string(), info.object_count.to_string()),
        ("X-Bytes-Used".to_string(), info.bytes_used.to_string()),
        ("X-Backend-Storage-Policy-Index".to_string(), info.storage_policy_index.to_string()),
    ];
    headers.extend_from_slice(extra);
    let path = quote(&format!("/{}/{}/{}", t.partition, info.account, info.container));
    let one = |host: &str, dev: &str| {
        let p = format!("/{}{path}", quote(dev));
        let r = aerie_storage::client::request(host, "PUT", &p, &headers, conn_timeout, node_timeout);
        match &r {
            Ok(s) if (200..300).contains(s) => {}
            Ok(s) => log::error!("account update to {host}/{dev} for /{}/{}: {s}", info.account, info.container),
            Err(e) => {
                log::error!("account update to {host}/{dev} for /{}/{} failed: {e}", info.account, info.container)
            }
        }
        r.ok()
    };
    let answers: Vec<Option<u16>> = match t.nodes.as_slice() {
        [(host, dev)] => vec![one(host, dev)],
        nodes => std::thread::scope(|scope| {
            let calls: Vec<_> = nodes.iter().map(|(host, dev)| scope.spawn(|| one(host, dev))).collect();
            calls.into_iter().map(|c| c.join().ok().flatten()).collect()
        }),
    };
    let mut out = Outcome { asked: t.nodes.len(), ..Outcome::default() };
    for a in answers {
        match a {
            Some(s) if (200..300).contains(&s) => out.accepted += 1,
            Some(404) => out.not_found += 1,
            _ => {}
        }
    }
    out
}

/// Whether the account has not heard the container's current figures.
pub fn unreported(i: &Info) -> bool {
    i.put_timestamp != i.reported_put_timestamp
        || i.delete_timestamp != i.reported_delete_timestamp
        || i.object_count != i.reported_object_count
        || i.bytes_used != i.reported_bytes_used
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    /// Databases looked at.
    pub checked: usize,
    /// Updates a majority of account replicas accepted.
    pub reported: usize,
    /// Updates to retry.
    pub failed: usize,
    /// Changed databases with no known account replicas.
    pub no_targets: usize,
    /// Databases quarantined because no account replica has the account.
    pub quarantined: usize,
}

/// The updater's memory between sweeps.
#[derive(Debug, Default)]
pub struct State {
    /// When the last sweep started.
    since: Option<SystemTime>,
    /// Databases whose update failed, retried whatever their mtime.
    retry: HashSet<PathBuf>,
    /// Accounts whose update failed, left alone until then.
    suppressed: HashMap<String, SystemTime>,
}

/// How the updater runs.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Connect timeout towards account servers.
    pub conn_timeout: Duration,
    /// Response timeout towards account servers.
    pub node_timeout: Duration,
    /// How long an account whose update failed is left alone.
    pub suppression: Duration,
}

fn container_dbs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let list = |p: &Path| std::fs::read_dir(p).into_iter().flatten().flatten().map(|e| e.path());
    for dev in list(root) {
        for part in list(&dev.join("containers")) {
            for sfx in list(&part) {
                for hash in list(&sfx) {
                    if let Some(h) = hash.file_name().and_then(|n| n.to_str()) {
                        let db = hash.join(format!("{h}.db"));
                        if db.is_file() {
                            out.push(db);
                        }
                    }
                }
            }
        }
    }
    out
}

fn modified_since(db: &Path, since: SystemTime) -> bool {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    [m(db), m(&db.with_extension("db.pending"))].into_iter().flatten().any(|t| t >= since)
}

/// An account's replicas from the account ring, at their replication
/// addresses (Swift 2.38's updaters send there).
pub fn ring_targets(ring: &Ring, salt: &HashSalt, account: &str) -> Option<Targets> {
    let part = ring.partition(salt, account, None, None);
    let nodes: Vec<(String, String)> =
        ring.nodes(part).into_iter().map(|d| (d.replication_host(), d.device.clone())).collect();
    (!nodes.is_empty()).then(|| Targets { partition: part.to_string(), nodes })
}

/// One pass: report every changed container, to the account ring's
/// replicas when `ring` is given, else to the remembered ones. `beat` is
/// called per database (the scoreboard heartbeat).
pub fn sweep(
    root: &Path,
    ring: Option<(&Ring, &HashSalt)>,
    state: &mut State,
    settings: &Settings,
    beat: &dyn Fn(),
) -> Sweep {
    let started = SystemTime::now();
    // A database written during the last sweep is looked at again.
    let since = state.since.map(|s| s - Duration::from_secs(1));
    state.suppressed.retain(|_, until| *until > started);
    let mut s = Sweep::default();
    let extra = [
        ("X-Account-Override-Deleted".to_string(), "yes".to_string()),
        ("User-Agent".to_string(), format!("container-updater {}", std::process::id())),
    ];
    for db_path in container_dbs(root) {
        beat();
        let retrying = state.retry.remove(&db_path);
        if !retrying && since.is_some_and(|t| !modified_since(&db_path, t)) {
            continue;
        }
        s.checked += 1;
        let mut db = match ContainerDb::open(&db_path) {
            Ok(db) => db,
            Err(e) => {
                log::warn!("container updater: {}: {e:?}", db_path.display());
                state.retry.insert(db_path);
                continue;
            }
        };
        let info = match db.info() {
            Ok(i) => i,
            Err(e) => {
                log::warn!("container updater: {}: {e:?}", db_path.display());
                continue;
            }
        };
        if !unreported(&info) || !aerie_storage::Timestamp::parse(&info.put_timestamp).is_ok_and(|t| t.is_set()) {
            db.release();
            continue;
        }
        if state.suppressed.contains_key(&info.account) {
            db.release();
            state.retry.insert(db_path);
            continue;
        }
        let targets = match ring {
            Some((ring, salt)) => ring_targets(ring, salt, &info.account),
            None => load_targets(&db_path),
        };
        let Some(targets) = targets else {
            s.no_targets += 1;
            db.release();
            continue;
        };
        let outcome = send_update(&targets, &info, &extra, settings.conn_timeout, settings.node_timeout);
        if outcome.quorum() {
            let marked = db.write(|tx| {
                tx.execute(
                    "UPDATE container_stat SET reported_put_timestamp = ?, reported_delete_timestamp = ?,
                     reported_object_count = ?, reported_bytes_used = ?",
                    rusqlite::params![info.put_timestamp, info.delete_timestamp, info.object_count, info.bytes_used],
                )
            });
            db.release();
            match marked {
                Ok(_) => s.reported += 1,
                Err(e) => {
                    log::warn!("container updater: could not mark {} reported: {e:?}", db_path.display());
                    state.retry.insert(db_path);
                }
            }
        } else if outcome.asked > 0 && outcome.not_found == outcome.asked {
            drop(db);
            log::error!(
                "container updater: no account replica has /{} for /{}/{}: quarantining {}",
                info.account,
                info.account,
                info.container,
                db_path.display()
            );
            aerie_storage::db::quarantine(&db_path);
            s.quarantined += 1;
        } else {
            db.release();
            s.failed += 1;
            state.suppressed.insert(info.account.clone(), started + settings.suppression);
            state.retry.insert(db_path);
        }
    }
    state.since = Some(started);
    s
}
