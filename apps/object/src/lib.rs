//! The Swift-compatible object service (SWIFT-BACKEND.md §4, §5).
//!
//! One function per verb (`put`, `get_or_head`, `post`, `delete`), each
//! parsing the headers it needs once into typed values at the top, and one
//! table ([`open_error_response`]) mapping storage errors to statuses. The
//! queue key is the device, so every device has its own bounded queue and
//! threads; requests whose path cannot name a device are answered inline
//! (they never touch a disk).
//!
//! Order of checks, as Swift's `ObjectController.__call__`: path UTF-8
//! (412), method (405), storage policy (503), path shape (400), then the
//! verb's own checks; the device (507) is checked when the verb first needs
//! the disk.
#![forbid(unsafe_code)]

pub mod conditional;
pub mod diskfile;
pub mod hashes;
pub mod meta;
pub mod mime;
pub mod ondisk;
pub mod peer;
mod post_delete;
mod put;
pub mod range;
mod read;
mod replicate;
pub mod replicator;
pub mod ssync;
pub mod staging;
pub mod update;

use aerie_api::{Executor, Method, Processor, Request, RequestBody, RequestHead, Response, Status};
use aerie_storage::fs::{Devices, Reserve};
use aerie_storage::path::{ObjectPath, PathError};
use aerie_storage::swift_conf::SwiftConf;
pub use aerie_storage::swob::{insufficient_storage, page, status_page, text};
use aerie_storage::Timestamp;
use diskfile::{DiskFile, OpenError};
use std::sync::Arc;
use std::time::Duration;

/// Everything the object service needs, built once from the configuration.
#[derive(Debug, Clone)]
pub struct ObjectConfig {
    /// The devices root and mount check.
    pub devices: Devices,
    /// swift.conf: hash salt, policies, constraints.
    pub swift: SwiftConf,
    /// Free space kept on every device.
    pub reserve: Reserve,
    /// How long a request waits for its container updates.
    pub container_update_timeout: Duration,
    /// Connect timeout towards container servers.
    pub conn_timeout: Duration,
    /// Response timeout towards container servers.
    pub node_timeout: Duration,
    /// Percent of whole-object GETs checked against their ETag as they are
    /// read (Swift's `etag_validate_pct`).
    pub etag_validate_pct: f64,
    /// Tombstones older than this (seconds) are removed when their suffix
    /// is hashed (Swift's `reclaim_age`).
    pub reclaim_age: f64,
    /// How SSYNC sessions from other nodes are admitted and judged.
    pub ssync: ssync::ReceiverSettings,
}

/// The object processor.
pub struct ObjectServer {
    cfg: Arc<ObjectConfig>,
}

impl ObjectServer {
    /// Build it.
    pub fn new(cfg: ObjectConfig) -> Result<ObjectServer, aerie_api::BuildError> {
        Ok(ObjectServer { cfg: Arc::new(cfg) })
    }
}

pub use aerie_api::REPLICATION_LANE;

const METHODS: &[&str] = &["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "REPLICATE", "SSYNC"];

/// The status for a storage error (the one table).
pub fn open_error_response(e: &OpenError, device: &str, target: &str) -> Response {
    match e {
        OpenError::NotFound | OpenError::Quarantined(_) => page(Status::NOT_FOUND),
        OpenError::Deleted(t) | OpenError::Expired(t, _) => {
            page(Status::NOT_FOUND).with_header("X-Backend-Timestamp", t.internal().into_bytes())
        }
        OpenError::Collision => page(Status::FORBIDDEN),
        OpenError::Io(err) => {
            if aerie_storage::fs::is_full(err) {
                return insufficient_storage(device);
            }
            log::error!("object {target} on {device}: disk error: {err}");
            page(Status::INTERNAL_SERVER_ERROR)
        }
    }
}

/// A request's headers as the handlers read them.
pub(crate) struct Ctx<'a> {
    pub cfg: &'a ObjectConfig,
    pub head: &'a RequestHead,
    pub path: ObjectPath,
    pub policy: u32,
    /// Where an SSYNC session's writes wait for their common flush (none:
    /// each write is durable before its answer).
    pub staging: Option<&'a staging::Staging>,
}

impl Ctx<'_> {
    /// Copy into `m` what a request stores as metadata (§4.2.1): user
    /// metadata and transient sysmeta (and object sysmeta when `sysmeta`:
    /// PUT only, POST cannot change it), then the allowed headers and those
    /// `X-Backend-Replication-Headers` names, except `skip`.
    pub fn copy_request_meta(&self, m: &mut meta::Meta, sysmeta: bool, skip: &str) {
        use meta::{is_sysmeta, is_transient_sysmeta, is_user_meta, title, ALLOWED_HEADERS};
        for (name, value) in self.head.headers() {
            if is_user_meta(name) || (sysmeta && is_sysmeta(name)) || is_transient_sysmeta(name) {
                m.set(&title(name), value.to_vec());
            }
        }
        let named = self.header("x-backend-replication-headers").unwrap_or("");
        for h in named.split_whitespace().chain(ALLOWED_HEADERS.iter().copied()) {
            if h.eq_ignore_ascii_case(skip) {
                continue;
            }
            if let Some(v) = self.header_bytes(h) {
                m.set(&title(h), v.to_vec());
            }
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header_str(name)
    }

    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.head.header(name)
    }

    pub fn is_true(&self, name: &str) -> bool {
        self.header(name)
            .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on" | "t" | "y"))
    }

    pub fn diskfile(&self) -> Result<DiskFile, Response> {
        let device_dir = self.cfg.devices.device_dir(&self.path.device).map_err(|why| {
            log::warn!("device {} unavailable: {}", self.path.device, why.0);
            insufficient_storage(&self.path.device)
        })?;
        let hash =
            self.cfg.swift.salt.hash_path(&self.path.account, Some(&self.path.container), Some(&self.path.object));
        Ok(DiskFile {
            device_dir,
            policy: self.policy,
            partition: self.path.partition.clone(),
            hash,
            name: self.path.name(),
            layout: self.layout(),
            choice: self.frag_choice()?,
        })
    }

    /// How this request's policy names data files.
    pub fn layout(&self) -> crate::ondisk::Layout {
        crate::ondisk::Layout::of(self.cfg.swift.policy(self.policy))
    }

    /// EC: `X-Backend-Fragment-Preferences`, checked (Swift's
    /// `_validate_frag_prefs`): a JSON list of `{"timestamp", "exclude"}`.
    fn frag_choice(&self) -> Result<crate::ondisk::Choice, Response> {
        if !self.layout().is_ec() {
            return Ok(Default::default());
        }
        // An SSYNC update is about the session's fragment index (so another
        // fragment at the same time does not make its PUT a conflict).
        let frag_index = self.header("x-backend-ssync-frag-index").and_then(|v| v.trim().parse::<u32>().ok());
        let Some(raw) = self.header_bytes("x-backend-fragment-preferences") else {
            return Ok(crate::ondisk::Choice { frag_index, frag_prefs: None });
        };
        // Swift ignores what is not JSON (`safe_json_loads`).
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(raw) else {
            return Ok(crate::ondisk::Choice { frag_index, frag_prefs: None });
        };
        let bad = |why: &str| text(Status::BAD_REQUEST, format!("Bad frag_prefs: {why}"));
        let list = v.as_array().ok_or_else(|| bad("not a list"))?;
        let mut prefs = Vec::new();
        for p in list {
            let ts = p.get("timestamp").and_then(|t| match t {
                serde_json::Value::String(s) => Timestamp::parse(s).ok(),
                serde_json::Value::Number(n) => Timestamp::parse(&n.to_string()).ok(),
                _ => None,
            });
            let ts = ts.ok_or_else(|| bad("timestamp"))?;
            let exclude = p
                .get("exclude")
                .and_then(|e| e.as_array())
                .ok_or_else(|| bad("exclude"))?
                .iter()
                .map(|i| i.as_u64().and_then(|i| u32::try_from(i).ok()))
                .collect::<Option<Vec<u32>>>()
                .ok_or_else(|| bad("fragment index"))?;
            prefs.push(crate::ondisk::FragPref { timestamp: ts, exclude });
        }
        Ok(crate::ondisk::Choice { frag_index, frag_prefs: Some(prefs) })
    }

    /// `X-Timestamp` for PUT/POST/DELETE (§2.3).
    pub fn required_timestamp(&self) -> Result<Timestamp, Response> {
        aerie_storage::swob::x_timestamp(self.head)
    }
}

impl Processor for ObjectServer {
    fn executor(&self, head: &RequestHead) -> Executor {
        // Replication runs in the device's own lane: an SSYNC session lasts
        // as long as the sender sends, and must not hold the threads
        // client requests for the device wait for.
        aerie_storage::path::storage_executor(head)
    }

    fn call(&self, req: Request) -> Response {
        let Request { head, body } = req;
        let (target, policy) = match self.precheck(&head) {
            Ok(checked) => checked,
            Err(r) => return r,
        };
        let path = match target {
            Target::Object(p) => p,
            Target::Replicate { device, partition, suffixes } => {
                return replicate::replicate(&self.cfg, &device, &partition, suffixes.as_deref(), policy)
            }
            Target::Ssync { device, partition } => return self.ssync(&head, body, device, partition, policy),
        };
        let ctx = Ctx { cfg: &self.cfg, head: &head, path, policy, staging: None };
        match head.method() {
            Method::Put => put::put(&ctx, body),
            Method::Get => read::get_or_head(&ctx, false),
            Method::Head => read::get_or_head(&ctx, true),
            Method::Post => post_delete::post(&ctx),
            Method::Delete => post_delete::delete(&ctx),
            _ => page(Status::METHOD_NOT_ALLOWED),
        }
    }

    fn unknown_device(&self, head: &RequestHead, device: &str) -> Response {
        match self.precheck(head) {
            Err(r) => r,
            Ok(_) => insufficient_storage(device),
        }
    }
}

/// What a request is about, once its path is checked.
enum Target {
    /// An object (PUT, GET, HEAD, POST, DELETE).
    Object(ObjectPath),
    /// A partition's hashes (`REPLICATE /<dev>/<part>[/<suffixes>]`).
    Replicate { device: String, partition: String, suffixes: Option<String> },
    /// A replication session (`SSYNC /<dev>/<part>`).
    Ssync { device: String, partition: String },
}

/// The device and partition of a replication verb's path, and what follows
/// (`REPLICATE` allows one more segment, `SSYNC` none). Partitions are
/// numbers: they index the ring.
fn partition_path(path: &str, more: bool) -> Result<(String, String, Option<String>), PathError> {
    let segs = aerie_storage::path::split_path(path, 2, if more { 3 } else { 2 }, more)?;
    let mut it = segs.into_iter();
    let device = it.next().flatten().unwrap_or_default();
    let partition = it.next().flatten().unwrap_or_default();
    let rest = it.next().flatten();
    aerie_storage::path::validate_device_partition(&device, &partition)?;
    if partition.len() > 10 || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PathError::BadRequest(format!("Invalid partition: {}", aerie_storage::path::quote(&partition))));
    }
    Ok((device, partition, rest))
}

impl ObjectServer {
    /// The checks Swift's `ObjectController.__call__` makes before any
    /// disk is touched, in its order: the path decodes (412), the method
    /// (405), the storage policy (503), the path's shape (400). Pure: it
    /// also answers requests for devices this node does not have.
    fn precheck(&self, head: &RequestHead) -> Result<(Target, u32), Response> {
        let invalid_utf8 = || text(Status::PRECONDITION_FAILED, "Invalid UTF8 or contains NULL");
        let decoded = aerie_storage::path::decode_path(head.raw_path());
        if matches!(decoded, Err(PathError::NotUtf8)) {
            return Err(invalid_utf8());
        }
        if let Some(r) = aerie_storage::swob::check_method(head, METHODS, "object-server") {
            return Err(r);
        }
        let policy_header = head.header_str("x-backend-storage-policy-index").unwrap_or("").trim();
        let policy = if policy_header.is_empty() {
            Some(0)
        } else {
            policy_header.parse::<u32>().ok().filter(|i| self.cfg.swift.policy(*i).is_some())
        };
        let Some(policy) = policy else {
            return Err(text(Status::SERVICE_UNAVAILABLE, format!("No policy with index {policy_header}")));
        };
        let bad = |e: PathError| match e {
            PathError::NotUtf8 => invalid_utf8(),
            e => text(Status::BAD_REQUEST, e.to_string()),
        };
        let target = match head.method() {
            Method::Other(m) if &**m == "REPLICATE" => {
                let (device, partition, suffixes) = decoded.and_then(|p| partition_path(&p, true)).map_err(bad)?;
                Target::Replicate { device, partition, suffixes }
            }
            Method::Other(m) if &**m == "SSYNC" => {
                let (device, partition, _) = decoded.and_then(|p| partition_path(&p, false)).map_err(bad)?;
                if let Some(fi) = head.header_str("x-backend-ssync-frag-index").filter(|v| !v.is_empty()) {
                    if fi.trim().parse::<i64>().is_err() {
                        return Err(text(
                            Status::BAD_REQUEST,
                            format!("Invalid X-Backend-Ssync-Frag-Index {}", ssync::wire::py_repr(fi)),
                        ));
                    }
                }
                Target::Ssync { device, partition }
            }
            _ => Target::Object(ObjectPath::parse(head.raw_path()).map_err(bad)?),
        };
        Ok((target, policy))
    }

    /// Start an SSYNC session: the device must be there (507), then the
    /// conversation answers as it reads.
    fn ssync(&self, head: &RequestHead, body: RequestBody, device: String, partition: String, policy: u32) -> Response {
        let device_dir = match self.cfg.devices.device_dir(&device) {
            Ok(d) => d,
            Err(why) => {
                log::warn!("device {device} unavailable: {}", why.0);
                return insufficient_storage(&device);
            }
        };
        let receiver =
            ssync::receiver::Receiver::new(self.cfg.clone(), head, body, device, partition, policy, device_dir);
        Response::new(Status::OK)
            .with_header("Content-Type", &b"text/html; charset=UTF-8"[..])
            .with_header("X-Backend-Accept-No-Commit", &b"True"[..])
            .with_body(aerie_api::Body::Duplex(Box::new(receiver)))
    }
}
