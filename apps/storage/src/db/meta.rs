//! Container and account metadata: the JSON map `{"Name": [value, ts]}`
//! in the info row, merged by timestamp and validated as a whole (§3.3).

use crate::constraints::{check_metadata, check_totals, MetaTarget};
use crate::header::title;
use crate::swift_conf::Constraints;
use crate::Timestamp;
use aerie_api::{RequestHead, Response};
use serde_json::{Map, Value};

/// Whose metadata: the header prefixes and the extra stored headers differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `X-Container-Meta-*`, `X-Container-Sysmeta-*`, ACLs and sync keys.
    Container,
    /// `X-Account-Meta-*`, `X-Account-Sysmeta-*`.
    Account,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Container => "x-container-meta-",
            Kind::Account => "x-account-meta-",
        }
    }

    fn sysmeta(self) -> &'static str {
        match self {
            Kind::Container => "x-container-sysmeta-",
            Kind::Account => "x-account-sysmeta-",
        }
    }

    fn stored(self) -> &'static [&'static str] {
        match self {
            Kind::Container => {
                &["x-container-read", "x-container-write", "x-container-sync-key", "x-container-sync-to"]
            }
            Kind::Account => &[],
        }
    }
}

fn is_stored(kind: Kind, name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    (l.starts_with(kind.prefix()) && l.len() > kind.prefix().len())
        || (l.starts_with(kind.sysmeta()) && l.len() > kind.sysmeta().len())
        || kind.stored().contains(&l.as_str())
}

impl Kind {
    fn target(self) -> MetaTarget {
        match self {
            Kind::Container => MetaTarget::Container,
            Kind::Account => MetaTarget::Account,
        }
    }
}

/// Per-request limits (Swift's `check_metadata`), with swift.conf's
/// constraints.
pub fn check_request(head: &RequestHead, kind: Kind, c: &Constraints) -> Result<(), Response> {
    check_metadata(head, kind.target(), c)
}

fn parse(json: &str) -> Map<String, Value> {
    serde_json::from_str::<Map<String, Value>>(json).unwrap_or_default()
}

/// The stored items with a non-empty value, as response headers.
pub fn visible(json: &str) -> Vec<(String, String)> {
    parse(json)
        .into_iter()
        .filter_map(|(k, v)| {
            let val = v.get(0)?.as_str()?.to_string();
            (!val.is_empty()).then_some((k, val))
        })
        .collect()
}

/// Every item set to `("", ts)` (a container DELETE clears metadata).
pub fn clear_all(json: &str, ts: &str) -> String {
    let m: Map<String, Value> =
        parse(json).into_iter().map(|(k, _)| (k, Value::from(vec!["".to_string(), ts.to_string()]))).collect();
    crate::pyjson::dumps(&Value::Object(m))
}

/// Cumulative limits over the merged map (§3.3).
fn validate(m: &Map<String, Value>, c: &Constraints) -> Result<(), Response> {
    let (mut count, mut size) = (0usize, 0usize);
    for (k, v) in m {
        let val = v.get(0).and_then(Value::as_str).unwrap_or("");
        let lk = k.to_ascii_lowercase();
        let Some(rest) = lk.strip_prefix("x-container-meta-").or_else(|| lk.strip_prefix("x-account-meta-")) else {
            continue;
        };
        if val.is_empty() {
            continue;
        }
        count += 1;
        size += rest.len() + val.len();
    }
    check_totals(count, size, c)
}

/// Merge the request's metadata headers at `ts` into the stored map
/// (`current` JSON). `Ok(None)`: nothing to change; `Ok(Some(json))`: the
/// map to store; `Err(400)` when the merged map breaks a limit (then
/// nothing is written).
pub fn merge_request(
    current: &str,
    head: &RequestHead,
    ts: Timestamp,
    kind: Kind,
    c: &Constraints,
) -> Result<Option<String>, Response> {
    let updates: Vec<(String, String)> = head
        .headers()
        .filter(|(n, _)| is_stored(kind, n))
        .map(|(n, v)| (title(n), String::from_utf8_lossy(v).into_owned()))
        .collect();
    if updates.is_empty() {
        return Ok(None);
    }
    let mut m = parse(current);
    let t = ts.internal();
    for (k, v) in updates {
        let newer = m.get(&k).and_then(|old| old.get(1)).and_then(Value::as_str).is_none_or(|old| t.as_str() > old);
        if newer {
            m.insert(k, Value::from(vec![v, t.clone()]));
        }
    }
    validate(&m, c)?;
    Ok(Some(crate::pyjson::dumps(&Value::Object(m))))
}
