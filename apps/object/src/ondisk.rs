//! What a hash directory's file names say (§5.2), a port of Swift's
//! `get_ondisk_files` and `cleanup_ondisk_files` for replicated policies —
//! exactly, because suffix hashes (`hashes.rs`) are made from their result
//! and nodes that disagree on it replicate a suffix on every pass.
//!
//! Each name splits at its last dot into a timestamp and an extension (a
//! `.meta` name may carry a content-type delta, `<ts>±<hex>.meta`); a name
//! whose timestamp does not parse is unexpected and ignored (rsync's
//! temporary names among them). Per extension, newest first:
//!
//! * the newest `.ts` makes every other file at or before it obsolete, and
//!   older tombstones too;
//! * of the `.meta` files the newest is kept, and beside it the one with the
//!   newest content-type timestamp if that is newer than the newest's (at
//!   the same timestamp only the one with the newer content type);
//! * the newest `.data` makes older `.data` obsolete, and every other file at
//!   or before it; with no `.data`, `.meta` files may be reclaimed;
//! * the visible state: the `.data`, with its newest `.meta` and the
//!   content-type `.meta` if its content type is newer than the data; or
//!   else the `.ts`.
//!
//! Cleaning up removes the obsolete files, a tombstone older than
//! `reclaim_age` (and stray `.meta` files as old), and the hash directory
//! once it is empty.

use aerie_storage::timestamp::decode_timestamps;
use aerie_storage::Timestamp;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// A file of a hash directory, parsed from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// The name.
    pub name: String,
    /// The extension, with its dot (`.data`, `.ts`, `.meta`, …).
    pub ext: String,
    /// The timestamp (a `.meta` file's metadata timestamp).
    pub timestamp: Timestamp,
    /// A `.meta` file's content-type timestamp, if its name carries one.
    pub ctype_timestamp: Option<Timestamp>,
}

/// Parse a file name as Swift's `parse_on_disk_filename` does; `None` for
/// an unexpected name.
pub fn parse_name(name: &str) -> Option<FileInfo> {
    let dot = name.rfind('.').filter(|&i| i > 0)?;
    let (stem, ext) = name.split_at(dot);
    let (timestamp, ctype_timestamp) = if ext == ".meta" {
        let (t, c, _) = decode_timestamps(stem, true).ok()?;
        (t, c)
    } else {
        (Timestamp::parse(stem).ok()?, None)
    };
    Some(FileInfo { name: name.to_string(), ext: ext.to_string(), timestamp, ctype_timestamp })
}

/// What a set of file names says (Swift's `get_ondisk_files` result).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OnDiskFiles {
    /// The visible `.data`.
    pub data_info: Option<FileInfo>,
    /// The newest `.meta`, when a `.data` is visible.
    pub meta_info: Option<FileInfo>,
    /// The `.meta` with the newest content type, when that is newer than
    /// the data.
    pub ctype_info: Option<FileInfo>,
    /// The tombstone, when no `.data` is visible.
    pub ts_info: Option<FileInfo>,
    /// Files the state makes obsolete.
    pub obsolete: Vec<FileInfo>,
    /// Stray `.meta` files (no `.data`), removable once reclaimable.
    pub possible_reclaim: Vec<FileInfo>,
    /// Names that did not parse.
    pub unexpected: Vec<String>,
}

/// Keep the leading items of a newest-first list that satisfy `keep`;
/// the rest go to `obsolete`.
fn split(list: &mut Vec<FileInfo>, obsolete: &mut Vec<FileInfo>, keep: impl Fn(&FileInfo) -> bool) {
    let at = list.iter().position(|f| !keep(f)).unwrap_or(list.len());
    obsolete.extend(list.drain(at..));
}

impl OnDiskFiles {
    /// Work out the state of a hash directory from its file names.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> OnDiskFiles {
        let mut r = OnDiskFiles::default();
        let mut names: Vec<&str> = names.into_iter().collect();
        // Swift lists, then sorts the names in reverse before it parses.
        names.sort_unstable_by(|a, b| b.cmp(a));
        let mut exts: BTreeMap<String, Vec<FileInfo>> = BTreeMap::new();
        for n in names {
            match parse_name(n) {
                Some(info) => exts.entry(info.ext.clone()).or_default().push(info),
                None => r.unexpected.push(n.to_string()),
            }
        }
        for list in exts.values_mut() {
            // Stable: equal timestamps keep the reverse name order.
            list.sort_by_key(|f| std::cmp::Reverse(f.timestamp));
        }
        let obsolete = &mut r.obsolete;
        if let Some(newest_ts) = exts.get(".ts").and_then(|t| t.first()).map(|t| t.timestamp) {
            for (ext, list) in exts.iter_mut() {
                if ext != ".ts" {
                    split(list, obsolete, |f| f.timestamp > newest_ts);
                }
            }
            if let Some(ts) = exts.get_mut(".ts") {
                obsolete.extend(ts.drain(1..));
            }
        }
        if let Some(metas) = exts.get_mut(".meta").filter(|m| !m.is_empty()) {
            let mut retain = 1;
            if metas.len() > 1 {
                let ctype = |f: &FileInfo| f.ctype_timestamp.unwrap_or(Timestamp::ZERO);
                metas[1..].sort_by_key(|f| std::cmp::Reverse(ctype(f)));
                if ctype(&metas[1]) > ctype(&metas[0]) {
                    if metas[1].timestamp == metas[0].timestamp {
                        metas.swap(0, 1);
                    } else {
                        retain = 2;
                    }
                }
            }
            obsolete.extend(metas.drain(retain..));
        }
        // The replicated policy's rules for .data.
        if let Some(data_ts) = exts.get(".data").and_then(|d| d.first()).map(|d| d.timestamp) {
            for (ext, list) in exts.iter_mut() {
                if ext == ".data" {
                    split(list, obsolete, |f| f.timestamp >= data_ts);
                } else {
                    split(list, obsolete, |f| f.timestamp > data_ts);
                }
            }
            r.data_info = exts.get(".data").and_then(|d| d.first()).cloned();
        } else if let Some(metas) = exts.get(".meta") {
            r.possible_reclaim.extend(metas.iter().cloned());
        }
        if let Some(data) = &r.data_info {
            if let Some(metas) = exts.get_mut(".meta").filter(|m| !m.is_empty()) {
                r.meta_info = metas.first().cloned();
                if let Some(ctype) = metas.pop() {
                    if ctype.ctype_timestamp.is_some_and(|c| c > data.timestamp) {
                        r.ctype_info = Some(ctype);
                    }
                }
            }
        } else if let Some(ts) = exts.get(".ts").and_then(|t| t.first()) {
            r.ts_info = Some(ts.clone());
        }
        r
    }
}

/// What is left of a hash directory after [`cleanup_ondisk_files`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// The state of what is left.
    pub state: OnDiskFiles,
    /// The names left in the directory.
    pub files: Vec<String>,
}

/// Seconds since the epoch as a float, for reclaim arithmetic.
fn secs(t: Timestamp) -> f64 {
    t.units() as f64 / 100_000.0
}

/// Swift's `cleanup_ondisk_files`: remove what the state makes obsolete, a
/// tombstone older than `reclaim_age` seconds at `now`, stray `.meta` files
/// as old, and the directory itself once nothing is left. A directory that
/// does not exist is empty.
pub fn cleanup_ondisk_files(dir: &Path, reclaim_age: f64, now: Timestamp) -> io::Result<Cleaned> {
    let mut files: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Cleaned::default()),
        Err(e) => return Err(e),
    };
    let mut state = OnDiskFiles::from_names(files.iter().map(String::as_str));
    let reclaimable = |t: Timestamp| secs(now) - secs(t) > reclaim_age;
    let remove = |name: &str, files: &mut Vec<String>| -> io::Result<()> {
        match std::fs::remove_file(dir.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        files.retain(|f| f != name);
        Ok(())
    };
    if state.ts_info.as_ref().is_some_and(|t| reclaimable(t.timestamp)) {
        if let Some(ts) = state.ts_info.take() {
            remove(&ts.name, &mut files)?;
        }
    }
    let reclaim: Vec<FileInfo> = state.possible_reclaim.iter().filter(|f| reclaimable(f.timestamp)).cloned().collect();
    state.obsolete.extend(reclaim);
    for f in &state.obsolete {
        remove(&f.name, &mut files)?;
    }
    if files.is_empty() {
        // Someone may be renaming a new file in: not empty then, keep it.
        let _ = std::fs::remove_dir(dir);
    }
    Ok(Cleaned { state, files })
}

/// What the file names say the object is, as the read path uses it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Files {
    /// The visible `.data`.
    pub data: Option<Info>,
    /// The tombstone, when no data is visible.
    pub tombstone: Option<Info>,
    /// The newest `.meta` newer than the data.
    pub meta: Option<Info>,
    /// The `.meta` holding the newest content type, when it is newer than
    /// the data.
    pub ctype_meta: Option<Info>,
    /// Files the visible state makes obsolete.
    pub obsolete: Vec<PathBuf>,
}

/// A visible file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// Its timestamp.
    pub ts: Timestamp,
    /// A `.meta` file's content-type timestamp.
    pub ctype: Option<Timestamp>,
    /// Its path.
    pub path: PathBuf,
}

/// Read a hash directory's names and work out the visible state (nothing
/// is removed).
pub fn gather(dir: &Path) -> io::Result<Files> {
    let names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Files::default()),
        Err(e) => return Err(e),
    };
    let s = OnDiskFiles::from_names(names.iter().map(String::as_str));
    let info = |f: &FileInfo| Info { ts: f.timestamp, ctype: f.ctype_timestamp, path: dir.join(&f.name) };
    Ok(Files {
        data: s.data_info.as_ref().map(info),
        tombstone: s.ts_info.as_ref().map(info),
        meta: s.meta_info.as_ref().map(info),
        ctype_meta: s.ctype_info.as_ref().map(info),
        obsolete: s.obsolete.iter().map(|f| dir.join(&f.name)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).expect("ts")
    }

    fn state(names: &[&str]) -> OnDiskFiles {
        OnDiskFiles::from_names(names.iter().copied())
    }

    fn names(v: &[FileInfo]) -> Vec<&str> {
        let mut n: Vec<&str> = v.iter().map(|f| f.name.as_str()).collect();
        n.sort_unstable();
        n
    }

    #[test]
    fn newest_tombstone_wins_over_equal_or_older_data() {
        let s = state(&["0000000001.00000.data", "0000000002.00000.ts", "0000000001.50000.meta"]);
        assert_eq!(s.ts_info.map(|x| x.timestamp), Some(t("2")));
        assert_eq!(s.obsolete.len(), 2);
        let s =
            state(&["0000000003.00000.data", "0000000002.00000.ts", "0000000004.00000.meta", "0000000005.00000.meta"]);
        assert_eq!(s.data_info.map(|x| x.timestamp), Some(t("3")));
        assert_eq!(s.meta_info.map(|x| x.timestamp), Some(t("5")));
        assert_eq!(names(&s.obsolete), ["0000000002.00000.ts", "0000000004.00000.meta"]);
        let s = state(&["0000000003.00000.ts", "0000000003.00000.data"]);
        assert!(s.ts_info.is_some() && s.data_info.is_none(), "a tombstone wins a tie");
    }

    #[test]
    fn a_content_type_meta_is_kept_beside_the_newest_meta() {
        let s = state(&["0000000001.00000.data", "0000000003.00000-100.meta", "0000000004.00000.meta"]);
        assert_eq!(s.meta_info.map(|x| x.timestamp), Some(t("4")));
        assert_eq!(s.ctype_info.map(|x| x.timestamp), Some(t("3")));
        assert!(s.obsolete.is_empty());
    }

    #[test]
    fn unexpected_names_and_stray_metas() {
        let s = state(&[".0000000001.00000.data.AbCdEf", "junk", "0000000002.00000.meta"]);
        assert_eq!(s.unexpected.len(), 2, "rsync temporaries and other names are ignored");
        assert!(s.data_info.is_none() && s.meta_info.is_none(), "a lone .meta is not reported");
        assert_eq!(names(&s.possible_reclaim), ["0000000002.00000.meta"]);
    }

    #[test]
    fn cleanup_reclaims_old_tombstones_and_removes_the_empty_directory() {
        let d = std::env::temp_dir().join(format!("aerie-cleanup-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("dir");
        for n in ["0000000001.00000.data", "0000000002.00000.ts"] {
            std::fs::write(d.join(n), b"").expect("file");
        }
        let c = cleanup_ondisk_files(&d, 604800.0, t("3")).expect("clean");
        assert_eq!(c.files, ["0000000002.00000.ts"], "the data is obsolete, the young tombstone stays");
        let c = cleanup_ondisk_files(&d, 604800.0, t("700000")).expect("clean");
        assert!(c.files.is_empty() && c.state.ts_info.is_none());
        assert!(!d.exists(), "an emptied hash directory goes");
    }
}
