//! Listings (§6.6): Swift's `list_objects_iter` algorithm over the
//! `(deleted, name)` index of a container's objects or an account's
//! containers, page by page (never the whole table in memory); the JSON,
//! plain and XML bodies are `format.rs`'s.

mod format;
pub use format::{account_xml, clean_content_type, json, json_with, plain, xml};

use rusqlite::{params_from_iter, Connection, OptionalExtension, ToSql};

/// What a listing asks for.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// At most this many entries (objects and subdirs).
    pub limit: usize,
    /// Only names after this one.
    pub marker: String,
    /// Only names before this one.
    pub end_marker: String,
    /// Only names starting with this.
    pub prefix: Option<String>,
    /// Roll names up to this delimiter after the prefix.
    pub delimiter: Option<String>,
    /// `path` (overrides prefix and delimiter).
    pub path: Option<String>,
    /// Descending order.
    pub reverse: bool,
    /// Include names starting with the reserved byte.
    pub allow_reserved: bool,
    /// Which rows: a container's objects (of one policy) or an account's
    /// containers.
    pub table: Table,
}

/// The rows a listing walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Object rows of this policy (a container listing).
    Objects {
        /// The policy index.
        policy: i64,
    },
    /// Container rows (an account listing).
    Containers,
}

impl Default for Table {
    fn default() -> Self {
        Table::Objects { policy: 0 }
    }
}

/// One listing entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// An object row.
    Object {
        /// Name.
        name: String,
        /// Encoded timestamps.
        created_at: String,
        /// Stored size.
        size: i64,
        /// Stored content type.
        content_type: String,
        /// Stored etag.
        etag: String,
    },
    /// A container row.
    Container {
        /// Name.
        name: String,
        /// Its put timestamp.
        put_timestamp: String,
        /// Objects in it.
        object_count: i64,
        /// Bytes in it.
        bytes_used: i64,
        /// Its policy index.
        policy: i64,
    },
    /// A rolled-up prefix.
    Subdir(String),
}

impl Entry {
    /// The entry's name (or subdir prefix).
    pub fn name(&self) -> &str {
        match self {
            Entry::Object { name, .. } | Entry::Container { name, .. } | Entry::Subdir(name) => name,
        }
    }
}

/// The character after `c` (skipping the surrogate gap).
fn next_char(c: char) -> char {
    let n = u32::from(c) + 1;
    char::from_u32(n).or_else(|| char::from_u32(0xE000)).unwrap_or(char::MAX)
}

fn bump_last(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    if let Some(last) = chars.pop() {
        chars.push(next_char(last));
    }
    chars.into_iter().collect()
}

/// List entries (Swift's `list_objects_iter`, object rows of one policy).
pub fn list(conn: &Connection, p: &ListParams) -> rusqlite::Result<Vec<Entry>> {
    let limit = p.limit;
    let (mut marker, mut end_marker) = (p.marker.clone(), p.end_marker.clone());
    if p.reverse {
        std::mem::swap(&mut marker, &mut end_marker);
    }
    let mut prefix = p.prefix.clone();
    let mut delimiter = p.delimiter.clone().filter(|d| !d.is_empty());
    let mut path = p.path.clone();
    if let Some(pa) = &path {
        let pa = if pa.is_empty() { String::new() } else { format!("{}/", pa.trim_end_matches('/')) };
        prefix = Some(pa.clone());
        path = Some(pa);
        delimiter = Some("/".into());
    } else if delimiter.is_some() && prefix.is_none() {
        prefix = Some(String::new());
    }
    let end_prefix = prefix.as_deref().filter(|x| !x.is_empty()).map(bump_last);
    let orig_marker = marker.clone();
    let mut delim_force_gte = false;
    // Subdirs can be found through the (deleted, name) index alone when
    // every live row is of the listed policy: one index seek per subdir
    // instead of a seek and a table lookup.
    let probe = delimiter.is_some()
        && path.is_none()
        && !p.reverse
        && match p.table {
            Table::Objects { policy } => only_live_policy(conn, policy),
            Table::Containers => true,
        };
    let mut results: Vec<Entry> = Vec::new();
    while results.len() < limit {
        let mut conds: Vec<&str> = Vec::new();
        let mut args: Vec<String> = Vec::new();
        let pre = prefix.clone().unwrap_or_default();
        if !end_marker.is_empty() && (pre.is_empty() || end_prefix.as_ref().is_none_or(|ep| end_marker < *ep)) {
            conds.push("name < ?");
            args.push(end_marker.clone());
        } else if let Some(ep) = &end_prefix {
            conds.push("name < ?");
            args.push(ep.clone());
        }
        if delim_force_gte {
            conds.push("name >= ?");
            args.push(marker.clone());
            delim_force_gte = false;
        } else if !marker.is_empty() && (pre.is_empty() || marker >= pre) {
            conds.push("name > ?");
            args.push(marker.clone());
        } else if !pre.is_empty() {
            conds.push("name >= ?");
            args.push(pre.clone());
        }
        if !p.allow_reserved {
            conds.push("name >= ?");
            args.push("\u{1}".into());
        }
        conds.push("deleted = 0");
        if let (true, Some(delim)) = (probe, delimiter.as_deref()) {
            let table = if matches!(p.table, Table::Containers) { "container" } else { "object" };
            let sql = format!("SELECT name FROM {table} WHERE {} ORDER BY name LIMIT 1", conds.join(" AND "));
            let first: Option<String> =
                conn.prepare_cached(&sql)?.query_row(params_from_iter(args.iter()), |r| r.get(0)).optional()?;
            let Some(name) = first else { break };
            let pre_len = pre.len();
            if let Some(end) = name.get(pre_len..).and_then(|rest| rest.find(delim)).map(|i| i + pre_len) {
                let dir = name[..end + delim.len()].to_string();
                marker = format!("{}{}", &name[..end], bump_last(delim));
                delim_force_gte = true;
                if dir != orig_marker {
                    results.push(Entry::Subdir(dir));
                }
                continue;
            }
        }
        let mut bind: Vec<Box<dyn ToSql>> = args.iter().map(|a| Box::new(a.clone()) as Box<dyn ToSql>).collect();
        let (columns, table) = match p.table {
            Table::Objects { policy } => {
                conds.push("storage_policy_index = ?");
                bind.push(Box::new(policy));
                ("name, created_at, size, content_type, etag", "object")
            }
            Table::Containers => ("name, put_timestamp, object_count, bytes_used, storage_policy_index", "container"),
        };
        let sql = format!(
            "SELECT {columns} FROM {table} WHERE {} ORDER BY name {} LIMIT ?",
            conds.join(" AND "),
            if p.reverse { "DESC" } else { "ASC" }
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        bind.push(Box::new((limit - results.len()) as i64));
        let objects = matches!(p.table, Table::Objects { .. });
        // Rows are stepped lazily: after a subdir the query is restarted
        // past it, so only the rows used are read.
        let mut rows = stmt.query_map(params_from_iter(bind.iter().map(|b| b.as_ref())), |r| {
            if objects {
                Ok(Entry::Object {
                    name: r.get(0)?,
                    created_at: r.get(1)?,
                    size: r.get(2)?,
                    content_type: r.get(3)?,
                    etag: r.get(4)?,
                })
            } else {
                Ok(Entry::Container {
                    name: r.get(0)?,
                    put_timestamp: r.get(1)?,
                    object_count: r.get(2)?,
                    bytes_used: r.get(3)?,
                    policy: r.get(4)?,
                })
            }
        })?;
        let Some(delim) = delimiter.clone() else {
            for row in rows {
                results.push(row?);
            }
            return Ok(results);
        };
        let pre_len = pre.len();
        let mut seen = false;
        for row in rows.by_ref() {
            let row = row?;
            seen = true;
            let name = row.name().to_string();
            if p.reverse {
                end_marker = name.clone();
            } else {
                marker = name.clone();
            }
            if results.len() >= limit {
                return Ok(results);
            }
            let end = name.get(pre_len..).and_then(|rest| rest.find(delim.as_str())).map(|i| i + pre_len);
            if let Some(pa) = &path {
                if &name == pa {
                    continue;
                }
                if let Some(end) = end {
                    if name.len() > end + delim.len() {
                        if p.reverse {
                            end_marker = name[..end + delim.len()].to_string();
                        } else {
                            marker = format!("{}{}", &name[..end], bump_last(&delim));
                        }
                        break;
                    }
                }
            } else if let Some(end) = end {
                let dir = name[..end + delim.len()].to_string();
                if p.reverse {
                    end_marker = dir.clone();
                } else {
                    marker = format!("{}{}", &name[..end], bump_last(&delim));
                    delim_force_gte = true;
                }
                if dir != orig_marker {
                    results.push(Entry::Subdir(dir));
                }
                break;
            }
            results.push(row);
        }
        if !seen {
            break;
        }
    }
    Ok(results)
}

/// Whether no live object row is of another policy than `policy` (from
/// the per-policy statistics the triggers keep).
fn only_live_policy(conn: &Connection, policy: i64) -> bool {
    conn.query_row(
        "SELECT COUNT(*) FROM policy_stat WHERE storage_policy_index != ? AND object_count > 0",
        [policy],
        |r| r.get::<_, i64>(0),
    )
    .is_ok_and(|n| n == 0)
}
