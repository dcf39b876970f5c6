//! The SQLite broker base Swift's container and account databases share
//! (Swift's `DatabaseBroker`): how a database is created (in the device's
//! `tmp/`, published once), opened and cached (`connect.rs`), how row
//! updates go through `.pending` files (`pending.rs`), the metadata JSON
//! (`meta.rs`) and listings (`listing/`), what a failure means (a busy
//! database is 503, a corrupt one is quarantined), and the request helpers
//! both services use (`http.rs`). Every call blocks on the disk: only pool
//! threads and background roles use this.

pub mod connect;
pub mod http;
pub mod known;
pub mod listing;
pub mod meta;
pub mod pending;
pub mod replicator;
pub mod rpc;

pub use connect::{chexor, connect, connect_cached, keep_connection, register_functions};
pub use pending::{append_pending, drain_pending, pickled_int, pickled_text, PENDING_CAP};

use crate::Timestamp;
use rusqlite::Connection;
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

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::Busy => f.write_str("the database is locked"),
            DbError::Corrupt(why) => write!(f, "corrupt database: {why}"),
            DbError::Other(why) => f.write_str(why),
        }
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => DbError::Busy,
            Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => DbError::Corrupt(e.to_string()),
            _ => DbError::Other(e.to_string()),
        }
    }
}

impl DbError {
    /// A database whose schema lacks `table` is not one of ours (Swift's
    /// "no such table" quarantine).
    pub fn check_table(conn: &Connection, table: &str) -> Result<(), DbError> {
        let n: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?",
            [table],
            |r| r.get(0),
        )?;
        if n == 0 {
            return Err(DbError::Corrupt(format!("no such table: {table}")));
        }
        Ok(())
    }
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
    let created = crate::fs::create_dirs(dir).map_err(io)?;
    let tmp = crate::fs::TempFile::create(&tmp_dir).map_err(io)?;
    {
        let conn = Connection::open(tmp.path())?;
        register_functions(&conn)?;
        conn.pragma_update(None, "journal_mode", "DELETE")?;
        init(&conn)?;
    }
    tmp.commit_new(path, &created).map_err(io)
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

/// Move a corrupt database's directory to `<dev>/quarantined/<kind>s/`.
pub fn quarantine(db_path: &std::path::Path) {
    let Some(hash_dir) = db_path.parent() else { return };
    let Some(dev) = hash_dir.parent().and_then(|p| p.parent()).and_then(|p| p.parent()).and_then(|p| p.parent()) else {
        return;
    };
    let kind = hash_dir
        .parent()
        .and_then(|p| p.parent())
        .and_then(|p| p.parent())
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "containers".into());
    let target_dir = dev.join("quarantined").join(kind);
    let name = hash_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut target = target_dir.join(&name);
    if target.exists() {
        target = target_dir.join(format!("{name}-{}", Timestamp::now().normal()));
    }
    if let Err(e) = crate::fs::create_dirs(&target_dir).and_then(|_| std::fs::rename(hash_dir, &target)) {
        log::error!("could not quarantine {}: {e}", hash_dir.display());
    }
}
