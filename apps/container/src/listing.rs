//! Object listings (§6.6): Swift's `list_objects_iter` algorithm over the
//! `(deleted, name)` index, page by page (never the whole container in
//! memory), and the JSON, plain and XML bodies.

use aerie_storage::timestamp::decode_timestamps;
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

/// Swift's `extract_swift_bytes` on a stored content type: the type with
/// its other parameters re-joined without spaces, and `swift_bytes`.
pub fn clean_content_type(ctype: &str) -> (String, Option<String>) {
    let Some((base, params)) = ctype.split_once(';') else { return (ctype.to_string(), None) };
    let mut out = base.to_string();
    let mut sb = None;
    for part in params.split(';') {
        let Some((k, v)) = part.split_once('=') else { continue };
        let (k, v) = (k.trim(), v.trim());
        if k == "swift_bytes" {
            sb = Some(v.to_string());
        } else {
            out.push_str(&format!(";{k}={v}"));
        }
    }
    (out, sb)
}

/// `s` as a JSON string with Python's `ensure_ascii` escaping, appended.
fn push_json_str(out: &mut String, s: &str) {
    use std::fmt::Write;
    out.push('"');
    if s.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\') {
        out.push_str(s);
    } else {
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                    let mut buf = [0u16; 2];
                    for u in c.encode_utf16(&mut buf) {
                        let _ = write!(out, "\\u{u:04x}");
                    }
                }
                c => out.push(c),
            }
        }
    }
    out.push('"');
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The fields Swift lists for an object row.
fn object_fields(created_at: &str, size: i64, content_type: &str) -> (i64, String, String) {
    let (ctype, sb) = clean_content_type(content_type);
    let bytes = sb.and_then(|v| v.parse::<i64>().ok()).unwrap_or(size);
    let meta_ts = decode_timestamps(created_at, false).ok().and_then(|(_, _, m)| m).unwrap_or_default();
    (bytes, ctype, meta_ts.isoformat())
}

/// JSON body (Swift's key order, `ensure_ascii`). Container entries name
/// their policy through `policy_name`. Written straight into one buffer:
/// a page has up to 10,000 entries.
pub fn json_with(entries: &[Entry], policy_name: &dyn Fn(i64) -> Option<String>) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(entries.len() * 160 + 2);
    out.push('[');
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match e {
            Entry::Subdir(s) => {
                out.push_str("{\"subdir\": ");
                push_json_str(&mut out, s);
                out.push('}');
            }
            Entry::Container { name, put_timestamp, object_count, bytes_used, policy } => {
                out.push_str("{\"name\": ");
                push_json_str(&mut out, name);
                let _ = write!(out, ", \"count\": {object_count}, \"bytes\": {bytes_used}, \"last_modified\": \"");
                aerie_storage::Timestamp::parse(put_timestamp).unwrap_or_default().push_isoformat(&mut out);
                out.push('"');
                if let Some(n) = policy_name(*policy) {
                    out.push_str(", \"storage_policy\": ");
                    push_json_str(&mut out, &n);
                }
                out.push('}');
            }
            Entry::Object { name, created_at, size, content_type, etag } => {
                let (ctype, sb) = if content_type.contains(';') {
                    let (c, sb) = clean_content_type(content_type);
                    (std::borrow::Cow::Owned(c), sb)
                } else {
                    (std::borrow::Cow::Borrowed(content_type.as_str()), None)
                };
                let bytes = sb.and_then(|v| v.parse::<i64>().ok()).unwrap_or(*size);
                let meta_ts = decode_timestamps(created_at, false).ok().and_then(|(_, _, m)| m).unwrap_or_default();
                let _ = write!(out, "{{\"bytes\": {bytes}, \"hash\": ");
                push_json_str(&mut out, etag);
                out.push_str(", \"name\": ");
                push_json_str(&mut out, name);
                out.push_str(", \"content_type\": ");
                push_json_str(&mut out, &ctype);
                out.push_str(", \"last_modified\": \"");
                meta_ts.push_isoformat(&mut out);
                out.push_str("\"}");
            }
        }
    }
    out.push(']');
    out
}

/// JSON body of object entries.
pub fn json(entries: &[Entry]) -> String {
    json_with(entries, &|_| None)
}

/// Plain body: one name per line.
pub fn plain(entries: &[Entry]) -> String {
    entries.iter().map(|e| format!("{}\n", e.name())).collect()
}

/// XML body of an account listing (one entry per line, §7.5).
pub fn account_xml(account: &str, entries: &[Entry], policy_name: &dyn Fn(i64) -> Option<String>) -> String {
    let mut out = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<account name=\"{}\">\n", xml_escape(account));
    for e in entries {
        match e {
            Entry::Subdir(s) => out.push_str(&format!("<subdir name=\"{}\" />\n", xml_escape(s))),
            Entry::Container { name, put_timestamp, object_count, bytes_used, policy } => {
                let lm = aerie_storage::Timestamp::parse(put_timestamp).unwrap_or_default().isoformat();
                let sp = policy_name(*policy)
                    .map(|n| format!("<storage_policy>{}</storage_policy>", xml_escape(&n)))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "<container><name>{}</name><count>{object_count}</count><bytes>{bytes_used}</bytes><last_modified>{lm}</last_modified>{sp}</container>\n",
                    xml_escape(name)
                ));
            }
            Entry::Object { .. } => {}
        }
    }
    out.push_str("</account>");
    out
}

/// XML body.
pub fn xml(container: &str, entries: &[Entry]) -> String {
    let mut out = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<container name=\"{}\">", xml_escape(container));
    for e in entries {
        match e {
            Entry::Subdir(s) => {
                let s = xml_escape(s);
                out.push_str(&format!("<subdir name=\"{s}\"><name>{s}</name></subdir>"));
            }
            Entry::Container { .. } => {}
            Entry::Object { name, created_at, size, content_type, etag } => {
                let (bytes, ctype, lm) = object_fields(created_at, *size, content_type);
                out.push_str(&format!(
                    "<object><name>{}</name><hash>{}</hash><bytes>{bytes}</bytes><content_type>{}</content_type><last_modified>{}</last_modified></object>",
                    xml_escape(name),
                    xml_escape(etag),
                    xml_escape(&ctype),
                    xml_escape(&lm)
                ));
            }
        }
    }
    out.push_str("</container>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{ContainerDb, Row};
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
