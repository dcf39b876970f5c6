//! Swift timestamps (SWIFT-BACKEND.md §2).
//!
//! A timestamp is a count of 10 µs units since the Unix epoch plus a 64-bit
//! "offset" used by internal tooling. Forms:
//!
//! * normal: `%016.5f` (`1402464677.04188`);
//! * internal: normal, plus `_` and 16 hex digits when the offset is not 0;
//! * short: normal, plus `_` and unpadded hex when the offset is not 0.
//!
//! Parsing follows Python's `Timestamp(str)`: split at the first `_`, parse
//! the left part as a Python float and round to 10 µs (half to even), parse
//! the right part as at most 16 hex digits; the value must be in
//! `0 ≤ v < 10¹⁰` seconds. Ordering is by (units, offset).

use std::cmp::Ordering;
use std::fmt;

/// 10 µs units per second.
pub const UNITS_PER_SEC: u64 = 100_000;
/// Exclusive upper bound of valid unit counts (10¹⁰ seconds).
pub const MAX_UNITS: u64 = 10_000_000_000 * UNITS_PER_SEC;

/// A Swift timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Timestamp {
    units: u64,
    offset: u64,
}

/// Why a timestamp string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTimestamp;

impl fmt::Display for InvalidTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid timestamp")
    }
}

impl std::error::Error for InvalidTimestamp {}

/// Parse a Python `float()` literal: optional sign, digits with single
/// underscores between them, optional fraction and exponent, surrounding
/// whitespace; `inf`/`nan` are refused (Swift cannot round them).
fn python_float(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let bytes = s.as_bytes();
    let mut cleaned = String::with_capacity(s.len());
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'_' {
            let prev = i.checked_sub(1).and_then(|j| bytes.get(j)).is_some_and(u8::is_ascii_digit);
            let next = bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
            if !(prev && next) {
                return None;
            }
            continue;
        }
        if !(b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')) {
            return None;
        }
        cleaned.push(b as char);
    }
    let v: f64 = cleaned.parse().ok()?;
    v.is_finite().then_some(v)
}

impl Timestamp {
    /// The zero timestamp (`0000000000.00000`).
    pub const ZERO: Timestamp = Timestamp { units: 0, offset: 0 };

    /// A timestamp from 10 µs units and an offset.
    pub fn from_units(units: u64, offset: u64) -> Timestamp {
        Timestamp { units, offset }
    }

    /// A timestamp from whole seconds.
    pub fn from_secs(secs: u64) -> Timestamp {
        Timestamp { units: secs.saturating_mul(UNITS_PER_SEC), offset: 0 }
    }

    /// The current time.
    pub fn now() -> Timestamp {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp { units: d.as_secs() * UNITS_PER_SEC + u64::from(d.subsec_micros() / 10), offset: 0 }
    }

    /// Parse any of the forms (bytes, as from a header).
    pub fn parse_bytes(v: &[u8]) -> Result<Timestamp, InvalidTimestamp> {
        Timestamp::parse(std::str::from_utf8(v).map_err(|_| InvalidTimestamp)?)
    }

    /// Parse any of the forms.
    pub fn parse(s: &str) -> Result<Timestamp, InvalidTimestamp> {
        let (base, off) = match s.split_once('_') {
            Some((b, o)) => (b, Some(o)),
            None => (s, None),
        };
        let offset = match off {
            None => 0,
            Some(o) => {
                let o = o.trim();
                if o.is_empty() {
                    0
                } else if o.len() > 16 || !o.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(InvalidTimestamp);
                } else {
                    u64::from_str_radix(o, 16).map_err(|_| InvalidTimestamp)?
                }
            }
        };
        let f = python_float(base).ok_or(InvalidTimestamp)?;
        let units = (f / 1e-5).round_ties_even();
        if !(0.0..(MAX_UNITS as f64)).contains(&units) {
            return Err(InvalidTimestamp);
        }
        Ok(Timestamp { units: units as u64, offset })
    }

    /// 10 µs units.
    pub fn units(&self) -> u64 {
        self.units
    }

    /// The offset.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Whether this is not the zero timestamp.
    pub fn is_set(&self) -> bool {
        *self != Timestamp::ZERO
    }

    /// The same time without an offset.
    pub fn without_offset(&self) -> Timestamp {
        Timestamp { units: self.units, offset: 0 }
    }

    /// `1402464677.04188`
    pub fn normal(&self) -> String {
        format!("{:010}.{:05}", self.units / UNITS_PER_SEC, self.units % UNITS_PER_SEC)
    }

    /// Normal form, plus `_%016x` when the offset is not zero.
    pub fn internal(&self) -> String {
        if self.offset == 0 {
            self.normal()
        } else {
            format!("{}_{:016x}", self.normal(), self.offset)
        }
    }

    /// Normal form, plus `_%x` when the offset is not zero.
    pub fn short(&self) -> String {
        if self.offset == 0 {
            self.normal()
        } else {
            format!("{}_{:x}", self.normal(), self.offset)
        }
    }

    /// Whole seconds, rounded up (Last-Modified).
    pub fn ceil_secs(&self) -> u64 {
        self.units.div_ceil(UNITS_PER_SEC)
    }

    /// Whole seconds, rounded down.
    pub fn secs(&self) -> u64 {
        self.units / UNITS_PER_SEC
    }

    /// `YYYY-MM-DDTHH:MM:SS.ffffff` (UTC, no zone), as listings show it.
    pub fn isoformat(&self) -> String {
        let mut s = String::with_capacity(26);
        self.push_isoformat(&mut s);
        s
    }

    /// [`Timestamp::isoformat`] appended to `out` (listings write
    /// thousands of these: no allocation, no formatting machinery).
    pub fn push_isoformat(&self, out: &mut String) {
        fn digits(out: &mut String, v: u64, width: u32) {
            for i in (0..width).rev() {
                out.push(char::from(b'0' + (v / 10u64.pow(i) % 10) as u8));
            }
        }
        let secs = self.secs();
        let micros = (self.units % UNITS_PER_SEC) * 10;
        let (y, m, d) = civil_from_days((secs / 86_400) as i64);
        let t = secs % 86_400;
        if (0..=9999).contains(&y) {
            digits(out, y as u64, 4);
        } else {
            out.push_str(&format!("{y:04}"));
        }
        out.push('-');
        digits(out, u64::from(m), 2);
        out.push('-');
        digits(out, u64::from(d), 2);
        out.push('T');
        digits(out, t / 3600, 2);
        out.push(':');
        digits(out, t / 60 % 60, 2);
        out.push(':');
        digits(out, t % 60, 2);
        out.push('.');
        digits(out, micros, 6);
    }
}

impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.units, self.offset).cmp(&(other.units, other.offset))
    }
}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.internal())
    }
}

/// Year, month, day of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn signed_hex(delta: i128) -> String {
    if delta < 0 {
        format!("-{:x}", -delta)
    } else {
        format!("+{delta:x}")
    }
}

/// Encode up to three timestamps (§2.5): `t1.short` plus signed hex deltas
/// `t2-t1` and `t3-t2` when either is non-zero (or `explicit`).
pub fn encode_timestamps(t1: Timestamp, t2: Option<Timestamp>, t3: Option<Timestamp>, explicit: bool) -> String {
    let mut out = t1.short();
    let Some(t2) = t2 else { return out };
    let d1 = i128::from(t2.units) - i128::from(t1.units);
    let d2 = t3.map(|t3| i128::from(t3.units) - i128::from(t2.units));
    if explicit || d1 != 0 || d2.is_some_and(|d| d != 0) {
        out.push_str(&signed_hex(d1));
        if let Some(d2) = d2 {
            out.push_str(&signed_hex(d2));
        }
    }
    out
}

/// Decode [`encode_timestamps`]'s output. Without `explicit`, missing parts
/// repeat the previous one; with it, they are `None`.
pub fn decode_timestamps(
    encoded: &str,
    explicit: bool,
) -> Result<(Timestamp, Option<Timestamp>, Option<Timestamp>), InvalidTimestamp> {
    let mut parts: Vec<(i128, &str)> = Vec::new();
    for (i, pos) in encoded.split('+').enumerate() {
        for (j, neg) in pos.split('-').enumerate() {
            let sign = if j == 0 { 1 } else { -1 };
            let _ = i;
            parts.push((sign, neg));
        }
    }
    let Some(&(_, first)) = parts.first() else { return Err(InvalidTimestamp) };
    let t1 = Timestamp::parse(first)?;
    let delta = |k: usize| -> Result<Option<i128>, InvalidTimestamp> {
        match parts.get(k) {
            None => Ok(None),
            Some((sign, hex)) => {
                if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(InvalidTimestamp);
                }
                let v = i128::from_str_radix(hex, 16).map_err(|_| InvalidTimestamp)?;
                Ok(Some(sign * v))
            }
        }
    };
    let apply = |base: Timestamp, d: i128| -> Result<Timestamp, InvalidTimestamp> {
        if d == 0 {
            return Ok(base);
        }
        let u = i128::from(base.units) + d;
        if u < 0 || u >= i128::from(MAX_UNITS) {
            return Err(InvalidTimestamp);
        }
        Ok(Timestamp { units: u as u64, offset: 0 })
    };
    let t2 = match delta(1)? {
        Some(d) => Some(apply(t1, d)?),
        None if !explicit => Some(t1),
        None => None,
    };
    let t3 = match (delta(2)?, t2) {
        (Some(d), Some(t2)) => Some(apply(t2, d)?),
        (None, t2) if !explicit => t2,
        _ => None,
    };
    Ok((t1, t2, t3))
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) of Unix seconds.
pub fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = secs / 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    let t = secs % 86_400;
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MON[(m as usize).saturating_sub(1) % 12],
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn http_dates_are_imf_fixdates() {
        assert_eq!(super::http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(super::http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).expect(s)
    }

    #[test]
    fn forms() {
        let t = ts("1402464677.04188");
        assert_eq!(t.normal(), "1402464677.04188");
        assert_eq!(t.internal(), "1402464677.04188");
        let t = ts("1402464677.04188_0000000000000001");
        assert_eq!(t.internal(), "1402464677.04188_0000000000000001");
        assert_eq!(t.short(), "1402464677.04188_1");
        assert_eq!(ts("1").normal(), "0000000001.00000");
        assert_eq!(Timestamp::ZERO.normal(), "0000000000.00000");
        assert_eq!(ts("1.5e3").normal(), "0000001500.00000");
        assert_eq!(ts(" 12 ").normal(), "0000000012.00000");
    }

    #[test]
    fn rounding_is_to_ten_microseconds_half_even() {
        assert_eq!(ts("1.000005").normal(), "0000000001.00000");
        assert_eq!(ts("1.000015").normal(), "0000000001.00002");
        assert_eq!(ts("1.0000051").normal(), "0000000001.00001");
    }

    #[test]
    fn invalid_values() {
        for bad in ["", "x", "-1", "1e10", "10000000000", "inf", "nan", "1_2_3_", "1_zz", "1_00000000000000000", "1__1"]
        {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(ts("1_").offset(), 0);
        assert_eq!(ts("9999999999.99999").normal(), "9999999999.99999");
    }

    #[test]
    fn ordering_is_by_units_then_offset() {
        assert!(ts("1.00001") > ts("1.00000_ff"));
        assert!(ts("1.00000_1") > ts("1.00000"));
        assert_eq!(ts("1.0"), ts("1"));
    }

    #[test]
    fn http_and_iso_dates() {
        assert_eq!(ts("1402464677.04188").ceil_secs(), 1402464678);
        assert_eq!(ts("1402464677").ceil_secs(), 1402464677);
        assert_eq!(ts("1795376283.36507").isoformat(), "2026-11-22T19:38:03.365070");
        assert_eq!(ts("0000000000.00000").isoformat(), "1970-01-01T00:00:00.000000");
        assert_eq!(ts("0951782399.99999").isoformat(), "2000-02-28T23:59:59.999990");
        assert_eq!(ts("0951868800.00001").isoformat(), "2000-03-01T00:00:00.000010");
        assert_eq!(ts("9999999999.99999").isoformat(), "2286-11-20T17:46:39.999990");
    }

    #[test]
    fn multi_timestamp_encoding() {
        let t1 = ts("1700000000.00000");
        let t3 = Timestamp::from_units(t1.units() + 0x2f5, 0);
        assert_eq!(encode_timestamps(t1, Some(t1), Some(t1), false), "1700000000.00000");
        assert_eq!(encode_timestamps(t1, Some(t1), Some(t3), false), "1700000000.00000+0+2f5");
        assert_eq!(encode_timestamps(t1, Some(t3), Some(t3), false), "1700000000.00000+2f5+0");
        assert_eq!(encode_timestamps(t1, Some(t1), None, true), "1700000000.00000+0");
        let m = ts("1795376261.20317");
        let c = Timestamp::from_units(m.units() - 0x2f5, 0);
        assert_eq!(encode_timestamps(m, Some(c), None, true), "1795376261.20317-2f5");
        let (a, b, c2) = decode_timestamps("1795376261.20317-2f5", true).expect("valid");
        assert_eq!((a, b, c2), (m, Some(c), None));
        let (a, b, c2) = decode_timestamps("1700000000.00000+0+2f5", false).expect("valid");
        assert_eq!((a, b, c2), (t1, Some(t1), Some(t3)));
        let (a, b, c2) = decode_timestamps("1700000000.00000", false).expect("valid");
        assert_eq!((a, b, c2), (t1, Some(t1), Some(t1)));
        let with_off = ts("1700000000.00000_5");
        let (_, b, _) =
            decode_timestamps(&encode_timestamps(with_off, Some(with_off), None, false), false).expect("ok");
        assert_eq!(b, Some(with_off), "a zero delta keeps the offset");
    }
}
