//! Listing bodies: JSON written straight into one pre-sized buffer, plain
//! text and XML, byte for byte what Swift's servers send.

use super::Entry;
use crate::pyjson::push_str as push_json_str;
use crate::timestamp::decode_timestamps;

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
                crate::Timestamp::parse(put_timestamp).unwrap_or_default().push_isoformat(&mut out);
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
                let lm = crate::Timestamp::parse(put_timestamp).unwrap_or_default().isoformat();
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
