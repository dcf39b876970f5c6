//! `Range` for object GETs (§4.4): parsing as swob does, resolving against
//! the object length, and the abuse limits.

/// A resolved range: `[start, end)`.
pub type Span = (u64, u64);

/// The outcome of a Range header against a length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranges {
    /// No usable Range: send everything (200).
    Whole,
    /// Nothing satisfiable (416).
    Unsatisfiable,
    /// These spans (206).
    Spans(Vec<Span>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    From(u64, Option<u64>),
    Suffix(u64),
}

fn parse(header: &str) -> Option<Vec<Spec>> {
    let v: String = header.chars().filter(|c| !c.is_whitespace()).collect();
    let lower = v.to_ascii_lowercase();
    let rest = lower.strip_prefix("bytes=")?;
    let mut specs = Vec::new();
    for part in rest.split(',') {
        let (a, b) = part.split_once('-')?;
        let num = |s: &str| -> Option<Option<u64>> {
            if s.is_empty() {
                Some(None)
            } else if s.bytes().all(|c| c.is_ascii_digit()) {
                s.parse().ok().map(Some)
            } else {
                None
            }
        };
        let (a, b) = (num(a)?, num(b)?);
        match (a, b) {
            (None, None) => return None,
            (Some(a), Some(b)) if b < a => return None,
            (Some(a), b) => specs.push(Spec::From(a, b)),
            (None, Some(n)) => specs.push(Spec::Suffix(n)),
        }
    }
    Some(specs)
}

/// Resolve a Range header against an object of `len` bytes.
pub fn resolve(header: Option<&str>, len: u64) -> Ranges {
    let Some(specs) = header.and_then(parse) else { return Ranges::Whole };
    let mut spans = Vec::new();
    for s in specs {
        match s {
            Spec::Suffix(0) => {}
            Spec::Suffix(n) if n > len => spans.push((0, len)),
            Spec::Suffix(n) => spans.push((len - n, len)),
            Spec::From(a, _) if a >= len => {}
            Spec::From(a, None) => spans.push((a, len)),
            Spec::From(a, Some(b)) => spans.push((a, (b.saturating_add(1)).min(len))),
        }
    }
    if spans.is_empty() {
        return Ranges::Unsatisfiable;
    }
    if spans.len() > 50 {
        return Ranges::Unsatisfiable;
    }
    let mut overlaps = 0;
    for (i, a) in spans.iter().enumerate() {
        for b in spans.iter().skip(i + 1) {
            if a.0 < b.1 && b.0 < a.1 {
                overlaps += 1;
            }
        }
    }
    if overlaps > 2 {
        return Ranges::Unsatisfiable;
    }
    if spans.len() >= 8 && spans.windows(2).any(|w| w[1].0 < w[0].0) {
        return Ranges::Unsatisfiable;
    }
    Ranges::Spans(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_swob() {
        assert_eq!(resolve(Some("bytes=0-0"), 10), Ranges::Spans(vec![(0, 1)]));
        assert_eq!(resolve(Some("bytes=5-"), 10), Ranges::Spans(vec![(5, 10)]));
        assert_eq!(resolve(Some("bytes=-3"), 10), Ranges::Spans(vec![(7, 10)]));
        assert_eq!(resolve(Some("bytes=-30"), 10), Ranges::Spans(vec![(0, 10)]));
        assert_eq!(resolve(Some("bytes=2-100"), 10), Ranges::Spans(vec![(2, 10)]));
        assert_eq!(resolve(Some("bytes = 1-2, 4-5"), 10), Ranges::Spans(vec![(1, 3), (4, 6)]));
        assert_eq!(resolve(Some("bytes=10-"), 10), Ranges::Unsatisfiable);
        assert_eq!(resolve(Some("bytes=-0"), 10), Ranges::Unsatisfiable);
        assert_eq!(resolve(Some("bytes=-5"), 0), Ranges::Spans(vec![(0, 0)]));
        for ignored in ["bytes=5-1", "bytes=-", "bytes=a-b", "items=1-2", "bytes=1"] {
            assert_eq!(resolve(Some(ignored), 10), Ranges::Whole, "{ignored}");
        }
    }

    #[test]
    fn abuse_limits() {
        let many: Vec<String> = (0..51).map(|i| format!("{i}-{i}")).collect();
        assert_eq!(resolve(Some(&format!("bytes={}", many.join(","))), 100), Ranges::Unsatisfiable);
        assert_eq!(resolve(Some("bytes=0-5,1-6,2-7"), 100), Ranges::Unsatisfiable);
        let desc: Vec<String> = (0..8).rev().map(|i| format!("{}-{}", i * 2, i * 2)).collect();
        assert_eq!(resolve(Some(&format!("bytes={}", desc.join(","))), 100), Ranges::Unsatisfiable);
    }
}
