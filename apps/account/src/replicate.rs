//! `REPLICATE` on the account service: Swift's database replication RPC
//! (`aerie_storage::db::rpc`) over an account database — its replication
//! info as `AccountBroker.get_replication_info` gives it, and container
//! rows merged as `AccountBroker.merge_items` merges them.

use crate::db::{AccountDb, ContainerRow};
use aerie_storage::db::replicator::Replicated;
use aerie_storage::db::rpc::{self, Replica, RpcError};
use aerie_storage::db::DbError;
use aerie_storage::Timestamp;
use rusqlite::Connection;
use serde_json::Value;
use std::path::Path;

/// The columns of `account_stat` Swift's `get_info` reads, in its order.
const INFO_COLUMNS: &str =
    "account, created_at, put_timestamp, delete_timestamp, status_changed_at, container_count, object_count, bytes_used, hash, id";

/// An account database as the RPC sees it.
pub struct Account {
    db: AccountDb,
}

/// A container row as `merge_items` sends it, and its `deleted` flag.
fn row_of(v: &Value) -> Result<(ContainerRow, i64), RpcError> {
    let bad = |why: &str| RpcError::Bad(format!("invalid container row: {why}"));
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string).ok_or_else(|| bad(k));
    let int = |k: &str| v.get(k).and_then(Value::as_i64).ok_or_else(|| bad(k));
    let name = text("name")?;
    if name.is_empty() {
        return Err(bad("name"));
    }
    let put_timestamp = text("put_timestamp")?;
    let delete_timestamp = text("delete_timestamp")?;
    for t in [&put_timestamp, &delete_timestamp] {
        if Timestamp::parse(t).is_err() {
            return Err(bad("timestamp"));
        }
    }
    let policy = match v.get("storage_policy_index") {
        None | Some(Value::Null) => 0,
        Some(p) => p.as_i64().ok_or_else(|| bad("storage_policy_index"))?,
    };
    let row = ContainerRow {
        name,
        put_timestamp,
        delete_timestamp,
        object_count: int("object_count")?,
        bytes_used: int("bytes_used")?,
        policy,
    };
    Ok((row, int("deleted")?))
}

impl Replica for Account {
    const ROWS: &'static str = "container";
    const STAT: &'static str = "account_stat";

    fn open(path: &Path) -> Result<Self, DbError> {
        Ok(Account { db: AccountDb::open(path)? })
    }

    fn conn(&mut self) -> &mut Connection {
        self.db.conn_mut()
    }

    fn release(self) {
        self.db.release();
    }

    fn replication_info(&mut self) -> Result<Vec<(String, Value)>, DbError> {
        let max_rows = [("max_row", Self::ROWS)];
        rpc::replication_fields(self.db.conn(), Self::STAT, INFO_COLUMNS, "container_count", &max_rows, Vec::new())
    }

    fn merge_items(&mut self, rows: &[Value], source: Option<&str>) -> Result<(), RpcError> {
        let parsed = rows.iter().map(row_of).collect::<Result<Vec<_>, RpcError>>()?;
        let point = match source {
            Some(id) if !rows.is_empty() => {
                let mut max = -1;
                for r in rows {
                    max = max.max(
                        r.get("ROWID")
                            .and_then(Value::as_i64)
                            .ok_or_else(|| RpcError::Bad("invalid container row: ROWID".into()))?,
                    );
                }
                Some((id, max))
            }
            Some(id) => Some((id, -1)),
            None => None,
        };
        self.db.merge_replicated(&parsed, point)?;
        Ok(())
    }

    fn is_deleted(conn: &Connection) -> rusqlite::Result<bool> {
        // Swift's AccountBroker._is_deleted.
        let (status, count, put, del): (Option<String>, Option<i64>, String, String) = conn.query_row(
            "SELECT status, container_count, put_timestamp, delete_timestamp FROM account_stat",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        let t = |s: &str| Timestamp::parse(s).unwrap_or(Timestamp::ZERO);
        Ok(status.as_deref() == Some("DELETED") || (count.unwrap_or(0) == 0 && t(&del) > t(&put)))
    }
}

impl Replicated for Account {
    const SERVER_TYPE: &'static str = "account";
    const DATADIR: &'static str = "accounts";
    const RECLAIM_COLUMN: &'static str = "delete_timestamp";
}
