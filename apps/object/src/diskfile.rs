//! One object on one device, in Swift's on-disk format (§5).
//!
//! ```text
//! <device>/objects[-N]/<partition>/<suffix>/<hash>/<timestamp>.data|.ts|.meta
//! <device>/tmp[-N]/                 temporary files of writes in progress
//! <device>/quarantined/objects[-N]/<hash>/   corrupt objects moved aside
//! ```
//!
//! The visible state is derived from the file names alone (§5.2): the
//! newest tombstone wins over data at the same or an older timestamp, the
//! newest `.data` wins over older files, and of the `.meta` files newer than
//! the data the newest one and the one with the newest content-type
//! timestamp are kept. Every write is a temporary file in `tmp/` that is
//! fsynced, renamed into place and followed by an fsync of the directory;
//! then obsolete files are removed and the suffix is appended to the
//! partition's `hashes.invalid` (so Swift's replicator rehashes it).
//!
//! Everything here blocks on the disk: it runs on the device's pool threads.

use crate::meta::Meta;
pub use crate::ondisk::{gather, Choice, Files, Info, Layout};
use crate::staging::Staging;
use aerie_storage::fs::{create_dirs, read_metadata, read_metadata_of, MetadataError, TempFile};
use aerie_storage::pickle::dumps_metadata;
use aerie_storage::timestamp::encode_timestamps;
use aerie_storage::Timestamp;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// `objects`, `objects-1`, …
pub fn policy_dir(base: &str, policy: u32) -> String {
    if policy == 0 {
        base.to_string()
    } else {
        format!("{base}-{policy}")
    }
}

/// Why an object cannot be read.
#[derive(Debug)]
pub enum OpenError {
    /// Nothing on disk (404 without a timestamp).
    NotFound,
    /// A tombstone (404 with `X-Backend-Timestamp`).
    Deleted(Timestamp),
    /// Expired (404 with `X-Backend-Timestamp` of the metadata); the
    /// metadata is kept for DELETE's `X-If-Delete-At`.
    Expired(Timestamp, Box<Meta>),
    /// The stored name is another object's (an MD5 collision: 403).
    Collision,
    /// Corrupt: moved to quarantine (404).
    Quarantined(String),
    /// The disk failed (500/507).
    Io(io::Error),
}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> Self {
        OpenError::Io(e)
    }
}

/// An object's location and identity.
#[derive(Debug, Clone)]
pub struct DiskFile {
    /// The device directory.
    pub device_dir: PathBuf,
    /// The policy index.
    pub policy: u32,
    /// The partition.
    pub partition: String,
    /// The hash.
    pub hash: String,
    /// `/a/c/o`
    pub name: String,
    /// How the policy names data files.
    pub layout: Layout,
    /// Which fragment a read of an EC object wants.
    pub choice: Choice,
}

impl Opened {
    /// The object's newest timestamp: the newest `.meta`'s, or the data's
    /// (Swift's `DiskFile.timestamp`).
    pub fn timestamp(&self) -> Timestamp {
        self.meta.get_str("X-Timestamp").and_then(|t| Timestamp::parse(t).ok()).unwrap_or(self.data_timestamp)
    }

    /// The timestamp of the current content type (a POST's, or the data's).
    pub fn content_type_timestamp(&self) -> Timestamp {
        self.meta
            .get_str("Content-Type-Timestamp")
            .or_else(|| self.data_meta.get_str("X-Timestamp"))
            .and_then(|t| Timestamp::parse(t).ok())
            .unwrap_or(self.data_timestamp)
    }
}

/// An opened object.
#[derive(Debug)]
pub struct Opened {
    /// The merged metadata (data, then `.meta` overlay).
    pub meta: Meta,
    /// The `.data` timestamp.
    pub data_timestamp: Timestamp,
    /// The `.data` file's own metadata (before the overlay).
    pub data_meta: Meta,
    /// The newest `.meta` file's metadata, without `name` (after a POST).
    pub metafile: Option<Meta>,
    /// The `.data` file (open).
    pub file: File,
    /// Its path (a read that finds it corrupt quarantines it).
    pub data_path: PathBuf,
    /// Its size.
    pub size: u64,
    /// EC: the fragment index of the data file read.
    pub frag_index: Option<u32>,
    /// The durable timestamp (EC: of the durable frag set, if any).
    pub durable_timestamp: Option<Timestamp>,
    /// EC: every frag set's timestamp and indexes, newest first.
    pub fragments: Vec<(Timestamp, Vec<u32>)>,
}

impl DiskFile {
    /// An object known by its hash only (replication): its name is read
    /// from its metadata.
    pub fn for_hash(device_dir: PathBuf, policy: u32, partition: String, hash: String) -> DiskFile {
        DiskFile {
            device_dir,
            policy,
            partition,
            hash,
            name: String::new(),
            layout: Layout::Replicated,
            choice: Choice::default(),
        }
    }

    /// The hash directory.
    pub fn datadir(&self) -> PathBuf {
        crate::hashes::partition_dir(&self.device_dir, self.policy, &self.partition)
            .join(crate::hashes::suffix_of(&self.hash))
            .join(&self.hash)
    }

    /// The temporary-file directory.
    pub fn tmpdir(&self) -> PathBuf {
        self.device_dir.join(policy_dir("tmp", self.policy))
    }

    /// Read the visible state's metadata (and open the data).
    pub fn open(&self, now: Timestamp, open_expired: bool) -> Result<Opened, OpenError> {
        let files = gather(&self.datadir(), self.layout, &self.choice)?;
        if let Some(t) = files.tombstone {
            return Err(OpenError::Deleted(t.ts));
        }
        let Some(Info { ts: data_ts, path: data_path, .. }) = files.data else { return Err(OpenError::NotFound) };
        let file = match File::open(&data_path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(OpenError::NotFound),
            Err(e) => return Err(e.into()),
        };
        let data_meta = match read_metadata_of(&file) {
            Ok(pairs) => Meta::from_pairs(pairs),
            Err(MetadataError::Io(e)) => return Err(e.into()),
            Err(MetadataError::Missing) => return Err(self.quarantine("missing metadata")),
            Err(MetadataError::Corrupt(why)) => return Err(self.quarantine(&why)),
        };
        let mut meta = data_meta.clone();
        let mut metafile = None;
        if let Some(meta_info) = &files.meta {
            let mut overlay = self.read_meta_file(&meta_info.path)?;
            if let Some(ctype_info) = files.ctype_meta.as_ref().filter(|c| c.path != meta_info.path) {
                let ct = self.read_meta_file(&ctype_info.path)?;
                if let (Some(ctype), Some(cts)) = (ct.get("Content-Type"), ct.get("Content-Type-Timestamp")) {
                    let (ctype, cts) = (ctype.to_vec(), cts.to_vec());
                    overlay.set("Content-Type", ctype);
                    overlay.set("Content-Type-Timestamp", cts);
                }
            }
            // The newest `.meta`'s own metadata with the newest content
            // type merged in (Swift's `get_metafile_metadata`).
            let mut own = overlay.clone();
            own.remove("name");
            metafile = Some(own);
            let mut merged = overlay.clone();
            for (k, v) in &data_meta.0 {
                let lk = k.to_ascii_lowercase();
                if matches!(lk.as_str(), "content-length" | "deleted" | "etag" | "x-static-large-object")
                    || crate::meta::is_sysmeta(k)
                {
                    merged.set(k, v.clone());
                }
            }
            let overlay_ctype_ts = overlay.get_str("Content-Type-Timestamp").and_then(|t| Timestamp::parse(t).ok());
            if let Some(ct) = data_meta.get("Content-Type") {
                if overlay_ctype_ts.is_none_or(|t| data_ts > t) {
                    merged.set("Content-Type", ct.to_vec());
                    merged.remove("Content-Type-Timestamp");
                }
            }
            meta = merged;
        }
        if !self.name.is_empty() && meta.get_str("name") != Some(self.name.as_str()) {
            if meta.get("name").is_none() {
                return Err(self.quarantine("metadata without a name"));
            }
            return Err(OpenError::Collision);
        }
        let size = file.metadata()?.len();
        let declared = meta.get_str("Content-Length").and_then(|v| v.parse::<u64>().ok());
        if declared != Some(size) {
            return Err(self.quarantine(&format!("size {size} does not match Content-Length {declared:?}")));
        }
        if let Some(d) = meta.get("X-Delete-At") {
            let Some(at) = std::str::from_utf8(d).ok().and_then(|s| s.trim().parse::<i64>().ok()) else {
                return Err(self.quarantine("non-integer X-Delete-At"));
            };
            if !open_expired && (at as f64) <= now.units() as f64 / 100_000.0 {
                let ts = meta.get_str("X-Timestamp").and_then(|t| Timestamp::parse(t).ok()).unwrap_or(data_ts);
                return Err(OpenError::Expired(ts, Box::new(meta)));
            }
        }
        Ok(Opened {
            meta,
            data_timestamp: data_ts,
            data_meta,
            metafile,
            file,
            data_path,
            size,
            frag_index: files.frag_index,
            durable_timestamp: files.durable_timestamp,
            fragments: files.fragments,
        })
    }

    fn read_meta_file(&self, path: &Path) -> Result<Meta, OpenError> {
        match read_metadata(path) {
            Ok(pairs) => Ok(Meta::from_pairs(pairs)),
            Err(MetadataError::Io(e)) if e.kind() == io::ErrorKind::NotFound => Ok(Meta::default()),
            Err(MetadataError::Io(e)) => Err(e.into()),
            Err(MetadataError::Missing) => Err(self.quarantine("a .meta file without metadata")),
            Err(MetadataError::Corrupt(why)) => Err(self.quarantine(&why)),
        }
    }

    /// Move the hash directory to `quarantined/` (§4.3: corrupt → 404).
    pub fn quarantine(&self, why: &str) -> OpenError {
        match crate::hashes::quarantine_dir(&self.datadir()) {
            Ok(to) => log::warn!("quarantined {} ({}) to {}: {why}", self.name, self.hash, to.display()),
            Err(e) => log::error!("could not quarantine {} ({}): {e}; reason: {why}", self.name, self.hash),
        }
        OpenError::Quarantined(why.to_string())
    }

    /// Publish a finished temporary file as `<ts>.<ext>` and tidy up; with
    /// `staging`, at its next flush instead (`crate::staging`).
    pub fn publish(&self, tmp: TempFile, file_name: &str, meta: &Meta, staging: Option<&Staging>) -> io::Result<()> {
        tmp.set_metadata(&dumps_metadata(&meta.to_pairs()))?;
        let dir = self.datadir();
        if let Some(staging) = staging {
            let size = meta.get_str("Content-Length").and_then(|v| v.parse().ok()).unwrap_or(0);
            let part_dir = crate::hashes::partition_dir(&self.device_dir, self.policy, &self.partition);
            staging.add(tmp, size, dir, file_name, part_dir, &self.hash);
            return Ok(());
        }
        let created = create_dirs(&dir)?;
        self.invalidate_suffix()?;
        tmp.commit(&dir.join(file_name), &created)?;
        schedule_cleanup(dir, self.layout);
        Ok(())
    }

    /// EC: make a published fragment durable (Swift's `ECDiskFileWriter`
    /// commit): rename `<ts>#<fi>.data` to `<ts>#<fi>#d.data`, fsync the
    /// directory, tidy up. When another writer already removed it, that is
    /// success if the state moved past it (a newer tombstone or durable
    /// data at or after it).
    pub fn commit_durable(&self, ts: Timestamp, frag_index: u32) -> io::Result<()> {
        let dir = self.datadir();
        let from = dir.join(crate::ondisk::ec_data_name(ts, frag_index, false));
        let to = dir.join(crate::ondisk::ec_data_name(ts, frag_index, true));
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let files = gather(&dir, self.layout, &Choice { frag_index: Some(frag_index), frag_prefs: None })?;
                let past = files.tombstone.as_ref().is_some_and(|t| t.ts > ts)
                    || files.durable_timestamp.is_some_and(|d| d >= ts);
                if past {
                    return Ok(());
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        aerie_storage::fs::fsync_dir(&dir)?;
        self.invalidate_suffix()?;
        schedule_cleanup(dir, self.layout);
        Ok(())
    }

    /// Write a zero-length file (tombstone or `.meta`) with metadata.
    pub fn write_empty(&self, file_name: &str, meta: &Meta, staging: Option<&Staging>) -> io::Result<()> {
        let tmp = TempFile::create(&self.tmpdir())?;
        self.publish(tmp, file_name, meta, staging)
    }

    /// Append the suffix to the partition's `hashes.invalid`, under the
    /// partition's `.lock`, as Swift's `invalidate_hash` does.
    fn invalidate_suffix(&self) -> io::Result<()> {
        let part_dir = crate::hashes::partition_dir(&self.device_dir, self.policy, &self.partition);
        crate::hashes::invalidate(&part_dir, crate::hashes::suffix_of(&self.hash))
    }
}

/// Remove the files the visible state of a hash directory makes obsolete.
///
/// Safe against concurrent writers: a file obsolete now stays obsolete
/// whatever is written later. The directory itself is never removed here
/// (a writer may be about to rename into it); it always keeps its newest
/// file anyway.
pub fn cleanup(dir: &Path, layout: Layout) {
    let Ok(files) = gather(dir, layout, &Choice::default()) else { return };
    for p in &files.obsolete {
        if let Err(e) = std::fs::remove_file(p) {
            if e.kind() != io::ErrorKind::NotFound {
                log::warn!("could not remove obsolete {}: {e}", p.display());
            }
        }
    }
}

/// Cleanups waiting for the janitor thread (bounded; when full, the
/// writer cleans up itself).
const JANITOR_QUEUE: usize = 4096;

type Cleanup = (PathBuf, Layout);

static JANITOR: std::sync::OnceLock<Option<std::sync::mpsc::SyncSender<Cleanup>>> = std::sync::OnceLock::new();

/// Remove obsolete files after a write, off the request's path: unlinking a
/// replaced object can take tens of milliseconds (freeing extents, discard),
/// and the answer does not depend on it. A janitor thread, started in the
/// worker on first use, does it; if it cannot keep up the writer does it.
pub(crate) fn schedule_cleanup(dir: PathBuf, layout: Layout) {
    let sender = JANITOR.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Cleanup>(JANITOR_QUEUE);
        std::thread::Builder::new()
            .name("object-janitor".into())
            .spawn(move || {
                while let Ok((dir, layout)) = rx.recv() {
                    cleanup(&dir, layout);
                }
            })
            .ok()
            .map(|_| tx)
    });
    match sender {
        Some(tx) => {
            if let Err(
                std::sync::mpsc::TrySendError::Full((dir, layout))
                | std::sync::mpsc::TrySendError::Disconnected((dir, layout)),
            ) = tx.try_send((dir, layout))
            {
                cleanup(&dir, layout);
            }
        }
        None => cleanup(&dir, layout),
    }
}

/// The `.meta` file name for a metadata timestamp and, when the metadata
/// holds a content type, its timestamp (§5.2).
pub fn meta_file_name(meta_ts: Timestamp, ctype_ts: Option<Timestamp>) -> String {
    match ctype_ts {
        Some(c) => format!("{}.meta", encode_timestamps(meta_ts, Some(c), None, true)),
        None => format!("{}.meta", meta_ts.internal()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).expect("ts")
    }

    #[test]
    fn names_parse_and_meta_names_are_made() {
        use crate::ondisk::parse_name;
        let p = |n: &str| parse_name(n, Layout::Replicated).map(|f| (f.ext, f.timestamp, f.ctype_timestamp));
        assert_eq!(p("1.00000.data"), Some((".data".into(), t("1"), None)));
        assert_eq!(p("2.00000_0000000000000001.ts"), Some((".ts".into(), t("2.00000_1"), None)));
        let m = t("1795376261.20317");
        let c = Timestamp::from_units(m.units() - 0x2f5, 0);
        assert_eq!(p("1795376261.20317-2f5.meta"), Some((".meta".into(), m, Some(c))));
        assert_eq!(p("0000000005.00000.meta"), Some((".meta".into(), t("5"), None)));
        assert_eq!(p("junk"), None);
        assert_eq!(meta_file_name(m, Some(c)), "1795376261.20317-2f5.meta");
        assert_eq!(meta_file_name(t("5"), Some(t("5"))), "0000000005.00000+0.meta");
        assert_eq!(meta_file_name(t("5"), None), "0000000005.00000.meta");
    }
}
