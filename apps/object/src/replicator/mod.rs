//! aerie's object replicator (SWIFT-REPLICATION.md §3, with SSYNC as the
//! sync method): one pass over every partition of every replicated
//! policy's ring that this node's devices hold.
//!
//! * A partition the device is a primary of (an update job): its suffix
//!   hashes (cached in `hashes.pkl`; every tenth pass per partition also a
//!   directory listing) are compared with each other primary's
//!   (`REPLICATE`); the differing suffixes are rehashed, and those still
//!   different are sent by SSYNC. A primary whose device is unmounted (507)
//!   is replaced by the next handoff in the ring's order.
//! * A partition the device is not a primary of (a revert job, a handoff
//!   copy): every suffix is sent to every primary; once all of them
//!   confirmed, the objects that were offered and have not changed since
//!   are removed, and the partition with them when nothing else is left.
//!   (Swift removes the whole partition; an object written to the handoff
//!   while the sessions ran would go with it.)
//!
//! Devices are replicated in parallel, each by its own threads
//! (`concurrency_per_device`, within `concurrency` for the node) and at its
//! own pace (`pace.rs`), so a slow disk holds back only its own partitions.
//! Temporary files older than `reclaim_age` are removed from `<dev>/tmp`,
//! and `<dev>/objects[-N]` and `<dev>/tmp[-N]` are made where missing, so
//! rsync-based replicators can land files on an emptied device.

mod pace;

pub use pace::DevicePace;

use crate::diskfile::policy_dir;
use crate::hashes::{get_hashes, partition_dir, steady_bytes, SuffixHashes, View};
use crate::peer::{parse_answer, replicate, PeerError, Peers, Timeouts};
use crate::ssync::sender::{offers, Pace, Sent, Session, Target};
use crate::ssync::wire::Offer;
use aerie_storage::fs::{lock_path, Devices};
pub use aerie_storage::pass::Progress;
use aerie_storage::pass::{is_local, run_per_device, unlink_older_than, Figures, Shuffle, Slots};
use aerie_storage::ring::{Device, Ring};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the replicator is told.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The devices root and mount check.
    pub devices: Devices,
    /// Tombstones older than this (seconds) are reclaimed.
    pub reclaim_age: f64,
    /// Partitions in flight on the node.
    pub concurrency: usize,
    /// Partitions in flight per device.
    pub concurrency_per_device: usize,
    /// Handoff partitions first.
    pub handoffs_first: bool,
    /// Object bytes per second per device (0: no limit).
    pub max_bytes_per_second: u64,
    /// Objects per second per device (0: no limit).
    pub max_objects_per_second: u64,
    /// Towards peers.
    pub timeouts: Timeouts,
    /// The addresses of this node (a ring device is local when its
    /// replication address is one of them and its port one of `ports`).
    pub ips: Vec<IpAddr>,
    /// The ports this node's object service listens on.
    pub ports: Vec<u16>,
}

/// One device's figures for a pass (or so far in it).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DeviceStats {
    /// Partitions of this device in the pass.
    pub partitions: u64,
    /// Partitions done.
    pub done: u64,
    /// Suffixes hashed.
    pub suffixes_hashed: u64,
    /// Suffixes sent to a peer.
    pub suffixes_synced: u64,
    /// Peers found in sync by their hashes.
    pub hashmatch: u64,
    /// Objects sent (PUT, POST and DELETE updates).
    pub objects_sent: u64,
    /// Object bytes sent.
    pub bytes_sent: u64,
    /// Failed exchanges with a peer (or a local failure).
    pub failures: u64,
    /// Handoff objects removed once their primaries had them.
    pub handoff_objects_removed: u64,
    /// Handoff partitions removed.
    pub handoffs_removed: u64,
    /// Handoff partitions still here.
    pub handoffs_remaining: u64,
    /// Peers found in sync or brought in sync (Swift's `success`).
    pub success: u64,
    /// SSYNC sessions started (Swift's `rsync`, which counts these too).
    pub syncs: u64,
    /// Suffixes of the partitions compared (Swift's `suffix_count`).
    pub suffix_count: u64,
}

impl Figures for DeviceStats {
    fn planned(jobs: u64) -> DeviceStats {
        DeviceStats { partitions: jobs, ..DeviceStats::default() }
    }

    fn add(&mut self, o: &DeviceStats) {
        self.partitions += o.partitions;
        self.done += o.done;
        self.suffixes_hashed += o.suffixes_hashed;
        self.suffixes_synced += o.suffixes_synced;
        self.hashmatch += o.hashmatch;
        self.objects_sent += o.objects_sent;
        self.bytes_sent += o.bytes_sent;
        self.failures += o.failures;
        self.handoff_objects_removed += o.handoff_objects_removed;
        self.handoffs_removed += o.handoffs_removed;
        self.handoffs_remaining += o.handoffs_remaining;
        self.success += o.success;
        self.syncs += o.syncs;
        self.suffix_count += o.suffix_count;
    }
}

/// What a pass did, over all devices.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PassSummary {
    /// Local devices found in the rings.
    pub devices: usize,
    /// The sum of the devices' figures.
    pub totals: DeviceStats,
    /// How long it took.
    pub took: Duration,
}

/// One partition to replicate.
#[derive(Debug, Clone)]
struct Job {
    policy: u32,
    device: String,
    device_dir: PathBuf,
    local_id: u16,
    region: u32,
    partition: String,
    part: u32,
    /// The other primaries (a handoff's: all of them).
    nodes: Vec<Device>,
    /// Not a primary here: push and remove.
    handoff: bool,
}

/// The replicator: settings and the pass counter (every tenth pass lists
/// each partition's directory instead of trusting `hashes.pkl`).
pub struct Replicator {
    settings: Settings,
    cycle: u32,
}

/// A policy's ring, as a pass uses it.
pub struct PolicyRing<'a> {
    /// The policy index.
    pub policy: u32,
    /// Its object ring.
    pub ring: &'a Ring,
}

impl Replicator {
    /// A replicator with these settings.
    pub fn new(settings: Settings) -> Replicator {
        Replicator { settings, cycle: 0 }
    }

    /// The jobs of one policy's ring, by local device.
    fn jobs(
        &self,
        pr: &PolicyRing<'_>,
        by_device: &mut BTreeMap<String, Vec<Job>>,
        failures: &mut BTreeMap<String, u64>,
    ) {
        let ring = pr.ring;
        let locals: Vec<&Device> =
            ring.devices().filter(|d| is_local(&self.settings.ips, &self.settings.ports, d)).collect();
        if locals.is_empty() {
            log::error!(
                "cannot find this node in the ring of policy {} (ips {:?}, ports {:?}): not replicating it",
                pr.policy,
                self.settings.ips,
                self.settings.ports
            );
            return;
        }
        for local in locals {
            let device_dir = match self.settings.devices.device_dir(&local.device) {
                Ok(d) => d,
                Err(why) => {
                    log::warn!("skipping device {}: {}", local.device, why.0);
                    *failures.entry(local.device.clone()).or_default() += 1;
                    continue;
                }
            };
            let obj_dir = device_dir.join(policy_dir("objects", pr.policy));
            let tmp_dir = device_dir.join(policy_dir("tmp", pr.policy));
            unlink_older_than(&tmp_dir, Duration::from_secs_f64(self.settings.reclaim_age));
            for dir in [&obj_dir, &tmp_dir, &device_dir.join("tmp")] {
                if let Err(e) = aerie_storage::fs::create_dirs(dir) {
                    log::error!("could not create {}: {e}", dir.display());
                }
            }
            let list = by_device.entry(local.device.clone()).or_default();
            let Ok(entries) = std::fs::read_dir(&obj_dir) else { continue };
            for e in entries.flatten() {
                let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
                let Ok(part) = name.parse::<u32>() else { continue };
                if part >= ring.partition_count() || part.to_string() != name {
                    continue;
                }
                if e.file_type().is_ok_and(|t| t.is_file()) {
                    // A file where a partition should be (Swift removes it).
                    log::warn!("removing partition directory which was a file: {}", e.path().display());
                    let _ = std::fs::remove_file(e.path());
                    continue;
                }
                let primaries = ring.nodes(part);
                let handoff = !primaries.iter().any(|d| d.id == local.id);
                let nodes = primaries.into_iter().filter(|d| d.id != local.id).cloned().collect();
                list.push(Job {
                    policy: pr.policy,
                    device: local.device.clone(),
                    device_dir: device_dir.clone(),
                    local_id: local.id,
                    region: local.region,
                    partition: name,
                    part,
                    nodes,
                    handoff,
                });
            }
        }
    }

    /// One pass over `rings` (every replicated policy's object ring).
    pub fn pass(&mut self, rings: &[PolicyRing<'_>], progress: &dyn Progress<DeviceStats>) -> PassSummary {
        let started = Instant::now();
        self.cycle = (self.cycle + 1) % 10;
        let mut by_device: BTreeMap<String, Vec<Job>> = BTreeMap::new();
        let mut failures: BTreeMap<String, u64> = BTreeMap::new();
        for pr in rings {
            if pr.ring.next_part_power().is_some() {
                log::warn!("next_part_power is set in the ring of policy {}: skipping it", pr.policy);
                continue;
            }
            self.jobs(pr, &mut by_device, &mut failures);
        }
        for (dev, n) in failures {
            if !by_device.contains_key(&dev) {
                let s = DeviceStats { failures: n, ..DeviceStats::default() };
                progress.device_done(&dev, &s, Duration::ZERO);
            }
        }
        let mut rng = Shuffle::new();
        for jobs in by_device.values_mut() {
            rng.shuffle(jobs);
            if self.settings.handoffs_first {
                jobs.sort_by_key(|j| !j.handoff);
            }
        }
        let slots = Slots::new(self.settings.concurrency);
        let ring_of = |policy: u32| rings.iter().find(|r| r.policy == policy).map(|r| r.ring);
        let cycle = self.cycle;
        let settings = &self.settings;
        let devices = by_device.len();
        let alive = || progress.beat();
        let pace = || DevicePace::new(settings.max_bytes_per_second, settings.max_objects_per_second, &alive);
        let work = |pace: &DevicePace<'_>, peers: &mut Peers, job: Job, s: &mut DeviceStats| {
            let w = Worker { settings, pace, ring: ring_of(job.policy), cycle };
            if job.handoff {
                w.revert(&job, s);
            } else {
                w.update(&job, s, peers);
            }
            s.done = 1;
        };
        let per_device = settings.concurrency_per_device;
        let totals =
            run_per_device("replicate", by_device, &slots, per_device, progress, &pace, &Peers::default, &work);
        let mut summary = PassSummary { devices, totals, ..PassSummary::default() };
        summary.took = started.elapsed();
        summary
    }
}

/// What a device thread needs for a job.
struct Worker<'a> {
    settings: &'a Settings,
    pace: &'a dyn Pace,
    ring: Option<&'a Ring>,
    cycle: u32,
}

fn target(d: &Device) -> Target {
    Target { host: d.replication_host(), device: d.device.clone() }
}

impl Worker<'_> {
    fn session<'s>(&'s self, job: &'s Job) -> Session<'s> {
        Session {
            device_dir: &job.device_dir,
            policy: job.policy,
            partition: &job.partition,
            timeouts: self.settings.timeouts,
            reclaim_age: self.settings.reclaim_age,
            pace: self.pace,
        }
    }

    fn sent(s: &mut DeviceStats, sent: &Sent) {
        s.objects_sent += sent.puts + sent.posts + sent.deletes;
        s.bytes_sent += sent.bytes;
    }

    /// A primary partition: compare with each other primary, send what
    /// differs (Swift's `ObjectReplicator.update`).
    fn update(&self, job: &Job, s: &mut DeviceStats, peers: &mut Peers) {
        let part_dir = partition_dir(&job.device_dir, job.policy, &job.partition);
        let listdir = (job.part + self.cycle) % 10 == 0;
        // The steady case, compared in place: hashes.pkl as it stands
        // (nothing to fold in, every hash known, and when a listing is due
        // every suffix directory in it) against each peer's answer. The
        // hashes are built into a map only when something differs. (Swift
        // rewrites hashes.pkl after every listing; what changes is only
        // its `updated`, which nothing reads.)
        let steady = steady_bytes(&part_dir).ok().flatten();
        let view =
            steady.as_deref().and_then(View::parse).filter(|v| v.steady() && (!listdir || v.lists_all(&part_dir)));
        let layout = crate::ondisk::Layout::Replicated;
        let hash = |s: &mut DeviceStats, listdir: bool| match get_hashes(
            &part_dir,
            layout,
            &[],
            listdir,
            self.settings.reclaim_age,
        ) {
            Ok((hashed, h)) => {
                s.suffixes_hashed += hashed as u64;
                Some(h)
            }
            Err(e) => {
                log::error!("error hashing partition {}: {e}", part_dir.display());
                None
            }
        };
        let mut local: Option<SuffixHashes> = None;
        match &view {
            Some(v) => s.suffix_count += v.len() as u64,
            None => match hash(s, listdir) {
                Some(h) => {
                    s.suffix_count += h.len() as u64;
                    local = Some(h);
                }
                None => {
                    s.failures += job.nodes.len() as u64;
                    return;
                }
            },
        }
        let mut nodes: Vec<Device> = job.nodes.clone();
        Shuffle::new().shuffle(&mut nodes);
        let primary_ids: BTreeSet<u16> = nodes.iter().map(|d| d.id).chain([job.local_id]).collect();
        let mut handoffs = self
            .ring
            .map(|r| {
                r.more_nodes(job.part)
                    .into_iter()
                    .filter(|d| !primary_ids.contains(&d.id))
                    .cloned()
                    .collect::<Vec<Device>>()
            })
            .unwrap_or_default()
            .into_iter();
        let mut nodes = nodes.into_iter();
        let mut attempts = job.nodes.len();
        let mut synced_regions: BTreeSet<u32> = BTreeSet::new();
        while attempts > 0 {
            let Some(node) = nodes.next().or_else(|| handoffs.next()) else {
                log::error!(
                    "ran out of handoffs while replicating partition {} of policy {}",
                    job.partition,
                    job.policy
                );
                break;
            };
            attempts -= 1;
            if synced_regions.contains(&node.region) {
                continue;
            }
            let host = node.replication_host();
            let calls = peers.to(&host, self.settings.timeouts);
            let answer = replicate(calls, &node.device, &job.partition, job.policy, &[]).and_then(|body| {
                if let (Some(v), Some(r)) = (&view, View::parse(&body)) {
                    if !v.differs_from(&r) {
                        return Ok(None);
                    }
                }
                parse_answer(&host, &body).map(Some)
            });
            let remote = match answer {
                Ok(Some(r)) => r,
                Ok(None) => {
                    s.hashmatch += 1;
                    s.success += 1;
                    continue;
                }
                Err(PeerError::Unmounted) => {
                    log::error!("{host}/{} responded as unmounted", node.device);
                    s.failures += 1;
                    // Another node takes its place this pass.
                    attempts += 1;
                    continue;
                }
                Err(e) => {
                    log::error!("REPLICATE {host}/{}/{}: {e}", node.device, job.partition);
                    s.failures += 1;
                    continue;
                }
            };
            let local = match &mut local {
                Some(l) => l,
                slot => match hash(s, false) {
                    Some(h) => slot.insert(h),
                    None => {
                        s.failures += 1;
                        continue;
                    }
                },
            };
            let mut suffixes = differing(local, &remote);
            if suffixes.is_empty() {
                s.hashmatch += 1;
                s.success += 1;
                continue;
            }
            match get_hashes(&part_dir, layout, &suffixes, false, self.settings.reclaim_age) {
                Ok((hashed, h)) => {
                    s.suffixes_hashed += hashed as u64;
                    *local = h;
                }
                Err(e) => {
                    log::error!("error rehashing partition {}: {e}", part_dir.display());
                    s.failures += 1;
                    continue;
                }
            }
            suffixes = differing(local, &remote);
            if suffixes.is_empty() {
                s.hashmatch += 1;
                s.success += 1;
                continue;
            }
            s.syncs += 1;
            match self.session(job).sync(&target(&node), &suffixes) {
                Ok(sent) => {
                    Self::sent(s, &sent);
                    s.suffixes_synced += suffixes.len() as u64;
                    s.success += 1;
                    if node.region != job.region {
                        synced_regions.insert(node.region);
                    }
                }
                Err(e) => {
                    log::error!("{host}/{}/{} {e}", node.device, job.partition);
                    s.failures += 1;
                }
            }
        }
    }

    /// A handoff partition: every suffix to every primary, then remove what
    /// they all confirmed (Swift's `ObjectReplicator.revert`).
    fn revert(&self, job: &Job, s: &mut DeviceStats) {
        let part_dir = partition_dir(&job.device_dir, job.policy, &job.partition);
        // An incoming SSYNC on this partition holds this lock: never push
        // and remove while another node pushes here.
        let lock = match lock_path(&part_dir, ".lock-replication", Duration::from_millis(200)) {
            Ok(l) => l,
            Err(e) => {
                log::info!(
                    "unable to lock handoff partition {} of policy {} on {}: {e}",
                    job.partition,
                    job.policy,
                    job.device
                );
                s.handoffs_remaining += 1;
                return;
            }
        };
        let suffixes = suffix_dirs(&part_dir);
        if suffixes.is_empty() {
            drop(lock);
            if remove_partition(&part_dir) {
                s.handoffs_removed += 1;
            } else {
                s.handoffs_remaining += 1;
            }
            return;
        }
        let mut confirmed: Option<BTreeMap<String, Offer>> = None;
        let mut ok = true;
        for node in &job.nodes {
            s.syncs += 1;
            match self.session(job).sync(&target(node), &suffixes) {
                Ok(sent) => {
                    Self::sent(s, &sent);
                    s.suffixes_synced += suffixes.len() as u64;
                    s.success += 1;
                    // In sync everywhere: what every session offered alike.
                    confirmed = Some(match confirmed {
                        None => sent.offered,
                        Some(mut c) => {
                            c.retain(|h, o| sent.offered.get(h) == Some(o));
                            c
                        }
                    });
                }
                Err(e) => {
                    log::error!("{}/{}/{} {e}", node.replication_host(), node.device, job.partition);
                    s.failures += 1;
                    ok = false;
                }
            }
        }
        if !ok || job.nodes.is_empty() {
            s.handoffs_remaining += 1;
            return;
        }
        let confirmed = confirmed.unwrap_or_default();
        // Remove exactly what was confirmed and has not changed since.
        let now_offered: BTreeMap<String, Offer> =
            offers(&job.device_dir, job.policy, &job.partition, &suffixes, self.settings.reclaim_age)
                .into_iter()
                .collect();
        for (hash, offer) in &confirmed {
            if now_offered.get(hash) == Some(offer) {
                let dir = part_dir.join(crate::hashes::suffix_of(hash)).join(hash);
                if remove_reverted(&dir, offer) {
                    s.handoff_objects_removed += 1;
                }
            }
        }
        for suffix in &suffixes {
            if std::fs::remove_dir(part_dir.join(suffix)).is_err() {
                // Something is left (written meanwhile): rehash it when
                // this partition is hashed again.
                let _ = crate::hashes::invalidate(&part_dir, suffix);
            }
        }
        drop(lock);
        if suffix_dirs(&part_dir).is_empty() && remove_partition(&part_dir) {
            s.handoffs_removed += 1;
        } else {
            // Written meanwhile: the next pass pushes it.
            s.handoffs_remaining += 1;
        }
    }
}

/// Remove a reverted object's files: those of the state that was synced
/// and older (a file written since, necessarily newer, stays, and so does
/// the directory then). Whether the directory went.
fn remove_reverted(dir: &Path, offer: &Offer) -> bool {
    let newest = offer.ts_data.max(offer.ts_meta).max(offer.ts_ctype);
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    for e in entries.flatten() {
        let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
        let Some(info) = crate::ondisk::parse_name(&name, crate::ondisk::Layout::Replicated) else { continue };
        if info.timestamp <= newest {
            if let Err(err) = std::fs::remove_file(e.path()) {
                log::error!("could not remove reverted {}: {err}", e.path().display());
            }
        }
    }
    std::fs::remove_dir(dir).is_ok()
}

/// The suffixes whose hash differs from the peer's (missing there too);
/// suffixes only the peer has are its own business (Swift's rule).
fn differing(local: &SuffixHashes, remote: &SuffixHashes) -> Vec<String> {
    local.iter().filter(|(k, v)| remote.get(*k) != Some(*v)).map(|(k, _)| k.clone()).collect()
}

/// A partition's suffix directories.
fn suffix_dirs(part_dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(part_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.len() == 3)
        .collect();
    out.sort();
    out
}

/// The files a partition directory holds besides its suffixes.
const PARTITION_FILES: &[&str] =
    &[crate::hashes::HASH_FILE, crate::hashes::HASH_INVALIDATIONS_FILE, ".lock", ".lock-replication"];

/// Remove a handoff partition that holds no object any more: its own files,
/// then the directory if nothing else appeared in it meanwhile (a write
/// racing the removal keeps it). Whether it went.
fn remove_partition(part_dir: &Path) -> bool {
    for f in PARTITION_FILES {
        let _ = std::fs::remove_file(part_dir.join(f));
    }
    match std::fs::remove_dir(part_dir) {
        Ok(()) => {
            log::info!("removed partition {}", part_dir.display());
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => {
            log::info!("kept partition {}: {e}", part_dir.display());
            false
        }
    }
}
