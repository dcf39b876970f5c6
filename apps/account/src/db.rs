//! An account database in Swift's schema (SWIFT-BACKEND.md §9.2): the
//! `account_stat` row, container rows merged as §7.6 says, and per-policy
//! totals kept by triggers.

use aerie_storage::db::{
    connect_cached, create_db, drain_pending, immediate, keep_connection, new_db_id, pickled_int, pickled_text,
    DbError, PENDING_CAP, SYNC_TABLES,
};
use aerie_storage::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE container (
    ROWID INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT,
    put_timestamp TEXT,
    delete_timestamp TEXT,
    object_count INTEGER,
    bytes_used INTEGER,
    deleted INTEGER DEFAULT 0,
    storage_policy_index INTEGER DEFAULT 0
);
CREATE INDEX ix_container_deleted_name ON
    container (deleted, name);
CREATE TRIGGER container_insert AFTER INSERT ON container
BEGIN
    UPDATE account_stat
    SET container_count = container_count + (1 - new.deleted),
        object_count = object_count + new.object_count,
        bytes_used = bytes_used + new.bytes_used,
        hash = chexor(hash, new.name,
                      new.put_timestamp || '-' ||
                        new.delete_timestamp || '-' ||
                        new.object_count || '-' || new.bytes_used);
END;
CREATE TRIGGER container_update BEFORE UPDATE ON container
BEGIN
    SELECT RAISE(FAIL, 'UPDATE not allowed; DELETE and INSERT');
END;
CREATE TRIGGER container_delete AFTER DELETE ON container
BEGIN
    UPDATE account_stat
    SET container_count = container_count - (1 - old.deleted),
        object_count = object_count - old.object_count,
        bytes_used = bytes_used - old.bytes_used,
        hash = chexor(hash, old.name,
                      old.put_timestamp || '-' ||
                        old.delete_timestamp || '-' ||
                        old.object_count || '-' || old.bytes_used);
END;
CREATE TABLE account_stat (
    account TEXT,
    created_at TEXT,
    put_timestamp TEXT DEFAULT '0',
    delete_timestamp TEXT DEFAULT '0',
    container_count INTEGER,
    object_count INTEGER DEFAULT 0,
    bytes_used INTEGER DEFAULT 0,
    hash TEXT default '00000000000000000000000000000000',
    id TEXT,
    status TEXT DEFAULT '',
    status_changed_at TEXT DEFAULT '0',
    metadata TEXT DEFAULT ''
);
INSERT INTO account_stat (container_count) VALUES (0);
CREATE TABLE policy_stat (
    storage_policy_index INTEGER PRIMARY KEY,
    container_count INTEGER DEFAULT 0,
    object_count INTEGER DEFAULT 0,
    bytes_used INTEGER DEFAULT 0
);
CREATE TRIGGER container_insert_ps AFTER INSERT ON container
BEGIN
    INSERT OR IGNORE INTO policy_stat
        (storage_policy_index, container_count, object_count, bytes_used)
        VALUES (new.storage_policy_index, 0, 0, 0);
    UPDATE policy_stat
    SET container_count = container_count + (1 - new.deleted),
        object_count = object_count + new.object_count,
        bytes_used = bytes_used + new.bytes_used
    WHERE storage_policy_index = new.storage_policy_index;
END;
CREATE TRIGGER container_delete_ps AFTER DELETE ON container
BEGIN
    UPDATE policy_stat
    SET container_count = container_count - (1 - old.deleted),
        object_count = object_count - old.object_count,
        bytes_used = bytes_used - old.bytes_used
    WHERE storage_policy_index = old.storage_policy_index;
END;
";

/// The account's stat row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub account: String,
    pub created_at: String,
    pub put_timestamp: String,
    pub delete_timestamp: String,
    pub container_count: i64,
    pub object_count: i64,
    pub bytes_used: i64,
    pub status: String,
    pub status_changed_at: String,
    pub metadata: String,
}

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap_or(Timestamp::ZERO)
}

impl Info {
    /// §7.1: `is_status_deleted`.
    pub fn is_status_deleted(&self) -> bool {
        self.status == "DELETED" || ts(&self.delete_timestamp) > ts(&self.put_timestamp)
    }

    /// §7.1: deleted.
    pub fn is_deleted(&self) -> bool {
        self.status == "DELETED" || (self.container_count == 0 && ts(&self.delete_timestamp) > ts(&self.put_timestamp))
    }
}

/// A container row as sent by a container server (§7.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRow {
    pub name: String,
    pub put_timestamp: String,
    pub delete_timestamp: String,
    pub object_count: i64,
    pub bytes_used: i64,
    pub policy: i64,
}

/// An open account database.
pub struct AccountDb {
    conn: Connection,
    path: std::path::PathBuf,
    id: Option<(u64, u64)>,
}

impl AccountDb {
    /// Open an existing database, merging the rows Swift's account server
    /// left in its `.pending` file.
    pub fn open(path: &Path) -> Result<AccountDb, DbError> {
        let (conn, id) = connect_cached(path)?;
        let mut db = AccountDb { conn, path: path.to_path_buf(), id };
        if let Err(e) = db.info() {
            // A file that is no account database is quarantined.
            DbError::check_table(&db.conn, "account_stat")?;
            return Err(e);
        }
        drain_pending(path, 0, pending_row, |rows| db.merge_containers(&rows))?;
        Ok(db)
    }

    /// Merge `<db>.pending` only if it is still larger than the cap once
    /// locked (see the container's `merge_large_pending`).
    pub fn merge_large_pending(path: &Path) -> Result<(), DbError> {
        let (conn, id) = connect_cached(path)?;
        let mut db = AccountDb { conn, path: path.to_path_buf(), id };
        drain_pending(path, PENDING_CAP, pending_row, |rows| db.merge_containers(&rows))?;
        db.release();
        Ok(())
    }

    /// The stat row of an existing database, without merging its pending
    /// records (a row update only needs to know it is not deleted).
    pub fn peek(path: &Path) -> Result<Info, DbError> {
        let (conn, id) = connect_cached(path)?;
        let db = AccountDb { conn, path: path.to_path_buf(), id };
        let info = db.info();
        db.release();
        info
    }

    /// Done with it: keep the connection for the next request on this
    /// thread.
    pub fn release(self) {
        keep_connection(&self.path, self.id, self.conn);
    }

    /// Create ([`create_db`]) and open; `true` when this call created it,
    /// `false` when another creator got there first and theirs is opened.
    pub fn create(
        path: &Path,
        account: &str,
        put_timestamp: Timestamp,
        device: &str,
    ) -> Result<(AccountDb, bool), DbError> {
        let created = create_db(path, |conn| {
            conn.execute_batch(SCHEMA)?;
            conn.execute_batch(SYNC_TABLES)?;
            let t = put_timestamp.internal();
            conn.execute(
                "UPDATE account_stat SET account = ?, created_at = ?, id = ?, put_timestamp = ?, status_changed_at = ?",
                params![account, Timestamp::now().internal(), new_db_id(device), t, t],
            )?;
            Ok(())
        })?;
        Ok((AccountDb::open(path)?, created))
    }

    /// The stat row.
    pub fn info(&self) -> Result<Info, DbError> {
        Ok(self.conn.query_row(
            "SELECT account, created_at, put_timestamp, delete_timestamp, container_count, object_count, bytes_used,
                    status, status_changed_at, metadata FROM account_stat",
            [],
            |r| {
                Ok(Info {
                    account: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                    created_at: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    put_timestamp: r.get(2)?,
                    delete_timestamp: r.get(3)?,
                    container_count: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
                    object_count: r.get(5)?,
                    bytes_used: r.get(6)?,
                    status: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
                    status_changed_at: r.get(8)?,
                    metadata: r.get::<_, Option<String>>(9)?.unwrap_or_default(),
                })
            },
        )?)
    }

    /// Per-policy (index, containers, objects, bytes).
    pub fn policy_stats(&self) -> Result<Vec<(i64, i64, i64, i64)>, DbError> {
        let mut st = self.conn.prepare_cached(
            "SELECT storage_policy_index, container_count, object_count, bytes_used FROM policy_stat ORDER BY storage_policy_index",
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Merge container rows (§7.6: max timestamps, the counts as sent) in
    /// one transaction.
    pub fn merge_containers(&mut self, rows: &[ContainerRow]) -> Result<(), DbError> {
        immediate(&mut self.conn, |tx| rows.iter().try_for_each(|row| merge_one(tx, row, None)))
    }

    /// Merge container rows from another replica as Swift's
    /// `AccountBroker.merge_items` does (the newest PUT and DELETE kept, a
    /// new row's `deleted` as sent) and, in the same transaction, move that
    /// replica's `incoming_sync` point to `point` (the larger is kept).
    pub fn merge_replicated(
        &mut self,
        rows: &[(ContainerRow, i64)],
        point: Option<(&str, i64)>,
    ) -> Result<(), DbError> {
        immediate(&mut self.conn, |tx| {
            for (row, sent_deleted) in rows {
                merge_one(tx, row, Some(*sent_deleted))?;
            }
            if let Some((source, p)) = point {
                aerie_storage::db::rpc::advance_sync(tx, "incoming_sync", source, p)?;
            }
            Ok(())
        })
    }

    /// The connection, for writes of the replication RPC.
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The connection (listings).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Statements in one immediate transaction.
    pub fn write<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, DbError> {
        immediate(&mut self.conn, |tx| Ok(f(tx)?))
    }
}

/// One container row merged inside `tx`: the newest PUT and DELETE kept.
/// `deleted` is worked out from them, except for a row new here that
/// another replica sent with its own flag (`sent_deleted`), which is kept
/// as Swift's `AccountBroker.merge_items` keeps it.
fn merge_one(tx: &rusqlite::Transaction<'_>, row: &ContainerRow, sent_deleted: Option<i64>) -> Result<(), DbError> {
    let existing: Option<(String, String)> = tx
        .query_row(
            "SELECT put_timestamp, delete_timestamp FROM container WHERE name = ? AND deleted IN (0, 1)",
            [&row.name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (mut put, mut del) = (row.put_timestamp.clone(), row.delete_timestamp.clone());
    let new_here = existing.is_none();
    if let Some((op, od)) = existing {
        if ts(&op) > ts(&put) {
            put = op;
        }
        if ts(&od) > ts(&del) {
            del = od;
        }
        tx.execute("DELETE FROM container WHERE name = ?", [&row.name])?;
    }
    let deleted = match sent_deleted {
        Some(d) if new_here => d,
        _ => i64::from(ts(&del) > ts(&put) && row.object_count == 0),
    };
    tx.execute(
        "INSERT INTO container (name, put_timestamp, delete_timestamp, object_count, bytes_used, deleted, storage_policy_index)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        params![row.name, put, del, row.object_count, row.bytes_used, deleted, row.policy],
    )?;
    Ok(())
}

/// A row from a Swift account pending record: `(name, put_timestamp,
/// delete_timestamp, object_count, bytes_used, deleted[, policy])`.
fn pending_row(v: &aerie_storage::pickle::Value) -> Option<ContainerRow> {
    use aerie_storage::pickle::Value;
    let (Value::Tuple(items) | Value::List(items)) = v else { return None };
    Some(ContainerRow {
        name: pickled_text(items.first())?,
        put_timestamp: pickled_text(items.get(1))?,
        delete_timestamp: pickled_text(items.get(2))?,
        object_count: pickled_int(items.get(3))?,
        bytes_used: pickled_int(items.get(4))?,
        policy: pickled_int(items.get(6)).unwrap_or(0),
    })
}

/// The pending record of a container row, as Swift's account server writes
/// it: `(name, put_timestamp, delete_timestamp, object_count, bytes_used,
/// deleted, policy)`.
pub fn pending_record(r: &ContainerRow) -> aerie_storage::pickle::Value {
    use aerie_storage::pickle::Value;
    let deleted = ts(&r.delete_timestamp) > ts(&r.put_timestamp) && r.object_count == 0;
    Value::Tuple(vec![
        Value::Str(r.name.clone()),
        Value::Str(r.put_timestamp.clone()),
        Value::Str(r.delete_timestamp.clone()),
        Value::Int(r.object_count),
        Value::Int(r.bytes_used),
        Value::Int(i64::from(deleted)),
        Value::Int(r.policy),
    ])
}
