//! `REPLICATE` towards another object server, as Swift's replicator sends
//! it (SWIFT-REPLICATION.md §2); the connection itself, shared with SSYNC
//! and the updaters, is `aerie_storage::client`.

use crate::hashes::SuffixHashes;
pub use aerie_storage::client::{Calls, PeerConn, PeerError, Peers, Timeouts};
use aerie_storage::path::quote;
use aerie_storage::pickle::{loads, Value};

/// `REPLICATE /<dev>/<part>[/<suf>-<suf>…]` with Swift's headers, on the
/// connection kept to the peer. The answer's body: the pickled suffix
/// hashes of the peer's partition (`parse_answer`), or, with suffixes, a
/// pickled `None` (the peer only marks them for rehashing).
pub fn replicate(
    calls: &mut Calls,
    device: &str,
    partition: &str,
    policy: u32,
    suffixes: &[String],
) -> Result<Vec<u8>, PeerError> {
    let mut path = format!("/{device}/{partition}");
    if !suffixes.is_empty() {
        path.push('/');
        path.push_str(&suffixes.join("-"));
    }
    let headers = [
        ("User-Agent", format!("object-replicator {}", std::process::id())),
        ("X-Backend-Storage-Policy-Index", policy.to_string()),
    ];
    let (status, body) = calls.call("REPLICATE", &quote(&path), &headers, b"", 64 << 20)?;
    match status {
        200 => Ok(body),
        507 => Err(PeerError::Unmounted),
        s => Err(PeerError::Status(s, String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned())),
    }
}

/// The suffix hashes of a REPLICATE answer from `host`.
pub fn parse_answer(host: &str, body: &[u8]) -> Result<SuffixHashes, PeerError> {
    let value = loads(body).map_err(|e| PeerError::Failed(format!("{host}: REPLICATE answer is not a pickle: {e}")))?;
    let Value::Dict(items) = value else {
        return Err(PeerError::Failed(format!("{host}: REPLICATE answer is not a dict")));
    };
    // Keys that are not suffixes are no business of a replicator (Swift's
    // compares only its own suffixes).
    Ok(crate::hashes::hashes_from_items(items, |_, _| true).unwrap_or_default())
}
