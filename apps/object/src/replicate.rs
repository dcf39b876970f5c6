//! `REPLICATE /<dev>/<part>[/<suf>-<suf>…]` (SWIFT-REPLICATION.md §2.1–2.2):
//! a partition's suffix hashes, pickled, for a replicator to compare with
//! its own; with suffixes, those suffixes marked for rehashing (appended to
//! `hashes.invalid`) and a pickled `None`. Runs on the device's pool.

use crate::hashes::{get_hashes, invalidate, partition_dir, pickle_hashes, steady_bytes, valid_suffix, View};
use crate::{insufficient_storage, ObjectConfig};
use aerie_api::{Body, Response, Status};

/// `pickle.dumps(None, protocol=2)`.
const PICKLED_NONE: &[u8] = b"\x80\x02N.";

fn pickled(body: Vec<u8>) -> Response {
    Response::new(Status::OK)
        .with_header("Content-Type", &b"text/html; charset=UTF-8"[..])
        .with_body(Body::Bytes(body.into()))
}

fn failed(what: &str, e: &std::io::Error) -> Response {
    log::error!("REPLICATE {what}: {e}");
    Response::text(Status::INTERNAL_SERVER_ERROR, format!("{e}\n"))
}

/// Answer a REPLICATE for a checked device and partition; `suffixes` is
/// what followed the partition (`None` when nothing did).
pub(crate) fn replicate(
    cfg: &ObjectConfig,
    device: &str,
    partition: &str,
    suffixes: Option<&str>,
    policy: u32,
) -> Response {
    let device_dir = match cfg.devices.device_dir(device) {
        Ok(d) => d,
        Err(why) => {
            log::warn!("device {device} unavailable: {}", why.0);
            return insufficient_storage(device);
        }
    };
    let part_dir = partition_dir(&device_dir, policy, partition);
    let suffixes: Vec<&str> = suffixes.filter(|s| !s.is_empty()).map(|s| s.split('-').collect()).unwrap_or_default();
    if !suffixes.is_empty() {
        // After an rsync: mark what changed; the next hashing redoes it.
        for s in suffixes.into_iter().filter(|s| valid_suffix(s)) {
            if let Err(e) = invalidate(&part_dir, s) {
                return failed(&format!("{device}/{partition}: invalidating {s}"), &e);
            }
        }
        return pickled(PICKLED_NONE.to_vec());
    }
    if !part_dir.is_dir() {
        return pickled(pickle_hashes(&Default::default()));
    }
    // The steady case: nothing to fold in or hash, the stored hashes are
    // the answer, passed through without being built into a map.
    if let Ok(Some(bytes)) = steady_bytes(&part_dir) {
        if let Some(view) = View::parse(&bytes).filter(View::steady) {
            return pickled(view.pickle());
        }
    }
    let layout = crate::ondisk::Layout::of(cfg.swift.policy(policy));
    match get_hashes(&part_dir, layout, &[], false, cfg.reclaim_age) {
        Ok((_, hashes)) => pickled(pickle_hashes(&hashes)),
        Err(e) => failed(&format!("{device}/{partition}"), &e),
    }
}
