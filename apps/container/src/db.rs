//! A container database in Swift's schema (SWIFT-BACKEND.md §9.1), so that
//! Swift's tools and servers read aerie's databases and the other way round.
//!
//! One SQLite file per container at
//! `<dev>/containers/<part>/<sfx>/<hash>/<hash>.db`. Object rows are merged
//! with the three-timestamp rule of §6.7 (`rows.rs`; delete + insert: the
//! schema forbids UPDATE on `object`); triggers keep `policy_stat` and the
//! rolling `hash` current, through the `chexor` function every connection
//! registers. The broker base (connections, `.pending` files, creation,
//! errors) is `aerie_storage::db`'s. Every call blocks on the disk: only
//! pool threads and background roles use this.

use crate::rows::{merge, pending_row, Row};
use crate::schema::SCHEMA;
use aerie_storage::db::{
    connect_cached, create_db, drain_pending, immediate, keep_connection, new_db_id, DbError, PENDING_CAP, SYNC_TABLES,
};
use aerie_storage::timestamp::{decode_timestamps, encode_timestamps};
use aerie_storage::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

/// A container's info row joined with its policy's statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// An open container database.
pub struct ContainerDb {
    conn: Connection,
    path: std::path::PathBuf,
    id: Option<(u64, u64)>,
}

impl ContainerDb {
    /// Open an existing database, merging rows Swift's servers left in its
    /// `.pending` file.
    pub fn open(path: &Path) -> Result<ContainerDb, DbError> {
        let (conn, id) = connect_cached(path)?;
        let mut db = ContainerDb { conn, path: path.to_path_buf(), id };
        // A file that is not one of ours is quarantined (Swift's "no such
        // table"); the schema is looked at only when the info cannot be
        // read.
        if let Err(e) = db.info() {
            DbError::check_table(&db.conn, "container_info")?;
            return Err(e);
        }
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
        self.merge_rows_synced(rows, None)
    }

    /// Merge rows from another replica and, in the same transaction, move
    /// that replica's `incoming_sync` point to `point` (Swift's
    /// `merge_items(rows, source)`: the larger point is kept).
    pub fn merge_rows_synced(&mut self, rows: &[Row], point: Option<(&str, i64)>) -> Result<(), DbError> {
        immediate(&mut self.conn, |tx| {
            merge_in(tx, rows)?;
            if let Some((source, p)) = point {
                aerie_storage::db::rpc::advance_sync(tx, "incoming_sync", source, p)?;
            }
            Ok(())
        })
    }

    /// Swift's `set_storage_policy_index`: the container's rows count in
    /// another policy from now on.
    pub fn set_storage_policy_index(&mut self, policy: i64, ts: &str) -> Result<(), DbError> {
        immediate(&mut self.conn, |tx| {
            tx.execute("INSERT OR IGNORE INTO policy_stat (storage_policy_index) VALUES (?)", [policy])?;
            tx.execute(
                "UPDATE container_info SET storage_policy_index = ?, status_changed_at = MAX(?, status_changed_at)
                 WHERE storage_policy_index <> ?",
                params![policy, ts, policy],
            )?;
            Ok(())
        })
    }

    /// The connection, for writes of the replication RPC.
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
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

/// Merge object rows inside `tx` (§6.7): each against what is stored.
fn merge_in(tx: &rusqlite::Transaction<'_>, rows: &[Row]) -> Result<(), DbError> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::tests::row;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).expect("ts")
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

#[cfg(test)]
mod listing_tests {
    use crate::db::ContainerDb;
    use crate::rows::Row;
    use aerie_storage::db::listing::*;
    use aerie_storage::Timestamp;

    fn db_with(names: &[&str]) -> (ContainerDb, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("aerie-list-{}-{}", std::process::id(), names.len()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut db =
            ContainerDb::create(&dir.join("c.db"), "a", "c", Timestamp::from_secs(1), 0, "sda").expect("create").0;
        let t = Timestamp::from_secs(2);
        let rows: Vec<Row> = names
            .iter()
            .map(|n| Row {
                name: n.to_string(),
                data: t,
                ctype_ts: t,
                meta: t,
                size: 1,
                content_type: "text/plain".into(),
                etag: "e".into(),
                deleted: false,
                policy: 0,
            })
            .collect();
        db.merge_rows(&rows).expect("rows");
        (db, dir)
    }

    fn names(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| match e {
                Entry::Subdir(s) => format!("{s}(dir)"),
                other => other.name().to_string(),
            })
            .collect()
    }

    fn lp(limit: usize) -> ListParams {
        ListParams { limit, ..Default::default() }
    }

    #[test]
    fn subdirs_of_another_policy_are_not_listed() {
        // Seven names (a distinct scratch directory from the other tests).
        let (mut db, dir) = db_with(&["a/1", "a/2", "b/1", "d", "e/1", "e/2", "f"]);
        let t = Timestamp::from_secs(3);
        let other = Row {
            name: "c/1".into(),
            data: t,
            ctype_ts: t,
            meta: t,
            size: 1,
            content_type: "t".into(),
            etag: "e".into(),
            deleted: false,
            policy: 1,
        };
        db.merge_rows(&[other]).expect("row");
        let p = ListParams { delimiter: Some("/".into()), ..lp(100) };
        assert_eq!(names(&list(db.conn(), &p).expect("list")), ["a/(dir)", "b/(dir)", "d", "e/(dir)", "f"]);
        let p = ListParams { delimiter: Some("/".into()), table: Table::Objects { policy: 1 }, ..lp(100) };
        assert_eq!(names(&list(db.conn(), &p).expect("list")), ["c/(dir)"]);
        // With one live policy the subdirs come from the index alone; the
        // answer is the same, limits included.
        db.write(|tx| tx.execute("DELETE FROM object WHERE name = 'c/1'", [])).expect("delete");
        let p = ListParams { delimiter: Some("/".into()), ..lp(3) };
        assert_eq!(names(&list(db.conn(), &p).expect("list")), ["a/(dir)", "b/(dir)", "d"]);
        let p = ListParams { delimiter: Some("/".into()), marker: "b/".into(), ..lp(100) };
        assert_eq!(names(&list(db.conn(), &p).expect("list")), ["d", "e/(dir)", "f"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn delimiter_prefix_markers_and_reverse() {
        let (db, dir) = db_with(&["a", "a/", "a/b", "a/c/d", "b", "c-1", "c-2", "d"]);
        let c = db.conn();
        assert_eq!(names(&list(c, &lp(100)).expect("list")), ["a", "a/", "a/b", "a/c/d", "b", "c-1", "c-2", "d"]);
        let p = ListParams { delimiter: Some("/".into()), ..lp(100) };
        assert_eq!(names(&list(c, &p).expect("list")), ["a", "a/(dir)", "b", "c-1", "c-2", "d"]);
        let p = ListParams { delimiter: Some("/".into()), prefix: Some("a/".into()), ..lp(100) };
        assert_eq!(names(&list(c, &p).expect("list")), ["a/", "a/b", "a/c/(dir)"]);
        let p = ListParams { path: Some("a".into()), ..lp(100) };
        assert_eq!(names(&list(c, &p).expect("list")), ["a/b"]);
        let p = ListParams { marker: "b".into(), end_marker: "d".into(), ..lp(100) };
        assert_eq!(names(&list(c, &p).expect("list")), ["c-1", "c-2"]);
        let p = ListParams { reverse: true, marker: "d".into(), ..lp(3) };
        assert_eq!(names(&list(c, &p).expect("list")), ["c-2", "c-1", "b"]);
        let p = ListParams { delimiter: Some("-".into()), ..lp(100) };
        assert_eq!(names(&list(c, &p).expect("list")), ["a", "a/", "a/b", "a/c/d", "b", "c-(dir)", "d"]);
        let p = ListParams { delimiter: Some("/".into()), reverse: true, ..lp(100) };
        assert_eq!(names(&list(c, &p).expect("list")), ["d", "c-2", "c-1", "b", "a/(dir)", "a"]);
        let p = ListParams { delimiter: Some("/".into()), limit: 2, ..lp(2) };
        assert_eq!(names(&list(c, &p).expect("list")), ["a", "a/(dir)"]);
        let p = ListParams { delimiter: Some("/".into()), marker: "a/".into(), ..lp(100) };
        assert_eq!(names(&list(c, &p).expect("list")), ["b", "c-1", "c-2", "d"], "paging continues past the subdir");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn utf8_byte_order_and_reserved_names() {
        let (db, dir) = db_with(&["z", "\u{e9}", "\u{10000}", "\u{0}hidden"]);
        let all = list(db.conn(), &ListParams { allow_reserved: true, ..lp(10) }).expect("list");
        assert_eq!(names(&all), ["\u{0}hidden", "z", "\u{e9}", "\u{10000}"]);
        assert_eq!(names(&list(db.conn(), &lp(10)).expect("list")), ["z", "\u{e9}", "\u{10000}"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn bodies() {
        let e = vec![
            Entry::Object {
                name: "\u{e9}t\u{e9}".into(),
                created_at: "1795376283.36507".into(),
                size: 5,
                content_type: "application/x; swift_bytes=1234; charset=utf8".into(),
                etag: "eee".into(),
            },
            Entry::Subdir("a/".into()),
        ];
        assert_eq!(
            json(&e),
            "[{\"bytes\": 1234, \"hash\": \"eee\", \"name\": \"\\u00e9t\\u00e9\", \"content_type\": \"application/x;charset=utf8\", \"last_modified\": \"2026-11-22T19:38:03.365070\"}, {\"subdir\": \"a/\"}]"
        );
        assert_eq!(plain(&e), "\u{e9}t\u{e9}\na/\n");
        assert!(xml("c", &e).contains("<subdir name=\"a/\"><name>a/</name></subdir>"));
        assert_eq!(json(&[]), "[]");
    }
}
