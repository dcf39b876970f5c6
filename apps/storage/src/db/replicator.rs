//! aerie's database replicator, the sending side of Swift's database
//! replication (SWIFT-REPLICATION.md §5.4–5.5, Swift's `db_replicator.
//! Replicator`): one pass over every container or account database on
//! this node's devices.
//!
//! Per database: tombstones, sync points and emptied metadata older than
//! `reclaim_age` reclaimed; a database deleted longer ago than that is
//! removed; then, with each other replica in the ring (the nodes after this
//! one, wrapping; an unmounted one replaced by the next handoff):
//!
//! * `sync` — the peer answers its replication info and the point it has
//!   from us; both sides merge metadata and timestamps;
//! * in sync by the points or by the hash → done (`no_change`,
//!   `hashmatch`);
//! * missing there (404) → the whole file by rsync to the peer's module,
//!   then `complete_rsync` (`rsync`);
//! * less than half the rows there and more than `per_diff` behind → rsync,
//!   then `rsync_then_merge` (`remote_merge`);
//! * otherwise the missing rows in `merge_items` batches of `per_diff`, at
//!   most `max_diffs` of them (`diff`; more left is `diff_capped`, finished
//!   next pass), then `merge_syncs`.
//!
//! A database this device is not a primary of (a handoff, or one in the
//! wrong partition) is removed once every primary took it and no row came
//! in meanwhile. Devices go in parallel (`concurrency_per_device` threads
//! each, `concurrency` on the node), at most `databases_per_second`.
//!
//! The calls go to Swift's servers and aerie's alike: the same JSON bodies,
//! the same rsync modules. Every call blocks: only the replicator process
//! runs this.

use super::known::{Known, Stamp};
use super::rpc::{self, Replica};
use super::DbError;
use crate::client::{PeerError, Peers, Timeouts};
use crate::fs::{lock_path, Devices};
use crate::hash::HashSalt;
pub use crate::pass::Progress;
use crate::pass::{is_local, run_per_device, unlink_older_than, Bucket, Figures, Shuffle, Slots};
use crate::pyjson;
use crate::ring::{Device, Ring};
use crate::Timestamp;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// A database's replication info (Swift's `get_replication_info`, as the
/// `sync` answer carries it).
pub type Info = Map<String, Value>;

/// The largest answer read (a `sync` answer or shard ranges).
const MAX_ANSWER: usize = 64 << 20;

/// What a service's database adds to [`Replica`] for sending.
pub trait Replicated: Replica {
    /// `container` or `account`: the rsync module's default name and the
    /// log's.
    const SERVER_TYPE: &'static str;
    /// Where the databases are under a device (`containers`, `accounts`).
    const DATADIR: &'static str;
    /// The column a tombstone's age is read from (`created_at`,
    /// `delete_timestamp`).
    const RECLAIM_COLUMN: &'static str;

    /// The `sync` arguments after Swift's seven (the container's policy
    /// figures when the cluster has more than one policy).
    fn extra_sync_args(_info: &Info, _multi_policy: bool) -> Vec<Value> {
        Vec::new()
    }
    /// A peer's `sync` answer, before anything else is done with it: adopt
    /// what it has better (the container's policy index and timestamps).
    fn adopt(&mut self, _info: &Info, _remote: &Info) -> Result<(), DbError> {
        Ok(())
    }
    /// Whether [`Replicated::adopt`] would change the database.
    fn adopts(_info: &Info, _remote: &Info) -> bool {
        false
    }
    /// Whether this kind's answers must carry `shard_max_row` (a container
    /// peer without it "may need upgrading": a failure, as in Swift).
    fn needs_shard_max_row() -> bool {
        false
    }
    /// The shard ranges to push before the rows (none: nothing is sent).
    fn shard_ranges(&mut self) -> Result<Vec<Value>, DbError> {
        Ok(Vec::new())
    }
    /// A database deleted long enough ago is removed only when this says
    /// its final figures went where they must (the container's reported
    /// statistics are the account's).
    fn report_up_to_date(_info: &Info) -> bool {
        true
    }
}

/// What the replicator is told.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The devices root and mount check.
    pub devices: Devices,
    /// Rows per `merge_items`.
    pub per_diff: i64,
    /// `merge_items` calls per database and pass.
    pub max_diffs: u64,
    /// Databases in flight on the node.
    pub concurrency: usize,
    /// Databases in flight per device.
    pub concurrency_per_device: usize,
    /// Databases started per second on the node (0: no limit).
    pub databases_per_second: f64,
    /// Connect and answer timeouts towards peers.
    pub conn_timeout: Duration,
    /// How long a peer may take to answer a call (and rsync's timeout).
    pub node_timeout: Duration,
    /// The rsync destination of a peer (Swift's `rsync_module`:
    /// `{replication_ip}::container`, with `{ip}`, `{port}`,
    /// `{replication_ip}`, `{replication_port}`, `{region}`, `{zone}`,
    /// `{device}`, `{meta}` filled in from the peer's ring entry).
    pub rsync_module: String,
    /// `--compress` towards peers in another region.
    pub rsync_compress: bool,
    /// Seconds after which tombstones and deleted databases go.
    pub reclaim_age: f64,
    /// Whether the cluster has more than one storage policy.
    pub multi_policy: bool,
    /// The hash path salt (a database in the wrong partition is moved).
    pub salt: Option<HashSalt>,
    /// This node's addresses.
    pub ips: Vec<IpAddr>,
    /// The ports this service listens on (a ring device is this node's
    /// when its replication address is one of `ips` and its port one of
    /// these).
    pub ports: Vec<u16>,
}

/// A device's figures for a pass (or so far in it); the names are Swift's
/// `replication_stats` keys where Swift has one.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DbStats {
    /// Databases found for the pass.
    pub databases: u64,
    /// Databases done.
    pub attempted: u64,
    /// Peers brought up to date, or found so.
    pub success: u64,
    /// Peers that were not.
    pub failure: u64,
    /// Peers in sync by their sync points.
    pub no_change: u64,
    /// Peers in sync by their hash.
    pub hashmatch: u64,
    /// Databases pushed whole to a peer that had none.
    pub rsync: u64,
    /// Databases pushed whole to a peer far behind, merged there.
    pub remote_merge: u64,
    /// Peers sent rows.
    pub diff: u64,
    /// Peers left behind after `max_diffs` batches.
    pub diff_capped: u64,
    /// Rows sent.
    pub rows_sent: u64,
    /// Handoff and reclaimed databases removed.
    pub remove: u64,
    /// Tombstone rows reclaimed.
    pub reclaimed_rows: u64,
    /// Databases unchanged since a pass read them, found in sync by their
    /// peers' answers alone (not opened).
    pub unopened: u64,
}

impl Figures for DbStats {
    fn planned(jobs: u64) -> DbStats {
        DbStats { databases: jobs, ..DbStats::default() }
    }

    fn add(&mut self, o: &DbStats) {
        self.databases += o.databases;
        self.attempted += o.attempted;
        self.success += o.success;
        self.failure += o.failure;
        self.no_change += o.no_change;
        self.hashmatch += o.hashmatch;
        self.rsync += o.rsync;
        self.remote_merge += o.remote_merge;
        self.diff += o.diff;
        self.diff_capped += o.diff_capped;
        self.rows_sent += o.rows_sent;
        self.remove += o.remove;
        self.reclaimed_rows += o.reclaimed_rows;
        self.unopened += o.unopened;
    }
}

/// What a pass did, over all devices.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PassSummary {
    /// Local devices found in the ring.
    pub devices: usize,
    /// The sum of the devices' figures.
    pub totals: DbStats,
    /// How long it took.
    pub took: Duration,
}

/// One database to replicate.
#[derive(Debug, Clone)]
struct Job {
    local_id: u16,
    region: u32,
    part: u32,
    db_file: PathBuf,
}

/// Why a peer was not brought up to date.
enum Failed {
    /// Its device is unmounted: a handoff takes its place.
    Unmounted,
    /// Anything else (logged where it happened).
    Other,
}

/// What a pass needs of a database it found in sync, kept while the file
/// is as it was: the next pass only asks the peers.
struct InSync {
    /// Its replication info (JSON).
    info: String,
    /// Its `outgoing_sync` points.
    outgoing: Vec<(String, i64)>,
    /// When a reclaim could find something (seconds since the epoch).
    due: f64,
}

/// Databases kept in the replicator's memory at most: about a kilobyte
/// each.
const IN_SYNC_CAP: usize = 200_000;

/// The replicator for one kind of database.
pub struct DbReplicator {
    settings: Settings,
    in_sync: Known<InSync>,
}

impl DbReplicator {
    /// A replicator with these settings.
    pub fn new(settings: Settings) -> DbReplicator {
        DbReplicator { settings, in_sync: Known::new(IN_SYNC_CAP) }
    }

    /// Every database of the local devices, by device (Swift's
    /// `roundrobin_datadirs`: partitions in a random order, emptied
    /// directories removed on the way).
    fn jobs<R: Replicated>(&self, ring: &Ring, failures: &mut BTreeMap<String, u64>) -> BTreeMap<String, Vec<Job>> {
        let mut by_device: BTreeMap<String, Vec<Job>> = BTreeMap::new();
        let locals: Vec<&Device> =
            ring.devices().filter(|d| is_local(&self.settings.ips, &self.settings.ports, d)).collect();
        if locals.is_empty() {
            log::error!(
                "cannot find this node in the {} ring (ips {:?}, ports {:?}): not replicating",
                R::SERVER_TYPE,
                self.settings.ips,
                self.settings.ports
            );
        }
        let age = Duration::from_secs_f64(self.settings.reclaim_age);
        for local in locals {
            let device_dir = match self.settings.devices.device_dir(&local.device) {
                Ok(d) => d,
                Err(why) => {
                    log::warn!("skipping device {}: {}", local.device, why.0);
                    *failures.entry(local.device.clone()).or_default() += 1;
                    continue;
                }
            };
            unlink_older_than(&device_dir.join("tmp"), age);
            let list = by_device.entry(local.device.clone()).or_default();
            let datadir = device_dir.join(R::DATADIR);
            let Ok(entries) = std::fs::read_dir(&datadir) else { continue };
            let mut parts: Vec<(u32, PathBuf)> = entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    let part = name.parse::<u32>().ok().filter(|p| p.to_string() == name)?;
                    e.file_type().ok()?.is_dir().then(|| (part, e.path()))
                })
                .collect();
            Shuffle::new().shuffle(&mut parts);
            for (part, part_dir) in parts {
                for db_file in databases_in(&part_dir) {
                    list.push(Job { local_id: local.id, region: local.region, part, db_file });
                }
            }
        }
        by_device
    }

    /// One pass over `ring`'s databases on this node.
    pub fn pass<R: Replicated>(&self, ring: &Ring, progress: &dyn Progress<DbStats>) -> PassSummary {
        let started = Instant::now();
        let mut failures = BTreeMap::new();
        let by_device = self.jobs::<R>(ring, &mut failures);
        for (dev, n) in failures {
            if !by_device.contains_key(&dev) {
                progress.device_done(&dev, &DbStats { failure: n, ..DbStats::default() }, Duration::ZERO);
            }
        }
        let slots = Slots::new(self.settings.concurrency);
        let rate = Mutex::new(Bucket::new(self.settings.databases_per_second));
        let devices = by_device.len();
        let work = |_: &(), peers: &mut Peers, job: Job, s: &mut DbStats| {
            let wait = lock(&rate).take(1.0);
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
            One { settings: &self.settings, ring, job: &job, peers, in_sync: &self.in_sync }.replicate::<R>(s);
            s.attempted = 1;
        };
        let name = format!("{}-replicate", R::SERVER_TYPE);
        let per_device = self.settings.concurrency_per_device;
        let totals = run_per_device(&name, by_device, &slots, per_device, progress, &|| (), &Peers::default, &work);
        let mut summary = PassSummary { devices, totals, ..PassSummary::default() };
        summary.took = started.elapsed();
        summary
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The databases under a partition directory (`<suffix>/<hash>/<hash>.db`),
/// removing the suffix and hash directories that hold none.
fn databases_in(part_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(suffixes) = std::fs::read_dir(part_dir) else { return out };
    let mut any = false;
    for suffix in suffixes.flatten() {
        any = true;
        if !suffix.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(hashes) = std::fs::read_dir(suffix.path()) else { continue };
        let mut held = false;
        for h in hashes.flatten() {
            held = true;
            let Some(hash) = h.file_name().into_string().ok() else { continue };
            if !h.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let db = h.path().join(format!("{hash}.db"));
            if db.exists() {
                out.push(db);
            } else {
                // Nothing left of it (an interrupted removal): Swift's rmdir.
                let _ = std::fs::remove_dir(h.path());
            }
        }
        if !held {
            let _ = std::fs::remove_dir(suffix.path());
        }
    }
    if !any {
        let _ = std::fs::remove_dir(part_dir);
    }
    out
}

/// One database's replication.
struct One<'a> {
    settings: &'a Settings,
    ring: &'a Ring,
    job: &'a Job,
    peers: &'a mut Peers,
    in_sync: &'a Known<InSync>,
}

/// A peer's replica: its ring entry and the partition the database is in.
struct To<'d> {
    node: &'d Device,
    part: u32,
}

/// A `REPLICATE` call's answer.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Answer {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

fn now_secs() -> f64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// A timestamp `secs` seconds since the epoch, in Swift's internal form.
fn timestamp_at(secs: f64) -> String {
    let units = (secs.max(0.0) * crate::timestamp::UNITS_PER_SEC as f64) as u64;
    Timestamp::from_units(units, 0).internal()
}

fn text<'i>(info: &'i Info, key: &str) -> &'i str {
    info.get(key).and_then(Value::as_str).unwrap_or("")
}

fn int(info: &Info, key: &str) -> i64 {
    info.get(key).and_then(Value::as_i64).unwrap_or(-1)
}

impl One<'_> {
    fn db_file(&self) -> &Path {
        &self.job.db_file
    }

    /// The hash the database is filed under.
    fn hash(&self) -> String {
        self.db_file().file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// Swift's `_replicate_object`.
    fn replicate<R: Replicated>(mut self, s: &mut DbStats) {
        if self.replicate_in_sync::<R>(s) {
            return;
        }
        let mut db = match R::open(self.db_file()) {
            Ok(db) => db,
            Err(e) => {
                if matches!(e, DbError::Corrupt(_)) {
                    log::error!("quarantining {}: {e}", self.db_file().display());
                    super::quarantine(self.db_file());
                } else {
                    log::error!("ERROR reading db {}: {e}", self.db_file().display());
                }
                s.failure += self.ring.nodes(self.job.part).len() as u64;
                return;
            }
        };
        let result = self.replicate_open::<R>(&mut db, s);
        db.release();
        if let Some(remove) = result {
            if remove && self.delete_db() {
                self.in_sync.forget(self.db_file());
                s.remove += 1;
            }
        }
    }

    /// The pass over an open database; whether to remove it (`None`: the
    /// database failed before any peer was tried).
    fn replicate_open<R: Replicated>(&mut self, db: &mut R, s: &mut DbStats) -> Option<bool> {
        let now = now_secs();
        // One state of the file (kept for the next pass if nothing changes
        // it), then the reclaim it calls for, then that state again.
        let read = |db: &mut R, s: &mut DbStats| -> Result<Snapshot, DbError> {
            let snap = self.snapshot::<R>(db, now)?;
            if self.reclaim::<R>(db, &snap, now, s)? {
                return self.snapshot::<R>(db, now);
            }
            Ok(snap)
        };
        let snap = match read(db, s) {
            Ok(i) => i,
            Err(e) => {
                log::error!("ERROR reading db {}: {e}", self.db_file().display());
                s.failure += self.ring.nodes(self.job.part).len() as u64;
                return None;
            }
        };
        let info = &snap.info;
        let mut part = self.job.part;
        let mut should_be_here = true;
        let right = self.partition_of(info);
        if right != part {
            log::error!(
                "found db {} that should be on partition {right}; will replicate out and remove",
                self.db_file().display()
            );
            part = right;
            should_be_here = false;
        }
        if is_reclaimable(info, now, self.settings.reclaim_age) {
            return Some(R::report_up_to_date(info));
        }
        let nodes: Vec<Device> = self.ring.nodes(part).into_iter().cloned().collect();
        if should_be_here {
            should_be_here = nodes.iter().any(|n| n.id == self.job.local_id);
        }
        let mut repl = peers_after(&nodes, self.job.local_id);
        let mut handoffs =
            self.ring.more_nodes(part).into_iter().filter(|d| d.id != self.job.local_id).cloned().collect::<Vec<_>>();
        handoffs.reverse();
        let mut responses = Vec::new();
        while let Some(node) = repl.pop_front() {
            let ok = match self.sync_with::<R>(db, &To { node: &node, part }, info, s) {
                Ok(()) => true,
                Err(Failed::Unmounted) => {
                    log::error!("ERROR remote drive not mounted {}/{}", node.replication_host(), node.device);
                    match handoffs.pop() {
                        Some(h) => repl.push_back(h),
                        None => log::error!(
                            "ERROR there are not enough handoff nodes to reach replica count for partition {part}"
                        ),
                    }
                    false
                }
                Err(Failed::Other) => false,
            };
            if ok {
                s.success += 1;
            } else {
                s.failure += 1;
            }
            responses.push(ok);
        }
        if should_be_here {
            self.keep_in_sync::<R>(db, snap);
            return Some(false);
        }
        // Swift's cleanup_post_replicate: only when every peer took it and
        // nothing came in meanwhile.
        let max_row = rpc::max_row(db.conn(), R::ROWS).unwrap_or(i64::MAX);
        let delta = max_row - int(info, "max_row");
        if delta != 0 {
            log::debug!("not deleting db {} ({delta} new rows)", self.db_file().display());
            return Some(false);
        }
        let all = !responses.is_empty() && responses.iter().all(|r| *r);
        if !all {
            log::debug!(
                "not deleting db {} ({}/{} success)",
                self.db_file().display(),
                responses.iter().filter(|r| **r).count(),
                responses.len()
            );
        }
        Some(all)
    }

    /// The partition a database with this `info` belongs in (the one it
    /// is in when the hash path salt is not known).
    fn partition_of(&self, info: &Info) -> u32 {
        match &self.settings.salt {
            Some(salt) => {
                let container = info.get("container").and_then(Value::as_str);
                self.ring.partition(salt, text(info, "account"), container, None)
            }
            None => self.job.part,
        }
    }

    /// A pass over a database found in sync last time and not changed
    /// since: the peers are asked, and the database is not opened unless
    /// one of them answers something that needs it (then the full pass
    /// does it all again). Whether it was done.
    fn replicate_in_sync<R: Replicated>(&mut self, s: &mut DbStats) -> bool {
        let Some(known) = self.in_sync.get(self.db_file()) else { return false };
        if now_secs() >= known.due {
            return false;
        }
        let Ok(info) = serde_json::from_str::<Info>(&known.info) else { return false };
        let part = self.job.part;
        if self.partition_of(&info) != part {
            return false;
        }
        let nodes: Vec<Device> = self.ring.nodes(part).into_iter().cloned().collect();
        if !nodes.iter().any(|n| n.id == self.job.local_id) {
            return false;
        }
        let mut done = DbStats { unopened: 1, ..DbStats::default() };
        for node in peers_after(&nodes, self.job.local_id) {
            if !self.sync_in_sync::<R>(&To { node: &node, part }, &info, &known.outgoing, &mut done) {
                return false;
            }
        }
        s.add(&done);
        true
    }

    /// `sync` with one peer of a database in sync: whether the answer
    /// needs nothing of the database (the peer has every row and nothing
    /// to adopt), or the call failed as the full pass would count it.
    fn sync_in_sync<R: Replicated>(
        &mut self,
        to: &To<'_>,
        info: &Info,
        outgoing: &[(String, i64)],
        s: &mut DbStats,
    ) -> bool {
        let Some((answer, peer)) = self.sync_call::<R>(to, info) else {
            s.failure += 1;
            return true;
        };
        match answer.status {
            // A missing replica (rsync) and an unmounted one (a handoff)
            // are the full pass's.
            404 | 507 => return false,
            st if !(200..300).contains(&st) => {
                log::error!("ERROR bad response {st} from {peer} to sync");
                s.failure += 1;
                return true;
            }
            _ => {}
        }
        let Ok(Value::Object(remote)) = serde_json::from_slice::<Value>(&answer.body) else { return false };
        if R::adopts(info, &remote) {
            return false;
        }
        if let Ok(Value::Object(md)) = serde_json::from_str::<Value>(text(&remote, "metadata")) {
            if rpc::metadata_changes(text(info, "metadata"), &md) {
                return false;
            }
        }
        if R::needs_shard_max_row()
            && (!remote.contains_key("shard_max_row")
                || int(info, "shard_max_row") >= 0
                || int(&remote, "shard_max_row") >= 0)
        {
            return false;
        }
        let local_sync = outgoing.iter().find(|(id, _)| id == text(&remote, "id")).map_or(-1, |(_, p)| *p);
        if int(&remote, "point").max(local_sync) < int(info, "max_row") {
            return false;
        }
        s.success += 1;
        s.no_change += 1;
        true
    }

    /// Keep what the next pass needs of a database replicated in full:
    /// `snap` when the file is still as it was read, else it as it is now.
    fn keep_in_sync<R: Replicated>(&self, db: &mut R, snap: Snapshot) {
        let db_file = self.db_file();
        let snap = match snap.stamp {
            Some(stamp) if Stamp::of(db_file) == Some(stamp) => snap,
            // Changed by this pass (or meanwhile).
            _ => match self.snapshot::<R>(db, now_secs()) {
                Ok(now) => now,
                Err(_) => return self.in_sync.forget(db_file),
            },
        };
        match snap.stamp {
            Some(stamp) => {
                let info = serde_json::to_string(&snap.info).unwrap_or_default();
                self.in_sync.keep(db_file, stamp, InSync { info, outgoing: snap.outgoing, due: snap.due.at });
            }
            None => self.in_sync.forget(db_file),
        }
    }

    /// The database as one state of its file (read under one read lock):
    /// its info, its outgoing sync points, what a reclaim would find, and
    /// the stamp to keep it under.
    fn snapshot<R: Replicated>(&self, db: &mut R, now: f64) -> Result<Snapshot, DbError> {
        let db_file = self.db_file();
        rpc::read_locked(db, |db| {
            let info = info_of(db)?;
            let stamp = Stamp::settled(db_file);
            let outgoing = rpc::get_syncs(db.conn(), false)?;
            let due = self.due::<R>(db, &info, now)?;
            Ok(Snapshot { info, outgoing, due, stamp })
        })
    }

    /// Swift's `_reclaim`, as `snap` found it due: stale `.tmp` files,
    /// tombstones and emptied metadata older than `reclaim_age`, sync
    /// points not updated for twice that; whether anything went (`snap` is
    /// then not the database's state any more).
    fn reclaim<R: Replicated>(&self, db: &mut R, snap: &Snapshot, now: f64, s: &mut DbStats) -> Result<bool, DbError> {
        for tmp in &snap.due.tmp_files {
            let _ = std::fs::remove_file(tmp);
        }
        let age_ts = timestamp_at(now - self.settings.reclaim_age);
        let sync_ts = sync_cutoff(now, self.settings.reclaim_age);
        let conn = db.conn();
        if snap.due.rows {
            let n = super::immediate(conn, |tx| {
                let n = tx.execute(
                    &format!("DELETE FROM {} WHERE deleted = 1 AND {} < ?", R::ROWS, R::RECLAIM_COLUMN),
                    [&age_ts],
                )?;
                tx.execute("DELETE FROM outgoing_sync WHERE updated_at < ?", [&sync_ts])?;
                tx.execute("DELETE FROM incoming_sync WHERE updated_at < ?", [&sync_ts])?;
                Ok(n)
            })?;
            s.reclaimed_rows += n as u64;
        }
        if snap.due.metadata {
            let (old_empty, _) = emptied_metadata(&snap.info, &age_ts, self.settings.reclaim_age);
            let mut kept = metadata_of(&snap.info);
            for k in &old_empty {
                kept.remove(k);
            }
            let stat = R::STAT;
            super::immediate(conn, |tx| {
                tx.execute(&format!("UPDATE {stat} SET metadata = ?"), [pyjson::dumps(&Value::Object(kept))])?;
                Ok(())
            })?;
        }
        Ok(snap.due.rows || snap.due.metadata || !snap.due.tmp_files.is_empty())
    }

    /// The `.tmp` files beside the database older than `reclaim_age`, and
    /// when the next of the others will be.
    fn stale_tmp_files(&self, now: f64) -> (Vec<PathBuf>, f64) {
        let age = self.settings.reclaim_age;
        let mut stale = Vec::new();
        let mut due = f64::INFINITY;
        let Some(dir) = self.db_file().parent() else { return (stale, due) };
        let Ok(entries) = std::fs::read_dir(dir) else { return (stale, due) };
        for e in entries.flatten() {
            if !e.file_name().to_string_lossy().ends_with(".tmp") {
                continue;
            }
            let Ok(modified) = e.metadata().and_then(|m| m.modified()) else { continue };
            let t = modified.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |t| t.as_secs_f64());
            if t >= now - age {
                due = due.min(t + age);
            } else {
                stale.push(e.path());
            }
        }
        (stale, due)
    }

    /// Whether the database has tombstones, sync points or emptied
    /// metadata to reclaim now, and when a reclaim (those, a `.tmp` file
    /// beside it, the database itself) next could find something.
    fn due<R: Replicated>(&self, db: &mut R, info: &Info, now: f64) -> Result<Due, DbError> {
        let age = self.settings.reclaim_age;
        let age_ts = timestamp_at(now - age);
        let sync_ts = sync_cutoff(now, age);
        // The oldest of each, and whether it is old enough (SQLite's own
        // comparison, as the DELETE makes it). Most passes find nothing:
        // a read says so without a write transaction (and without
        // compiling the row table's delete triggers).
        let sql = format!(
            "SELECT t, t < ?1, o, o < ?2, i, i < ?2 FROM (SELECT
                (SELECT min({c}) FROM {rows} WHERE deleted = 1) AS t,
                (SELECT min(updated_at) FROM outgoing_sync) AS o,
                (SELECT min(updated_at) FROM incoming_sync) AS i)",
            c = R::RECLAIM_COLUMN,
            rows = R::ROWS
        );
        let (oldest, stale) = db.conn().prepare_cached(&sql)?.query_row([&age_ts, &sync_ts], |r| {
            let secs = |i: usize| -> rusqlite::Result<f64> {
                Ok(match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => f64::INFINITY,
                    rusqlite::types::ValueRef::Integer(n) => n as f64,
                    rusqlite::types::ValueRef::Real(f) => f,
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        leading_secs(&String::from_utf8_lossy(t))
                    }
                })
            };
            let old = |i: usize| -> rusqlite::Result<bool> { Ok(r.get::<_, Option<bool>>(i)?.unwrap_or(false)) };
            // A second early: the text is compared, the number only tells
            // when to look again.
            let at = (secs(0)? + age).min(secs(2)? + 2.0 * age).min(secs(4)? + 2.0 * age) - 1.0;
            Ok((at, old(1)? || old(3)? || old(5)?))
        })?;
        let (old_empty, md_due) = emptied_metadata(info, &age_ts, age);
        let metadata = !old_empty.is_empty();
        let (tmp_files, tmp_due) = self.stale_tmp_files(now);
        let at = if stale || metadata || !tmp_files.is_empty() {
            now
        } else {
            oldest.min(md_due).min(tmp_due).min(reclaimable_at(info, age))
        };
        Ok(Due { rows: stale, metadata, tmp_files, at })
    }

    fn call(&mut self, to: &To<'_>, args: &[Value], answer: Duration) -> Result<Answer, PeerError> {
        let t = Timeouts { conn: self.settings.conn_timeout, node: self.settings.node_timeout, http: answer };
        let path = crate::path::quote(&format!("/{}/{}/{}", to.node.device, to.part, self.hash()));
        let body = pyjson::dumps_list(args);
        let calls = self.peers.to(&to.node.replication_host(), t);
        let headers = [("Content-Type", "application/json".to_string())];
        let (status, body) = calls.call("REPLICATE", &path, &headers, body.as_bytes(), MAX_ANSWER)?;
        Ok(Answer { status, body })
    }

    /// A call whose answer only has to be a success.
    fn must(&mut self, to: &To<'_>, args: &[Value]) -> bool {
        let op = args.first().and_then(Value::as_str).unwrap_or("").to_string();
        match self.call(to, args, self.settings.node_timeout) {
            Ok(a) if a.ok() => true,
            Ok(a) => {
                log::error!("ERROR bad response {} from {} to {op}", a.status, to.node.replication_host());
                false
            }
            Err(e) => {
                log::error!("ERROR {op} to {}/{}: {e}", to.node.replication_host(), to.node.device);
                false
            }
        }
    }

    /// The `sync` call to a peer, and the peer's name for the log; `None`
    /// when the call failed (logged).
    fn sync_call<R: Replicated>(&mut self, to: &To<'_>, info: &Info) -> Option<(Answer, String)> {
        let args = sync_args::<R>(info, self.settings.multi_policy);
        let peer = format!("{}/{}", to.node.replication_host(), to.node.device);
        match self.call(to, &args, self.settings.node_timeout) {
            Ok(a) => Some((a, peer)),
            Err(e) => {
                log::error!("ERROR syncing {} with {peer}: {e}", self.db_file().display());
                None
            }
        }
    }

    /// Swift's `_repl_to_node`.
    fn sync_with<R: Replicated>(
        &mut self,
        db: &mut R,
        to: &To<'_>,
        info: &Info,
        s: &mut DbStats,
    ) -> Result<(), Failed> {
        let Some((answer, peer)) = self.sync_call::<R>(to, info) else { return Err(Failed::Other) };
        match answer.status {
            404 => {
                s.rsync += 1;
                return self.rsync_db(db, to, info, "complete_rsync", self.settings.node_timeout);
            }
            507 => return Err(Failed::Unmounted),
            st if !(200..300).contains(&st) => {
                log::error!("ERROR bad response {st} from {peer} to sync");
                return Err(Failed::Other);
            }
            _ => {}
        }
        let remote: Info = match serde_json::from_slice(&answer.body) {
            Ok(Value::Object(m)) => m,
            _ => {
                log::error!("ERROR {peer} answered sync with something that is not a JSON object");
                return Err(Failed::Other);
            }
        };
        let local_err = |e: DbError| {
            log::error!("ERROR updating db {} from {peer}'s answer: {e}", self.db_file().display());
            Failed::Other
        };
        db.adopt(info, &remote).map_err(local_err)?;
        let local_sync = rpc::get_sync(db.conn(), text(&remote, "id"), false).map_err(local_err)?;
        if let Ok(Value::Object(md)) = serde_json::from_str::<Value>(text(&remote, "metadata")) {
            if !md.is_empty() {
                rpc::update_metadata(db.conn(), R::STAT, &md).map_err(local_err)?;
            }
        }
        // Shard ranges: Swift's container replicator pushes them first, and
        // fails the peer whose answer lacks `shard_max_row`.
        let mut shards_ok = true;
        if R::needs_shard_max_row() {
            if remote.contains_key("shard_max_row") {
                // Only a database that ever had shard ranges has any to send.
                let ranges =
                    if int(info, "shard_max_row") >= 0 { db.shard_ranges().map_err(local_err)? } else { Vec::new() };
                if !ranges.is_empty() {
                    let local_id = Value::from(text(info, "id"));
                    shards_ok = self.must(to, &[Value::from("merge_shard_ranges"), Value::Array(ranges), local_id]);
                }
                if int(&remote, "shard_max_row") >= 0 {
                    log::warn!(
                        "{peer} has shard ranges for {}: aerie does not shard containers and does not take them",
                        self.db_file().display()
                    );
                }
            } else {
                log::warn!("unable to replicate shard ranges to peer {peer}; peer may need upgrading");
                shards_ok = false;
            }
        }
        let rows = self.rows_to::<R>(db, to, info, &remote, local_sync, s)?;
        if shards_ok && rows {
            Ok(())
        } else {
            Err(Failed::Other)
        }
    }

    /// Swift's `_choose_replication_mode` after the shard ranges: whether
    /// the peer has every row now.
    fn rows_to<R: Replicated>(
        &mut self,
        db: &mut R,
        to: &To<'_>,
        info: &Info,
        remote: &Info,
        local_sync: i64,
        s: &mut DbStats,
    ) -> Result<bool, Failed> {
        let max_row = int(info, "max_row");
        let point = int(remote, "point").max(local_sync);
        if point >= max_row {
            s.no_change += 1;
            return Ok(true);
        }
        if text(remote, "hash") == text(info, "hash") {
            s.hashmatch += 1;
            self.sent_up_to(db, remote, int(remote, "point"));
            return Ok(true);
        }
        let remote_max = int(remote, "max_row");
        if (remote_max as f64) / (max_row as f64) < 0.5 && max_row - remote_max > self.settings.per_diff {
            s.remote_merge += 1;
            // Swift's client gives the peer count/2000 seconds; never less
            // than a call's timeout here.
            let count = info.get("count").and_then(Value::as_f64).unwrap_or(0.0);
            let wait = self.settings.node_timeout.max(Duration::from_secs_f64((count / 2000.0).max(0.0)));
            return self.rsync_db(db, to, info, "rsync_then_merge", wait).map(|()| true);
        }
        Ok(self.usync::<R>(db, to, info, remote, point, s))
    }

    /// Record that the peer has every row up to `point` (`outgoing_sync`).
    fn sent_up_to<R: Replicated>(&self, db: &mut R, remote: &Info, point: i64) {
        let points = [(text(remote, "id").to_string(), point)];
        if let Err(e) = rpc::merge_syncs(db.conn(), &points, false) {
            log::error!("ERROR recording a sync point in {}: {e}", self.db_file().display());
        }
    }

    /// Swift's `_usync_db`: the rows after `point` in batches, then the
    /// sync points.
    fn usync<R: Replicated>(
        &mut self,
        db: &mut R,
        to: &To<'_>,
        info: &Info,
        remote: &Info,
        mut point: i64,
        s: &mut DbStats,
    ) -> bool {
        s.diff += 1;
        let local_id = Value::from(text(info, "id"));
        let per_diff = self.settings.per_diff;
        let read = |db: &mut R, point: i64| rpc::items_since(db.conn(), R::ROWS, point, per_diff);
        let path = self.db_file().to_path_buf();
        let fail = |e: DbError| log::error!("ERROR reading rows of {}: {e}", path.display());
        let syncs = match rpc::get_syncs(db.conn(), true) {
            Ok(v) => v,
            Err(e) => {
                fail(e);
                return false;
            }
        };
        let mut rows = match read(db, point) {
            Ok(r) => r,
            Err(e) => {
                fail(e);
                return false;
            }
        };
        let mut diffs = 0;
        while !rows.is_empty() && diffs < self.settings.max_diffs {
            diffs += 1;
            let last = rows.last().and_then(|r| r.get("ROWID")).and_then(Value::as_i64).unwrap_or(point);
            let n = rows.len() as u64;
            if !self.must(to, &[Value::from("merge_items"), Value::Array(rows), local_id.clone()]) {
                return false;
            }
            s.rows_sent += n;
            point = last;
            rows = match read(db, point) {
                Ok(r) => r,
                Err(e) => {
                    fail(e);
                    return false;
                }
            };
        }
        if !rows.is_empty() {
            log::debug!(
                "synchronization of {} has fallen more than {} rows behind; moving on and will try again next pass",
                self.db_file().display(),
                self.settings.max_diffs as i64 * self.settings.per_diff
            );
            s.diff_capped += 1;
            return false;
        }
        let table: Vec<Value> = syncs
            .into_iter()
            .map(|(id, p)| {
                let mut m = Map::new();
                m.insert("remote_id".into(), Value::from(id));
                m.insert("sync_point".into(), Value::from(p));
                Value::Object(m)
            })
            .collect();
        if !self.must(to, &[Value::from("merge_syncs"), Value::Array(table)]) {
            return false;
        }
        self.sent_up_to(db, remote, point);
        true
    }

    /// Swift's `_rsync_db`: the whole file to `<module>/<device>/tmp/<id>`,
    /// then `method` (`complete_rsync`, `rsync_then_merge`). The file is
    /// read under a read transaction, so no writer commits while it is
    /// copied (writes to `.pending` go on).
    fn rsync_db<R: Replicated>(
        &mut self,
        db: &mut R,
        to: &To<'_>,
        info: &Info,
        method: &str,
        wait: Duration,
    ) -> Result<(), Failed> {
        let local_id = text(info, "id").to_string();
        let module = interpolate(&self.settings.rsync_module, to.node);
        let remote = format!("{module}/{}/tmp/{local_id}", to.node.device);
        let mut cmd = std::process::Command::new("rsync");
        cmd.args(["--quiet", "--no-motd"])
            .arg(format!("--timeout={}", self.settings.node_timeout.as_secs_f64().ceil() as u64))
            .arg(format!("--contimeout={}", self.settings.conn_timeout.as_secs_f64().ceil() as u64))
            .arg("--whole-file");
        if self.settings.rsync_compress && to.node.region != self.job.region {
            cmd.arg("--compress");
        }
        cmd.arg(self.db_file()).arg(&remote).stdin(std::process::Stdio::null());
        let copied = {
            let conn = db.conn();
            let held = conn.execute_batch(&format!("BEGIN DEFERRED; SELECT count(*) FROM {};", R::STAT));
            if let Err(e) = held {
                log::error!("ERROR could not hold {} for rsync: {e}", self.db_file().display());
                let _ = conn.execute_batch("ROLLBACK");
                return Err(Failed::Other);
            }
            let out = cmd.output();
            let _ = conn.execute_batch("COMMIT");
            out
        };
        match copied {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                log::error!(
                    "ERROR rsync of {} to {remote} failed with {}: {}",
                    self.db_file().display(),
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                return Err(Failed::Other);
            }
            Err(e) => {
                log::error!("ERROR could not run rsync: {e}");
                return Err(Failed::Other);
            }
        }
        let base = self.db_file().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let args = [Value::from(method), Value::from(local_id), Value::from(base)];
        match self.call(to, &args, wait) {
            Ok(a) if a.ok() => Ok(()),
            Ok(a) => {
                log::error!("ERROR bad response {} from {} to {method}", a.status, to.node.replication_host());
                Err(Failed::Other)
            }
            Err(e) => {
                log::error!("ERROR {method} to {}/{}: {e}", to.node.replication_host(), to.node.device);
                Err(Failed::Other)
            }
        }
    }

    /// Swift's `delete_db`: the hash directory under its lock, then the
    /// suffix and partition directories if that emptied them.
    fn delete_db(&self) -> bool {
        let Some(hash_dir) = self.db_file().parent() else { return false };
        let removed = match lock_path(hash_dir, ".lock", Duration::from_secs(10)) {
            Ok(guard) => {
                let r = std::fs::remove_dir_all(hash_dir);
                drop(guard);
                r
            }
            Err(e) => Err(e),
        };
        if let Err(e) = removed {
            if e.kind() != std::io::ErrorKind::NotFound {
                log::error!("ERROR could not remove {}: {e}", hash_dir.display());
                return false;
            }
        }
        log::info!("removed db {}", self.db_file().display());
        for dir in hash_dir.ancestors().skip(1).take(2) {
            if std::fs::remove_dir(dir).is_err() {
                break;
            }
        }
        true
    }
}

/// One state of a database as a pass read it.
struct Snapshot {
    info: Info,
    /// Its `outgoing_sync` points.
    outgoing: Vec<(String, i64)>,
    due: Due,
    /// The stamp to keep it under (`None`: changed too recently).
    stamp: Option<Stamp>,
}

/// Whether a reclaim finds something now, and when it next could.
struct Due {
    /// Tombstones or sync points to reclaim now.
    rows: bool,
    /// Emptied metadata items to reclaim now.
    metadata: bool,
    /// Stale `.tmp` files beside the database, to remove now.
    tmp_files: Vec<PathBuf>,
    /// Seconds since the epoch.
    at: f64,
}

/// The `updated_at` before which sync points are reclaimed (Swift compares
/// the text of whole seconds).
fn sync_cutoff(now: f64, reclaim_age: f64) -> String {
    format!("{}", (now - 2.0 * reclaim_age).max(0.0) as u64)
}

/// The seconds a timestamp's text starts with (`0` when none).
fn leading_secs(t: &str) -> f64 {
    let end = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    t[..end].parse().unwrap_or(0.0)
}

/// The metadata map of `info` (empty when none or unreadable).
fn metadata_of(info: &Info) -> Map<String, Value> {
    match serde_json::from_str::<Value>(text(info, "metadata")) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// The emptied metadata items (value `""`) older than `age_ts`, and when
/// the next of the others will be.
fn emptied_metadata(info: &Info, age_ts: &str, reclaim_age: f64) -> (Vec<String>, f64) {
    let mut old = Vec::new();
    let mut due = f64::INFINITY;
    for (k, v) in metadata_of(info) {
        if v.get(0).and_then(Value::as_str) != Some("") {
            continue;
        }
        let Some(ts) = v.get(1).and_then(Value::as_str).and_then(|t| Timestamp::parse(t).ok()) else { continue };
        let ts = ts.internal();
        if ts.as_str() < age_ts {
            old.push(k);
        } else {
            due = due.min(leading_secs(&ts) + reclaim_age - 1.0);
        }
    }
    (old, due)
}

/// When a database becomes reclaimable as a whole (never, unless it is
/// empty and deleted after its last PUT).
fn reclaimable_at(info: &Info, reclaim_age: f64) -> f64 {
    emptied_at(info).map_or(f64::INFINITY, |deleted| leading_secs(&deleted.internal()) + reclaim_age - 1.0)
}

/// A `sync` call's arguments for a database with this `info`.
fn sync_args<R: Replicated>(info: &Info, multi_policy: bool) -> Vec<Value> {
    let mut args: Vec<Value> = vec![Value::from("sync")];
    for k in ["max_row", "hash", "id", "created_at", "put_timestamp", "delete_timestamp", "metadata"] {
        args.push(info.get(k).cloned().unwrap_or(Value::Null));
    }
    args.extend(R::extra_sync_args(info, multi_policy));
    args
}

/// The nodes after the one with `local_id`, wrapping (Swift's footnote
/// [1]); all of them from a handoff.
fn peers_after(nodes: &[Device], local_id: u16) -> VecDeque<Device> {
    if nodes.len() > 1 {
        let i = nodes.iter().position(|n| n.id == local_id).unwrap_or(nodes.len());
        nodes.iter().skip(i + 1).chain(nodes.iter().take(i)).cloned().collect()
    } else {
        nodes.iter().cloned().collect()
    }
}

/// The replication info as a map.
fn info_of<R: Replica>(db: &mut R) -> Result<Info, DbError> {
    Ok(db.replication_info()?.into_iter().collect())
}

/// Swift's `is_reclaimable`: no rows counted, deleted after its last PUT,
/// and that longer ago than `reclaim_age`.
fn is_reclaimable(info: &Info, now: f64, reclaim_age: f64) -> bool {
    let cutoff = Timestamp::parse(&timestamp_at(now - reclaim_age)).unwrap_or(Timestamp::ZERO);
    emptied_at(info).is_some_and(|deleted| cutoff > deleted)
}

/// When a database with no rows counted was deleted, if after its last
/// PUT (`None`: it is not deleted, or has rows).
fn emptied_at(info: &Info) -> Option<Timestamp> {
    let t = |k: &str| Timestamp::parse(text(info, k)).unwrap_or(Timestamp::ZERO);
    let count = info.get("count").and_then(Value::as_i64).unwrap_or(0);
    (count == 0 && t("delete_timestamp") > t("put_timestamp")).then(|| t("delete_timestamp"))
}

/// Swift's `rsync_module_interpolation`: a peer's ring fields in the
/// module template.
pub fn interpolate(template: &str, d: &Device) -> String {
    template
        .replace("{replication_ip}", &d.replication_ip)
        .replace("{replication_port}", &d.replication_port.to_string())
        .replace("{ip}", &d.ip)
        .replace("{port}", &d.port.to_string())
        .replace("{region}", &d.region.to_string())
        .replace("{zone}", &d.zone.to_string())
        .replace("{device}", &d.device)
        .replace("{meta}", &d.meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> Device {
        Device {
            id: 3,
            region: 2,
            zone: 5,
            ip: "10.0.0.1".into(),
            port: 6201,
            replication_ip: "10.1.0.1".into(),
            replication_port: 6211,
            device: "sdb".into(),
            weight: 1.0,
            meta: "m".into(),
        }
    }

    #[test]
    fn the_rsync_module_takes_the_peers_ring_fields() {
        assert_eq!(interpolate("{replication_ip}::container", &dev()), "10.1.0.1::container");
        assert_eq!(
            interpolate("rsync://{replication_ip}:873/container{replication_port}", &dev()),
            "rsync://10.1.0.1:873/container6211"
        );
        assert_eq!(interpolate("{ip}:{port}/{region}/{zone}/{device}/{meta}", &dev()), "10.0.0.1:6201/2/5/sdb/m");
    }

    #[test]
    fn a_database_is_reclaimable_only_when_empty_and_deleted_long_enough_ago() {
        let info = |count: i64, put: &str, del: &str| -> Info {
            let mut m = Map::new();
            m.insert("count".into(), Value::from(count));
            m.insert("put_timestamp".into(), Value::from(put));
            m.insert("delete_timestamp".into(), Value::from(del));
            m
        };
        let now = 1_700_100_000.0;
        assert!(is_reclaimable(&info(0, "1700000000.00000", "1700000001.00000"), now, 1000.0));
        assert!(!is_reclaimable(&info(1, "1700000000.00000", "1700000001.00000"), now, 1000.0), "rows");
        assert!(!is_reclaimable(&info(0, "1700000002.00000", "1700000001.00000"), now, 1000.0), "put again");
        assert!(!is_reclaimable(&info(0, "1700000000.00000", "1700099500.00000"), now, 1000.0), "too recent");
        assert!(!is_reclaimable(&info(0, "0", "0"), now, 1000.0), "never deleted");
    }

    #[test]
    fn timestamps_for_ages_are_swifts_internal_form() {
        assert_eq!(timestamp_at(1_700_000_000.5), "1700000000.50000");
        assert_eq!(timestamp_at(-5.0), "0000000000.00000");
    }
}
