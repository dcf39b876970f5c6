//! `REPLICATE` on the container service: Swift's database replication RPC
//! (`aerie_storage::db::rpc`) over a container database — its replication
//! info as `ContainerBroker.get_replication_info` gives it, object rows
//! merged with the three-timestamp rule, the policy index a better replica
//! reports adopted, and its shard ranges.

use crate::db::ContainerDb;
use crate::rows::Row;
use aerie_api::{Body, Response, Status};
use aerie_storage::db::replicator::{Info, Replicated};
use aerie_storage::db::rpc::{self, Replica, RpcError};
use aerie_storage::db::DbError;
use aerie_storage::timestamp::decode_timestamps;
use aerie_storage::Timestamp;
use rusqlite::Connection;
use serde_json::Value;
use std::path::Path;

/// The columns of `container_stat` Swift's `get_info` reads, in its order.
const INFO_COLUMNS: &str = "account, container, created_at, put_timestamp, delete_timestamp, status, status_changed_at,
    object_count, bytes_used, reported_put_timestamp, reported_delete_timestamp, reported_object_count,
    reported_bytes_used, hash, id, x_container_sync_point1, x_container_sync_point2, storage_policy_index";

/// A shard range's fields as Swift's `ShardRange` lists them.
const SHARD_RANGE_KEYS: &str =
    "name, timestamp, lower, upper, object_count, bytes_used, meta_timestamp, deleted, state, state_timestamp, epoch, reported, tombstones";

/// A container database as the RPC sees it.
pub struct Container {
    db: ContainerDb,
}

/// Every shard range (own and deleted included), as dicts.
fn shard_ranges(conn: &Connection) -> Result<Vec<Value>, DbError> {
    let mut st = conn.prepare(&format!("SELECT {SHARD_RANGE_KEYS} FROM shard_range ORDER BY ROWID"))?;
    let names: Vec<String> = st.column_names().iter().map(|s| s.to_string()).collect();
    let rows = st.query_map([], |r| rpc::row_fields(r, &names))?;
    let mut out = Vec::new();
    for fields in rows {
        out.push(Value::Object(fields?.into_iter().collect()));
    }
    Ok(out)
}

/// An object row as `merge_items` (and the `UPDATE` verb) sends it: the
/// content-type and metadata times encoded in `created_at`, or given as
/// `ctype_timestamp` and `meta_timestamp` (Swift's
/// `update_new_item_from_existing`).
pub(crate) fn row_of(v: &Value) -> Result<Row, RpcError> {
    let bad = |why: &str| RpcError::Bad(format!("invalid object row: {why}"));
    let name = v.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).ok_or_else(|| bad("name"))?;
    let created = match v.get("data_timestamp") {
        Some(Value::String(d)) => d.as_str(),
        _ => v.get("created_at").and_then(Value::as_str).ok_or_else(|| bad("created_at"))?,
    };
    let (data, mut ctype, mut meta) = decode_timestamps(created, false).map_err(|_| bad("created_at"))?;
    // Given explicitly (and not empty), they win over the encoded ones.
    let explicit = |key: &str| -> Result<Option<Timestamp>, RpcError> {
        match v.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Timestamp::parse(s).map(Some).map_err(|_| bad(key)),
            Some(Value::Number(n)) => Timestamp::parse(&n.to_string()).map(Some).map_err(|_| bad(key)),
            Some(_) => Err(bad(key)),
        }
    };
    if let Some(c) = explicit("ctype_timestamp")? {
        ctype = Some(c);
        meta = Some(c);
    }
    if let Some(m) = explicit("meta_timestamp")? {
        meta = Some(m);
    }
    let size = v.get("size").and_then(Value::as_i64).ok_or_else(|| bad("size"))?;
    let content_type = v.get("content_type").and_then(Value::as_str).ok_or_else(|| bad("content_type"))?;
    let etag = v.get("etag").and_then(Value::as_str).ok_or_else(|| bad("etag"))?;
    let deleted = match v.get("deleted") {
        Some(d) => d.as_i64().ok_or_else(|| bad("deleted"))? != 0,
        None => return Err(bad("deleted")),
    };
    let policy = match v.get("storage_policy_index") {
        None | Some(Value::Null) => 0,
        Some(p) => p.as_i64().ok_or_else(|| bad("storage_policy_index"))?,
    };
    Ok(Row {
        name: name.to_string(),
        data,
        ctype_ts: ctype.unwrap_or(data),
        meta: meta.unwrap_or(data),
        size,
        content_type: content_type.to_string(),
        etag: etag.to_string(),
        deleted,
        policy,
    })
}

impl Replica for Container {
    const ROWS: &'static str = "object";
    const STAT: &'static str = "container_stat";

    fn open(path: &Path) -> Result<Self, DbError> {
        Ok(Container { db: ContainerDb::open(path)? })
    }

    fn conn(&mut self) -> &mut Connection {
        self.db.conn_mut()
    }

    fn release(self) {
        self.db.release();
    }

    fn replication_info(&mut self) -> Result<Vec<(String, Value)>, DbError> {
        let conn = self.db.conn();
        // aerie does not shard: a container is one database file.
        let state = vec![("db_state".to_string(), Value::from("unsharded"))];
        let max_rows = [("max_row", Self::ROWS), ("shard_max_row", "shard_range")];
        rpc::replication_fields(conn, Self::STAT, INFO_COLUMNS, "object_count", &max_rows, state)
    }

    fn merge_items(&mut self, rows: &[Value], source: Option<&str>) -> Result<(), RpcError> {
        // Every row checked before any is written.
        let parsed = rows.iter().map(row_of).collect::<Result<Vec<Row>, RpcError>>()?;
        let point = match source {
            None => None,
            Some(id) => {
                let last = rows.last().and_then(|r| r.get("ROWID")).and_then(Value::as_i64);
                match last {
                    Some(p) => Some((id, p)),
                    None if rows.is_empty() => None,
                    None => return Err(RpcError::Bad("invalid object row: ROWID".into())),
                }
            }
        };
        self.db.merge_rows_synced(&parsed, point)?;
        Ok(())
    }

    fn is_deleted(conn: &Connection) -> rusqlite::Result<bool> {
        // Swift's ContainerBroker._is_deleted: no objects in its policy and
        // deleted after its PUT.
        let (count, put, del): (i64, String, String) =
            conn.query_row("SELECT object_count, put_timestamp, delete_timestamp FROM container_stat", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        let t = |s: &str| Timestamp::parse(s).unwrap_or(Timestamp::ZERO);
        Ok(count == 0 && t(&del) > t(&put))
    }

    fn after_newid(conn: &Connection) -> rusqlite::Result<()> {
        conn.execute(
            "UPDATE container_stat SET reported_put_timestamp = 0, reported_delete_timestamp = 0,
             reported_object_count = 0, reported_bytes_used = 0",
            [],
        )?;
        Ok(())
    }

    fn before_sync(&mut self, remote: &[Value]) -> Result<(), RpcError> {
        // With more than one policy the sender says which it has, and when
        // it changed: a replica that is wrong adopts the better index.
        let Some(remote_info) = remote_side(remote)? else { return Ok(()) };
        let info = self.db.info()?;
        let local = crate::reconcile::Side::new(
            &info.put_timestamp,
            &info.delete_timestamp,
            &info.status_changed_at,
            info.object_count,
            info.storage_policy_index,
        );
        if crate::reconcile::incorrect_policy_index(&local, &remote_info) {
            let now = Timestamp::now().internal();
            self.db.set_storage_policy_index(remote_info.policy(), &now)?;
        }
        Ok(())
    }

    fn before_sync_changes(info: &Info, remote: &[Value]) -> bool {
        match remote_side(remote) {
            Ok(None) => false,
            Ok(Some(r)) => crate::reconcile::incorrect_policy_index(&side_of(info), &r),
            Err(_) => true,
        }
    }

    fn other_op(&mut self, op: &str, args: &[Value]) -> Option<Result<Response, RpcError>> {
        match op {
            "get_shard_ranges" => Some(
                shard_ranges(self.db.conn())
                    .map(|all| {
                        Response::new(Status::OK).with_header("Content-Type", &b"application/json"[..]).with_body(
                            Body::Bytes(aerie_storage::pyjson::dumps(&Value::Array(all)).into_bytes().into()),
                        )
                    })
                    .map_err(RpcError::Db),
            ),
            "merge_shard_ranges" => Some(match args.first() {
                Some(Value::Array(list)) if list.is_empty() => Ok(aerie_storage::swob::page(Status::ACCEPTED)),
                Some(Value::Array(_)) => {
                    Err(RpcError::Bad("merge_shard_ranges: aerie does not shard containers".into()))
                }
                _ => Err(RpcError::Bad("merge_shard_ranges needs a list of shard ranges".into())),
            }),
            _ => None,
        }
    }

    fn exists(db_file: &Path) -> bool {
        // Any `<hash>[_<epoch>].db` (Swift's `get_db_files`).
        if db_file.exists() {
            return true;
        }
        let (Some(dir), Some(stem)) = (db_file.parent(), db_file.file_stem().and_then(|s| s.to_str())) else {
            return false;
        };
        std::fs::read_dir(dir).is_ok_and(|mut it| {
            it.any(|e| {
                e.ok().and_then(|e| e.file_name().into_string().ok()).is_some_and(|n| {
                    n.strip_prefix(stem).and_then(|r| r.strip_prefix('_')).is_some_and(|r| r.ends_with(".db"))
                })
            })
        })
    }
}

/// The policy figures a `sync` call's sender adds after Swift's seven
/// arguments when the cluster has more than one policy (`None`: it has
/// one).
fn remote_side(remote: &[Value]) -> Result<Option<crate::reconcile::Side>, RpcError> {
    if remote.len() < 10 {
        return Ok(None);
    }
    let (Some(changed), Some(count), Some(policy)) = (remote[7].as_str(), remote[8].as_i64(), remote[9].as_i64())
    else {
        return Err(RpcError::Bad("sync: status_changed_at, count and storage_policy_index".into()));
    };
    let put = remote[4].as_str().unwrap_or("0");
    let del = remote[5].as_str().unwrap_or("0");
    Ok(Some(crate::reconcile::Side::new(put, del, changed, count, policy)))
}

fn side_of(info: &Info) -> crate::reconcile::Side {
    let text = |k: &str| info.get(k).and_then(Value::as_str).unwrap_or("0").to_string();
    let int = |k: &str| info.get(k).and_then(Value::as_i64).unwrap_or(0);
    crate::reconcile::Side::new(
        &text("put_timestamp"),
        &text("delete_timestamp"),
        &text("status_changed_at"),
        int("count"),
        int("storage_policy_index"),
    )
}

/// Whether two replicas' creation, PUT or DELETE times differ (the
/// sender then merges the peer's).
fn timestamps_differ(info: &Info, remote: &Info) -> bool {
    ["created_at", "put_timestamp", "delete_timestamp"].iter().any(|k| info.get(*k) != remote.get(*k))
}

impl Replicated for Container {
    const SERVER_TYPE: &'static str = "container";
    const DATADIR: &'static str = "containers";
    const RECLAIM_COLUMN: &'static str = "created_at";

    fn extra_sync_args(info: &Info, multi_policy: bool) -> Vec<Value> {
        if !multi_policy {
            return Vec::new();
        }
        ["status_changed_at", "count", "storage_policy_index"]
            .iter()
            .map(|k| info.get(*k).cloned().unwrap_or(Value::Null))
            .collect()
    }

    fn adopt(&mut self, info: &Info, remote: &Info) -> Result<(), DbError> {
        // Swift's ContainerReplicator._handle_sync_response: the better
        // policy index, then the three timestamps.
        if crate::reconcile::incorrect_policy_index(&side_of(info), &side_of(remote)) {
            if let Some(policy) = remote.get("storage_policy_index").and_then(Value::as_i64) {
                self.db.set_storage_policy_index(policy, &Timestamp::now().internal())?;
            }
        }
        if timestamps_differ(info, remote) {
            let v = |k: &str| remote.get(k).and_then(Value::as_str).unwrap_or("0").to_string();
            rpc::merge_timestamps::<Container>(
                self.db.conn_mut(),
                &v("created_at"),
                &v("put_timestamp"),
                &v("delete_timestamp"),
            )?;
        }
        Ok(())
    }

    fn adopts(info: &Info, remote: &Info) -> bool {
        crate::reconcile::incorrect_policy_index(&side_of(info), &side_of(remote)) || timestamps_differ(info, remote)
    }

    fn needs_shard_max_row() -> bool {
        true
    }

    fn shard_ranges(&mut self) -> Result<Vec<Value>, DbError> {
        shard_ranges(self.db.conn())
    }

    fn report_up_to_date(info: &Info) -> bool {
        // Swift's ContainerReplicator.report_up_to_date: the account has
        // the final figures.
        [
            ("reported_put_timestamp", "put_timestamp"),
            ("reported_delete_timestamp", "delete_timestamp"),
            ("reported_bytes_used", "bytes_used"),
            ("reported_object_count", "count"),
        ]
        .iter()
        .all(|(reported, value)| info.get(*reported) == info.get(*value))
    }
}
