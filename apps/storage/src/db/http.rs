//! What the container and account services share on the HTTP side: where
//! a database lives, the free-space check, what a database error answers,
//! query strings, listing limits and format negotiation.

use super::{quarantine, DbError};
use crate::fs::{Devices, Reserve};
use crate::path::form_decode;
use crate::swob::{insufficient_storage, page, text};
use aerie_api::{RequestHead, Response, Status};
use std::path::PathBuf;

/// A whole request body of at most `max` bytes: 413 past it, 400 when the
/// client breaks off (`what` names the request in the log line).
pub fn read_body(
    body: &mut aerie_api::RequestBody,
    max: u64,
    what: &dyn std::fmt::Display,
) -> Result<Vec<u8>, Response> {
    let mut bytes = Vec::new();
    match std::io::Read::read_to_end(&mut std::io::Read::take(body, max + 1), &mut bytes) {
        Ok(_) if bytes.len() as u64 > max => Err(page(Status::PAYLOAD_TOO_LARGE)),
        Ok(_) => Ok(bytes),
        Err(e) => {
            log::info!("{what}: the body broke off: {e}");
            Err(page(Status::BAD_REQUEST))
        }
    }
}

/// Where a database lives: `<device>/<kind>/<partition>/<suffix>/<hash>/<hash>.db`
/// (kind `containers` or `accounts`); 507 when the device is unavailable.
pub fn db_file(devices: &Devices, device: &str, partition: &str, kind: &str, hash: &str) -> Result<PathBuf, Response> {
    let dev = devices.device_dir(device).map_err(|_| insufficient_storage(device))?;
    Ok(db_file_in(&dev, partition, kind, hash))
}

/// Where a database lives under a device directory already found.
pub fn db_file_in(dev: &std::path::Path, partition: &str, kind: &str, hash: &str) -> PathBuf {
    let sfx = &hash[hash.len().saturating_sub(3)..];
    dev.join(kind).join(partition).join(sfx).join(hash).join(format!("{hash}.db"))
}

/// 507 when a write to `device` would cross the free-space reserve.
pub fn check_space(devices: &Devices, reserve: &Reserve, device: &str) -> Result<(), Response> {
    match reserve.would_cross(&devices.root.join(device), 0) {
        Ok(true) => Err(insufficient_storage(device)),
        _ => Ok(()),
    }
}

/// The answer to a failed database operation (a corrupt database is
/// quarantined first).
pub fn db_error(e: DbError, path: &std::path::Path) -> Response {
    match e {
        DbError::Busy => {
            log::warn!("database {} is locked: 503", path.display());
            page(Status::SERVICE_UNAVAILABLE).with_header("Retry-After", &b"1"[..])
        }
        DbError::Corrupt(why) => {
            log::error!("database {} is corrupt ({why}): quarantining it", path.display());
            quarantine(path);
            page(Status::NOT_FOUND)
        }
        DbError::Other(why) => {
            log::error!("database {}: {why}", path.display());
            page(Status::INTERNAL_SERVER_ERROR)
        }
    }
}

/// Swift's `config_true_value` for a header or query value.
pub fn is_true(v: Option<&str>) -> bool {
    v.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on" | "t" | "y"))
}

/// The listing format: `format=` wins, else `Accept` (§6.6.4).
pub fn negotiate(head: &RequestHead, query: &[(String, String)]) -> Result<&'static str, Response> {
    if let Some((_, f)) = query.iter().find(|(k, _)| k == "format") {
        return Ok(match f.to_ascii_lowercase().as_str() {
            "json" => "application/json",
            "xml" => "application/xml",
            _ => "text/plain",
        });
    }
    let Some(accept) = head.header_str("accept") else { return Ok("text/plain") };
    let offers = ["text/plain", "application/json", "application/xml", "text/xml"];
    let mut best: Option<(f64, usize, &'static str)> = None;
    for part in accept.split(',') {
        let mut it = part.split(';');
        let media = it.next().unwrap_or("").trim().to_ascii_lowercase();
        if media.is_empty() {
            continue;
        }
        let Some((ty, sub)) = media.split_once('/') else {
            return Err(text(Status::BAD_REQUEST, "Invalid Accept header"));
        };
        let mut q = 1.0f64;
        for p in it {
            if let Some(v) = p.trim().strip_prefix("q=") {
                q = v.trim().parse().map_err(|_| text(Status::BAD_REQUEST, "Invalid Accept header"))?;
            }
        }
        let specificity = usize::from(ty != "*") + usize::from(sub != "*");
        for o in offers {
            let (oty, osub) = o.split_once('/').unwrap_or((o, ""));
            if (ty == "*" || ty == oty) && (sub == "*" || sub == osub) && q > 0.0 {
                let better = best.is_none_or(|(bq, bs, _)| q > bq || (q == bq && specificity > bs));
                if better {
                    best = Some((q, specificity, o));
                }
            }
        }
    }
    best.map(|(_, _, o)| o).ok_or_else(|| page(Status::NOT_ACCEPTABLE))
}

/// The query string's pairs, form-decoded; 400 for a value that is not
/// UTF-8.
pub fn query_pairs(head: &RequestHead) -> Result<Vec<(String, String)>, Response> {
    let Some(q) = head.query() else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for kv in q.split(|&b| b == b'&').filter(|kv| !kv.is_empty()) {
        let (k, v) = match kv.iter().position(|&b| b == b'=') {
            Some(i) => (&kv[..i], &kv[i + 1..]),
            None => (kv, &b""[..]),
        };
        let k = String::from_utf8_lossy(&form_decode(k)).into_owned();
        let v = String::from_utf8(form_decode(v))
            .map_err(|_| text(Status::BAD_REQUEST, format!("\"{k}\" parameter not valid UTF-8")))?;
        out.push((k, v));
    }
    Ok(out)
}

/// A listing's `limit` query value against the cluster's maximum: 412 above
/// it; a value that is not all digits is ignored, as Swift does.
pub fn listing_limit(value: Option<&str>, max: usize) -> Result<usize, Response> {
    match value {
        Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => {
            let n: usize = l.parse().unwrap_or(usize::MAX);
            if n > max {
                return Err(text(Status::PRECONDITION_FAILED, format!("Maximum limit is {max}")));
            }
            Ok(n)
        }
        _ => Ok(max),
    }
}
