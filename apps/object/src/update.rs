//! Container and expirer-queue updates (§4.9–4.11), and async pendings.
//!
//! After an object write, the object server tells every container replica
//! named in `X-Container-Host/-Device/-Partition` about it, in parallel,
//! waiting at most `container_update_timeout`; the updates that are still
//! running then finish in the background. Every update that fails (connect
//! error, timeout, non-2xx — a 404 included) is saved as an *async pending*
//! file in Swift's format and location
//! (`<dev>/async_pending[-N]/<sfx>/<hash>-<ts>`), so nothing is lost: the
//! object updater replays it until the container accepts it. Besides
//! Swift's keys the record names the container host, device and partition
//! the update was for (`aerie_targets`, `aerie_partition`), since this node
//! has no ring to look them up in; Swift's own updater ignores those keys.

use crate::meta::Meta;
use crate::Ctx;
use aerie_storage::fs::{create_dirs, TempFile};
use aerie_storage::path::quote;
use aerie_storage::pickle::{dumps, loads, Value};
use aerie_storage::Timestamp;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Serialises the read-merge-write of async pending files in this process.
static PENDING_LOCK: Mutex<()> = Mutex::new(());

/// One update to send.
#[derive(Debug, Clone)]
pub struct Update {
    /// `PUT` or `DELETE`.
    pub op: String,
    /// Target account, container and object (the row's path).
    pub account: String,
    /// See `account`.
    pub container: String,
    /// See `account`.
    pub obj: String,
    /// Headers to send (names as Swift's HeaderKeyDict stores them).
    pub headers: Vec<(String, String)>,
    /// `X-Container-Root-Db-State`, if sent.
    pub db_state: Option<String>,
}

/// Where an update goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `ip:port`
    pub host: String,
    /// Container device.
    pub device: String,
    /// Container partition.
    pub partition: String,
}

/// Send one update; `Ok` on a 2xx.
pub fn send(target: &Target, u: &Update, conn_timeout: Duration, node_timeout: Duration) -> Result<(), String> {
    let path = quote(&format!("/{}/{}/{}/{}/{}", target.device, target.partition, u.account, u.container, u.obj));
    match aerie_storage::client::request(&target.host, &u.op, &path, &u.headers, conn_timeout, node_timeout)? {
        s if (200..300).contains(&s) => Ok(()),
        s => Err(format!("{s} from {}/{}", target.host, target.device)),
    }
}

fn async_dir(policy: u32) -> String {
    crate::diskfile::policy_dir("async_pending", policy)
}

/// The async-pending record of an update.
fn record(u: &Update, targets: &[Target]) -> Value {
    let s = |v: &str| Value::Str(v.to_string());
    let mut items = vec![
        (s("op"), s(&u.op)),
        (s("account"), s(&u.account)),
        (s("container"), s(&u.container)),
        (s("obj"), s(&u.obj)),
        (s("headers"), Value::Dict(u.headers.iter().map(|(k, v)| (s(k), s(v))).collect())),
        (s("db_state"), u.db_state.as_deref().map_or(Value::None, s)),
    ];
    items.push((
        s("aerie_targets"),
        Value::List(targets.iter().map(|t| Value::Tuple(vec![s(&t.host), s(&t.device)])).collect()),
    ));
    items.push((s("aerie_partition"), targets.first().map_or(Value::None, |t| s(&t.partition))));
    Value::Dict(items)
}

/// Save a failed update (merging targets with an existing record of the
/// same update).
pub fn save_pending(
    device_dir: &Path,
    policy: u32,
    hash_of_target: &str,
    u: &Update,
    target: Option<&Target>,
) -> std::io::Result<PathBuf> {
    let ts = u
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-meta-timestamp"))
        .or_else(|| u.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("x-timestamp")))
        .and_then(|(_, v)| Timestamp::parse(v).ok())
        .unwrap_or_else(Timestamp::now);
    let suffix = hash_of_target.get(hash_of_target.len().saturating_sub(3)..).unwrap_or("000");
    let dir = device_dir.join(async_dir(policy)).join(suffix);
    let dest = dir.join(format!("{hash_of_target}-{}", ts.internal()));
    let _guard = PENDING_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let mut targets: Vec<Target> =
        std::fs::read(&dest).ok().and_then(|b| loads(&b).ok()).map(|v| pending_targets(&v)).unwrap_or_default();
    if let Some(t) = target {
        if !targets.contains(t) {
            targets.push(t.clone());
        }
    }
    let created = create_dirs(&dir)?;
    let mut tmp = TempFile::create(&device_dir.join(crate::diskfile::policy_dir("tmp", policy)))?;
    tmp.file().write_all(&dumps(&record(u, &targets)))?;
    tmp.commit(&dest, &created)?;
    Ok(dest)
}

/// The targets a record names.
pub fn pending_targets(v: &Value) -> Vec<Target> {
    let partition =
        v.get("aerie_partition").and_then(|p| p.as_bytes()).map(|b| String::from_utf8_lossy(b).into_owned());
    let Some(Value::List(items)) = v.get("aerie_targets") else { return Vec::new() };
    items
        .iter()
        .filter_map(|t| match t {
            Value::Tuple(x) | Value::List(x) => {
                let host = String::from_utf8_lossy(x.first()?.as_bytes()?).into_owned();
                let device = String::from_utf8_lossy(x.get(1)?.as_bytes()?).into_owned();
                Some(Target { host, device, partition: partition.clone()? })
            }
            _ => None,
        })
        .collect()
}

/// Read an update back from its record.
pub fn pending_update(v: &Value) -> Option<Update> {
    let text = |k: &str| v.get(k).and_then(|x| x.as_bytes()).map(|b| String::from_utf8_lossy(b).into_owned());
    let headers = match v.get("headers") {
        Some(Value::Dict(items)) => items
            .iter()
            .filter_map(|(k, val)| {
                let k = String::from_utf8_lossy(k.as_bytes()?).into_owned();
                let val = match val {
                    Value::Int(i) => i.to_string(),
                    other => String::from_utf8_lossy(other.as_bytes()?).into_owned(),
                };
                Some((k, val))
            })
            .collect(),
        _ => Vec::new(),
    };
    Some(Update {
        op: text("op")?,
        account: text("account")?,
        container: text("container")?,
        obj: text("obj")?,
        headers,
        db_state: text("db_state"),
    })
}

/// Send `u` to every target in parallel, waiting at most the update
/// timeout; failures are saved as async pendings (by the sending threads,
/// so late failures are saved too).
fn dispatch(ctx: &Ctx<'_>, df_device_dir: &Path, u: Update, targets: Vec<Target>) {
    let hash = ctx.cfg.swift.salt.hash_path(&u.account, Some(&u.container), Some(&u.obj));
    if targets.is_empty() {
        if let Err(e) = save_pending(df_device_dir, ctx.policy, &hash, &u, None) {
            log::error!("could not save an async update for {}/{}/{}: {e}", u.account, u.container, u.obj);
        }
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    for t in targets {
        let (tx, u, hash) = (tx.clone(), u.clone(), hash.clone());
        let (dir, policy, ct, nt) =
            (df_device_dir.to_path_buf(), ctx.policy, ctx.cfg.conn_timeout, ctx.cfg.node_timeout);
        let spawned = std::thread::Builder::new().name("container-update".into()).spawn(move || {
            if let Err(why) = send(&t, &u, ct, nt) {
                log::error!(
                    "container update {} /{}/{}/{} to {}/{} failed (saving for async update later): {why}",
                    u.op,
                    u.account,
                    u.container,
                    u.obj,
                    t.host,
                    t.device
                );
                if let Err(e) = save_pending(&dir, policy, &hash, &u, Some(&t)) {
                    log::error!("could not save an async update: {e}");
                }
            }
            let _ = tx.send(());
        });
        if let Err(e) = spawned {
            log::error!("could not start a container update thread: {e}");
        }
    }
    drop(tx);
    let deadline = std::time::Instant::now() + ctx.cfg.container_update_timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(()) => continue,
            Err(_) => break,
        }
    }
}

fn referer(ctx: &Ctx<'_>) -> String {
    let host = ctx.header("host").map(str::to_string).unwrap_or_else(|| ctx.head.local().to_string());
    format!("{} http://{host}{}", ctx.head.method(), String::from_utf8_lossy(ctx.head.raw_path()))
}

fn base_headers(ctx: &Ctx<'_>) -> Vec<(String, String)> {
    vec![
        ("X-Trans-Id".into(), ctx.header("x-trans-id").unwrap_or("-").to_string()),
        ("Referer".into(), referer(ctx)),
        ("User-Agent".into(), format!("object-server {}", std::process::id())),
    ]
}

/// The container update for an object write (§4.9).
pub(crate) fn container_update(ctx: &Ctx<'_>, device_dir: &Path, op: &str, mut headers: Vec<(String, String)>) {
    let replicas = match aerie_storage::replicas::Replicas::from_headers(ctx.head, "container") {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => {
            log::error!("container update failed: {e}");
            return;
        }
    };
    let targets: Vec<Target> = replicas
        .nodes
        .into_iter()
        .map(|(host, device)| Target { host, device, partition: replicas.partition.clone() })
        .collect();
    headers.extend(base_headers(ctx));
    headers.push(("X-Backend-Storage-Policy-Index".into(), ctx.policy.to_string()));
    let (account, container) = container_path(ctx);
    let u = Update {
        op: op.to_string(),
        account,
        container,
        obj: ctx.path.object.clone(),
        headers,
        db_state: ctx.header("x-container-root-db-state").map(str::to_string),
    };
    dispatch(ctx, device_dir, u, targets);
}

/// `X-Backend-Quoted-Container-Path` (shards) or the object's own container.
fn container_path(ctx: &Ctx<'_>) -> (String, String) {
    let path = ctx
        .header("x-backend-quoted-container-path")
        .map(|p| String::from_utf8_lossy(&aerie_storage::path::percent_decode(p.as_bytes())).into_owned())
        .or_else(|| ctx.header("x-backend-container-path").map(str::to_string));
    if let Some(p) = path {
        if let Some((a, c)) = p.split_once('/') {
            if !a.is_empty() && !c.is_empty() && !c.contains('/') {
                return (a.to_string(), c.to_string());
            }
        }
        log::error!("invalid container path {p:?}; updating the object's own container");
    }
    (ctx.path.account.clone(), ctx.path.container.clone())
}

/// Apply the container-update overrides stored with the object (§4.9).
pub fn apply_overrides(headers: &mut Vec<(String, String)>, sources: &[&Meta]) {
    for prefix in ["x-backend-container-update-override-", "x-object-sysmeta-container-update-override-"] {
        for m in sources {
            for (k, v) in &m.0 {
                let lk = k.to_ascii_lowercase();
                if let Some(rest) = lk.strip_prefix(prefix) {
                    let name = format!("x-{rest}");
                    headers.retain(|(h, _)| !h.eq_ignore_ascii_case(&name));
                    headers.push((crate::meta::title(&name), String::from_utf8_lossy(v).into_owned()));
                }
            }
        }
    }
}

/// The expirer queue's update for an object (§4.10).
pub(crate) fn delete_at_update(
    ctx: &Ctx<'_>,
    device_dir: &Path,
    op: &str,
    delete_at: i64,
    extra: Vec<(String, String)>,
) {
    if ctx.is_true("x-backend-replication") {
        return;
    }
    let delete_at_s = crate::put::normalize_delete_at(delete_at as f64);
    let delete_at_n: i64 = delete_at_s.parse().unwrap_or(0);
    let salt = &ctx.cfg.swift.salt;
    let h = salt.hash_path(&ctx.path.account, Some(&ctx.path.container), Some(&ctx.path.object));
    let shard = u128::from_str_radix(&h, 16).unwrap_or(0) % 100;
    let day = delete_at_n.div_euclid(86_400) * 86_400;
    let computed = format!("{:010}", day - shard as i64);
    let account = format!("{}expiring_objects", ctx.cfg.swift.constraints.auto_create_account_prefix);
    let task_obj = format!("{delete_at_s}-{}/{}/{}", ctx.path.account, ctx.path.container, ctx.path.object);
    let ts = ctx.required_timestamp().map(|t| t.internal()).unwrap_or_default();
    let mut headers =
        vec![("X-Backend-Storage-Policy-Index".to_string(), "0".to_string()), ("X-Timestamp".to_string(), ts)];
    headers.extend(base_headers(ctx));
    let mut targets = Vec::new();
    let mut container = computed.clone();
    if op != "DELETE" {
        if ctx.header("x-delete-at-host").is_none() {
            return;
        }
        if let Some(pc) = ctx.header("x-delete-at-container") {
            if pc != computed {
                container = pc.trim().parse::<f64>().map(crate::put::normalize_delete_at).unwrap_or(computed.clone());
            }
        }
        if let Some(r) = aerie_storage::replicas::Replicas::from_headers_lenient(ctx.head, "delete-at") {
            for (host, device) in r.nodes {
                targets.push(Target { host, device, partition: r.partition.clone() });
            }
        }
        headers.push(("X-Size".into(), "0".into()));
        headers.push(("X-Content-Type".into(), "text/plain".into()));
        headers.push(("X-Etag".into(), "d41d8cd98f00b204e9800998ecf8427e".into()));
        for (k, v) in extra {
            headers.retain(|(h, _)| !h.eq_ignore_ascii_case(&k));
            headers.push((k, v));
        }
    } else if !ctx
        .header("x-backend-clean-expiring-object-queue")
        .is_none_or(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on" | "t" | "y"))
    {
        return;
    }
    let u = Update { op: op.to_string(), account, container, obj: task_obj, headers, db_state: None };
    // Dequeues always go to async pending; enqueues are sent (or saved when
    // no target could be formed).
    dispatch(ctx, device_dir, u, if op == "DELETE" { Vec::new() } else { targets });
}

/// `_conditional_delete_at_update`: enqueue the new X-Delete-At, dequeue a
/// replaced one.
pub(crate) fn conditional_delete_at_update(ctx: &Ctx<'_>, device_dir: &Path, data_meta: &Meta, orig: i64, new: i64) {
    if new != 0 {
        let len = data_meta.get_str("Content-Length").unwrap_or("0");
        let extra = vec![
            ("X-Content-Type".to_string(), format!("text/plain;swift_expirer_bytes={len}")),
            ("X-Content-Type-Timestamp".to_string(), data_meta.get_str("X-Timestamp").unwrap_or("").to_string()),
        ];
        delete_at_update(ctx, device_dir, "PUT", new, extra);
    }
    if orig != 0 && orig != new {
        delete_at_update(ctx, device_dir, "DELETE", orig, Vec::new());
    }
}

/// The updates after a successful PUT.
pub(crate) fn after_put(
    ctx: &Ctx<'_>,
    device_dir: &Path,
    meta: &Meta,
    footers: &Meta,
    orig_delete_at: Option<&str>,
    new_delete_at: Option<&str>,
) {
    let parse = |v: Option<&str>| v.and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or(0);
    conditional_delete_at_update(ctx, device_dir, meta, parse(orig_delete_at), parse(new_delete_at));
    let get = |k: &str| meta.get_str(k).unwrap_or("").to_string();
    let mut headers = vec![
        ("X-Size".to_string(), get("Content-Length")),
        ("X-Content-Type".to_string(), get("Content-Type")),
        ("X-Timestamp".to_string(), get("X-Timestamp")),
        ("X-Etag".to_string(), get("ETag")),
    ];
    let request_overrides = Meta(
        ctx.head
            .headers()
            .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-backend-container-update-override-"))
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect(),
    );
    let footer_overrides = Meta(
        footers
            .0
            .iter()
            .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-backend-container-update-override-"))
            .cloned()
            .collect(),
    );
    apply_overrides(&mut headers, &[&request_overrides, &footer_overrides, meta]);
    container_update(ctx, device_dir, "PUT", headers);
}
