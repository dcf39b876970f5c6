//! JSON as Python's `json.dumps` writes it (`ensure_ascii`, `", "` and
//! `": "` separators, the caller's key order): the bytes Swift's servers
//! send, for answers a peer may compare or a test may diff.

use serde_json::Value;
use std::fmt::Write;

/// `s` as a JSON string with Python's `ensure_ascii` escaping, appended.
pub fn push_str(out: &mut String, s: &str) {
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
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
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

/// A value, appended (objects in their map's order).
pub fn push_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                out.push_str(&py_float(f));
            } else {
                let _ = write!(out, "{n}");
            }
        }
        Value::String(s) => push_str(out, s),
        Value::Array(a) => push_list(out, a),
        Value::Object(m) => push_fields(out, m.iter().map(|(k, v)| (k.as_str(), v))),
    }
}

/// A list of these values, appended.
pub fn push_list(out: &mut String, items: &[Value]) {
    out.push('[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_value(out, x);
    }
    out.push(']');
}

/// A list of these values, as `json.dumps` writes it (without first
/// copying them into one value).
pub fn dumps_list(items: &[Value]) -> String {
    let mut out = String::new();
    push_list(&mut out, items);
    out
}

/// An object of these fields in this order, appended.
pub fn push_fields<'a>(out: &mut String, fields: impl IntoIterator<Item = (&'a str, &'a Value)>) {
    out.push('{');
    for (i, (k, v)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_str(out, k);
        out.push_str(": ");
        push_value(out, v);
    }
    out.push('}');
}

/// An object of these fields in this order.
pub fn dumps_fields<K: AsRef<str>>(fields: &[(K, Value)]) -> String {
    let mut out = String::new();
    push_fields(&mut out, fields.iter().map(|(k, v)| (k.as_ref(), v)));
    out
}

/// A value.
pub fn dumps(v: &Value) -> String {
    let mut out = String::new();
    push_value(&mut out, v);
    out
}

/// Python's `repr(float)`: the shortest text that reads back the same,
/// with a `.0` on integral values.
fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    format!("{f:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_python_json_dumps_writes() {
        // json.dumps({"a": "caf\u00e9 \"q\" \\ \b\f\n\x01\x7f", "n": [1, -2, 2.5, 3.0, None, True]})
        let v: Value =
            serde_json::from_str(r#"{"a": "café \"q\" \\ \b\f\n\u0001\u007f", "n": [1, -2, 2.5, 3.0, null, true]}"#)
                .expect("json");
        let fields = [("a", v["a"].clone()), ("n", v["n"].clone()), ("e", serde_json::json!({}))];
        assert_eq!(
            dumps_fields(&fields),
            r#"{"a": "caf\u00e9 \"q\" \\ \b\f\n\u0001\u007f", "n": [1, -2, 2.5, 3.0, null, true], "e": {}}"#
        );
        assert_eq!(dumps(&serde_json::json!("\u{1F600}")), r#""\ud83d\ude00""#);
    }
}
