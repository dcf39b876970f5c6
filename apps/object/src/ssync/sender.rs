//! The SSYNC sender (SWIFT-REPLICATION.md §4): offer a peer every object of
//! some suffixes of a local partition, then send what it wants — a PUT with
//! the data file's bytes and metadata, a POST with the newest `.meta`'s, or
//! a DELETE for a tombstone — exactly as Swift's `ssync_sender.Sender`
//! writes them, so that Swift's receivers take them as readily as aerie's.
//!
//! The session succeeds only when the peer confirms the updates
//! (`:UPDATES: START`/`END`); then every object offered is known to be in
//! sync on the peer, which a handoff's revert relies on before it removes
//! anything.

use super::wire::{
    decode_wanted, encode_missing, Offer, Wanted, MISSING_CHECK_END, MISSING_CHECK_START, UPDATES_END, UPDATES_START,
};
use crate::diskfile::{DiskFile, OpenError};
use crate::hashes::{invalidate, partition_dir};
use crate::meta::Meta;
use crate::ondisk::cleanup_ondisk_files;
use crate::peer::{PeerConn, PeerError, Timeouts};
use aerie_storage::Timestamp;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// Paces a device's replication (bytes read, objects sent per second).
pub trait Pace: Sync {
    /// Called before `bytes` of an object are read and sent; may sleep.
    fn take(&self, objects: u64, bytes: u64);
}

/// No pace: as fast as the peer takes it.
pub struct Unpaced;

impl Pace for Unpaced {
    fn take(&self, _objects: u64, _bytes: u64) {}
}

/// What a session did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sent {
    /// Every object offered, with what was offered (the objects now in
    /// sync on the peer, once the session succeeded).
    pub offered: BTreeMap<String, Offer>,
    /// How many the peer wanted.
    pub wanted: usize,
    /// PUTs, POSTs and DELETEs sent.
    pub puts: u64,
    /// See `puts`.
    pub posts: u64,
    /// See `puts`.
    pub deletes: u64,
    /// Object bytes sent.
    pub bytes: u64,
}

/// One object's state as the sender offers it (Swift's `yield_hashes`),
/// from its file names; a directory with neither `.data` nor `.ts` is not
/// offered. Cleans up as it reads, as Swift does.
fn offers_in_suffix(suffix_dir: &Path, reclaim_age: f64, now: Timestamp, out: &mut Vec<(String, Offer)>) -> bool {
    let mut names: Vec<String> = match std::fs::read_dir(suffix_dir) {
        Ok(e) => e.flatten().filter_map(|e| e.file_name().into_string().ok()).collect(),
        Err(_) => return false,
    };
    names.sort_unstable();
    let mut found = false;
    for hash in names {
        let Ok(c) = cleanup_ondisk_files(&suffix_dir.join(&hash), crate::ondisk::Layout::Replicated, reclaim_age, now)
        else {
            continue;
        };
        if !c.files.is_empty() {
            found = true;
        }
        let s = &c.state;
        let Some(ts_data) = s.data_info.as_ref().or(s.ts_info.as_ref()).map(|f| f.timestamp) else { continue };
        let ts_meta = s.meta_info.as_ref().map_or(ts_data, |m| m.timestamp);
        let ts_ctype = s.ctype_info.as_ref().and_then(|c| c.ctype_timestamp).unwrap_or(ts_data);
        out.push((hash, Offer { ts_data, ts_meta, ts_ctype, durable: true }));
    }
    found
}

/// Every object of some suffixes of a partition, as offered.
pub fn offers(
    device_dir: &Path,
    policy: u32,
    partition: &str,
    suffixes: &[String],
    reclaim_age: f64,
) -> Vec<(String, Offer)> {
    let part_dir = partition_dir(device_dir, policy, partition);
    let now = Timestamp::now();
    let mut out = Vec::new();
    for s in suffixes {
        if !offers_in_suffix(&part_dir.join(s), reclaim_age, now, &mut out) {
            // Found empty: the next hashing removes it (Swift does the same).
            let _ = invalidate(&part_dir, s);
        }
    }
    out
}

/// Where a session goes: the peer's replication address and device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `replication_ip:replication_port`.
    pub host: String,
    /// The peer's device.
    pub device: String,
}

/// A session's fixed inputs.
pub struct Session<'a> {
    /// The local device.
    pub device_dir: &'a Path,
    /// The policy.
    pub policy: u32,
    /// The partition.
    pub partition: &'a str,
    /// Timeouts towards the peer.
    pub timeouts: Timeouts,
    /// Tombstones older than this are reclaimed, not offered.
    pub reclaim_age: f64,
    /// The device's pace.
    pub pace: &'a dyn Pace,
}

fn expect_marker(c: &mut PeerConn, marker: &[u8]) -> Result<(), PeerError> {
    loop {
        let Some(line) = c.read_line(super::wire::MAX_LINE)? else {
            return Err(PeerError::Failed("Early disconnect".into()));
        };
        let line = line.trim_ascii();
        if line == marker {
            return Ok(());
        }
        if !line.is_empty() {
            return Err(PeerError::Failed(format!(
                "Unexpected response: {:?}",
                super::wire::cap(&String::from_utf8_lossy(line))
            )));
        }
    }
}

fn header_value(v: &[u8]) -> String {
    String::from_utf8_lossy(v).chars().map(|c| if c == '\r' || c == '\n' { ' ' } else { c }).collect()
}

/// A subrequest's head as Swift's sender writes it: `METHOD /a/c/o`, then
/// the headers sorted by name.
fn subrequest(method: &str, name: &str, headers: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = headers.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut msg = format!("{method} {}", aerie_storage::path::quote(name));
    for (k, v) in sorted {
        msg.push_str(&format!("\r\n{k}: {v}"));
    }
    msg.push_str("\r\n\r\n");
    msg.into_bytes()
}

fn meta_headers(m: &Meta, skip: &[&str]) -> Vec<(String, String)> {
    m.0.iter()
        .filter(|(k, _)| !skip.iter().any(|s| s.eq_ignore_ascii_case(k)))
        .map(|(k, v)| (k.clone(), header_value(v)))
        .collect()
}

impl Session<'_> {
    /// Sync `suffixes` to `target`. Fails on anything but a clean end.
    pub fn sync(&self, target: &Target, suffixes: &[String]) -> Result<Sent, PeerError> {
        let mut sent = Sent::default();
        if suffixes.is_empty() {
            return Ok(sent);
        }
        let offers = offers(self.device_dir, self.policy, self.partition, suffixes, self.reclaim_age);
        let headers =
            [("Transfer-Encoding", "chunked".to_string()), ("X-Backend-Storage-Policy-Index", self.policy.to_string())];
        let path = format!("/{}/{}", target.device, self.partition);
        let mut c =
            PeerConn::open(&target.host, "SSYNC", &aerie_storage::path::quote(&path), &headers, &self.timeouts)?;
        let result = self.converse(&mut c, &offers, &mut sent);
        c.finish();
        result?;
        sent.offered = offers.into_iter().collect();
        Ok(sent)
    }

    fn converse(&self, c: &mut PeerConn, offers: &[(String, Offer)], sent: &mut Sent) -> Result<(), PeerError> {
        c.read_head()?;
        if c.status != 200 {
            let body = c.read_body(1024).unwrap_or_default();
            return Err(PeerError::Status(c.status, String::from_utf8_lossy(&body).into_owned()));
        }
        // MISSING_CHECK: every offer, then what the peer wants.
        let mut batch: Vec<u8> = b":MISSING_CHECK: START\r\n".to_vec();
        for (hash, o) in offers {
            batch.extend_from_slice(encode_missing(hash, o).as_bytes());
            batch.extend_from_slice(b"\r\n");
            if batch.len() >= 32 * 1024 {
                c.send_chunk(&batch)?;
                batch.clear();
            }
        }
        batch.extend_from_slice(b":MISSING_CHECK: END\r\n");
        c.send_chunk(&batch)?;
        c.flush()?;
        expect_marker(c, MISSING_CHECK_START)?;
        let mut wanted: BTreeMap<String, Wanted> = BTreeMap::new();
        loop {
            let Some(line) = c.read_line(super::wire::MAX_LINE)? else {
                return Err(PeerError::Failed("Early disconnect".into()));
            };
            let line = String::from_utf8_lossy(line.trim_ascii()).into_owned();
            if line.as_bytes() == MISSING_CHECK_END {
                break;
            }
            if let Some((hash, w)) = decode_wanted(&line) {
                wanted.insert(hash, w);
            }
        }
        sent.wanted = wanted.len();
        // UPDATES, in the order offered.
        c.send_chunk(b":UPDATES: START\r\n")?;
        for (hash, _) in offers {
            if let Some(w) = wanted.get(hash) {
                self.send_updates(c, hash, *w, sent)?;
            }
        }
        c.send_chunk(b":UPDATES: END\r\n")?;
        c.flush()?;
        expect_marker(c, UPDATES_START)?;
        expect_marker(c, UPDATES_END)
    }

    fn send_updates(&self, c: &mut PeerConn, hash: &str, want: Wanted, sent: &mut Sent) -> Result<(), PeerError> {
        let df = DiskFile::for_hash(
            self.device_dir.to_path_buf(),
            self.policy,
            self.partition.to_string(),
            hash.to_string(),
        );
        let opened = match df.open(Timestamp::now(), true) {
            Ok(o) => o,
            Err(OpenError::Deleted(ts)) => {
                if want.data {
                    let name = tombstone_name(&df).unwrap_or_default();
                    if name.is_empty() {
                        return Ok(());
                    }
                    c.send_chunk(&subrequest("DELETE", &name, &[("X-Timestamp".into(), ts.internal())]))?;
                    sent.deletes += 1;
                }
                return Ok(());
            }
            // Gone meanwhile, or unreadable (quarantined): not sent.
            Err(_) => return Ok(()),
        };
        let name = opened.meta.get_str("name").unwrap_or("").to_string();
        if want.data {
            self.pace.take(1, opened.size);
            let mut headers = meta_headers(&opened.data_meta, &["name", "Content-Length"]);
            headers.push(("Content-Length".into(), opened.size.to_string()));
            c.send_chunk(&subrequest("PUT", &name, &headers))?;
            let mut file = &opened.file;
            let mut buf = vec![0u8; 64 * 1024];
            let mut total = 0u64;
            loop {
                let n = file
                    .read(&mut buf)
                    .map_err(|e| PeerError::Failed(format!("reading {}: {e}", opened.data_path.display())))?;
                if n == 0 {
                    break;
                }
                c.send_chunk(&buf[..n])?;
                total += n as u64;
            }
            if total != opened.size {
                // The receiver may now hold part of it: only ending the
                // session keeps it from being finished (as Swift does).
                return Err(PeerError::Failed("Sent data length does not match content-length".into()));
            }
            sent.puts += 1;
            sent.bytes += total;
        }
        if want.meta && opened.data_timestamp != opened.timestamp() {
            if let Some(m) = &opened.metafile {
                c.send_chunk(&subrequest("POST", &name, &meta_headers(m, &[])))?;
                sent.posts += 1;
            }
        }
        Ok(())
    }
}

/// The name stored in a tombstone's metadata.
fn tombstone_name(df: &DiskFile) -> Option<String> {
    let files = crate::ondisk::gather(&df.datadir(), df.layout, &df.choice).ok()?;
    let ts = files.tombstone?;
    let pairs = aerie_storage::fs::read_metadata(&ts.path).ok()?;
    let m = Meta::from_pairs(pairs);
    m.get_str("name").map(str::to_string)
}
