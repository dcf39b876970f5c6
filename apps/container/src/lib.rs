//! The Swift-compatible container service (SWIFT-BACKEND.md §6), on SQLite
//! databases in Swift's schema (§9.1).
//!
//! Container verbs on `/<dev>/<part>/<account>/<container>` and object-row
//! verbs (from object servers) on `/<dev>/<part>/<account>/<container>/<obj>`;
//! the queue key is the device, so database work runs on that device's
//! pool threads. Checks follow Swift's order (§1.2).
#![forbid(unsafe_code)]

pub mod db;
pub mod reconcile;
pub mod replicate;
pub mod rows;
pub mod schema;
pub mod sync_to;
pub mod updater;

use aerie_api::{Body, Executor, Method, Processor, Request, RequestHead, Response, Status};
use aerie_storage::db::http::{db_error, is_true, listing_limit, negotiate, query_pairs};
use aerie_storage::db::{listing, meta};
use aerie_storage::fs::{Devices, Reserve};
use aerie_storage::path::{decode_path, split_path, validate_device_partition, PathError};
use aerie_storage::swift_conf::SwiftConf;
use aerie_storage::swob::{insufficient_storage, page, text};
use aerie_storage::timestamp::http_date;
use aerie_storage::Timestamp;
use db::{ContainerDb, Info};
use rows::Row;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What the container service needs.
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    /// Devices root and mount check.
    pub devices: Devices,
    /// swift.conf.
    pub swift: SwiftConf,
    /// Free space kept (PUT/POST answer 507 below it).
    pub reserve: Reserve,
    /// Connect timeout towards account servers.
    pub conn_timeout: Duration,
    /// Response timeout towards account servers.
    pub node_timeout: Duration,
    /// The hosts an `X-Container-Sync-To` URL may name.
    pub allowed_sync_hosts: Vec<String>,
    /// `container-sync-realms.conf` (read when a value names a realm).
    pub sync_realms: PathBuf,
}

/// The container processor.
pub struct ContainerServer {
    cfg: Arc<ContainerConfig>,
}

impl ContainerServer {
    /// Build it.
    pub fn new(cfg: ContainerConfig) -> ContainerServer {
        ContainerServer { cfg: Arc::new(cfg) }
    }
}

const METHODS: &[&str] = &["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "REPLICATE", "UPDATE"];

struct Ctx<'a> {
    cfg: &'a ContainerConfig,
    head: &'a RequestHead,
    device: String,
    partition: String,
    account: String,
    container: String,
    obj: Option<String>,
}

impl Ctx<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.header_str(name)
    }

    fn timestamp(&self) -> Result<Timestamp, Response> {
        aerie_storage::swob::x_timestamp(self.head)
    }

    fn db_path(&self) -> Result<PathBuf, Response> {
        let hash = self.cfg.swift.salt.hash_path(&self.account, Some(&self.container), None);
        aerie_storage::db::http::db_file(&self.cfg.devices, &self.device, &self.partition, "containers", &hash)
    }

    fn check_space(&self) -> Result<(), Response> {
        aerie_storage::db::http::check_space(&self.cfg.devices, &self.cfg.reserve, &self.device)
    }

    /// A sync target in the request, checked as Swift does (400).
    fn check_sync_to(&self) -> Result<(), Response> {
        let Some(v) = self.head.header("x-container-sync-to") else { return Ok(()) };
        let v = String::from_utf8_lossy(v);
        sync_to::validate(&v, &self.cfg.allowed_sync_hosts, &self.cfg.sync_realms)
            .map_err(|why| text(Status::BAD_REQUEST, why))
    }

    /// The policy header, validated (400 on an unknown index).
    fn policy_header(&self) -> Result<Option<i64>, Response> {
        let Some(v) = self.header("x-backend-storage-policy-index") else { return Ok(None) };
        match v.trim().parse::<u32>().ok().filter(|i| self.cfg.swift.policy(*i).is_some()) {
            Some(i) => Ok(Some(i64::from(i))),
            None => Err(text(Status::BAD_REQUEST, format!("Invalid X-Backend-Storage-Policy-Index '{v}'"))),
        }
    }
}

fn open(path: &std::path::Path) -> Result<Option<ContainerDb>, Response> {
    if !path.exists() {
        return Ok(None);
    }
    match ContainerDb::open(path) {
        Ok(db) => Ok(Some(db)),
        Err(e) => Err(db_error(e, path)),
    }
}

/// The backend headers of §6.2.
fn info_headers(info: Option<&Info>, mut resp: Response) -> Response {
    let zero = Timestamp::ZERO.internal();
    let get = |f: fn(&Info) -> String| info.map(f).unwrap_or_else(|| zero.clone());
    let norm = |s: String| Timestamp::parse(&s).map(|t| t.internal()).unwrap_or(s);
    resp = resp
        .with_header("X-Backend-Timestamp", norm(get(|i| i.created_at.clone())).into_bytes())
        .with_header("X-Backend-PUT-Timestamp", norm(get(|i| i.put_timestamp.clone())).into_bytes())
        .with_header("X-Backend-DELETE-Timestamp", norm(get(|i| i.delete_timestamp.clone())).into_bytes())
        .with_header("X-Backend-Status-Changed-At", norm(get(|i| i.status_changed_at.clone())).into_bytes())
        .with_header(
            "X-Backend-Storage-Policy-Index",
            info.map_or(0, |i| i.storage_policy_index).to_string().into_bytes(),
        );
    let Some(i) = info.filter(|i| !i.is_deleted()) else { return resp };
    let ts = |s: &str| Timestamp::parse(s).unwrap_or(Timestamp::ZERO);
    resp = resp
        .with_header("X-Container-Object-Count", i.object_count.to_string().into_bytes())
        .with_header("X-Container-Bytes-Used", i.bytes_used.to_string().into_bytes())
        .with_header("X-Timestamp", ts(&i.created_at).normal().into_bytes())
        .with_header("X-PUT-Timestamp", ts(&i.put_timestamp).normal().into_bytes())
        .with_header("X-Backend-Sharding-State", &b"unsharded"[..]);
    for (k, v) in meta::visible(&i.metadata) {
        resp = resp.with_header(k, v.into_bytes());
    }
    resp
}

impl Processor for ContainerServer {
    fn executor(&self, head: &RequestHead) -> Executor {
        aerie_storage::path::storage_executor(head)
    }

    fn call(&self, req: Request) -> Response {
        let Request { head, body } = req;
        if matches!(head.method(), Method::Other(m) if &**m == "REPLICATE") {
            return aerie_storage::db::rpc::handle::<replicate::Container>(
                &self.cfg.devices,
                &self.cfg.reserve,
                "containers",
                &head,
                body,
            );
        }
        let p = match self.precheck(&head) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let ctx = Ctx {
            cfg: &self.cfg,
            head: &head,
            device: p.device,
            partition: p.partition,
            account: p.account,
            container: p.container,
            obj: p.obj,
        };
        let r = match (head.method(), ctx.obj.is_some()) {
            (Method::Other(m), false) if &**m == "UPDATE" => update_rows(&ctx, body),
            (Method::Other(m), true) if &**m == "UPDATE" => Err(text(Status::BAD_REQUEST, "Invalid path")),
            (Method::Put, false) => put_container(&ctx),
            (Method::Put, true) => put_row(&ctx, false),
            (Method::Delete, true) => put_row(&ctx, true),
            (Method::Delete, false) => delete_container(&ctx),
            (Method::Post, false) => post_container(&ctx),
            (Method::Head, false) => head_or_get(&ctx, true),
            (Method::Get, false) => head_or_get(&ctx, false),
            _ => Err(page(Status::METHOD_NOT_ALLOWED)),
        };
        match r {
            Ok(r) | Err(r) => r,
        }
    }

    fn unknown_device(&self, head: &RequestHead, device: &str) -> Response {
        if matches!(head.method(), Method::Other(m) if &**m == "REPLICATE") {
            return match aerie_storage::db::rpc::check_path(head) {
                Err(r) => r,
                Ok(_) => insufficient_storage(device),
            };
        }
        match self.precheck(head) {
            Err(r) => r,
            Ok(_) => insufficient_storage(device),
        }
    }
}

/// A container request's path, checked.
struct Checked {
    device: String,
    partition: String,
    account: String,
    container: String,
    obj: Option<String>,
}

impl ContainerServer {
    /// Swift's checks before any disk is touched: the path decodes (412),
    /// the method (405), the path's shape and reserved names (400). Pure:
    /// it also answers requests for devices this node does not have.
    fn precheck(&self, head: &RequestHead) -> Result<Checked, Response> {
        let Ok(path) = decode_path(head.raw_path()) else {
            return Err(text(Status::PRECONDITION_FAILED, "Invalid UTF8 or contains NULL"));
        };
        if let Some(r) = aerie_storage::swob::check_method(head, METHODS, "container-server") {
            return Err(r);
        }
        let segs = split_path(&path, 4, 5, true).map_err(|e| text(Status::BAD_REQUEST, e.to_string()))?;
        let mut it = segs.into_iter();
        let (device, partition, account, container) = (
            it.next().flatten().unwrap_or_default(),
            it.next().flatten().unwrap_or_default(),
            it.next().flatten().unwrap_or_default(),
            it.next().flatten().unwrap_or_default(),
        );
        let obj = it.next().flatten().filter(|o| !o.is_empty());
        validate_device_partition(&device, &partition).map_err(|e| text(Status::BAD_REQUEST, e.to_string()))?;
        if let Err(PathError::BadRequest(m)) = aerie_storage::path::check_reserved_names(&account, Some(&container)) {
            return Err(text(Status::BAD_REQUEST, m));
        }
        Ok(Checked { device, partition, account, container, obj })
    }
}

fn put_container(ctx: &Ctx<'_>) -> Result<Response, Response> {
    let ts = ctx.timestamp()?;
    ctx.check_sync_to()?;
    meta::check_request(ctx.head, meta::Kind::Container, &ctx.cfg.swift.constraints)?;
    let path = ctx.db_path()?;
    ctx.check_space()?;
    let explicit = ctx.policy_header()?;
    let requested = match explicit {
        Some(p) => p,
        None => ctx
            .header("x-backend-storage-policy-default")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|i| ctx.cfg.swift.policy(*i).is_some())
            .map_or_else(|| i64::from(ctx.cfg.swift.default_policy().index), i64::from),
    };
    let (mut db, created) = match open(&path)? {
        Some(db) => (db, false),
        None => ContainerDb::create(&path, &ctx.account, &ctx.container, ts, requested, &ctx.device)
            .map_err(|e| db_error(e, &path))?,
    };
    let mut recreated = false;
    if !created {
        let info = db.info().map_err(|e| db_error(e, &path))?;
        if info.is_deleted() {
            recreated = true;
            let t = ts.internal();
            db.write(|tx| {
                tx.execute("UPDATE container_info SET storage_policy_index = ?", [requested])?;
                tx.execute("INSERT OR IGNORE INTO policy_stat (storage_policy_index) VALUES (?)", [requested])?;
                Ok(())
            })
            .map_err(|e| db_error(e, &path))?;
            let _ = t;
        } else if explicit.is_some_and(|p| p != info.storage_policy_index) {
            return Err(page(Status::CONFLICT)
                .with_header("X-Backend-Storage-Policy-Index", info.storage_policy_index.to_string().into_bytes()));
        }
        let t = ts.internal();
        db.write(|tx| tx.execute("UPDATE container_info SET put_timestamp = ? WHERE put_timestamp < ?", [&t, &t]))
            .map_err(|e| db_error(e, &path))?;
        let info = db.info().map_err(|e| db_error(e, &path))?;
        if info.is_deleted() {
            return Err(page(Status::CONFLICT));
        }
        if recreated {
            db.write(|tx| tx.execute("UPDATE container_info SET status_changed_at = ?", [&t]))
                .map_err(|e| db_error(e, &path))?;
        }
    }
    let current = db.info().map_err(|e| db_error(e, &path))?.metadata;
    if let Some(json) = meta::merge_request(&current, ctx.head, ts, meta::Kind::Container, &ctx.cfg.swift.constraints)?
    {
        db.write(|tx| tx.execute("UPDATE container_info SET metadata = ?", [&json])).map_err(|e| db_error(e, &path))?;
    }
    let info = db.info().map_err(|e| db_error(e, &path))?;
    if let Some(r) = account_update(ctx, &info)? {
        return Ok(r);
    }
    let status = if created || recreated { Status::CREATED } else { Status::ACCEPTED };
    let resp = if status == Status::ACCEPTED { page(Status::ACCEPTED) } else { Response::new(status) };
    Ok(resp.with_header("X-Backend-Storage-Policy-Index", info.storage_policy_index.to_string().into_bytes()))
}

/// §6.8: tell every account replica; `Some(404)` when all said 404.
fn account_update(ctx: &Ctx<'_>, info: &Info) -> Result<Option<Response>, Response> {
    let replicas = aerie_storage::replicas::Replicas::from_headers(ctx.head, "account")
        .map_err(|e| text(Status::BAD_REQUEST, e.to_string()))?;
    let Some(aerie_storage::replicas::Replicas { partition, nodes }) = replicas else { return Ok(None) };
    let targets = updater::Targets { partition, nodes };
    // Remembered for the container updater, which keeps the account's
    // figures current as rows change and retries what fails here.
    if let Ok(path) = ctx.db_path() {
        if let Err(e) = updater::save_targets(&path, &targets) {
            log::error!("could not remember the account replicas of {}: {e}", path.display());
        }
    }
    let host_hdr = ctx.header("host").map(str::to_string).unwrap_or_else(|| ctx.head.local().to_string());
    let mut extra = vec![
        ("X-Trans-Id".to_string(), ctx.header("x-trans-id").unwrap_or("-").to_string()),
        (
            "Referer".to_string(),
            format!("{} http://{host_hdr}{}", ctx.head.method(), String::from_utf8_lossy(ctx.head.raw_path())),
        ),
        ("User-Agent".to_string(), format!("container-server {}", std::process::id())),
    ];
    if ctx.header("x-account-override-deleted").is_some_and(|v| v.trim() == "yes") {
        extra.push(("X-Account-Override-Deleted".into(), "yes".into()));
    }
    let out = updater::send_update(&targets, info, &extra, ctx.cfg.conn_timeout, ctx.cfg.node_timeout);
    Ok((out.not_found == out.asked).then(|| page(Status::NOT_FOUND)))
}

fn put_row(ctx: &Ctx<'_>, delete: bool) -> Result<Response, Response> {
    let ts = ctx.timestamp()?;
    let path = ctx.db_path()?;
    ctx.check_space()?;
    let requested = ctx.policy_header()?;
    maybe_autocreate(ctx, &path, ts, requested)?;
    let policy = requested.unwrap_or(0);
    let obj = ctx.obj.clone().unwrap_or_default();
    let row = if delete {
        Row {
            name: obj,
            data: ts,
            ctype_ts: ts,
            meta: ts,
            size: 0,
            content_type: "application/deleted".into(),
            etag: "noetag".into(),
            deleted: true,
            policy,
        }
    } else {
        let (Some(size), Some(ctype), Some(etag)) =
            (ctx.header("x-size"), ctx.head.header("x-content-type"), ctx.header("x-etag"))
        else {
            return Err(text(Status::BAD_REQUEST, "X-Size, X-Content-Type and X-Etag are required"));
        };
        let size: i64 = size.trim().parse().map_err(|_| text(Status::BAD_REQUEST, "Invalid X-Size"))?;
        let parse = |h: &str, default: Timestamp| -> Result<Timestamp, Response> {
            match ctx.header(h) {
                None => Ok(default),
                Some(v) => Timestamp::parse(v).map_err(|_| text(Status::BAD_REQUEST, format!("Invalid {h}"))),
            }
        };
        let ctype_ts = parse("x-content-type-timestamp", ts)?;
        let meta_ts = parse("x-meta-timestamp", ctype_ts)?;
        Row {
            name: obj,
            data: ts,
            ctype_ts,
            meta: meta_ts,
            size,
            content_type: String::from_utf8_lossy(ctype).into_owned(),
            etag: etag.to_string(),
            deleted: false,
            policy,
        }
    };
    // Into the pending file, as Swift does; merged by the next reader, or
    // now when the file has grown large.
    if aerie_storage::db::append_pending(&path, &rows::pending_record(&row)).map_err(|e| db_error(e, &path))? {
        ContainerDb::merge_large_pending(&path).map_err(|e| db_error(e, &path))?;
    }
    Ok(Response::new(if delete { Status::NO_CONTENT } else { Status::CREATED }))
}

/// Swift's `_maybe_autocreate`: a missing database is created for the
/// accounts that may have one made by a row (`X-Backend-Auto-Create`, or
/// else the auto-create prefix but not the shards'), which needs the policy
/// index (400); otherwise a missing database is 404.
fn maybe_autocreate(ctx: &Ctx<'_>, path: &std::path::Path, ts: Timestamp, policy: Option<i64>) -> Result<(), Response> {
    if path.exists() {
        return Ok(());
    }
    let auto = match ctx.header("x-backend-auto-create").filter(|v| !v.is_empty()) {
        Some(v) => is_true(Some(v)),
        None => {
            ctx.account.starts_with(&ctx.cfg.swift.constraints.auto_create_account_prefix)
                && !ctx.account.starts_with(".shards_")
        }
    };
    if !auto {
        return Err(page(Status::NOT_FOUND));
    }
    let Some(policy) = policy else {
        return Err(text(Status::BAD_REQUEST, "X-Backend-Storage-Policy-Index header is required"));
    };
    // A row's timestamp may carry an offset the container's must not.
    let (db, _) = ContainerDb::create(path, &ctx.account, &ctx.container, ts.without_offset(), policy, &ctx.device)
        .map_err(|e| db_error(e, path))?;
    db.release();
    Ok(())
}

/// §6.10 `UPDATE`: the JSON list of object rows in the body merged as a
/// replica's `merge_items` would be (the proxy's path for SLO's async
/// segment deletes and the container deleter, into `.expiring_objects`).
/// Every row is checked before any is written: a bad body or row is 400.
fn update_rows(ctx: &Ctx<'_>, mut body: aerie_api::RequestBody) -> Result<Response, Response> {
    let ts = ctx.timestamp()?;
    let path = ctx.db_path()?;
    ctx.check_space()?;
    let requested = ctx.policy_header()?;
    maybe_autocreate(ctx, &path, ts, requested)?;
    let what = format!("UPDATE {}", path.display());
    let bytes = aerie_storage::db::http::read_body(&mut body, aerie_storage::db::rpc::MAX_BODY, &what)?;
    let rows = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Array(rows)) => rows,
        Ok(_) => return Err(text(Status::BAD_REQUEST, "the body must be a JSON list of object rows")),
        Err(e) => return Err(text(Status::BAD_REQUEST, e.to_string())),
    };
    let parsed = rows.iter().map(replicate::row_of).collect::<Result<Vec<Row>, _>>().map_err(|e| match e {
        aerie_storage::db::rpc::RpcError::Bad(why) => text(Status::BAD_REQUEST, why),
        aerie_storage::db::rpc::RpcError::Db(e) => db_error(e, &path),
    })?;
    let Some(mut db) = open(&path)? else { return Err(page(Status::NOT_FOUND)) };
    db.merge_rows(&parsed).map_err(|e| db_error(e, &path))?;
    db.release();
    Ok(page(Status::ACCEPTED))
}

fn delete_container(ctx: &Ctx<'_>) -> Result<Response, Response> {
    let ts = ctx.timestamp()?;
    let path = ctx.db_path()?;
    let Some(mut db) = open(&path)? else { return Err(page(Status::NOT_FOUND)) };
    if db.has_live_rows().map_err(|e| db_error(e, &path))? {
        return Err(page(Status::CONFLICT));
    }
    let info = db.info().map_err(|e| db_error(e, &path))?;
    let existed = Timestamp::parse(&info.put_timestamp).is_ok_and(|t| t.is_set()) && !info.is_deleted();
    let t = ts.internal();
    let cleared = meta::clear_all(&info.metadata, &t);
    db.write(|tx| {
        tx.execute("UPDATE container_info SET metadata = ?", [&cleared])?;
        tx.execute(
            "UPDATE container_info SET delete_timestamp = ?, status = 'DELETED', status_changed_at = ? WHERE delete_timestamp < ?",
            [&t, &t, &t],
        )?;
        Ok(())
    })
    .map_err(|e| db_error(e, &path))?;
    let info = db.info().map_err(|e| db_error(e, &path))?;
    if !info.is_deleted() {
        return Err(page(Status::CONFLICT));
    }
    if let Some(r) = account_update(ctx, &info)? {
        return Ok(r);
    }
    Ok(if existed { Response::new(Status::NO_CONTENT) } else { page(Status::NOT_FOUND) })
}

fn post_container(ctx: &Ctx<'_>) -> Result<Response, Response> {
    let ts = ctx.timestamp()?;
    ctx.check_sync_to()?;
    meta::check_request(ctx.head, meta::Kind::Container, &ctx.cfg.swift.constraints)?;
    let path = ctx.db_path()?;
    ctx.check_space()?;
    let Some(mut db) = open(&path)? else { return Err(page(Status::NOT_FOUND)) };
    let info = db.info().map_err(|e| db_error(e, &path))?;
    if info.is_deleted() {
        return Err(page(Status::NOT_FOUND));
    }
    if !is_true(ctx.header("x-backend-no-timestamp-update")) {
        let t = ts.internal();
        db.write(|tx| tx.execute("UPDATE container_info SET put_timestamp = ? WHERE put_timestamp < ?", [&t, &t]))
            .map_err(|e| db_error(e, &path))?;
    }
    let current = db.info().map_err(|e| db_error(e, &path))?.metadata;
    if let Some(json) = meta::merge_request(&current, ctx.head, ts, meta::Kind::Container, &ctx.cfg.swift.constraints)?
    {
        db.write(|tx| tx.execute("UPDATE container_info SET metadata = ?", [&json])).map_err(|e| db_error(e, &path))?;
    }
    Ok(Response::new(Status::NO_CONTENT))
}

fn head_or_get(ctx: &Ctx<'_>, head: bool) -> Result<Response, Response> {
    let query = query_pairs(ctx.head)?;
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let limit = listing_limit(get("limit").as_deref(), ctx.cfg.swift.constraints.container_listing_limit)?;
    let ctype = negotiate(ctx.head, &query)?;
    let path = ctx.db_path()?;
    let db = open(&path)?;
    let info = match &db {
        Some(db) => Some(db.info().map_err(|e| db_error(e, &path))?),
        None => None,
    };
    let Some(info) = info.filter(|i| !i.is_deleted()) else {
        return Err(info_headers(db.as_ref().and_then(|d| d.info().ok()).as_ref(), page(Status::NOT_FOUND)));
    };
    let last_modified =
        aerie_storage::timestamp::Timestamp::parse(&info.put_timestamp).map(|t| t.ceil_secs()).unwrap_or(0);
    let lm = http_date(last_modified);
    let content_type = format!("{ctype}; charset=utf-8");
    if head {
        if let Some(db) = db {
            db.release();
        }
        let r = info_headers(Some(&info), Response::new(Status::NO_CONTENT))
            .with_header("Content-Type", content_type.into_bytes())
            .with_header("Content-Length", &b"0"[..])
            .with_header("Last-Modified", lm.into_bytes());
        return Ok(r);
    }
    let record_policy = ctx.header("x-backend-storage-policy-index").and_then(|v| v.trim().parse::<i64>().ok());
    let policy = record_policy.unwrap_or(info.storage_policy_index);
    if ctx.header("x-backend-record-type").is_some_and(|v| v.eq_ignore_ascii_case("shard")) {
        let fmt = ctx.header("x-backend-record-shard-format").unwrap_or("full").to_string();
        return Ok(info_headers(Some(&info), Response::new(Status::OK))
            .with_header("Content-Type", &b"application/json; charset=utf-8"[..])
            .with_header("X-Backend-Record-Type", &b"shard"[..])
            .with_header("X-Backend-Record-Shard-Format", fmt.into_bytes())
            .with_body(Body::Bytes((&b"[]"[..]).into())));
    }
    let params = listing::ListParams {
        limit,
        marker: get("marker").unwrap_or_default(),
        end_marker: get("end_marker").unwrap_or_default(),
        prefix: get("prefix"),
        delimiter: get("delimiter"),
        path: get("path"),
        reverse: is_true(get("reverse").as_deref()),
        allow_reserved: is_true(ctx.header("x-backend-allow-reserved-names")),
        table: listing::Table::Objects { policy },
    };
    let db = db.ok_or_else(|| page(Status::NOT_FOUND))?;
    let entries = listing::list(db.conn(), &params).map_err(|e| db_error(e.into(), &path))?;
    db.release();
    let body = match ctype {
        "application/json" => listing::json(&entries),
        "application/xml" | "text/xml" => listing::xml(&ctx.container, &entries),
        _ => listing::plain(&entries),
    };
    let status = if body.is_empty() { Status::NO_CONTENT } else { Status::OK };
    Ok(info_headers(Some(&info), Response::new(status))
        .with_header("X-Backend-Record-Type", &b"object"[..])
        .with_header("X-Backend-Record-Storage-Policy-Index", policy.to_string().into_bytes())
        .with_header("Content-Type", content_type.into_bytes())
        .with_header("Last-Modified", lm.into_bytes())
        .with_body(Body::Bytes(body.into_bytes().into())))
}
