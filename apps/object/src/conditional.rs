//! Conditional requests (§4.5), evaluated in Swift's order, and HTTP dates.

/// The result of the conditional headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Proceed.
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// The items of an ETag list header, trimmed, one pair of quotes removed.
pub fn etag_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| {
            let s = s.trim();
            s.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(s).to_string()
        })
        .collect()
}

/// What the request asks.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    /// If-Match items.
    pub if_match: Option<Vec<String>>,
    /// If-None-Match items.
    pub if_none_match: Option<Vec<String>>,
    /// If-Modified-Since, parsed (unparsable: ignored).
    pub if_modified_since: Option<u64>,
    /// If-Unmodified-Since, parsed.
    pub if_unmodified_since: Option<u64>,
}

impl Conditions {
    /// Evaluate against an existing object (`etag`, Last-Modified seconds)
    /// or a 404 (`None`).
    pub fn evaluate(&self, found: Option<(&str, u64)>) -> Outcome {
        let Some((etag, last_modified)) = found else {
            if self.if_match.as_ref().is_some_and(|l| l.iter().any(|e| e == "*")) {
                return Outcome::Failed;
            }
            return Outcome::Proceed;
        };
        if self.if_none_match.as_ref().is_some_and(|l| l.iter().any(|e| e == "*" || e == etag)) {
            return Outcome::NotModified;
        }
        if self.if_match.as_ref().is_some_and(|l| !l.iter().any(|e| e == "*" || e == etag)) {
            return Outcome::Failed;
        }
        if self.if_modified_since.is_some_and(|t| last_modified <= t) {
            return Outcome::NotModified;
        }
        if self.if_unmodified_since.is_some_and(|t| last_modified > t) {
            return Outcome::Failed;
        }
        Outcome::Proceed
    }
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn hms(s: &str) -> Option<u64> {
    let mut it = s.split(':');
    let h: u64 = it.next()?.parse().ok()?;
    let m: u64 = it.next()?.parse().ok()?;
    let sec: u64 = it.next()?.parse().ok()?;
    (h < 24 && m < 60 && sec < 61 && it.next().is_none()).then_some(h * 3600 + m * 60 + sec)
}

/// Parse an HTTP date in IMF-fixdate, RFC 850 or asctime form.
pub fn parse_http_date(v: &str) -> Option<u64> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    let month = |m: &str| MONTHS.iter().position(|x| x.eq_ignore_ascii_case(m)).map(|i| i as u32 + 1);
    let (y, m, d, t) = match parts.as_slice() {
        // Sun, 06 Nov 1994 08:49:37 GMT
        [_, d, mon, y, t, "GMT"] => (y.parse::<i64>().ok()?, month(mon)?, d.parse().ok()?, hms(t)?),
        // Sunday, 06-Nov-94 08:49:37 GMT
        [_, dmy, t, "GMT"] => {
            let mut it = dmy.split('-');
            let d: u32 = it.next()?.parse().ok()?;
            let mon = month(it.next()?)?;
            let yy: i64 = it.next()?.parse().ok()?;
            let y = if yy < 100 {
                if yy < 70 {
                    2000 + yy
                } else {
                    1900 + yy
                }
            } else {
                yy
            };
            (y, mon, d, hms(t)?)
        }
        // Sun Nov  6 08:49:37 1994
        [_, mon, d, t, y] => (y.parse().ok()?, month(mon)?, d.parse().ok()?, hms(t)?),
        _ => return None,
    };
    if !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    if days < 0 {
        return None;
    }
    Some(days as u64 * 86_400 + t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_three_forms() {
        let want = Some(784_111_777);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), want);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), want);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), want);
        assert_eq!(parse_http_date("garbage"), None);
    }

    #[test]
    fn swift_order() {
        let c = Conditions {
            if_none_match: Some(etag_list("\"abc\"")),
            if_match: Some(vec!["x".into()]),
            ..Default::default()
        };
        assert_eq!(c.evaluate(Some(("abc", 10))), Outcome::NotModified, "If-None-Match is checked first");
        let c = Conditions { if_match: Some(vec!["x".into()]), ..Default::default() };
        assert_eq!(c.evaluate(Some(("abc", 10))), Outcome::Failed);
        let c = Conditions { if_match: Some(vec!["*".into()]), ..Default::default() };
        assert_eq!(c.evaluate(None), Outcome::Failed);
        let c = Conditions { if_modified_since: Some(10), ..Default::default() };
        assert_eq!(c.evaluate(Some(("abc", 10))), Outcome::NotModified);
        assert_eq!(c.evaluate(Some(("abc", 11))), Outcome::Proceed);
        let c = Conditions { if_unmodified_since: Some(10), ..Default::default() };
        assert_eq!(c.evaluate(Some(("abc", 11))), Outcome::Failed);
        assert_eq!(c.evaluate(None), Outcome::Proceed);
    }
}
