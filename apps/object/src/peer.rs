//! `REPLICATE` towards another object server, as Swift's replicator sends
//! it (SWIFT-REPLICATION.md §2); the connection itself, shared with SSYNC
//! and the updaters, is `aerie_storage::client`.

use crate::hashes::SuffixHashes;
pub use aerie_storage::client::{PeerConn, PeerError, Timeouts};
use aerie_storage::path::quote;
use aerie_storage::pickle::{loads, Value};

/// `REPLICATE /<dev>/<part>[/<suf>-<suf>…]` with Swift's headers. The
/// suffix hashes of the peer's partition (without suffixes), or nothing
/// (with suffixes: the peer only marks them for rehashing).
pub fn replicate(
    host: &str,
    device: &str,
    partition: &str,
    policy: u32,
    suffixes: &[String],
    t: &Timeouts,
) -> Result<Option<SuffixHashes>, PeerError> {
    let mut path = format!("/{device}/{partition}");
    if !suffixes.is_empty() {
        path.push('/');
        path.push_str(&suffixes.join("-"));
    }
    let headers = [
        ("Content-Length", "0".to_string()),
        ("User-Agent", format!("object-replicator {}", std::process::id())),
        ("X-Backend-Storage-Policy-Index", policy.to_string()),
    ];
    let mut c = PeerConn::open(host, "REPLICATE", &quote(&path), &headers, t)?;
    c.read_head()?;
    let body = c.read_body(64 << 20)?;
    match c.status {
        200 => {}
        507 => return Err(PeerError::Unmounted),
        s => return Err(PeerError::Status(s, String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned())),
    }
    if !suffixes.is_empty() {
        return Ok(None);
    }
    let value =
        loads(&body).map_err(|e| PeerError::Failed(format!("{host}: REPLICATE answer is not a pickle: {e}")))?;
    let Value::Dict(items) = value else {
        return Err(PeerError::Failed(format!("{host}: REPLICATE answer is not a dict")));
    };
    let mut out = SuffixHashes::new();
    for (k, v) in items {
        let Some(k) = k.as_bytes().and_then(|b| std::str::from_utf8(b).ok()).map(str::to_string) else { continue };
        out.insert(k, crate::hashes::SuffixHash::from_value(&v));
    }
    Ok(Some(out))
}
