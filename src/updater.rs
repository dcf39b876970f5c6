//! The updaters: background processes, forked and supervised by the master
//! beside the workers. The object updater replays async pendings (§4.11,
//! §8.1); the container updater sends changed container statistics to the
//! accounts (§8.2, see `aerie_container::updater`).
//!
//! Every `object_updater_interval` it walks
//! `<devices>/<dev>/async_pending*/<sfx>/<hash>-<ts>`, and for each record
//! sends the saved update to every container replica it names. A replica
//! that accepts it (2xx) is removed from the record; when none is left the
//! file is unlinked, otherwise the record is rewritten with the replicas
//! still to do. Records without targets (written by Swift's servers, which
//! rely on the ring) go to the container replicas of the container ring
//! (`container.ring.gz` beside swift.conf), as Swift's updater does; with
//! no ring they are left for Swift's own updater. Being its own process,
//! the updater survives worker reloads and crashes, and its blocking network
//! calls never touch a worker's loop.

use crate::config::Config;
use crate::scoreboard::{Slot, State};
use aerie_object::update::{pending_targets, pending_update, send, Target};
use aerie_storage::hash::HashSalt;
use aerie_storage::pickle::{dumps, loads, Value};
use aerie_storage::ring::{Ring, RingFile};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
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

/// Which updater a process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Replays async pendings.
    Object,
    /// Reports container statistics to the accounts.
    Container,
}

impl Kind {
    /// Its name in logs, the process title and `/status`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Object => "object-updater",
            Kind::Container => "container-updater",
        }
    }
}

/// Run an updater until told to stop; returns the exit code.
pub fn run(
    kind: Kind,
    config: &Config,
    slot: Slot,
    master: nix::unistd::Pid,
    stop: Arc<AtomicBool>,
    quit: Arc<AtomicBool>,
) -> i32 {
    let (interval, what) = match kind {
        Kind::Object => (config.storage.object_updater_interval, "async pendings"),
        Kind::Container => (config.storage.container_updater_interval, "container databases"),
    };
    let root = config.storage.devices.root.clone();
    let (conn, node) = match kind {
        Kind::Object => (config.object.conn_timeout, config.object.node_timeout),
        Kind::Container => (config.container.conn_timeout, config.container.node_timeout),
    };
    let mut containers = aerie_container::updater::State::default();
    // The ring this updater sends to: the container ring (object updater)
    // or the account ring (container updater), beside swift.conf.
    let swift_dir = config.storage.swift_conf_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut ring_file = RingFile::new(swift_dir.join(match kind {
        Kind::Object => "container.ring.gz",
        Kind::Container => "account.ring.gz",
    }));
    let salt = config.storage.swift.as_ref().map(|s| s.salt.clone());
    let settings = aerie_container::updater::Settings {
        conn_timeout: conn,
        node_timeout: node,
        suppression: config.storage.container_updater_suppression,
    };
    if kind == Kind::Container && ring_file.get().is_none() {
        log::warn!(
            "container updater: no account ring at {}: statistics go only to the account replicas each container's \
             requests named; the others learn them by replication",
            swift_dir.join("account.ring.gz").display()
        );
    }
    slot.set_state(State::Ready);
    log::info!("{} started: sweeping the {what} under {} every {:?}", kind.name(), root.display(), interval);
    let mut next = Instant::now();
    loop {
        slot.beat();
        if stop.load(Ordering::Relaxed) || quit.load(Ordering::Relaxed) {
            log::info!("{} stopping", kind.name());
            return crate::error::EXIT_OK;
        }
        if nix::unistd::getppid() != master {
            log::warn!("the master is gone: {} exiting", kind.name());
            return crate::error::EXIT_OK;
        }
        if Instant::now() >= next {
            let ring = ring_file.get().zip(salt.as_ref());
            match kind {
                Kind::Object => {
                    let s = sweep(&root, ring, conn, node, Some(&slot));
                    if s.delivered > 0 || s.pending > 0 {
                        log::info!(
                            "object updater sweep: {} delivered, {} still pending, {} left for a ring",
                            s.delivered,
                            s.pending,
                            s.skipped
                        );
                    }
                }
                Kind::Container => {
                    let s = aerie_container::updater::sweep(&root, ring, &mut containers, &settings, &|| slot.beat());
                    if s.reported > 0 || s.failed > 0 || s.quarantined > 0 {
                        log::info!(
                            "container updater sweep: {} checked, {} reported, {} to retry, {} without account replicas, {} quarantined",
                            s.checked,
                            s.reported,
                            s.failed,
                            s.no_targets,
                            s.quarantined
                        );
                    }
                }
            }
            next = Instant::now() + interval;
        }
        std::thread::sleep(Duration::from_millis(100).min(interval));
    }
}

/// What the master hands the updater at fork.
pub struct UpdaterArgs<'a> {
    /// Which updater.
    pub kind: Kind,
    /// The configuration.
    pub config: &'a Config,
    /// Its scoreboard slot.
    pub slot: Slot,
    /// Master-only descriptors to close.
    pub close: Vec<std::os::fd::OwnedFd>,
    /// The master's signal registrations to remove.
    pub master_signals: Vec<signal_hook::SigId>,
    /// The master's pid.
    pub master: nix::unistd::Pid,
}

/// The updater process, after fork: hygiene, then [`run`]; never returns.
pub fn main(args: UpdaterArgs<'_>) -> ! {
    crate::log::set_updater(args.kind);
    for id in args.master_signals {
        signal_hook::low_level::unregister(id);
    }
    drop(args.close);
    crate::sys::process::set_name(&format!("aerie: {}", args.kind.name()));
    args.slot.set_pid(u64::from(std::process::id()));
    let boot = || -> Result<(Arc<AtomicBool>, Arc<AtomicBool>), String> {
        crate::sys::process::drop_privileges(args.config.server.user.as_ref(), args.config.server.group.as_ref())?;
        crate::sys::process::set_parent_death_signal(nix::sys::signal::Signal::SIGTERM)
            .map_err(|e| format!("could not set the parent-death signal: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let quit = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone()).map_err(|e| e.to_string())?;
        signal_hook::flag::register(signal_hook::consts::SIGINT, quit.clone()).map_err(|e| e.to_string())?;
        signal_hook::flag::register(signal_hook::consts::SIGQUIT, quit.clone()).map_err(|e| e.to_string())?;
        Ok((stop, quit))
    };
    let code = match boot() {
        Ok((stop, quit)) => run(args.kind, args.config, args.slot, args.master, stop, quit),
        Err(why) => {
            log::error!("{} could not start: {why}", args.kind.name());
            crate::error::EXIT_FAILURE
        }
    };
    std::process::exit(code)
}
