//! Swift's database replication RPC, the answering side
//! (SWIFT-REPLICATION.md §5.1–5.3, Swift's `ReplicatorRpc`):
//! `REPLICATE /<dev>/<part>/<hash>` with a JSON list `[op, args…]` as its
//! body, on the container and account services alike. What differs
//! between the two (their tables, their replication info, how rows merge,
//! the container's shard ranges and policy reconciliation) is the
//! [`Replica`] a service implements; the ops, the sync points, the rsync
//! hand-overs and every status are here.
//!
//! Every call blocks on the disk: only pool threads use this.

use super::known::{Known, Stamp};
use super::{immediate, DbError};
use crate::fs::{Devices, Reserve};
use crate::path::{decode_path, split_path, validate_device_partition};
use crate::pyjson;
use crate::swob::{insufficient_storage, page, text};
use aerie_api::{Body, RequestBody, RequestHead, Response, Status};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Rows copied per batch when a replica is merged into an rsynced copy.
const RSYNC_MERGE_BATCH: i64 = 1000;

/// Why an op failed.
#[derive(Debug)]
pub enum RpcError {
    /// The request is wrong (400, with this message).
    Bad(String),
    /// The database failed.
    Db(DbError),
}

impl From<DbError> for RpcError {
    fn from(e: DbError) -> Self {
        RpcError::Db(e)
    }
}

impl From<rusqlite::Error> for RpcError {
    fn from(e: rusqlite::Error) -> Self {
        RpcError::Db(DbError::from(e))
    }
}

fn bad<T>(why: impl Into<String>) -> Result<T, RpcError> {
    Err(RpcError::Bad(why.into()))
}

/// What a service's database gives the RPC.
pub trait Replica: Sized {
    /// The table of rows (`object`, `container`).
    const ROWS: &'static str;
    /// The info table or view updated by replication (`container_stat`,
    /// `account_stat`).
    const STAT: &'static str;

    /// Open an existing database (its `.pending` merged).
    fn open(path: &Path) -> Result<Self, DbError>;
    /// The connection.
    fn conn(&mut self) -> &mut Connection;
    /// Done with it.
    fn release(self);
    /// Swift's `get_replication_info()`: the fields, in Python's order.
    fn replication_info(&mut self) -> Result<Vec<(String, Value)>, DbError>;
    /// Merge rows as `merge_items` sends them (`SELECT *` dicts), and
    /// advance `incoming_sync[source]` as Swift's broker does.
    fn merge_items(&mut self, rows: &[Value], source: Option<&str>) -> Result<(), RpcError>;
    /// Swift's `_is_deleted` on this connection.
    fn is_deleted(conn: &Connection) -> rusqlite::Result<bool>;
    /// What `newid` resets besides the id (the container's reported
    /// figures).
    fn after_newid(_conn: &Connection) -> rusqlite::Result<()> {
        Ok(())
    }
    /// Whether the database exists (containers: any `<hash>[_<epoch>].db`).
    fn exists(db_file: &Path) -> bool {
        db_file.exists()
    }
    /// Before `sync` answers: adopt what the remote says better (the
    /// container's policy index). `remote` is the op's arguments.
    fn before_sync(&mut self, _remote: &[Value]) -> Result<(), RpcError> {
        Ok(())
    }
    /// Whether [`Replica::before_sync`] would change a replica with this
    /// replication `info` (or refuse the arguments).
    fn before_sync_changes(_info: &Map<String, Value>, _remote: &[Value]) -> bool {
        false
    }
    /// Ops only this kind has: `None` when `op` is not one of them.
    fn other_op(&mut self, _op: &str, _args: &[Value]) -> Option<Result<Response, RpcError>> {
        None
    }
    /// `rsync_then_merge`, after the rows: what else moves from the
    /// existing database into the rsynced one (shard ranges).
    fn after_rsync_merge(&mut self, _into: &mut Self) -> Result<(), RpcError> {
        Ok(())
    }
    /// `rsync_then_merge` stops when this says so (a container that has
    /// started sharding).
    fn refuses_rsync_merge(&mut self) -> Result<bool, DbError> {
        Ok(false)
    }
}

/// Where a `REPLICATE` points: the device directory, the database file.
pub struct Target {
    /// `<root>/<device>`.
    pub device_dir: PathBuf,
    /// `<device_dir>/<datadir>/<part>/<suffix>/<hash>/<hash>.db`.
    pub db_file: PathBuf,
}

/// The largest `REPLICATE` body read (Swift's replicator sends batches of
/// `per_diff` rows, 1000 by default: far less than this).
pub const MAX_BODY: u64 = 64 << 20;

/// Answer `REPLICATE /<dev>/<part>/<hash>` for the databases under
/// `datadir` (`containers`, `accounts`): the path (412, 400), the device
/// (507 unmounted or past the free-space reserve), the body (413 past
/// [`MAX_BODY`]), then the op.
pub fn handle<R: Replica>(
    devices: &Devices,
    reserve: &Reserve,
    datadir: &str,
    head: &RequestHead,
    mut body: RequestBody,
) -> Response {
    let (device, partition, hash) = match check_path(head) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Ok(device_dir) = devices.device_dir(&device) else { return insufficient_storage(&device) };
    let db_file = super::http::db_file_in(&device_dir, &partition, datadir, &hash);
    if let Err(r) = super::http::check_space(devices, reserve, &device) {
        return r;
    }
    let what = format!("REPLICATE {}", db_file.display());
    let bytes = match super::http::read_body(&mut body, MAX_BODY, &what) {
        Ok(b) => b,
        Err(r) => return r,
    };
    dispatch::<R>(&Target { device_dir, db_file }, &bytes)
}

/// A `REPLICATE` path: `(device, partition, hash)`, or its 412/400.
pub fn check_path(head: &RequestHead) -> Result<(String, String, String), Response> {
    let Ok(path) = decode_path(head.raw_path()) else {
        return Err(text(Status::PRECONDITION_FAILED, "Invalid UTF8 or contains NULL"));
    };
    let segs = split_path(&path, 3, 3, false).map_err(|e| text(Status::BAD_REQUEST, e.to_string()))?;
    let mut it = segs.into_iter().map(Option::unwrap_or_default);
    let (device, partition, hash) =
        (it.next().unwrap_or_default(), it.next().unwrap_or_default(), it.next().unwrap_or_default());
    validate_device_partition(&device, &partition).map_err(|e| text(Status::BAD_REQUEST, e.to_string()))?;
    if hash.len() != 32 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(text(Status::BAD_REQUEST, "Invalid hash"));
    }
    Ok((device, partition, hash))
}

/// Answer one `REPLICATE` body.
pub fn dispatch<R: Replica>(target: &Target, body: &[u8]) -> Response {
    let args: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return text(Status::BAD_REQUEST, e.to_string()),
    };
    let Value::Array(mut args) = args else { return text(Status::BAD_REQUEST, "Invalid object type") };
    if args.is_empty() {
        return text(Status::BAD_REQUEST, "No op");
    }
    let Value::String(op) = args.remove(0) else { return text(Status::BAD_REQUEST, "Invalid op") };
    let done = match op.as_str() {
        "complete_rsync" => complete_rsync::<R>(target, &args),
        "rsync_then_merge" => rsync_then_merge::<R>(target, &args),
        _ => {
            // Someone may be about to rsync a database here.
            if let Err(e) = crate::fs::create_dirs(&target.device_dir.join("tmp")) {
                log::error!("{}: could not make tmp/: {e}", target.device_dir.display());
                return page(Status::INTERNAL_SERVER_ERROR);
            }
            if op == "sync" {
                if let Some(answer) = sync_known::<R>(&target.db_file, &args) {
                    return answer;
                }
            }
            if !R::exists(&target.db_file) {
                return page(Status::NOT_FOUND);
            }
            let mut db = match R::open(&target.db_file) {
                Ok(db) => db,
                Err(e) => return super::http::db_error(e, &target.db_file),
            };
            let r = match op.as_str() {
                "sync" => sync(&mut db, &target.db_file, &args),
                "merge_items" => merge_items(&mut db, &args),
                "merge_syncs" => merge_syncs_op(&mut db, &args),
                other => db.other_op(other, &args).unwrap_or_else(|| bad(format!("Unknown op {other:?}"))),
            };
            db.release();
            r
        }
    };
    match done {
        Ok(r) => r,
        Err(RpcError::Bad(why)) => {
            log::warn!("REPLICATE {} {op}: {why}", target.db_file.display());
            text(Status::BAD_REQUEST, why)
        }
        Err(RpcError::Db(e)) => super::http::db_error(e, &target.db_file),
    }
}

fn arg_str<'a>(args: &'a [Value], i: usize, what: &str) -> Result<&'a str, RpcError> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s),
        _ => bad(format!("{what} must be a string")),
    }
}

fn arg_int(args: &[Value], i: usize, what: &str) -> Result<i64, RpcError> {
    match args.get(i).and_then(Value::as_i64) {
        Some(n) => Ok(n),
        None => bad(format!("{what} must be an integer")),
    }
}

/// A `sync` call's arguments (Swift's seven; a container's policy
/// figures after them are the [`Replica`]'s).
struct SyncCall<'a> {
    remote_point: i64,
    remote_hash: &'a str,
    remote_id: &'a str,
    /// `created_at`, `put_timestamp`, `delete_timestamp`.
    remote_ts: [&'a str; 3],
    /// The remote's metadata; `None` when it is not a JSON object.
    metadata: Option<Map<String, Value>>,
}

impl<'a> SyncCall<'a> {
    fn parse(args: &'a [Value]) -> Result<SyncCall<'a>, RpcError> {
        if args.len() < 7 {
            return bad("sync needs 7 arguments");
        }
        let metadata = match &args[6] {
            Value::String(s) if s.is_empty() => Some(Map::new()),
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(m)) => Some(m),
                _ => None,
            },
            Value::Null => Some(Map::new()),
            _ => return bad("metadata must be a string"),
        };
        Ok(SyncCall {
            remote_point: arg_int(args, 0, "max_row")?,
            remote_hash: arg_str(args, 1, "hash")?,
            remote_id: arg_str(args, 2, "id")?,
            remote_ts: [
                arg_str(args, 3, "created_at")?,
                arg_str(args, 4, "put_timestamp")?,
                arg_str(args, 5, "delete_timestamp")?,
            ],
            metadata,
        })
    }
}

/// What a `sync` answer needs of a replica, kept while its file is as it
/// was (SWIFT-REPLICATION.md §5.3: a replica in sync answers the same
/// every pass).
struct Synced {
    /// Its replication info, as answered without `point`.
    info: String,
    /// Its `incoming_sync` points.
    incoming: Vec<(String, i64)>,
}

/// Databases in this process's memory at most: about a kilobyte each.
const SYNCED_CAP: usize = 50_000;

/// The replicas this process answered `sync` for lately (a worker's pool
/// threads share them).
fn answered() -> &'static Known<Synced> {
    static SYNCED: OnceLock<Known<Synced>> = OnceLock::new();
    SYNCED.get_or_init(|| Known::new(SYNCED_CAP))
}

/// Swift's `update_metadata` rule for one item: `new` (`[value,
/// timestamp]`) replaces `old` when its timestamp is newer.
pub fn metadata_item_wins(new: &Value, old: Option<&Value>) -> bool {
    let ts_of = |v: &Value| v.get(1).and_then(Value::as_str).map(str::to_string);
    let (Some(new_ts), Some(_)) = (ts_of(new), new.get(0)) else { return false };
    old.and_then(ts_of).is_none_or(|old| new_ts > old)
}

/// Whether any item of `updates` would change the metadata JSON `local`.
pub fn metadata_changes(local: &str, updates: &Map<String, Value>) -> bool {
    if updates.is_empty() {
        return false;
    }
    let md = match serde_json::from_str::<Value>(local) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    updates.iter().any(|(k, v)| metadata_item_wins(v, md.get(k)))
}

/// The sync point a `sync` call answers when it changes nothing on a
/// replica with this `info` and `incoming` points; `None` when it would
/// write (metadata, timestamps, a sync point, the replica's own).
fn quiet_point<R: Replica>(
    info: &Map<String, Value>,
    incoming: &[(String, i64)],
    call: &SyncCall<'_>,
    args: &[Value],
) -> Option<i64> {
    let text = |k: &str| info.get(k).and_then(Value::as_str).unwrap_or("");
    if R::before_sync_changes(info, args) || metadata_changes(text("metadata"), call.metadata.as_ref()?) {
        return None;
    }
    let local_ts = [text("created_at"), text("put_timestamp"), text("delete_timestamp")];
    if local_ts != call.remote_ts {
        return None;
    }
    let point = incoming.iter().find(|(id, _)| id == call.remote_id).map_or(-1, |(_, p)| *p);
    (!(call.remote_hash == text("hash") && point < call.remote_point)).then_some(point)
}

/// A `sync` answer: the info and the point.
fn sync_answer(info: &str, point: i64) -> Response {
    let mut body = info.strip_suffix('}').unwrap_or(info).to_string();
    if body.len() > 1 {
        body.push_str(", ");
    }
    body.push_str(&format!("\"point\": {point}}}"));
    // Swift's bare `Response(body)`: its default content type.
    Response::new(Status::OK)
        .with_header("Content-Type", &b"text/html; charset=UTF-8"[..])
        .with_body(Body::Bytes(body.into_bytes().into()))
}

/// `sync` answered from memory, without opening the database: the file is
/// as it was when last read, and the call changes nothing.
fn sync_known<R: Replica>(db_file: &Path, args: &[Value]) -> Option<Response> {
    let known = answered().get(db_file)?;
    let call = SyncCall::parse(args).ok()?;
    let info: Map<String, Value> = serde_json::from_str(&known.info).ok()?;
    let point = quiet_point::<R>(&info, &known.incoming, &call, args)?;
    Some(sync_answer(&known.info, point))
}

/// Run `f` inside one read transaction: what it reads is one state of
/// the database, and no write to the file can happen meanwhile.
pub fn read_locked<R: Replica, T>(db: &mut R, f: impl FnOnce(&mut R) -> Result<T, DbError>) -> Result<T, DbError> {
    db.conn().execute_batch("BEGIN DEFERRED")?;
    let r = f(db);
    let end = db.conn().execute_batch(if r.is_ok() { "COMMIT" } else { "ROLLBACK" });
    let v = r?;
    end?;
    Ok(v)
}

/// A replica's replication info as fields, what is kept of it, and its
/// stamp.
type SyncedNow = (Vec<(String, Value)>, Synced, Option<Stamp>);

/// This replica's replication info and incoming sync points, with the
/// stamp its file has while they are read (`None`: not one to keep).
fn synced_now<R: Replica>(db: &mut R, db_file: &Path) -> Result<SyncedNow, DbError> {
    read_locked(db, |db| {
        let info = db.replication_info()?;
        let stamp = Stamp::settled(db_file);
        let incoming = get_syncs(db.conn(), true)?;
        let synced = Synced { info: pyjson::dumps_fields(&info), incoming };
        Ok((info, synced, stamp))
    })
}

/// `sync`: merge the remote's metadata and timestamps, answer this
/// replica's info and the remote's sync point here (§5.3). A replica the
/// call does not change is kept in memory, to answer the next one.
fn sync<R: Replica>(db: &mut R, db_file: &Path, args: &[Value]) -> Result<Response, RpcError> {
    let call = SyncCall::parse(args)?;
    let (info, synced, stamp) = synced_now(db, db_file)?;
    let map: Map<String, Value> = info.into_iter().collect();
    if let Some(point) = quiet_point::<R>(&map, &synced.incoming, &call, args) {
        let answer = sync_answer(&synced.info, point);
        if let Some(stamp) = stamp {
            answered().keep(db_file, stamp, synced);
        }
        return Ok(answer);
    }
    let metadata = call.metadata.unwrap_or_else(|| {
        log::error!("unable to decode remote metadata {:?}", args[6]);
        Map::new()
    });
    db.before_sync(args)?;
    let mut info = db.replication_info()?;
    let field = |info: &[(String, Value)], k: &str| info.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if !metadata.is_empty() {
        update_metadata(db.conn(), R::STAT, &metadata)?;
    }
    let local_ts: Vec<String> = ["created_at", "put_timestamp", "delete_timestamp"]
        .iter()
        .map(|k| field(&info, k).and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default())
        .collect();
    let remote_ts = call.remote_ts;
    if local_ts.iter().zip(remote_ts.iter()).any(|(l, r)| l != r) {
        merge_timestamps::<R>(db.conn(), remote_ts[0], remote_ts[1], remote_ts[2])?;
    }
    let mut point = get_sync(db.conn(), call.remote_id, true)?;
    let local_hash = field(&info, "hash").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    if call.remote_hash == local_hash && point < call.remote_point {
        merge_syncs(db.conn(), &[(call.remote_id.to_string(), call.remote_point)], true)?;
        point = call.remote_point;
    }
    // What it is now, for the next call.
    if let Ok((_, synced, Some(stamp))) = synced_now(db, db_file) {
        answered().keep(db_file, stamp, synced);
    }
    info.push(("point".into(), Value::from(point)));
    Ok(Response::new(Status::OK)
        .with_header("Content-Type", &b"text/html; charset=UTF-8"[..])
        .with_body(Body::Bytes(pyjson::dumps_fields(&info).into_bytes().into())))
}

fn merge_items<R: Replica>(db: &mut R, args: &[Value]) -> Result<Response, RpcError> {
    let Some(Value::Array(rows)) = args.first() else { return bad("merge_items needs a list of rows") };
    let source = match args.get(1) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        _ => return bad("the source id must be a string"),
    };
    db.merge_items(rows, source)?;
    Ok(page(Status::ACCEPTED))
}

fn merge_syncs_op<R: Replica>(db: &mut R, args: &[Value]) -> Result<Response, RpcError> {
    let Some(Value::Array(points)) = args.first() else { return bad("merge_syncs needs a list of sync points") };
    let mut parsed = Vec::with_capacity(points.len());
    for p in points {
        let (Some(id), Some(point)) =
            (p.get("remote_id").and_then(Value::as_str), p.get("sync_point").and_then(Value::as_i64))
        else {
            return bad("a sync point needs a remote_id string and an integer sync_point");
        };
        parsed.push((id.to_string(), point));
    }
    merge_syncs(db.conn(), &parsed, true)?;
    Ok(page(Status::ACCEPTED))
}

/// A file name an op may use in `<dev>/tmp` or the hash directory: one
/// plain component, nothing that climbs.
fn plain_name<'a>(args: &'a [Value], i: usize, what: &str) -> Result<&'a str, RpcError> {
    let name = arg_str(args, i, what)?;
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return bad(format!("{what} must be a file name"));
    }
    Ok(name)
}

/// `complete_rsync`: a whole database rsynced into `<dev>/tmp` becomes
/// this replica (with a new id), unless one is here already.
fn complete_rsync<R: Replica>(target: &Target, args: &[Value]) -> Result<Response, RpcError> {
    let tmp_name = plain_name(args, 0, "the temporary name")?;
    let tmp = target.device_dir.join("tmp").join(tmp_name);
    let db_file = match args.get(1) {
        None => target.db_file.clone(),
        Some(_) => {
            let base = plain_name(args, 1, "the database name")?;
            target.db_file.with_file_name(base)
        }
    };
    if db_file.exists() || !tmp.is_file() {
        return Ok(page(Status::NOT_FOUND));
    }
    let mut db = R::open(&tmp)?;
    newid::<R>(db.conn(), &device_of(&tmp), tmp_name)?;
    // Closed for good, not kept: the file is about to move.
    drop(db);
    publish(&tmp, &db_file)?;
    Ok(Response::new(Status::NO_CONTENT))
}

/// `rsync_then_merge`: a whole database rsynced into `<dev>/tmp` gets
/// every row, sync point and metadata item of this replica, then replaces
/// it (with a new id).
fn rsync_then_merge<R: Replica>(target: &Target, args: &[Value]) -> Result<Response, RpcError> {
    let tmp_name = plain_name(args, 0, "the temporary name")?;
    // The database's own name is sent too; as in Swift the hash decides
    // where it goes, but a name that climbs is refused all the same.
    if args.get(1).is_some() {
        plain_name(args, 1, "the database name")?;
    }
    let tmp = target.device_dir.join("tmp").join(tmp_name);
    if !(R::exists(&target.db_file) && tmp.is_file()) {
        return Ok(page(Status::NOT_FOUND));
    }
    let mut existing = R::open(&target.db_file)?;
    if existing.refuses_rsync_merge()? {
        existing.release();
        return Ok(page(Status::NOT_FOUND));
    }
    let mut new = R::open(&tmp)?;
    let mut point = -1;
    loop {
        let rows = items_since(existing.conn(), R::ROWS, point, RSYNC_MERGE_BATCH)?;
        let Some(last) = rows.last().and_then(|r| r.get("ROWID")).and_then(Value::as_i64) else { break };
        new.merge_items(&rows, None)?;
        point = last;
    }
    let syncs = get_syncs(existing.conn(), true)?;
    merge_syncs(new.conn(), &syncs, true)?;
    existing.after_rsync_merge(&mut new)?;
    newid::<R>(new.conn(), &device_of(&tmp), tmp_name)?;
    let metadata = raw_metadata(existing.conn(), R::STAT)?;
    if !metadata.is_empty() {
        update_metadata(new.conn(), R::STAT, &metadata)?;
    }
    existing.release();
    drop(new);
    if !(R::exists(&target.db_file) && tmp.is_file()) {
        return Ok(page(Status::NOT_FOUND));
    }
    publish(&tmp, &target.db_file)?;
    Ok(Response::new(Status::NO_CONTENT))
}

/// Move a finished database into place, durably (directories made).
fn publish(tmp: &Path, dest: &Path) -> Result<(), RpcError> {
    crate::fs::durable_rename(tmp, dest).map_err(|e| RpcError::Db(DbError::Other(format!("{}: {e}", dest.display()))))
}

/// The device name Swift's `_new_db_id` gives a database at `path`: the
/// name of the directory five levels up (for a file in `<dev>/tmp/` that is
/// not the device, as in Swift).
fn device_of(path: &Path) -> String {
    path.ancestors().nth(5).and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Swift's `newid`: a fresh id, and the rows it has marked as synced from
/// `remote_id` (the database it was copied from).
pub fn newid<R: Replica>(conn: &mut Connection, device: &str, remote_id: &str) -> Result<(), DbError> {
    immediate(conn, |tx| {
        tx.execute(&format!("UPDATE {} SET id = ?", R::STAT), [super::new_db_id(device)])?;
        let last: Option<i64> = tx
            .query_row(&format!("SELECT ROWID FROM {} ORDER BY ROWID DESC LIMIT 1", R::ROWS), [], |r| r.get(0))
            .optional()?;
        tx.execute(
            "INSERT OR REPLACE INTO incoming_sync (sync_point, remote_id) VALUES (?, ?)",
            params![last.unwrap_or(-1), remote_id],
        )?;
        R::after_newid(tx)?;
        Ok(())
    })
}

fn sync_table(incoming: bool) -> &'static str {
    if incoming {
        "incoming_sync"
    } else {
        "outgoing_sync"
    }
}

/// The sync point recorded for `remote_id` (`-1` when none).
pub fn get_sync(conn: &Connection, remote_id: &str, incoming: bool) -> Result<i64, DbError> {
    let sql = format!("SELECT sync_point FROM {} WHERE remote_id = ?", sync_table(incoming));
    Ok(conn.query_row(&sql, [remote_id], |r| r.get::<_, i64>(0)).optional()?.unwrap_or(-1))
}

/// Every `(remote_id, sync_point)` of a sync table.
pub fn get_syncs(conn: &Connection, incoming: bool) -> Result<Vec<(String, i64)>, DbError> {
    let sql = format!("SELECT remote_id, sync_point FROM {}", sync_table(incoming));
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Swift's `merge_syncs`: insert, or keep the larger sync point.
pub fn merge_syncs(conn: &mut Connection, points: &[(String, i64)], incoming: bool) -> Result<(), DbError> {
    let table = sync_table(incoming);
    immediate(conn, |tx| {
        for (id, point) in points {
            advance_sync(tx, table, id, *point)?;
        }
        Ok(())
    })
}

/// Record `point` for `remote_id` in a sync table unless a larger one is
/// there (inside the caller's transaction): Swift's insert-or-max.
pub fn advance_sync(conn: &Connection, table: &str, remote_id: &str, point: i64) -> rusqlite::Result<()> {
    conn.execute(
        &format!(
            "INSERT INTO {table} (sync_point, remote_id) VALUES (?1, ?2)
             ON CONFLICT(remote_id) DO UPDATE SET sync_point = max(?1, sync_point)"
        ),
        params![point, remote_id],
    )?;
    Ok(())
}

/// `SQLITE_SEQUENCE`'s last ROWID of a table (`-1` when none): Swift's
/// `get_max_row`.
pub fn max_row(conn: &Connection, table: &str) -> Result<i64, DbError> {
    Ok(conn
        .query_row("SELECT seq FROM sqlite_sequence WHERE name = ? LIMIT 1", [table], |r| r.get::<_, i64>(0))
        .optional()?
        .unwrap_or(-1))
}

/// Columns of one row as JSON values of their SQLite types (what
/// Python's `sqlite3` gives Swift's `dict_factory`).
pub fn row_fields(r: &rusqlite::Row<'_>, names: &[String]) -> rusqlite::Result<Vec<(String, Value)>> {
    let mut out = Vec::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        let v = match r.get_ref(i)? {
            rusqlite::types::ValueRef::Null => Value::Null,
            rusqlite::types::ValueRef::Integer(x) => Value::from(x),
            rusqlite::types::ValueRef::Real(f) => Value::from(f),
            rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                Value::from(String::from_utf8_lossy(t).into_owned())
            }
        };
        out.push((n.clone(), v));
    }
    Ok(out)
}

/// Swift's `get_replication_info` fields, in one statement: the stat
/// row's `columns` in their order without `count_column`, then
/// `before_count`, `count` (that column's value), the raw `metadata`, and
/// for each `(field, table)` of `max_rows` that table's last ROWID
/// (`max_row` of the rows table, the container's `shard_max_row`).
pub fn replication_fields(
    conn: &Connection,
    stat: &str,
    columns: &str,
    count_column: &str,
    max_rows: &[(&str, &str)],
    before_count: Vec<(String, Value)>,
) -> Result<Vec<(String, Value)>, DbError> {
    let mut sql = format!("SELECT {columns}, metadata");
    for (_, table) in max_rows {
        sql.push_str(&format!(", coalesce((SELECT seq FROM sqlite_sequence WHERE name = '{table}' LIMIT 1), -1)"));
    }
    sql.push_str(&format!(" FROM {stat}"));
    let mut st = conn.prepare_cached(&sql)?;
    let names: Vec<String> = st.column_names().iter().map(|s| s.to_string()).collect();
    let mut fields = st.query_row([], |r| row_fields(r, &names))?;
    let tail = fields.split_off(fields.len() - 1 - max_rows.len());
    let count = fields.iter().position(|(n, _)| n == count_column).map(|i| fields.remove(i).1);
    fields.extend(before_count);
    fields.push(("count".into(), count.unwrap_or(Value::from(0))));
    let mut tail = tail.into_iter();
    let metadata = match tail.next().map(|(_, v)| v) {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    fields.push(("metadata".into(), Value::from(metadata)));
    for ((field, _), (_, v)) in max_rows.iter().zip(tail) {
        fields.push((field.to_string(), v));
    }
    Ok(fields)
}

/// Rows after ROWID `start`, at most `count`, as `SELECT *` dicts (Swift's
/// `get_items_since`): `ROWID` first, then the columns in the table's
/// order, SQLite's types.
pub fn items_since(conn: &Connection, table: &str, start: i64, count: i64) -> Result<Vec<Value>, DbError> {
    let mut st = conn.prepare_cached(&format!("SELECT * FROM {table} WHERE ROWID > ? ORDER BY ROWID ASC LIMIT ?"))?;
    let names: Vec<String> = st.column_names().iter().map(|s| s.to_string()).collect();
    let rows = st.query_map(params![start, count], |r| row_fields(r, &names))?;
    let mut out = Vec::new();
    for fields in rows {
        out.push(Value::Object(fields?.into_iter().collect()));
    }
    Ok(out)
}

/// The raw metadata map (`{}` when none or unreadable).
pub fn raw_metadata(conn: &Connection, stat: &str) -> Result<Map<String, Value>, DbError> {
    let raw: Option<String> =
        conn.query_row(&format!("SELECT metadata FROM {stat}"), [], |r| r.get(0)).optional()?.flatten();
    Ok(match raw.as_deref().map(serde_json::from_str::<Value>) {
        Some(Ok(Value::Object(m))) => m,
        _ => Map::new(),
    })
}

/// Swift's `update_metadata`: each `[value, timestamp]` item replaces the
/// stored one only when its timestamp is newer.
pub fn update_metadata(conn: &mut Connection, stat: &str, updates: &Map<String, Value>) -> Result<(), DbError> {
    immediate(conn, |tx| {
        let mut md = raw_metadata(tx, stat)?;
        let mut changed = false;
        for (k, v) in updates {
            if metadata_item_wins(v, md.get(k)) {
                md.insert(k.clone(), v.clone());
                changed = true;
            }
        }
        if changed {
            tx.execute(&format!("UPDATE {stat} SET metadata = ?"), [pyjson::dumps(&Value::Object(md))])?;
        }
        Ok(())
    })
}

/// Swift's `merge_timestamps`: the earliest creation, the latest PUT and
/// DELETE; `status_changed_at` moves when that flips deleted-ness.
pub fn merge_timestamps<R: Replica>(
    conn: &mut Connection,
    created_at: &str,
    put_timestamp: &str,
    delete_timestamp: &str,
) -> Result<(), DbError> {
    immediate(conn, |tx| {
        let was = R::is_deleted(tx)?;
        tx.execute(
            &format!(
                "UPDATE {} SET created_at = MIN(?, created_at), put_timestamp = MAX(?, put_timestamp),
                 delete_timestamp = MAX(?, delete_timestamp)",
                R::STAT
            ),
            params![created_at, put_timestamp, delete_timestamp],
        )?;
        if was != R::is_deleted(tx)? {
            tx.execute(
                &format!("UPDATE {} SET status_changed_at = MAX(?, status_changed_at)", R::STAT),
                [crate::Timestamp::now().internal()],
            )?;
        }
        Ok(())
    })
}
