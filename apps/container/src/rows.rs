//! Object rows (§6.7): the three-timestamp merge Swift's `ContainerBroker`
//! applies, `swift_bytes` in content types, and rows as `.pending`
//! records.

use aerie_storage::db::{pickled_int, pickled_text};
use aerie_storage::Timestamp;

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
pub(crate) fn pending_row(v: &aerie_storage::pickle::Value) -> Option<Row> {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).expect("ts")
    }

    pub(crate) fn row(name: &str, d: &str, c: &str, m: &str, size: i64, ctype: &str) -> Row {
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
    fn rows_round_trip_as_pending_records() {
        let r = row("o", "1", "2", "3", 5, "t/p");
        assert_eq!(pending_row(&pending_record(&r)), Some(r));
    }
}
