//! A container database in Swift's schema (SWIFT-BACKEND.md §9.1), so that
//! Swift's tools and servers read aerie's databases and the other way round.
//!
//! One SQLite file per container at
//! `<dev>/containers/<part>/<sfx>/<hash>/<hash>.db`. Object rows are merged
//! with the three-timestamp rule of §6.7 (delete + insert: the schema
//! forbids UPDATE on `object`); triggers keep `policy_stat` and the rolling
//! `hash` current, through the `chexor` function every connection
//! registers. Every call blocks on the disk: only pool threads use this.

use aerie_storage::timestamp::{decode_timestamps, encode_timestamps};
use aerie_storage::Timestamp;
use md5::{Digest, Md5};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::time::Duration;

/// How long a statement waits for another process's lock before the
/// request gets 503.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The replication sync-point tables every Swift database has (Swift's
/// `DatabaseBroker` creates them for containers and accounts alike).
pub const SYNC_TABLES: &str = "
CREATE TABLE outgoing_sync (
    remote_id TEXT UNIQUE,
    sync_point INTEGER,
    updated_at TEXT DEFAULT 0
);
CREATE TABLE incoming_sync (
    remote_id TEXT UNIQUE,
    sync_point INTEGER,
    updated_at TEXT DEFAULT 0
);
CREATE TRIGGER outgoing_sync_insert AFTER INSERT ON outgoing_sync
BEGIN
    UPDATE outgoing_sync
    SET updated_at = STRFTIME('%s', 'NOW')
    WHERE ROWID = new.ROWID;
END;
CREATE TRIGGER outgoing_sync_update AFTER UPDATE ON outgoing_sync
BEGIN
    UPDATE outgoing_sync
    SET updated_at = STRFTIME('%s', 'NOW')
    WHERE ROWID = new.ROWID;
END;
CREATE TRIGGER incoming_sync_insert AFTER INSERT ON incoming_sync
BEGIN
    UPDATE incoming_sync
    SET updated_at = STRFTIME('%s', 'NOW')
    WHERE ROWID = new.ROWID;
END;
CREATE TRIGGER incoming_sync_update AFTER UPDATE ON incoming_sync
BEGIN
    UPDATE incoming_sync
    SET updated_at = STRFTIME('%s', 'NOW')
    WHERE ROWID = new.ROWID;
END;
";

const SCHEMA: &str = "
CREATE TABLE object (
    ROWID INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT,
    created_at TEXT,
    size INTEGER,
    content_type TEXT,
    etag TEXT,
    deleted INTEGER DEFAULT 0,
    storage_policy_index INTEGER DEFAULT 0
);
CREATE INDEX ix_object_deleted_name ON object (deleted, name);
CREATE TRIGGER object_update BEFORE UPDATE ON object
BEGIN
    SELECT RAISE(FAIL, 'UPDATE not allowed; DELETE and INSERT');
END;
CREATE TABLE policy_stat (
    storage_policy_index INTEGER PRIMARY KEY,
    object_count INTEGER DEFAULT 0,
    bytes_used INTEGER DEFAULT 0
);
CREATE TRIGGER object_insert_policy_stat AFTER INSERT ON object
BEGIN
    UPDATE policy_stat
    SET object_count = object_count + (1 - new.deleted),
        bytes_used = bytes_used + new.size
    WHERE storage_policy_index = new.storage_policy_index;
    INSERT INTO policy_stat (
        storage_policy_index, object_count, bytes_used)
    SELECT new.storage_policy_index,
           (1 - new.deleted),
           new.size
    WHERE NOT EXISTS(
        SELECT changes() as change
        FROM policy_stat
        WHERE change <> 0
    );
    UPDATE container_info
    SET hash = chexor(hash, new.name, new.created_at);
END;
CREATE TRIGGER object_delete_policy_stat AFTER DELETE ON object
BEGIN
    UPDATE policy_stat
    SET object_count = object_count - (1 - old.deleted),
        bytes_used = bytes_used - old.size
    WHERE storage_policy_index = old.storage_policy_index;
    UPDATE container_info
    SET hash = chexor(hash, old.name, old.created_at);
END;
CREATE TABLE container_info (
    account TEXT,
    container TEXT,
    created_at TEXT,
    put_timestamp TEXT DEFAULT '0',
    delete_timestamp TEXT DEFAULT '0',
    reported_put_timestamp TEXT DEFAULT '0',
    reported_delete_timestamp TEXT DEFAULT '0',
    reported_object_count INTEGER DEFAULT 0,
    reported_bytes_used INTEGER DEFAULT 0,
    hash TEXT default '00000000000000000000000000000000',
    id TEXT,
    status TEXT DEFAULT '',
    status_changed_at TEXT DEFAULT '0',
    metadata TEXT DEFAULT '',
    x_container_sync_point1 INTEGER DEFAULT -1,
    x_container_sync_point2 INTEGER DEFAULT -1,
    storage_policy_index INTEGER DEFAULT 0,
    reconciler_sync_point INTEGER DEFAULT -1
);
CREATE VIEW container_stat
AS SELECT ci.account, ci.container, ci.created_at,
    ci.put_timestamp, ci.delete_timestamp,
    ci.reported_put_timestamp, ci.reported_delete_timestamp,
    ci.reported_object_count, ci.reported_bytes_used, ci.hash,
    ci.id, ci.status, ci.status_changed_at, ci.metadata,
    ci.x_container_sync_point1, ci.x_container_sync_point2,
    ci.reconciler_sync_point,
    ci.storage_policy_index,
    coalesce(ps.object_count, 0) AS object_count,
    coalesce(ps.bytes_used, 0) AS bytes_used
FROM container_info ci LEFT JOIN policy_stat ps
ON ci.storage_policy_index = ps.storage_policy_index;
CREATE TRIGGER container_stat_update
INSTEAD OF UPDATE ON container_stat
BEGIN
    UPDATE container_info
    SET account = NEW.account,
        container = NEW.container,
        created_at = NEW.created_at,
        put_timestamp = NEW.put_timestamp,
        delete_timestamp = NEW.delete_timestamp,
        reported_put_timestamp = NEW.reported_put_timestamp,
        reported_delete_timestamp = NEW.reported_delete_timestamp,
        reported_object_count = NEW.reported_object_count,
        reported_bytes_used = NEW.reported_bytes_used,
        hash = NEW.hash,
        id = NEW.id,
        status = NEW.status,
        status_changed_at = NEW.status_changed_at,
        metadata = NEW.metadata,
        x_container_sync_point1 = NEW.x_container_sync_point1,
        x_container_sync_point2 = NEW.x_container_sync_point2,
        storage_policy_index = NEW.storage_policy_index,
        reconciler_sync_point = NEW.reconciler_sync_point;
END;
CREATE TABLE shard_range (
    ROWID INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT,
    timestamp TEXT,
    lower TEXT,
    upper TEXT,
    object_count INTEGER DEFAULT 0,
    bytes_used INTEGER DEFAULT 0,
    meta_timestamp TEXT,
    deleted INTEGER DEFAULT 0,
    state INTEGER,
    state_timestamp TEXT,
    epoch TEXT,
    reported INTEGER DEFAULT 0,
    tombstones INTEGER DEFAULT -1
);
CREATE TRIGGER shard_range_update BEFORE UPDATE ON shard_range
BEGIN
    SELECT RAISE(FAIL, 'UPDATE not allowed; DELETE and INSERT');
END;
";

/// `old XOR md5("<name>-<timestamp>")`, as 32 hex digits (Swift's chexor).
pub fn chexor(old: &str, name: &str, ts: &str) -> String {
    let new = Md5::digest(format!("{name}-{ts}").as_bytes());
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        let o = old.get(i * 2..i * 2 + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).unwrap_or(0);
        *b = o ^ new[i];
    }
    aerie_storage::hash::hex(&out)
}

/// Register the SQL functions Swift's triggers call (`chexor`).
pub fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function("chexor", 3, FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC, |ctx| {
        let old: String = ctx.get(0)?;
        let name: String = ctx.get(1)?;
        let ts: String = ctx.get(2)?;
        Ok(chexor(&old, &name, &ts))
    })
}

/// Open a database file with aerie's settings (busy timeout, functions).
pub fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    register_functions(&conn)?;
    Ok(conn)
}

/// Which file a path names now: (device, inode).
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Connections each pool thread keeps open between requests.
const CACHED_CONNECTIONS: usize = 16;

/// An open connection kept for reuse, with the file it was opened on.
struct Cached {
    path: std::path::PathBuf,
    id: (u64, u64),
    conn: Connection,
}

thread_local! {
    // Per thread, so connections are opened after fork and never shared.
    static CONNECTIONS: std::cell::RefCell<Vec<Cached>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A connection to `path` and the file it is on: a kept one when the path
/// still names the same file (a quarantined, replaced or replicated-over
/// database is never served from an old connection), a new one otherwise.
/// Reusing connections keeps SQLite's page cache warm across requests;
/// SQLite itself notices changes made by other connections and processes.
pub fn connect_cached(path: &Path) -> rusqlite::Result<(Connection, Option<(u64, u64)>)> {
    let id = file_id(path);
    let kept = CONNECTIONS.with(|c| {
        let mut c = c.borrow_mut();
        let i = c.iter().position(|k| k.path == path)?;
        let k = c.swap_remove(i);
        (Some(k.id) == id).then_some(k.conn)
    });
    match kept {
        Some(conn) => Ok((conn, id)),
        None => Ok((connect(path)?, id)),
    }
}

/// Give a connection from [`connect_cached`] back for reuse (dropped when
/// a transaction is still open or the cache is full).
pub fn keep_connection(path: &Path, id: Option<(u64, u64)>, conn: Connection) {
    let Some(id) = id else { return };
    if !conn.is_autocommit() {
        return;
    }
    CONNECTIONS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CACHED_CONNECTIONS {
            c.remove(0);
        }
        c.push(Cached { path: path.to_path_buf(), id, conn });
    });
}

/// A container's info row joined with its policy's statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Info {
    pub account: String,
    pub container: String,
    pub created_at: String,
    pub put_timestamp: String,
    pub delete_timestamp: String,
    pub status_changed_at: String,
    pub storage_policy_index: i64,
    pub object_count: i64,
    pub bytes_used: i64,
    pub metadata: String,
    pub reported_put_timestamp: String,
    pub reported_delete_timestamp: String,
    pub reported_object_count: i64,
    pub reported_bytes_used: i64,
    pub hash: String,
    pub id: String,
}

fn ts_of(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap_or(Timestamp::ZERO)
}

impl Info {
    /// §6.1: deleted when empty in its own policy and deleted after its PUT.
    pub fn is_deleted(&self) -> bool {
        self.object_count == 0 && ts_of(&self.delete_timestamp) > ts_of(&self.put_timestamp)
    }
}

/// An object row as merged (§6.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Object name.
    pub name: String,
    /// Data timestamp.
    pub data: Timestamp,
    /// Content-type timestamp.
    pub ctype_ts: Timestamp,
    /// Metadata timestamp.
    pub meta: Timestamp,
    /// Size.
    pub size: i64,
    /// Content type (possibly with `;swift_bytes=N`).
    pub content_type: String,
    /// Etag as sent.
    pub etag: String,
    /// Deleted row.
    pub deleted: bool,
    /// Policy index.
    pub policy: i64,
}

/// Split `;swift_bytes=N` off a content type.
pub fn extract_swift_bytes(ctype: &str) -> (String, Option<String>) {
    let mut kept = Vec::new();
    let mut sb = None;
    for (i, part) in ctype.split(';').enumerate() {
        if i > 0 {
            if let Some((k, v)) = part.split_once('=') {
                if k.trim() == "swift_bytes" {
                    sb = Some(v.trim().to_string());
                    continue;
                }
            }
        }
        kept.push(part);
    }
    (kept.join(";"), sb)
}

/// §6.7's merge: what to store given the existing row, or `None` when the
/// incoming row is not newer in any timestamp.
pub fn merge(existing: Option<&Row>, incoming: &Row) -> Option<Row> {
    let Some(e) = existing else { return Some(incoming.clone()) };
    if incoming.data <= e.data && incoming.ctype_ts <= e.ctype_ts && incoming.meta <= e.meta {
        return None;
    }
    let mut out = incoming.clone();
    let (e_ctype, e_sb) = extract_swift_bytes(&e.content_type);
    let (i_ctype, i_sb) = extract_swift_bytes(&incoming.content_type);
    let mut swift_bytes = i_sb;
    if e.data >= incoming.data {
        out.data = e.data;
        out.size = e.size;
        out.etag = e.etag.clone();
        out.deleted = e.deleted;
        swift_bytes = e_sb;
    }
    let mut ctype = i_ctype;
    if e.ctype_ts >= incoming.ctype_ts {
        out.ctype_ts = e.ctype_ts;
        ctype = e_ctype;
    }
    if e.meta >= incoming.meta {
        out.meta = e.meta;
    }
    out.content_type = match swift_bytes {
        Some(sb) => format!("{ctype};swift_bytes={sb}"),
        None => ctype,
    };
    Some(out)
}

/// Why a database operation failed.
#[derive(Debug)]
pub enum DbError {
    /// Another process held the lock past the busy timeout (503).
    Busy,
    /// The file is not a valid database (quarantine it).
    Corrupt(String),
    /// Anything else (500).
    Other(String),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => DbError::Busy,
            Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => DbError::Corrupt(e.to_string()),
            _ => {
                let msg = e.to_string();
                if msg.contains("no such table") || msg.contains("malformed") {
                    DbError::Corrupt(msg)
                } else {
                    DbError::Other(msg)
                }
            }
        }
    }
}

/// An open container database.
pub struct ContainerDb {
    conn: Connection,
    path: std::path::PathBuf,
    id: Option<(u64, u64)>,
}

/// Standard base64 (the pending file's encoding), `None` on bad input.
pub fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let s: Vec<u8> = s.iter().copied().filter(|c| !c.is_ascii_whitespace()).collect();
    if s.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for chunk in s.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = if i >= 4 - pad { 0 } else { val(c)? };
            n = (n << 6) | v;
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Above this many bytes of pending records, a write merges them into the
/// database. Swift uses 128 KiB; a merge has a fixed cost (journal syncs,
/// index pages read afresh) that dominates at that size, and merging four
/// times fewer, larger batches took row PUTs from about 19,600/s to about
/// 29,000/s here (one worker, 8 threads). A reader merges at most this
/// much (some 2,400 rows) before it answers.
pub const PENDING_CAP: u64 = 524_288;

/// Append one record to `<db>.pending` as Swift's servers do (`:` and the
/// base64 of the pickled tuple, under the directory's `.lock`), then make it
/// durable (fdatasync after the lock is released; the directory too when
/// the file is new). Concurrent appends by this process's threads are
/// group-committed. Returns whether the file has grown past
/// [`PENDING_CAP`] and should be merged (to the one thread that committed).
///
/// A row update costs one append and one flush instead of a database
/// transaction; readers merge the pending records before they read.
pub fn append_pending(db: &Path, record: &aerie_storage::pickle::Value) -> Result<bool, DbError> {
    use std::io::Write;
    let io = |e: std::io::Error| DbError::Other(e.to_string());
    let pending = db.with_extension("db.pending");
    let dir = db.parent().ok_or_else(|| DbError::Other("database path has no directory".into()))?;
    let mut line = Vec::with_capacity(96);
    line.push(b':');
    line.extend_from_slice(base64_encode(&aerie_storage::pickle::dumps(record)).as_bytes());
    // Concurrent appends from this process's threads go in together: one
    // lock, one write and one fdatasync per batch.
    aerie_storage::fs::group_append(&pending, &line, |records| {
        let lock = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(".lock"))?;
        let guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| e)?;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&pending)?;
        f.write_all(records)?;
        let size = f.metadata()?.len();
        drop(guard);
        f.sync_data()?;
        if size == records.len() as u64 {
            // New (or just emptied): make its directory entry durable too.
            aerie_storage::fs::fsync_dir(dir)?;
        }
        Ok(size > PENDING_CAP)
    })
    .map_err(io)
}

/// The pending record of a row, as Swift's container server writes it:
/// `(name, timestamp, size, content_type, etag, deleted, policy,
/// ctype_timestamp, meta_timestamp)`.
pub fn pending_record(r: &Row) -> aerie_storage::pickle::Value {
    use aerie_storage::pickle::Value;
    Value::Tuple(vec![
        Value::Str(r.name.clone()),
        Value::Str(r.data.internal()),
        Value::Int(r.size),
        Value::Str(r.content_type.clone()),
        Value::Str(r.etag.clone()),
        Value::Int(i64::from(r.deleted)),
        Value::Int(r.policy),
        Value::Str(r.ctype_ts.internal()),
        Value::Str(r.meta.internal()),
    ])
}

/// A row from a Swift pending record:
/// `(name, timestamp, size, content_type, etag, deleted[, policy[, ctype_ts, meta_ts]])`.
fn pending_row(v: &aerie_storage::pickle::Value) -> Option<Row> {
    use aerie_storage::pickle::Value;
    let (Value::Tuple(items) | Value::List(items)) = v else { return None };
    let text = |i: usize| pickled_text(items.get(i));
    let int = |i: usize| pickled_int(items.get(i));
    let data = Timestamp::parse(&text(1)?).ok()?;
    let ctype_ts = text(7).and_then(|t| Timestamp::parse(&t).ok()).unwrap_or(data);
    let meta = text(8).and_then(|t| Timestamp::parse(&t).ok()).unwrap_or(ctype_ts);
    Some(Row {
        name: text(0)?,
        data,
        ctype_ts,
        meta,
        size: int(2)?,
        content_type: text(3)?,
        etag: text(4)?,
        deleted: int(5)? != 0,
        policy: int(6).unwrap_or(0),
    })
}

/// Take the records Swift's servers appended to `<db>.pending` (each a `:`
/// and then base64 of a pickled tuple), hand the ones `parse` understands
/// to `apply`, and empty the file — under the directory's `.lock`, as Swift
/// does, so a Swift server appending at the same time waits. Nothing is
/// done unless the file holds more than `min_len` bytes.
pub fn drain_pending<T>(
    path: &Path,
    min_len: u64,
    parse: impl Fn(&aerie_storage::pickle::Value) -> Option<T>,
    apply: impl FnOnce(Vec<T>) -> Result<(), DbError>,
) -> Result<(), DbError> {
    let pending = path.with_extension("db.pending");
    match std::fs::metadata(&pending) {
        Ok(m) if m.len() > min_len => {}
        _ => return Ok(()),
    }
    let Some(dir) = path.parent() else { return Ok(()) };
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(".lock"))
        .map_err(|e| DbError::Other(e.to_string()))?;
    let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| DbError::Other(e.to_string()))?;
    let data = std::fs::read(&pending).map_err(|e| DbError::Other(e.to_string()))?;
    if data.len() as u64 <= min_len {
        // Another thread or process merged it while this one waited.
        return Ok(());
    }
    let mut items = Vec::new();
    for entry in data.split(|&b| b == b':').filter(|e| !e.iter().all(u8::is_ascii_whitespace)) {
        match base64_decode(entry).and_then(|b| aerie_storage::pickle::loads(&b).ok()).and_then(|v| parse(&v)) {
            Some(r) => items.push(r),
            None => log::error!("{}: skipping an unreadable pending record", pending.display()),
        }
    }
    if !items.is_empty() {
        apply(items)?;
    }
    std::fs::OpenOptions::new().write(true).truncate(true).open(&pending).map_err(|e| DbError::Other(e.to_string()))?;
    Ok(())
}

/// An integer field of a pickled record (ints, bools and digit strings).
pub fn pickled_int(v: Option<&aerie_storage::pickle::Value>) -> Option<i64> {
    use aerie_storage::pickle::Value;
    match v {
        Some(Value::Int(n)) => Some(*n),
        Some(Value::Bool(b)) => Some(i64::from(*b)),
        Some(x) => x.as_bytes().and_then(|b| std::str::from_utf8(b).ok()?.trim().parse().ok()),
        None => None,
    }
}

/// A text field of a pickled record.
pub fn pickled_text(v: Option<&aerie_storage::pickle::Value>) -> Option<String> {
    v.and_then(|x| x.as_bytes()).map(|b| String::from_utf8_lossy(b).into_owned())
}

/// A database id: a random uuid plus the device, as Swift's
/// `DatabaseBroker._new_db_id` makes it.
pub fn new_db_id(device: &str) -> String {
    format!("{}-{device}", uuid::Uuid::new_v4())
}

/// Create a new database at `path` as Swift's `DatabaseBroker.initialize`
/// does: built by `init` under a temporary name in the device's `tmp/`,
/// fsynced, then renamed into place unless another creator (a thread of
/// this worker or another process) got there first — then that one
/// stands and this one is thrown away. Returns whether this call created
/// it. `path` is `<dev>/<datadir>/<part>/<suffix>/<hash>/<hash>.db`.
pub fn create_db(path: &Path, init: impl FnOnce(&Connection) -> rusqlite::Result<()>) -> Result<bool, DbError> {
    let io = |e: std::io::Error| DbError::Other(format!("{}: {e}", path.display()));
    let dir = path.parent().ok_or_else(|| DbError::Other("database path has no directory".into()))?;
    // A database outside a device's layout (a tool's, a test's) is built
    // beside itself.
    let tmp_dir = path.ancestors().nth(5).map_or_else(|| dir.to_path_buf(), |dev| dev.join("tmp"));
    let created = aerie_storage::fs::create_dirs(dir).map_err(io)?;
    let tmp = aerie_storage::fs::TempFile::create(&tmp_dir).map_err(io)?;
    {
        let conn = Connection::open(tmp.path())?;
        register_functions(&conn)?;
        conn.pragma_update(None, "journal_mode", "DELETE")?;
        init(&conn)?;
    }
    tmp.commit_new(path, &created).map_err(io)
}

impl ContainerDb {
    /// Open an existing database, merging rows Swift's servers left in its
    /// `.pending` file.
    pub fn open(path: &Path) -> Result<ContainerDb, DbError> {
        let (conn, id) = connect_cached(path)?;
        let mut db = ContainerDb { conn, path: path.to_path_buf(), id };
        // A cheap read that fails on a file that is not one of ours.
        db.info()?;
        db.commit_pending(path)?;
        Ok(db)
    }

    /// Done with it: keep the connection for the next request on this
    /// thread.
    pub fn release(self) {
        keep_connection(&self.path, self.id, self.conn);
    }

    /// Merge `<db>.pending` (written by Swift's container server) into the
    /// database and empty it.
    pub fn commit_pending(&mut self, path: &Path) -> Result<(), DbError> {
        drain_pending(path, 0, pending_row, |rows| self.merge_rows(&rows))
    }

    /// Merge `<db>.pending` only if it is still larger than
    /// [`PENDING_CAP`] once locked (after a row update found it grown: of
    /// several that did, only the first merges).
    pub fn merge_large_pending(path: &Path) -> Result<(), DbError> {
        let (conn, id) = connect_cached(path)?;
        let mut db = ContainerDb { conn, path: path.to_path_buf(), id };
        drain_pending(path, PENDING_CAP, pending_row, |rows| db.merge_rows(&rows))?;
        db.release();
        Ok(())
    }

    /// Create a database ([`create_db`]) and open it; `true` when this call
    /// created it, `false` when another creator got there first and theirs
    /// is opened.
    pub fn create(
        path: &Path,
        account: &str,
        container: &str,
        put_timestamp: Timestamp,
        policy: i64,
        device: &str,
    ) -> Result<(ContainerDb, bool), DbError> {
        let created = create_db(path, |conn| {
            conn.execute_batch(SCHEMA)?;
            conn.execute_batch(SYNC_TABLES)?;
            let ts = put_timestamp.internal();
            conn.execute(
                "INSERT INTO container_info (account, container, created_at, id, put_timestamp, status_changed_at, storage_policy_index) VALUES (?, ?, ?, ?, ?, ?, ?)",
                params![account, container, Timestamp::now().internal(), new_db_id(device), ts, ts, policy],
            )?;
            conn.execute("INSERT INTO policy_stat (storage_policy_index) VALUES (?)", params![policy])?;
            Ok(())
        })?;
        Ok((ContainerDb::open(path)?, created))
    }

    /// The info row and its policy's statistics.
    pub fn info(&self) -> Result<Info, DbError> {
        Ok(self.conn.query_row(
            "SELECT ci.account, ci.container, ci.created_at, ci.put_timestamp, ci.delete_timestamp, ci.status_changed_at,
                    ci.storage_policy_index, coalesce(ps.object_count, 0), coalesce(ps.bytes_used, 0), ci.metadata,
                    ci.reported_put_timestamp, ci.reported_delete_timestamp, ci.reported_object_count, ci.reported_bytes_used,
                    ci.hash, ci.id
             FROM container_info ci LEFT JOIN policy_stat ps ON ci.storage_policy_index = ps.storage_policy_index",
            [],
            |r| {
                Ok(Info {
                    account: r.get(0)?,
                    container: r.get(1)?,
                    created_at: r.get(2)?,
                    put_timestamp: r.get(3)?,
                    delete_timestamp: r.get(4)?,
                    status_changed_at: r.get(5)?,
                    storage_policy_index: r.get(6)?,
                    object_count: r.get(7)?,
                    bytes_used: r.get(8)?,
                    metadata: r.get::<_, Option<String>>(9)?.unwrap_or_default(),
                    reported_put_timestamp: r.get(10)?,
                    reported_delete_timestamp: r.get(11)?,
                    reported_object_count: r.get(12)?,
                    reported_bytes_used: r.get(13)?,
                    hash: r.get(14)?,
                    id: r.get::<_, Option<String>>(15)?.unwrap_or_default(),
                })
            },
        )?)
    }

    /// Whether any row in any policy is live (§6.9's "not empty").
    pub fn has_live_rows(&self) -> Result<bool, DbError> {
        Ok(self.conn.query_row("SELECT EXISTS(SELECT 1 FROM object WHERE deleted = 0)", [], |r| r.get(0))?)
    }

    /// Merge object rows in one transaction (§6.7).
    pub fn merge_rows(&mut self, rows: &[Row]) -> Result<(), DbError> {
        immediate(&mut self.conn, |tx| {
            let mut find = tx.prepare_cached(
                "SELECT name, created_at, size, content_type, etag, deleted, storage_policy_index FROM object
                 WHERE deleted IN (0, 1) AND name = ? AND storage_policy_index = ?",
            )?;
            let mut del = tx.prepare_cached("DELETE FROM object WHERE name = ? AND storage_policy_index = ?")?;
            let mut ins = tx.prepare_cached(
                "INSERT INTO object (name, created_at, size, content_type, etag, deleted, storage_policy_index)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )?;
            for r in rows {
                let existing: Option<Row> = find
                    .query_row(params![r.name, r.policy], |x| {
                        let created: String = x.get(1)?;
                        let (d, c, m) = decode_timestamps(&created, false).unwrap_or((Timestamp::ZERO, None, None));
                        Ok(Row {
                            name: x.get(0)?,
                            data: d,
                            ctype_ts: c.unwrap_or(d),
                            meta: m.unwrap_or(d),
                            size: x.get(2)?,
                            content_type: x.get(3)?,
                            etag: x.get(4)?,
                            deleted: x.get::<_, i64>(5)? != 0,
                            policy: x.get(6)?,
                        })
                    })
                    .optional()?;
                let Some(m) = merge(existing.as_ref(), r) else { continue };
                if existing.is_some() {
                    del.execute(params![r.name, r.policy])?;
                }
                let created = encode_timestamps(m.data, Some(m.ctype_ts), Some(m.meta), false);
                ins.execute(params![m.name, created, m.size, m.content_type, m.etag, i64::from(m.deleted), m.policy])?;
            }
            Ok(())
        })
    }

    /// Run a closure with the connection (listings, updates).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Run statements in one immediate transaction.
    pub fn write<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, DbError> {
        immediate(&mut self.conn, |tx| Ok(f(tx)?))
    }
}

/// Run `f` in one immediate transaction (the write lock taken at once, so
/// a busy database fails here, not halfway), committed when it succeeds.
pub fn immediate<T>(
    conn: &mut Connection,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, DbError>,
) -> Result<T, DbError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let v = f(&tx)?;
    tx.commit()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_round_trips_every_padding() {
        for data in [&b""[..], b"a", b"ab", b"abc", b"abcd", &[0, 255, 128, 7, 9]] {
            let e = super::base64_encode(data);
            assert_eq!(e.len() % 4, 0);
            assert_eq!(super::base64_decode(e.as_bytes()).as_deref(), Some(data), "{e}");
        }
        assert_eq!(super::base64_encode(b"pickle"), "cGlja2xl");
        assert_eq!(super::base64_encode(b"ab"), "YWI=");
    }

    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).expect("ts")
    }

    fn row(name: &str, d: &str, c: &str, m: &str, size: i64, ctype: &str) -> Row {
        Row {
            name: name.into(),
            data: ts(d),
            ctype_ts: ts(c),
            meta: ts(m),
            size,
            content_type: ctype.into(),
            etag: "e".into(),
            deleted: false,
            policy: 0,
        }
    }

    #[test]
    fn base64_decodes() {
        assert_eq!(base64_decode(b"aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(base64_decode(b"aGVsbG8h"), Some(b"hello!".to_vec()));
        assert_eq!(base64_decode(b"aGk="), Some(b"hi".to_vec()));
        assert_eq!(base64_decode(b"a"), None);
        assert_eq!(base64_decode(b"a*=="), None);
    }

    #[test]
    fn chexor_matches_swift() {
        // python: from swift.common.db import chexor; chexor('0'*32, 'o', '1.00000')
        let v = chexor("00000000000000000000000000000000", "o", "0000000001.00000");
        assert_eq!(v, aerie_storage::hash::md5_hex(b"o-0000000001.00000"));
        assert_eq!(chexor(&v, "o", "0000000001.00000"), "00000000000000000000000000000000");
    }

    #[test]
    fn the_three_timestamp_merge() {
        let e = row("o", "1", "1", "1", 5, "text/plain;swift_bytes=9");
        // A POST's update: newer content type and meta, same data.
        let post = row("o", "1", "2", "2", 5, "image/png");
        let m = merge(Some(&e), &post).expect("newer");
        assert_eq!((m.content_type.as_str(), m.meta, m.ctype_ts), ("image/png;swift_bytes=9", ts("2"), ts("2")));
        // A delayed older update changes nothing.
        assert_eq!(merge(Some(&m), &e), None);
        // Newer data with an older content type keeps the newer content type.
        let data = row("o", "3", "1", "3", 7, "a/b");
        let m2 = merge(Some(&m), &data).expect("newer data");
        assert_eq!((m2.size, m2.content_type.as_str(), m2.data), (7, "image/png", ts("3")));
    }

    #[test]
    fn rows_merge_and_stats_follow_in_a_real_database() {
        let dir = std::env::temp_dir().join(format!("aerie-cdb-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("x.db");
        let (mut db, _) = ContainerDb::create(&path, "a", "c", ts("1"), 0, "sda").expect("create");
        db.merge_rows(&[row("o1", "2", "2", "2", 10, "t"), row("o2", "2", "2", "2", 5, "t")]).expect("merge");
        let i = db.info().expect("info");
        assert_eq!((i.object_count, i.bytes_used), (2, 15));
        let mut del = row("o1", "3", "3", "3", 0, "application/deleted");
        del.deleted = true;
        db.merge_rows(&[del]).expect("delete row");
        let i = db.info().expect("info");
        assert_eq!((i.object_count, i.bytes_used), (1, 5));
        assert_ne!(i.hash, "00000000000000000000000000000000");
        assert!(db.has_live_rows().expect("live"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
