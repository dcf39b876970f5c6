//! Swift's recon cache and the `/recon/*` API (Swift 2.38.3's
//! `swift/common/middleware/recon.py`, `utils.dump_recon_cache`).
//!
//! The background roles keep what a pass did in one JSON document per
//! service under `recon_cache_path` (`object.recon`, `container.recon`,
//! `account.recon`), written the way Swift's daemons write theirs: the
//! file's lock taken, its one line read, the new keys merged in (a nested
//! dict merges key by key, an empty dict removes), a new file renamed over
//! it. So aerie's replicators and updaters and any of Swift's own daemons
//! still run on the node (auditors, the expirer, the reconstructor,
//! `swift-recon-cron`) fill the same documents, and [`Recon`] answers from
//! them exactly as Swift's middleware would. Everything else — memory,
//! load, sockets, devices, disk usage, quarantine counts, ring and
//! swift.conf checksums — is read live, on a pool thread (it lists and
//! stats the devices, which a slow disk can make slow).

use crate::fs::{is_mount, lock_path};
use aerie_api::{Body, Executor, Method, Processor, QueueKey, Request, RequestHead, Response, SharedProcessor, Status};
use serde_json::{json, Map, Value};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The object roles' document.
pub const OBJECT_FILE: &str = "object.recon";
/// The container roles' document.
pub const CONTAINER_FILE: &str = "container.recon";
/// The account roles' document.
pub const ACCOUNT_FILE: &str = "account.recon";
/// `swift-drive-audit`'s document.
pub const DRIVE_FILE: &str = "drive.recon";
/// `swift-object-relinker`'s document.
pub const RELINKER_FILE: &str = "relinker.recon";
/// Swift's default `recon_cache_path`.
pub const DEFAULT_PATH: &str = "/var/cache/swift";
/// How long a writer waits for the document's lock (Swift's 2 s).
const LOCK_TIMEOUT: Duration = Duration::from_secs(2);
/// The path swift-recon looks up in a `swiftconfmd5` answer: Swift's
/// servers always name this one, whatever `swift_dir` says.
const SWIFT_CONF_KEY: &str = "/etc/swift/swift.conf";

/// Merge `item` under `key` as Swift's `put_recon_cache_entry`: a dict
/// merges into an existing dict one level down, an empty dict (at either
/// level) removes the key.
fn put_entry(doc: &mut Map<String, Value>, key: &str, item: Value) {
    match item {
        Value::Object(m) if m.is_empty() => {
            doc.remove(key);
        }
        Value::Object(m) => {
            let slot = doc.entry(key.to_string()).or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(existing) = slot {
                for (k, v) in m {
                    if v.as_object().is_some_and(Map::is_empty) {
                        existing.remove(&k);
                    } else {
                        existing.insert(k, v);
                    }
                }
            }
        }
        other => {
            doc.insert(key.to_string(), other);
        }
    }
}

/// Keys sorted at every level, as `json.dumps(sort_keys=True)`.
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut items: Vec<(String, Value)> = m.into_iter().collect();
            items.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(items.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// A document's first line as a JSON object: `Ok(None)` when it is not
/// one (empty, or not JSON), the read's error when it cannot be read.
fn read_doc(file: &Path) -> io::Result<Option<Map<String, Value>>> {
    let text = std::fs::read_to_string(file)?;
    Ok(match serde_json::from_str::<Value>(text.lines().next().unwrap_or("")) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    })
}

/// Read a document (an empty object when missing, empty or not JSON, as
/// Swift's writers treat it).
pub fn load(file: &Path) -> Map<String, Value> {
    read_doc(file).ok().flatten().unwrap_or_default()
}

/// Merge `update` into the document `file` (Swift's `dump_recon_cache`;
/// the directory is made when missing).
pub fn dump(file: &Path, update: Map<String, Value>) -> io::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or(OBJECT_FILE);
    let _lock = lock_path(dir, name, LOCK_TIMEOUT)?;
    let mut doc = load(file);
    for (k, v) in update {
        put_entry(&mut doc, &k, v);
    }
    let text = crate::pyjson::dumps(&sorted(Value::Object(doc)));
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(format!("{text}\n").as_bytes()));
    // Swift renames without an fsync: the document is a report, rewritten
    // every pass, not data.
    match written.and_then(|()| std::fs::rename(&tmp, file)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// [`dump`], with a failure logged rather than returned (a role's pass
/// goes on without its report).
pub fn dump_logged(file: &Path, update: Map<String, Value>) {
    if let Err(e) = dump(file, update) {
        log::error!("could not update the recon cache {}: {e}", file.display());
    }
}

/// Seconds since the epoch, as Python's `time.time()`.
pub fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// What the recon middleware needs to know about the node.
#[derive(Debug, Clone)]
pub struct ReconConfig {
    /// The devices root.
    pub devices: PathBuf,
    /// Where swift.conf and the rings are.
    pub swift_dir: PathBuf,
    /// swift.conf itself.
    pub swift_conf: PathBuf,
    /// `recon_cache_path`.
    pub cache_path: PathBuf,
    /// The storage policies' indexes (their object rings).
    pub policies: Vec<u32>,
    /// What `/recon/version` answers.
    pub version: String,
}

/// The `recon` middleware: `/recon/<check>[/<type>]` answered, anything
/// else passed to the processor it wraps.
pub struct Recon {
    inner: SharedProcessor,
    cfg: ReconConfig,
}

/// The pool queue recon requests run in (beside the service's devices).
pub const QUEUE: &str = "recon";

impl Recon {
    /// Wrap a processor.
    pub fn new(inner: SharedProcessor, cfg: ReconConfig) -> Recon {
        Recon { inner, cfg }
    }

    fn is_recon(head: &RequestHead) -> bool {
        head.raw_path().starts_with(b"/recon/")
    }

    fn cache(&self, file: &str, keys: &[&str]) -> Value {
        let path = self.cfg.cache_path.join(file);
        let doc = match read_doc(&path) {
            Ok(Some(m)) => Some(m),
            Ok(None) => {
                log::error!("recon: could not parse the recon cache file {}", path.display());
                None
            }
            Err(e) => {
                if !(e.kind() == io::ErrorKind::NotFound && file == RELINKER_FILE) {
                    log::debug!("recon: could not read {}: {e}", path.display());
                }
                None
            }
        };
        let mut out = Map::new();
        for k in keys {
            out.insert(k.to_string(), doc.as_ref().and_then(|d| d.get(*k)).cloned().unwrap_or(Value::Null));
        }
        Value::Object(out)
    }

    /// The devices root's entries, sorted; `None` when it cannot be listed.
    fn list_devices(&self) -> Option<Vec<String>> {
        let rd = std::fs::read_dir(&self.cfg.devices).ok()?;
        let mut names: Vec<String> =
            rd.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect();
        names.sort();
        Some(names)
    }

    fn device_entries(&self) -> Vec<String> {
        self.list_devices().unwrap_or_default()
    }

    /// Swift's `check_mount` for a device of the devices root: `Ok` when
    /// mounted, else what recon reports (`false`, or an error's text).
    fn mounted(&self, name: &str) -> Result<(), Value> {
        if !crate::path::is_safe_device_name(name) {
            return Err(Value::Bool(false));
        }
        if is_mount(&self.cfg.devices.join(name)) {
            Ok(())
        } else {
            Err(Value::Bool(false))
        }
    }

    fn device_dirs(&self) -> Vec<String> {
        self.device_entries().into_iter().filter(|n| self.cfg.devices.join(n).is_dir()).collect()
    }

    fn unmounted(&self) -> Value {
        let list: Vec<Value> = self
            .device_dirs()
            .into_iter()
            .filter_map(|d| self.mounted(&d).err().map(|m| json!({"device": d, "mounted": m})))
            .collect();
        Value::Array(list)
    }

    fn diskusage(&self) -> Value {
        let list: Vec<Value> = self
            .device_dirs()
            .into_iter()
            .map(|d| match self.mounted(&d) {
                Err(m) => json!({"device": d, "mounted": m, "size": "", "used": "", "avail": ""}),
                Ok(()) => match nix::sys::statvfs::statvfs(&self.cfg.devices.join(&d)) {
                    Ok(s) => {
                        let bsize = s.block_size();
                        let blocks = s.blocks();
                        let avail = s.blocks_available();
                        json!({"device": d, "mounted": true, "size": bsize * blocks,
                               "used": bsize * blocks.saturating_sub(avail), "avail": bsize * avail})
                    }
                    Err(e) => json!({"device": d, "mounted": e.to_string(), "size": "", "used": "", "avail": ""}),
                },
            })
            .collect();
        Value::Array(list)
    }

    fn quarantined(&self) -> Value {
        use std::os::unix::fs::MetadataExt;
        let mut counts = json!({"objects": 0, "containers": 0, "accounts": 0, "policies": {}});
        for dev in self.device_entries() {
            let qdir = self.cfg.devices.join(&dev).join("quarantined");
            let Ok(rd) = std::fs::read_dir(&qdir) else { continue };
            for e in rd.filter_map(|e| e.ok()) {
                let Ok(kind) = e.file_name().into_string() else { continue };
                let Ok(meta) = std::fs::symlink_metadata(e.path()) else { continue };
                let links = meta.nlink();
                if links <= 2 {
                    continue;
                }
                let n = links - 2;
                if kind.starts_with("objects") {
                    let policy = kind.split_once('-').map_or("0", |(_, p)| p).to_string();
                    let bump = |v: &mut Value| *v = json!(v.as_u64().unwrap_or(0) + n);
                    if let Some(p) = counts["policies"].as_object_mut() {
                        let entry = p.entry(policy).or_insert_with(|| json!({"objects": 0}));
                        bump(&mut entry["objects"]);
                    }
                    bump(&mut counts["objects"]);
                } else if let Some(v) = counts.get_mut(&kind) {
                    *v = json!(v.as_u64().unwrap_or(0) + n);
                }
            }
        }
        counts
    }

    fn ring_md5(&self) -> Value {
        let mut names = vec!["account.ring.gz".to_string(), "container.ring.gz".to_string()];
        for p in &self.cfg.policies {
            names.push(if *p == 0 { "object.ring.gz".into() } else { format!("object-{p}.ring.gz") });
        }
        let mut out = Map::new();
        for n in names {
            let path = self.cfg.swift_dir.join(&n);
            if path.exists() {
                let sum = std::fs::read(&path).ok().map(|b| Value::String(crate::hash::md5_hex(&b)));
                out.insert(path.display().to_string(), sum.unwrap_or(Value::Null));
            }
        }
        Value::Object(out)
    }

    fn swift_conf_md5(&self) -> Value {
        let sum = std::fs::read(&self.cfg.swift_conf).ok().map(|b| Value::String(crate::hash::md5_hex(&b)));
        json!({ SWIFT_CONF_KEY: sum.unwrap_or(Value::Null) })
    }

    /// The answer to one check; `None` for a path Swift answers 404.
    fn check(&self, check: &str, kind: Option<&str>) -> Option<Value> {
        let all = ["account", "container", "object"];
        Some(match (check, kind) {
            ("mem", _) => mem(),
            ("load", _) => load_avg(),
            ("async", _) => self.cache(OBJECT_FILE, &["async_pending", "async_pending_last"]),
            ("replication", None) => self.replication("object"),
            ("replication", Some(t)) if all.contains(&t) => self.replication(t),
            ("devices", _) => {
                // Swift answers null when the devices root cannot be listed.
                let names = self.list_devices().map_or(Value::Null, Value::from);
                json!({ self.cfg.devices.display().to_string(): names })
            }
            ("updater", Some("container")) => self.cache(CONTAINER_FILE, &["container_updater_sweep"]),
            ("updater", Some("object")) => {
                self.cache(OBJECT_FILE, &["object_updater_sweep", "object_updater_stats", "object_updater_last"])
            }
            ("auditor", Some("account")) => self.cache(
                ACCOUNT_FILE,
                &[
                    "account_audits_passed",
                    "account_auditor_pass_completed",
                    "account_audits_since",
                    "account_audits_failed",
                ],
            ),
            ("auditor", Some("container")) => self.cache(
                CONTAINER_FILE,
                &[
                    "container_audits_passed",
                    "container_auditor_pass_completed",
                    "container_audits_since",
                    "container_audits_failed",
                ],
            ),
            ("auditor", Some("object")) => {
                self.cache(OBJECT_FILE, &["object_auditor_stats_ALL", "object_auditor_stats_ZBF"])
            }
            ("expirer", Some("object")) => self.cache(OBJECT_FILE, &["object_expiration_pass", "expired_last_pass"]),
            ("mounted", _) => mounted(),
            ("unmounted", _) => self.unmounted(),
            ("diskusage", _) => self.diskusage(),
            ("ringmd5", _) => self.ring_md5(),
            ("swiftconfmd5", _) => self.swift_conf_md5(),
            ("quarantined", _) => self.quarantined(),
            ("sockstat", _) => sockstat(),
            ("version", _) => json!({ "version": self.cfg.version }),
            ("driveaudit", _) => self.cache(DRIVE_FILE, &["drive_audit_errors"]),
            ("time", _) => json!(now()),
            ("sharding", _) => self.cache(CONTAINER_FILE, &["sharding_stats", "sharding_time", "sharding_last"]),
            ("relinker", _) => self.cache(RELINKER_FILE, &["devices", "workers"]),
            ("reconstruction", Some("object")) => {
                self.cache(OBJECT_FILE, &["object_reconstruction_last", "object_reconstruction_time"])
            }
            _ => return None,
        })
    }

    fn replication(&self, kind: &str) -> Value {
        let mut keys = vec!["replication_time", "replication_stats", "replication_last"];
        let file = match kind {
            "account" => ACCOUNT_FILE,
            "container" => CONTAINER_FILE,
            _ => {
                keys.extend(["object_replication_time", "object_replication_last"]);
                OBJECT_FILE
            }
        };
        self.cache(file, &keys)
    }

    fn answer(&self, head: &RequestHead) -> Response {
        let path = String::from_utf8_lossy(head.raw_path().split(|b| *b == b'?').next().unwrap_or(b"")).into_owned();
        // swob's split_path(1, 3, True): /recon/<check>[/<type>].
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (check, kind) = match segs.as_slice() {
            [_, check] => (*check, None),
            [_, check, kind] => (*check, Some(*kind).filter(|k| !k.is_empty())),
            _ => return Response::text(Status::BAD_REQUEST, "Bad Request\n"),
        };
        match self.check(check, kind) {
            Some(v) => Response::new(Status::OK)
                .with_header("Content-Type", &b"application/json"[..])
                .with_body(Body::Bytes(crate::pyjson::dumps(&v).into_bytes().into())),
            None => Response::new(Status::NOT_FOUND)
                .with_header("Content-Type", &b"text/plain"[..])
                .with_body(Body::Bytes(format!("Invalid path: {path}").into_bytes().into())),
        }
    }
}

/// `/proc/meminfo` as `{name: "value unit"}`.
fn mem() -> Value {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mut out = Map::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(':') {
            out.insert(k.to_string(), Value::String(v.trim().to_string()));
        }
    }
    Value::Object(out)
}

/// `/proc/loadavg`.
fn load_avg() -> Value {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let f: Vec<&str> = text.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    json!({
        "1m": num(0),
        "5m": num(1),
        "15m": num(2),
        "tasks": f.get(3).copied().unwrap_or(""),
        "processes": f.get(4).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0),
    })
}

/// `/proc/mounts`: device and path of each.
fn mounted() -> Value {
    let text = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    Value::Array(
        text.lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                Some(json!({"device": f.next()?, "path": f.next()?}))
            })
            .collect(),
    )
}

/// The kernel's page size (`KernelPageSize` of this process's first
/// mapping; 4 KiB when unreadable).
fn page_size() -> u64 {
    std::fs::read_to_string("/proc/self/smaps")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("KernelPageSize:").and_then(|v| v.trim().strip_suffix("kB")))
                .and_then(|kb| kb.trim().parse::<u64>().ok())
        })
        .map_or(4096, |kb| kb * 1024)
}

/// `/proc/net/sockstat` (and `sockstat6`): TCP sockets, memory in bytes.
fn sockstat() -> Value {
    let mut out = Map::new();
    let page = page_size();
    let field = |f: &[&str], i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    for line in std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default().lines() {
        if line.starts_with("TCP: inuse") {
            let f: Vec<&str> = line.split_whitespace().collect();
            out.insert("tcp_in_use".into(), json!(field(&f, 2)));
            out.insert("orphan".into(), json!(field(&f, 4)));
            out.insert("time_wait".into(), json!(field(&f, 6)));
            out.insert("tcp_mem_allocated_bytes".into(), json!(field(&f, 10) * page));
        }
    }
    for line in std::fs::read_to_string("/proc/net/sockstat6").unwrap_or_default().lines() {
        if line.starts_with("TCP6: inuse") {
            let f: Vec<&str> = line.split_whitespace().collect();
            out.insert("tcp6_in_use".into(), json!(field(&f, 2)));
        }
    }
    Value::Object(out)
}

impl Processor for Recon {
    fn executor(&self, head: &RequestHead) -> Executor {
        if Self::is_recon(head) {
            Executor::Pooled(QueueKey::new(QUEUE))
        } else {
            self.inner.executor(head)
        }
    }

    fn call(&self, req: Request) -> Response {
        if Self::is_recon(&req.head) {
            let r = self.answer(&req.head);
            return if *req.head.method() == Method::Head { r.with_body(Body::Empty) } else { r };
        }
        self.inner.call(req)
    }

    fn allowed_methods(&self) -> Option<&[Method]> {
        self.inner.allowed_methods()
    }

    fn unknown_device(&self, head: &RequestHead, device: &str) -> Response {
        self.inner.unknown_device(head, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_merges_as_swifts_put_recon_cache_entry() {
        let d = std::env::temp_dir().join(format!("aerie-recon-{}", std::process::id()));
        let f = d.join("sub").join(OBJECT_FILE);
        let m = |v: Value| v.as_object().cloned().unwrap_or_default();
        dump(&f, m(json!({"b": 1, "per": {"sda": {"x": 1}, "sdb": {"x": 2}}}))).expect("first dump");
        dump(&f, m(json!({"a": "s", "per": {"sdb": {}, "sdc": {"x": 3}}}))).expect("second dump");
        let text = std::fs::read_to_string(&f).expect("written");
        // Sorted keys, Python's separators, one line.
        assert_eq!(text, "{\"a\": \"s\", \"b\": 1, \"per\": {\"sda\": {\"x\": 1}, \"sdc\": {\"x\": 3}}}\n");
        dump(&f, m(json!({"per": {}}))).expect("third dump");
        assert_eq!(load(&f), m(json!({"a": "s", "b": 1})));
        std::fs::write(&f, "not json\n").expect("spoil");
        dump(&f, m(json!({"c": 2.5}))).expect("over a spoiled document");
        assert_eq!(load(&f), m(json!({"c": 2.5})));
        let _ = std::fs::remove_dir_all(&d);
    }
}
