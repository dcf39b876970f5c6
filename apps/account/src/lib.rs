//! The Swift-compatible account service (SWIFT-BACKEND.md §7), on SQLite
//! databases in Swift's schema (§9.2): account PUT/POST/HEAD/GET/DELETE on
//! `/<dev>/<part>/<account>`, and container rows from container servers on
//! `/<dev>/<part>/<account>/<container>`. The queue key is the device.
#![forbid(unsafe_code)]

pub mod db;
pub mod replicate;

use aerie_api::{Body, Executor, Method, Processor, Request, RequestHead, Response, Status};
use aerie_storage::db::http::{db_error, is_true, listing_limit, negotiate, query_pairs};
use aerie_storage::db::listing::{self, ListParams, Table};
use aerie_storage::db::meta::{self, Kind};
use aerie_storage::fs::{Devices, Reserve};
use aerie_storage::header::title;
use aerie_storage::path::{decode_path, split_path, validate_device_partition};
use aerie_storage::swift_conf::SwiftConf;
use aerie_storage::swob::{page, text};
use aerie_storage::Timestamp;
use db::{AccountDb, ContainerRow, Info};
use std::path::PathBuf;
use std::sync::Arc;

/// What the account service needs.
#[derive(Debug, Clone)]
pub struct AccountConfig {
    /// Devices root and mount check.
    pub devices: Devices,
    /// swift.conf (policies name the per-policy headers).
    pub swift: SwiftConf,
    /// Free space kept.
    pub reserve: Reserve,
}

/// The account processor.
pub struct AccountServer {
    cfg: Arc<AccountConfig>,
}

impl AccountServer {
    /// Build it.
    pub fn new(cfg: AccountConfig) -> AccountServer {
        AccountServer { cfg: Arc::new(cfg) }
    }
}

const METHODS: &[&str] = &["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "REPLICATE"];

struct Ctx<'a> {
    cfg: &'a AccountConfig,
    head: &'a RequestHead,
    device: String,
    partition: String,
    account: String,
    container: Option<String>,
}

impl Ctx<'_> {
    fn header(&self, n: &str) -> Option<&str> {
        self.head.header_str(n)
    }

    fn timestamp(&self) -> Result<Timestamp, Response> {
        aerie_storage::swob::x_timestamp(self.head)
    }

    fn db_path(&self) -> Result<PathBuf, Response> {
        let hash = self.cfg.swift.salt.hash_path(&self.account, None, None);
        aerie_storage::db::http::db_file(&self.cfg.devices, &self.device, &self.partition, "accounts", &hash)
    }

    fn check_space(&self) -> Result<(), Response> {
        aerie_storage::db::http::check_space(&self.cfg.devices, &self.cfg.reserve, &self.device)
    }

    fn policy_name(&self, index: i64) -> Option<String> {
        u32::try_from(index).ok().and_then(|i| self.cfg.swift.policy(i)).map(|p| p.name.clone())
    }
}

fn open(path: &std::path::Path) -> Result<Option<AccountDb>, Response> {
    if !path.exists() {
        return Ok(None);
    }
    AccountDb::open(path).map(Some).map_err(|e| db_error(e, path))
}

fn deleted_404(info: Option<&Info>) -> Response {
    let r = page(Status::NOT_FOUND);
    if info.is_some_and(Info::is_status_deleted) {
        r.with_header("X-Account-Status", &b"Deleted"[..])
    } else {
        r
    }
}

impl Processor for AccountServer {
    fn executor(&self, head: &RequestHead) -> Executor {
        aerie_storage::path::storage_executor(head)
    }

    fn call(&self, req: Request) -> Response {
        let Request { head, body } = req;
        if matches!(head.method(), Method::Other(m) if &**m == "REPLICATE") {
            return aerie_storage::db::rpc::handle::<replicate::Account>(
                &self.cfg.devices,
                &self.cfg.reserve,
                "accounts",
                &head,
                body,
            );
        }
        let (path, ctx) = match self.precheck(&head) {
            Ok((path, device, partition, account, container)) => {
                (path, Ctx { cfg: &self.cfg, head: &head, device, partition, account, container })
            }
            Err(r) => return r,
        };
        let r = match (head.method(), ctx.container.is_some()) {
            (Method::Put, true) => put_container_row(&ctx),
            (Method::Put, false) => put_account(&ctx),
            (Method::Post, false) => post_account(&ctx),
            (Method::Delete, false) => delete_account(&ctx),
            (Method::Head, false) => head_or_get(&ctx, true),
            (Method::Get, false) => head_or_get(&ctx, false),
            _ => Err(text(Status::BAD_REQUEST, format!("Invalid path: {}", aerie_storage::path::quote(&path)))),
        };
        match r {
            Ok(r) | Err(r) => r,
        }
    }

    fn unknown_device(&self, head: &RequestHead, device: &str) -> Response {
        if matches!(head.method(), Method::Other(m) if &**m == "REPLICATE") {
            return match aerie_storage::db::rpc::check_path(head) {
                Err(r) => r,
                Ok(_) => aerie_storage::swob::insufficient_storage(device),
            };
        }
        match self.precheck(head) {
            Err(r) => r,
            Ok(_) => aerie_storage::swob::insufficient_storage(device),
        }
    }
}

/// The decoded path, device, partition, account and container.
type Checked = (String, String, String, String, Option<String>);

impl AccountServer {
    /// Swift's checks before any disk is touched: the path decodes (412),
    /// the method (405), the path's shape (400). Pure.
    fn precheck(&self, head: &RequestHead) -> Result<Checked, Response> {
        let Ok(path) = decode_path(head.raw_path()) else {
            return Err(text(Status::PRECONDITION_FAILED, "Invalid UTF8"));
        };
        if let Some(r) = aerie_storage::swob::check_method(head, METHODS, "account-server") {
            return Err(r);
        }
        let segs = split_path(&path, 3, 4, false).map_err(|e| text(Status::BAD_REQUEST, e.to_string()))?;
        let mut it = segs.into_iter();
        let (device, partition, account) = (
            it.next().flatten().unwrap_or_default(),
            it.next().flatten().unwrap_or_default(),
            it.next().flatten().unwrap_or_default(),
        );
        let container = it.next().flatten().filter(|c| !c.is_empty());
        validate_device_partition(&device, &partition).map_err(|e| text(Status::BAD_REQUEST, e.to_string()))?;
        Ok((path, device, partition, account, container))
    }
}

fn store_metadata(db: &mut AccountDb, ctx: &Ctx<'_>, ts: Timestamp, path: &std::path::Path) -> Result<(), Response> {
    let current = db.info().map_err(|e| db_error(e, path))?.metadata;
    if let Some(json) = meta::merge_request(&current, ctx.head, ts, Kind::Account, &ctx.cfg.swift.constraints)? {
        db.write(|tx| tx.execute("UPDATE account_stat SET metadata = ?", [&json])).map_err(|e| db_error(e, path))?;
    }
    Ok(())
}

fn put_account(ctx: &Ctx<'_>) -> Result<Response, Response> {
    let path = ctx.db_path()?;
    ctx.check_space()?;
    let ts = ctx.timestamp()?;
    meta::check_request(ctx.head, Kind::Account, &ctx.cfg.swift.constraints)?;
    let (mut db, created) = match open(&path)? {
        Some(db) => {
            let info = db.info().map_err(|e| db_error(e, &path))?;
            if info.is_status_deleted() {
                return Err(
                    text(Status::FORBIDDEN, "Recently deleted").with_header("X-Account-Status", &b"Deleted"[..])
                );
            }
            (db, info.is_deleted())
        }
        None => AccountDb::create(&path, &ctx.account, ts, &ctx.device).map_err(|e| db_error(e, &path))?,
    };
    let t = ts.internal();
    db.write(|tx| tx.execute("UPDATE account_stat SET put_timestamp = ? WHERE put_timestamp < ?", [&t, &t]))
        .map_err(|e| db_error(e, &path))?;
    if db.info().map_err(|e| db_error(e, &path))?.is_deleted() {
        return Err(page(Status::CONFLICT));
    }
    store_metadata(&mut db, ctx, ts, &path)?;
    Ok(if created {
        Response::new(Status::CREATED)
    } else {
        Response::new(Status::ACCEPTED).with_header("Content-Type", &b"text/html; charset=UTF-8"[..]).with_body(
            Body::Bytes((&b"<html><h1>Accepted</h1><p>The request is accepted for processing.</p></html>"[..]).into()),
        )
    })
}

fn post_account(ctx: &Ctx<'_>) -> Result<Response, Response> {
    let ts = ctx.timestamp()?;
    meta::check_request(ctx.head, Kind::Account, &ctx.cfg.swift.constraints)?;
    let path = ctx.db_path()?;
    ctx.check_space()?;
    let Some(mut db) = open(&path)? else { return Err(page(Status::NOT_FOUND)) };
    let info = db.info().map_err(|e| db_error(e, &path))?;
    if info.is_deleted() {
        return Err(deleted_404(Some(&info)));
    }
    store_metadata(&mut db, ctx, ts, &path)?;
    Ok(Response::new(Status::NO_CONTENT))
}

fn delete_account(ctx: &Ctx<'_>) -> Result<Response, Response> {
    let path = ctx.db_path()?;
    let ts = ctx.timestamp()?;
    let Some(mut db) = open(&path)? else { return Err(page(Status::NOT_FOUND)) };
    let info = db.info().map_err(|e| db_error(e, &path))?;
    if info.is_deleted() {
        return Err(deleted_404(Some(&info)));
    }
    let t = ts.internal();
    let cleared = meta::clear_all(&info.metadata, &t);
    db.write(|tx| {
        tx.execute(
            "UPDATE account_stat SET metadata = ?, delete_timestamp = ?, status = 'DELETED', status_changed_at = ?",
            [&cleared, &t, &t],
        )
    })
    .map_err(|e| db_error(e, &path))?;
    Ok(Response::new(Status::NO_CONTENT).with_header("X-Account-Status", &b"Deleted"[..]))
}

fn put_container_row(ctx: &Ctx<'_>) -> Result<Response, Response> {
    let path = ctx.db_path()?;
    ctx.check_space()?;
    // The row carries its own timestamps; X-Timestamp is optional here but
    // must be valid when sent.
    if let Some(v) = ctx.header("x-timestamp") {
        Timestamp::parse(v).map_err(|_| text(Status::BAD_REQUEST, "Invalid X-Timestamp header"))?;
    }
    if !path.exists() {
        if !ctx.account.starts_with(&ctx.cfg.swift.constraints.auto_create_account_prefix) {
            return Err(page(Status::NOT_FOUND));
        }
        let (db, _) =
            AccountDb::create(&path, &ctx.account, Timestamp::now(), &ctx.device).map_err(|e| db_error(e, &path))?;
        db.release();
    }
    let info = AccountDb::peek(&path).map_err(|e| db_error(e, &path))?;
    if info.is_deleted() && ctx.header("x-account-override-deleted").is_none_or(|v| v.trim() != "yes") {
        return Err(deleted_404(Some(&info)));
    }
    let (Some(put), Some(del), Some(count), Some(bytes)) = (
        ctx.header("x-put-timestamp"),
        ctx.header("x-delete-timestamp"),
        ctx.header("x-object-count"),
        ctx.header("x-bytes-used"),
    ) else {
        return Err(text(
            Status::BAD_REQUEST,
            "X-Put-Timestamp, X-Delete-Timestamp, X-Object-Count and X-Bytes-Used are required",
        ));
    };
    let num = |v: &str| v.trim().parse::<i64>().map_err(|_| text(Status::BAD_REQUEST, format!("invalid number {v:?}")));
    for (name, v) in [("X-Put-Timestamp", put), ("X-Delete-Timestamp", del)] {
        Timestamp::parse(v.trim()).map_err(|_| text(Status::BAD_REQUEST, format!("Invalid {name} header")))?;
    }
    let row = ContainerRow {
        name: ctx.container.clone().unwrap_or_default(),
        put_timestamp: put.trim().to_string(),
        delete_timestamp: del.trim().to_string(),
        object_count: num(count)?,
        bytes_used: num(bytes)?,
        policy: ctx.header("x-backend-storage-policy-index").map(num).transpose()?.unwrap_or(0),
    };
    // Into the pending file, as Swift does; merged by the next reader, or
    // now when the file has grown large.
    if aerie_storage::db::append_pending(&path, &db::pending_record(&row)).map_err(|e| db_error(e, &path))? {
        AccountDb::merge_large_pending(&path).map_err(|e| db_error(e, &path))?;
    }
    Ok(Response::new(if del.trim() > put.trim() { Status::NO_CONTENT } else { Status::CREATED }))
}

fn head_or_get(ctx: &Ctx<'_>, head: bool) -> Result<Response, Response> {
    let query = query_pairs(ctx.head)?;
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let limit = listing_limit(get("limit").as_deref(), ctx.cfg.swift.constraints.account_listing_limit)?;
    let ctype = negotiate(ctx.head, &query)?;
    let path = ctx.db_path()?;
    let db = open(&path)?;
    let info = match &db {
        Some(db) => Some(db.info().map_err(|e| db_error(e, &path))?),
        None => None,
    };
    let Some(info) = info.clone().filter(|i| !i.is_deleted()) else { return Err(deleted_404(info.as_ref())) };
    let Some(db) = db else { return Err(page(Status::NOT_FOUND)) };
    let ts = |s: &str| Timestamp::parse(s).unwrap_or(Timestamp::ZERO);
    let mut headers: Vec<(String, String)> = vec![
        ("X-Account-Container-Count".into(), info.container_count.to_string()),
        ("X-Account-Object-Count".into(), info.object_count.to_string()),
        ("X-Account-Bytes-Used".into(), info.bytes_used.to_string()),
        ("X-Timestamp".into(), ts(&info.created_at).normal()),
        ("X-PUT-Timestamp".into(), ts(&info.put_timestamp).normal()),
    ];
    for (index, containers, objects, bytes) in db.policy_stats().map_err(|e| db_error(e, &path))? {
        let Some(name) = ctx.policy_name(index) else { continue };
        let n = title(&name);
        headers.push((format!("X-Account-Storage-Policy-{n}-Container-Count"), containers.to_string()));
        headers.push((format!("X-Account-Storage-Policy-{n}-Object-Count"), objects.to_string()));
        headers.push((format!("X-Account-Storage-Policy-{n}-Bytes-Used"), bytes.to_string()));
    }
    headers.extend(meta::visible(&info.metadata));
    let content_type = format!("{ctype}; charset=utf-8");
    let with = |mut r: Response| {
        for (k, v) in &headers {
            r = r.with_header(k.clone(), v.clone().into_bytes());
        }
        r.with_header("Content-Type", content_type.clone().into_bytes())
    };
    if head {
        db.release();
        return Ok(with(Response::new(Status::NO_CONTENT)).with_header("Content-Length", &b"0"[..]));
    }
    let params = ListParams {
        limit,
        marker: get("marker").unwrap_or_default(),
        end_marker: get("end_marker").unwrap_or_default(),
        prefix: get("prefix"),
        delimiter: get("delimiter"),
        path: None,
        reverse: is_true(get("reverse").as_deref()),
        allow_reserved: is_true(ctx.header("x-backend-allow-reserved-names")),
        table: Table::Containers,
    };
    let entries = listing::list(db.conn(), &params).map_err(|e| db_error(e.into(), &path))?;
    db.release();
    let names = |i: i64| ctx.policy_name(i);
    let body = match ctype {
        "application/json" => listing::json_with(&entries, &names),
        "application/xml" | "text/xml" => listing::account_xml(&ctx.account, &entries, &names),
        _ => listing::plain(&entries),
    };
    let status = if body.is_empty() { Status::NO_CONTENT } else { Status::OK };
    Ok(with(Response::new(status)).with_body(Body::Bytes(body.into_bytes().into())))
}
