//! Request paths (SWIFT-BACKEND.md §1): percent-decoding, Swift's
//! `split_path`, device and partition validation, the reserved namespace,
//! and `quote` for the messages that echo a path back.

use std::fmt;

/// The reserved-namespace byte.
pub const RESERVED: char = '\0';

/// A path problem, with Swift's status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// Not valid UTF-8 after decoding (412).
    NotUtf8,
    /// Wrong shape (400 `Invalid path: …`).
    Invalid(String),
    /// Bad device name or partition (400), or another 400 with a message.
    BadRequest(String),
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::NotUtf8 => f.write_str("Invalid UTF8 or contains NULL"),
            PathError::Invalid(m) | PathError::BadRequest(m) => f.write_str(m),
        }
    }
}

/// Decode `%XX` escapes to bytes (a `%` not followed by two hex digits is
/// kept as is, as Python's `unquote` does).
pub fn percent_decode(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' {
            if let (Some(h), Some(l)) = (raw.get(i + 1).and_then(|c| hex(*c)), raw.get(i + 2).and_then(|c| hex(*c))) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Decode a query-string component: `+` is a space, then `%XX`.
pub fn form_decode(raw: &[u8]) -> Vec<u8> {
    let plus: Vec<u8> = raw.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
    percent_decode(&plus)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Python's `urllib.parse.quote(s, safe='/')` (UTF-8, unreserved kept).
pub fn quote(s: &str) -> String {
    quote_with(s, b"/")
}

/// `quote` with a custom safe set.
pub fn quote_with(s: &str, safe: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) || safe.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decode a raw request path to a UTF-8 string (412 when it is not; NUL is
/// allowed: it marks the reserved namespace).
pub fn decode_path(raw: &[u8]) -> Result<String, PathError> {
    let bytes = percent_decode(raw);
    if bytes.is_empty() {
        return Err(PathError::NotUtf8);
    }
    String::from_utf8(bytes).map_err(|_| PathError::NotUtf8)
}

/// Swift's `split_path(path, minsegs, maxsegs, rest_with_last)`: the
/// segments after the leading `/`, `None` for absent optional ones.
pub fn split_path(
    path: &str,
    minsegs: usize,
    maxsegs: usize,
    rest_with_last: bool,
) -> Result<Vec<Option<String>>, PathError> {
    let invalid = || PathError::Invalid(format!("Invalid path: {}", quote(path)));
    let segs: Vec<&str> =
        if rest_with_last { path.splitn(maxsegs + 1, '/').collect() } else { path.splitn(maxsegs + 2, '/').collect() };
    let count = segs.len();
    let (min, max) = (minsegs + 1, maxsegs + 1);
    let first_nonempty = segs.first().is_some_and(|s| !s.is_empty());
    let empty_required = segs.iter().take(min).skip(1).any(|s| s.is_empty());
    let bad = if rest_with_last {
        first_nonempty || count < min || count > max || empty_required
    } else {
        first_nonempty
            || count < min
            || count > max + 1
            || empty_required
            || (count == max + 1 && segs.get(max).is_some_and(|s| !s.is_empty()))
    };
    if bad {
        return Err(invalid());
    }
    let mut out: Vec<Option<String>> = segs.iter().skip(1).take(maxsegs).map(|s| Some((*s).to_string())).collect();
    // Python's split leaves an empty trailing segment for `/a/b/`; split_path
    // reports it as an empty string (not None), like Swift does.
    while out.len() < maxsegs {
        out.push(None);
    }
    Ok(out)
}

/// Swift's `validate_device_partition`.
pub fn validate_device_partition(device: &str, partition: &str) -> Result<(), PathError> {
    if device.is_empty() || device.contains('/') || device == "." || device == ".." {
        return Err(PathError::BadRequest(format!("Invalid device: {}", quote(device))));
    }
    if partition.is_empty() || partition.contains('/') || partition == "." || partition == ".." {
        return Err(PathError::BadRequest(format!("Invalid partition: {}", quote(partition))));
    }
    Ok(())
}

/// Whether a device name survives `quote_plus` unchanged (letters, digits,
/// `_.-~`); others answer 507.
pub fn is_safe_device_name(device: &str) -> bool {
    !device.is_empty()
        && device.len() <= 255
        && device.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-~".contains(&b))
}

/// A name that contains the reserved byte must start with it.
fn reserved_ok(name: &str) -> bool {
    !name.contains(RESERVED) || name.starts_with(RESERVED)
}

/// The reserved-namespace rules for an object path (§1.3).
pub fn check_reserved_object(account: &str, container: &str, object: &str) -> Result<(), PathError> {
    for (name, kind) in [(account, "account"), (container, "container"), (object, "object")] {
        if !reserved_ok(name) {
            return Err(PathError::BadRequest(format!("Invalid reserved-namespace {kind}")));
        }
    }
    if account.starts_with('.') || account == ".misplaced_objects" {
        return Ok(());
    }
    let c = container.starts_with(RESERVED);
    let o = object.starts_with(RESERVED);
    if c && !o {
        return Err(PathError::BadRequest("Invalid user-namespace object in reserved-namespace container".into()));
    }
    if o && !c {
        return Err(PathError::BadRequest("Invalid reserved-namespace object in user-namespace container".into()));
    }
    Ok(())
}

/// The reserved-namespace rule for account and container names.
pub fn check_reserved_names(account: &str, container: Option<&str>) -> Result<(), PathError> {
    if !reserved_ok(account) {
        return Err(PathError::BadRequest("Invalid reserved-namespace account".into()));
    }
    if let Some(c) = container {
        if !reserved_ok(c) {
            return Err(PathError::BadRequest("Invalid reserved-namespace container".into()));
        }
    }
    Ok(())
}

/// An object path: `/<device>/<partition>/<account>/<container>/<object>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPath {
    /// The device (a directory under the devices root).
    pub device: String,
    /// The partition (used as a directory name as given).
    pub partition: String,
    /// The account.
    pub account: String,
    /// The container.
    pub container: String,
    /// The object (may contain `/`).
    pub object: String,
}

impl ObjectPath {
    /// Parse a raw request path as the object server does (§1.1–1.3).
    pub fn parse(raw: &[u8]) -> Result<ObjectPath, PathError> {
        let path = decode_path(raw)?;
        let segs = split_path(&path, 5, 5, true)?;
        let mut it = segs.into_iter().map(Option::unwrap_or_default);
        let (device, partition, account, container, object) = (
            it.next().unwrap_or_default(),
            it.next().unwrap_or_default(),
            it.next().unwrap_or_default(),
            it.next().unwrap_or_default(),
            it.next().unwrap_or_default(),
        );
        validate_device_partition(&device, &partition)?;
        if object.is_empty() {
            return Err(PathError::Invalid(format!("Invalid path: {}", quote(&path))));
        }
        check_reserved_object(&account, &container, &object)?;
        Ok(ObjectPath { device, partition, account, container, object })
    }

    /// `/<account>/<container>/<object>`: the `name` metadata key.
    pub fn name(&self) -> String {
        format!("/{}/{}/{}", self.account, self.container, self.object)
    }
}

/// The first path segment (the device) of a raw path, cheaply and without
/// validation beyond decoding: the queue key for per-device pools.
pub fn device_of(raw: &[u8]) -> Option<String> {
    let rest = raw.strip_prefix(b"/")?;
    let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
    let dev = String::from_utf8(percent_decode(rest.get(..end)?)).ok()?;
    is_safe_device_name(&dev).then_some(dev)
}

/// Where a storage request runs: on its device's pool (the queue key is
/// the device, so a slow disk only holds its own requests). A path with no
/// usable device runs inline — it is refused with 400 before any disk is
/// touched.
pub fn device_executor(head: &aerie_api::RequestHead) -> aerie_api::Executor {
    match device_of(head.raw_path()) {
        Some(dev) if dev != "." && dev != ".." => aerie_api::Executor::Pooled(aerie_api::QueueKey::device(dev)),
        _ => aerie_api::Executor::Inline,
    }
}

/// [`device_executor`], with replication (`REPLICATE`, `SSYNC`) in the
/// device's replication lane: another node's merges and sessions never
/// hold the threads this node's clients wait for (and run at the lanes'
/// lower CPU priority).
pub fn storage_executor(head: &aerie_api::RequestHead) -> aerie_api::Executor {
    let replication = matches!(head.method(), aerie_api::Method::Other(m) if &**m == "REPLICATE" || &**m == "SSYNC");
    match device_executor(head) {
        aerie_api::Executor::Pooled(key) if replication => {
            aerie_api::Executor::Pooled(aerie_api::QueueKey::device_lane(key.as_str(), aerie_api::REPLICATION_LANE))
        }
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_path_matches_swift() {
        let v = split_path("/a/b/c/d/e/f", 5, 5, true).expect("ok");
        assert_eq!(v[4].as_deref(), Some("e/f"));
        let v = split_path("/d/p/a/c//o/", 5, 5, true).expect("ok");
        assert_eq!(v[4].as_deref(), Some("/o/"));
        assert!(split_path("/d/p/a/c", 5, 5, true).is_err());
        assert!(split_path("d/p/a/c/o", 5, 5, true).is_err());
        assert!(split_path("/d//a/c/o", 5, 5, true).is_err());
        // fixed-count account paths tolerate one trailing slash
        assert_eq!(split_path("/d/p/a/", 3, 3, false).expect("ok")[2].as_deref(), Some("a"));
        assert!(split_path("/d/p/a/x", 3, 3, false).is_err());
        let v = split_path("/d/p/a/c", 4, 5, true).expect("ok");
        assert_eq!(v[4], None);
        let v = split_path("/d/p/a/c/", 4, 5, true).expect("ok");
        assert_eq!(v[4].as_deref(), Some(""));
        let e = split_path("/d p", 3, 3, false).expect_err("bad");
        assert_eq!(e.to_string(), "Invalid path: /d%20p");
    }

    #[test]
    fn object_paths() {
        let p = ObjectPath::parse(b"/sda1/0/AUTH_t/c/o%20x/y").expect("ok");
        assert_eq!(p.object, "o x/y");
        assert_eq!(p.name(), "/AUTH_t/c/o x/y");
        assert_eq!(ObjectPath::parse(b"/sda1/0/a/c/%FF"), Err(PathError::NotUtf8));
        assert!(matches!(ObjectPath::parse(b"/sda1/0/a/c/"), Err(PathError::Invalid(_))));
        assert_eq!(ObjectPath::parse(b"/../0/a/c/o"), Err(PathError::BadRequest("Invalid device: ..".into())));
        assert!(matches!(ObjectPath::parse(b"/d/0/a/c/x%00y"), Err(PathError::BadRequest(_))));
        assert!(ObjectPath::parse(b"/d/0/a/%00c/%00o").is_ok());
        assert!(ObjectPath::parse(b"/d/0/a/%00c/o").is_err());
        assert!(ObjectPath::parse(b"/d/0/.a/%00c/o").is_ok());
    }

    #[test]
    fn device_names() {
        assert_eq!(device_of(b"/sdb1/2/a/c/o").as_deref(), Some("sdb1"));
        assert_eq!(device_of(b"/sd%62/x").as_deref(), Some("sdb"));
        assert_eq!(device_of(b"/a b/x"), None);
        assert_eq!(device_of(b"/../x"), Some("..".to_string()));
        assert!(!is_safe_device_name("a/b"));
        assert!(!is_safe_device_name(""));
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode(b"a%2Fb%zz%4"), b"a/b%zz%4");
        assert_eq!(form_decode(b"a+b%2B"), b"a b+");
        assert_eq!(quote("a b/é"), "a%20b/%C3%A9");
    }
}
