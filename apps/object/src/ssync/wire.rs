//! SSYNC's lines (SWIFT-REPLICATION.md §4.3): what a sender offers in
//! MISSING_CHECK (`<hash> <ts_data>[ m:<hex>[__<off>][,t:<hex>[__<off>]]]`)
//! and what a receiver wants back (`<hash> d|m|dm`), both ways, exactly as
//! Swift's `encode_missing`/`decode_missing` and `encode_wanted`/
//! `decode_wanted` write and read them.

use aerie_storage::path::{percent_decode, quote_with};
use aerie_storage::Timestamp;

/// The protocol's markers.
pub const MISSING_CHECK_START: &[u8] = b":MISSING_CHECK: START";
/// End of the missing check.
pub const MISSING_CHECK_END: &[u8] = b":MISSING_CHECK: END";
/// Start of the updates.
pub const UPDATES_START: &[u8] = b":UPDATES: START";
/// End of the updates.
pub const UPDATES_END: &[u8] = b":UPDATES: END";

/// Longest protocol line either side reads (Swift's `network_chunk_size`).
pub const MAX_LINE: usize = 65536;

/// What a sender has of one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    /// The `.data` or `.ts` timestamp.
    pub ts_data: Timestamp,
    /// The newest metadata (`ts_data` when there is no `.meta`).
    pub ts_meta: Timestamp,
    /// The content type's (`ts_data` when no POST changed it).
    pub ts_ctype: Timestamp,
    /// `false` only for a non-durable erasure-coded fragment.
    pub durable: bool,
}

/// What a receiver has of one object (Swift's `_check_local`): nothing,
/// a tombstone (`ts_data` only), or data with its metadata times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Local {
    /// The `.data` or `.ts` timestamp.
    pub ts_data: Option<Timestamp>,
    /// The newest metadata's.
    pub ts_meta: Option<Timestamp>,
    /// The content type's.
    pub ts_ctype: Option<Timestamp>,
}

/// What a receiver asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wanted {
    /// The `.data` (a PUT) or `.ts` (a DELETE).
    pub data: bool,
    /// The `.meta` (a POST).
    pub meta: bool,
}

fn offset_part(t: Timestamp) -> String {
    if t.offset() != 0 {
        format!("__{:x}", t.offset())
    } else {
        String::new()
    }
}

fn hex_delta(t: Timestamp, base: Timestamp) -> String {
    let d = t.units() as i128 - base.units() as i128;
    if d < 0 {
        format!("-{:x}", -d)
    } else {
        format!("{d:x}")
    }
}

/// A MISSING_CHECK line for an object (without the line end).
pub fn encode_missing(hash: &str, o: &Offer) -> String {
    let mut msg = format!("{} {}", quote_with(hash, b"/"), quote_with(&o.ts_data.internal(), b"/"));
    let mut extra: Vec<String> = Vec::new();
    if o.ts_meta != o.ts_data {
        extra.push(format!("m:{}{}", hex_delta(o.ts_meta, o.ts_data), offset_part(o.ts_meta)));
        if o.ts_ctype != o.ts_data {
            extra.push(format!("t:{}{}", hex_delta(o.ts_ctype, o.ts_data), offset_part(o.ts_ctype)));
        }
    }
    if !o.durable {
        extra.push("durable:False".into());
    }
    if !extra.is_empty() {
        msg.push(' ');
        msg.push_str(&extra.join(","));
    }
    msg
}

fn parse_hex(v: &str) -> Option<i128> {
    let (neg, digits) = match v.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let n = i128::from_str_radix(digits, 16).ok()?;
    Some(if neg { -n } else { n })
}

/// `Timestamp(base.normal, delta=<hex>, offset=<hex>)`.
fn delta_timestamp(base: Timestamp, v: &str) -> Result<Timestamp, String> {
    let (delta, offset) = match v.split_once("__") {
        Some((d, o)) => (d, o),
        None => (v, ""),
    };
    let bad = || format!("invalid literal for int() with base 16: '{v}'");
    let delta = parse_hex(delta).ok_or_else(bad)?;
    let offset = if offset.is_empty() { 0 } else { parse_hex(offset).ok_or_else(bad)? };
    let units = base.units() as i128 + delta;
    if units < 0 || offset < 0 || units >= aerie_storage::timestamp::MAX_UNITS as i128 || offset > u64::MAX as i128 {
        return Err(format!("timestamp out of range: {v}"));
    }
    Ok(Timestamp::from_units(units as u64, offset as u64))
}

/// Whether a name is an object hash (32 lower-case hex digits): anything
/// else could name a path outside the partition.
pub fn valid_hash(h: &str) -> bool {
    h.len() == 32 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parse a MISSING_CHECK line (Swift's `decode_missing`); unknown extras
/// are ignored, and a hash that is not an object hash is refused.
pub fn decode_missing(line: &[u8]) -> Result<(String, Offer), String> {
    let text = std::str::from_utf8(line).map_err(|_| "missing_check line is not ASCII".to_string())?;
    let mut parts = text.split_whitespace();
    let (Some(hash), Some(ts)) = (parts.next(), parts.next()) else {
        return Err(format!("bad missing_check line {:?}", cap(text)));
    };
    let hash = String::from_utf8_lossy(&percent_decode(hash.as_bytes())).into_owned();
    if !valid_hash(&hash) {
        return Err(format!("invalid object hash {:?}", cap(&hash)));
    }
    let ts = String::from_utf8_lossy(&percent_decode(ts.as_bytes())).into_owned();
    let ts_data =
        Timestamp::parse(&ts).map_err(|_| format!("could not convert string to Timestamp: {:?}", cap(&ts)))?;
    let mut o = Offer { ts_data, ts_meta: ts_data, ts_ctype: ts_data, durable: true };
    if let Some(extra) = parts.next() {
        let extra = String::from_utf8_lossy(&percent_decode(extra.as_bytes())).into_owned();
        // The delta is from the data time without its offset.
        let base = ts_data.without_offset();
        for item in extra.split(',').filter(|i| i.contains(':')) {
            let Some((k, v)) = item.split_once(':') else { continue };
            match k {
                "m" => o.ts_meta = delta_timestamp(base, v)?,
                "t" => o.ts_ctype = delta_timestamp(base, v)?,
                "durable" => {
                    o.durable =
                        matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on" | "t" | "y")
                }
                _ => {}
            }
        }
    }
    Ok((hash, o))
}

/// What to ask for, if anything (Swift's `encode_wanted`).
pub fn wanted(remote: &Offer, local: &Local) -> Wanted {
    match local.ts_data {
        None => Wanted { data: true, meta: true },
        Some(ts_data) => Wanted {
            data: remote.ts_data > ts_data,
            meta: local.ts_meta.is_some_and(|m| remote.ts_meta > m)
                || local.ts_ctype.is_some_and(|c| remote.ts_ctype > c && remote.ts_ctype > remote.ts_data),
        },
    }
}

/// The receiver's line for an object, if it wants anything.
pub fn encode_wanted(hash: &str, w: Wanted) -> Option<String> {
    let parts = match (w.data, w.meta) {
        (false, false) => return None,
        (true, false) => "d",
        (false, true) => "m",
        (true, true) => "dm",
    };
    Some(format!("{} {parts}", quote_with(hash, b"/")))
}

/// A receiver's line read back (Swift's `decode_wanted`): a bare hash
/// (an old receiver) means the data.
pub fn decode_wanted(line: &str) -> Option<(String, Wanted)> {
    let mut parts = line.split_whitespace();
    let hash = String::from_utf8_lossy(&percent_decode(parts.next()?.as_bytes())).into_owned();
    let mut w = match parts.next() {
        Some(p) => Wanted { data: p.contains('d'), meta: p.contains('m') },
        None => Wanted::default(),
    };
    if !w.data && !w.meta {
        w.data = true;
    }
    Some((hash, w))
}

/// At most 1024 characters of a text, for messages (Swift's `cap_length`).
pub fn cap(s: &str) -> String {
    if s.len() <= 1024 {
        return s.to_string();
    }
    let mut cut = 1024;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &s[..cut])
}

/// Python's `repr()` of a `str`, as Swift's `:ERROR:` lines carry it.
pub fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).expect("ts")
    }

    /// Lines captured from Swift 2.38.3 (SWIFT-REPLICATION.md §4.3, §4.8).
    #[test]
    fn offers_and_wants_read_and_write_as_swift_does() {
        let h = "d1c91d91068a170a6bcf220efe77711d";
        let (hash, o) = decode_missing(format!("{h} 1796145631.00000 m:989680").as_bytes()).expect("line");
        assert_eq!(hash, h);
        assert_eq!((o.ts_data, o.ts_meta, o.ts_ctype), (t("1796145631"), t("1796145731"), t("1796145631")));
        assert_eq!(encode_missing(h, &o), format!("{h} 1796145631.00000 m:989680"));
        let o = Offer { ts_data: t("5"), ts_meta: t("6_3"), ts_ctype: t("5.5"), durable: false };
        let line = encode_missing(h, &o);
        assert_eq!(line, format!("{h} 0000000005.00000 m:186a0__3,t:c350,durable:False"));
        assert_eq!(decode_missing(line.as_bytes()).expect("line").1, o);
        // A data time with an offset: the deltas count from its normal form.
        let (_, o) = decode_missing(format!("{h} 0000000005.00000_0000000000000002 m:1").as_bytes()).expect("line");
        assert_eq!((o.ts_data, o.ts_meta), (t("5_2"), Timestamp::from_units(500_001, 0)));
        assert!(decode_missing(b"../../../etc/passwd 1.00000").is_err());
        assert!(decode_missing(h.as_bytes()).is_err());
        assert!(decode_missing(format!("{h} nope").as_bytes()).is_err());
        assert!(decode_missing(format!("{h} 1.0 m:zz").as_bytes()).is_err());

        let remote = Offer { ts_data: t("2"), ts_meta: t("3"), ts_ctype: t("2"), durable: true };
        assert_eq!(encode_wanted(h, wanted(&remote, &Local::default())), Some(format!("{h} dm")));
        let tomb = Local { ts_data: Some(t("2")), ..Local::default() };
        assert_eq!(encode_wanted(h, wanted(&remote, &tomb)), None, "a tombstone has no metadata to update");
        let older = Local { ts_data: Some(t("2")), ts_meta: Some(t("2")), ts_ctype: Some(t("2")) };
        assert_eq!(encode_wanted(h, wanted(&remote, &older)), Some(format!("{h} m")));
        let stale = Local { ts_data: Some(t("1")), ts_meta: Some(t("4")), ts_ctype: Some(t("1")) };
        assert_eq!(encode_wanted(h, wanted(&remote, &stale)), Some(format!("{h} d")));
        assert_eq!(decode_wanted(&format!("{h} dm")), Some((h.to_string(), Wanted { data: true, meta: true })));
        assert_eq!(decode_wanted(h), Some((h.to_string(), Wanted { data: true, meta: false })), "legacy: data");
    }

    #[test]
    fn errors_quote_like_python() {
        assert_eq!(py_repr("15 seconds: /srv/node/sdb1/.lock"), "'15 seconds: /srv/node/sdb1/.lock'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("a\nb\\"), "'a\\nb\\\\'");
    }
}
