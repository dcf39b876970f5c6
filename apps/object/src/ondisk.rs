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
//!
//! Erasure-coded policies (Swift's `ECDiskFileManager`) name data files
//! `<ts>#<frag index>[#d].data` (`#d`: durable, the commit came; a legacy
//! `<ts>.durable` file says the same). The `.data` files group into frag
//! sets by timestamp, newest first down to the newest durable one; what an
//! ordinary read sees is the durable set (its highest fragment index, or
//! the one asked for), and a read with fragment preferences may take a
//! newer, non-durable set. Everything older than the durable timestamp is
//! obsolete; non-durable sets and `.meta` files without durable data may be
//! reclaimed (non-durable data only once older than the commit window).

use aerie_storage::timestamp::decode_timestamps;
use aerie_storage::Timestamp;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// How a policy names its data files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// `<ts>.data`.
    #[default]
    Replicated,
    /// `<ts>#<frag index>[#d].data`, indexes below `fragments`.
    Ec {
        /// `ec_num_data_fragments + ec_num_parity_fragments`.
        fragments: u32,
    },
}

impl Layout {
    /// A policy's layout.
    pub fn of(policy: Option<&aerie_storage::swift_conf::Policy>) -> Layout {
        match policy.and_then(|p| p.ec.as_ref()) {
            Some(ec) => Layout::Ec { fragments: ec.fragments() },
            None => Layout::Replicated,
        }
    }

    /// Whether it is erasure coded.
    pub fn is_ec(self) -> bool {
        matches!(self, Layout::Ec { .. })
    }
}

/// One per-timestamp fragment preference (`X-Backend-Fragment-Preferences`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragPref {
    /// The timestamp it is about.
    pub timestamp: Timestamp,
    /// Fragment indexes not wanted at it.
    pub exclude: Vec<u32>,
}

/// Which fragment an EC read wants: a given index, and/or preferences (an
/// empty list too: then the chosen data need not be durable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Choice {
    /// The fragment index wanted.
    pub frag_index: Option<u32>,
    /// The preferences, most preferred first.
    pub frag_prefs: Option<Vec<FragPref>>,
}

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
    /// An EC `.data` file's fragment index.
    pub frag_index: Option<u32>,
    /// Durable: an EC `.data` named `#d` (or covered by a `.durable`), and
    /// every file of a replicated policy.
    pub durable: bool,
}

/// Parse a file name as Swift's `parse_on_disk_filename` does for the
/// layout; `None` for an unexpected name (for EC, also a `.data` without
/// a valid fragment index).
pub fn parse_name(name: &str, layout: Layout) -> Option<FileInfo> {
    let dot = name.rfind('.').filter(|&i| i > 0)?;
    let (stem, ext) = name.split_at(dot);
    let mut frag_index = None;
    let mut durable = true;
    let (timestamp, ctype_timestamp) = if ext == ".meta" {
        let (t, c, _) = decode_timestamps(stem, true).ok()?;
        (t, c)
    } else if let (".data", Layout::Ec { fragments }) = (ext, layout) {
        let mut parts = stem.split('#');
        let ts = Timestamp::parse(parts.next()?).ok()?;
        let fi: u32 = parts.next()?.parse().ok().filter(|&i| i < fragments)?;
        frag_index = Some(fi);
        durable = parts.next() == Some("d");
        (ts, None)
    } else {
        (Timestamp::parse(stem).ok()?, None)
    };
    Some(FileInfo { name: name.to_string(), ext: ext.to_string(), timestamp, ctype_timestamp, frag_index, durable })
}

/// An EC data file's name (`<ts>#<fi>[#d].data`).
pub fn ec_data_name(ts: Timestamp, frag_index: u32, durable: bool) -> String {
    format!("{}#{frag_index}{}.data", ts.internal(), if durable { "#d" } else { "" })
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
    /// EC: the frag sets, newest first down to the durable one, each in
    /// ascending fragment index.
    pub frag_sets: Vec<Vec<FileInfo>>,
    /// EC: the durable frag set, when a fragment was chosen (Swift reports
    /// it only then).
    pub durable_frag_set: Option<Vec<FileInfo>>,
}

/// Keep the leading items of a newest-first list that satisfy `keep`;
/// the rest go to `obsolete`.
fn split(list: &mut Vec<FileInfo>, obsolete: &mut Vec<FileInfo>, keep: impl Fn(&FileInfo) -> bool) {
    let at = list.iter().position(|f| !keep(f)).unwrap_or(list.len());
    obsolete.extend(list.drain(at..));
}

impl OnDiskFiles {
    /// Work out the state of a hash directory from its file names.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>, layout: Layout) -> OnDiskFiles {
        OnDiskFiles::choosing(names, layout, &Choice::default())
    }

    /// The same, an EC read choosing its fragment.
    pub fn choosing<'a>(names: impl IntoIterator<Item = &'a str>, layout: Layout, choice: &Choice) -> OnDiskFiles {
        let mut r = OnDiskFiles::default();
        let mut names: Vec<&str> = names.into_iter().collect();
        // Swift lists, then sorts the names in reverse before it parses.
        names.sort_unstable_by(|a, b| b.cmp(a));
        let mut exts: BTreeMap<String, Vec<FileInfo>> = BTreeMap::new();
        for n in names {
            match parse_name(n, layout) {
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
        if layout.is_ec() {
            process_ec(&mut exts, &mut r, choice);
        } else if let Some(data_ts) = exts.get(".data").and_then(|d| d.first()).map(|d| d.timestamp) {
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
        // (Replicated: the rules for .data are the branch above.)
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

/// Swift's `ECDiskFileManager._process_ondisk_files`: frag sets, the
/// durable one, the chosen fragment, and what is obsolete or reclaimable.
fn process_ec(exts: &mut BTreeMap<String, Vec<FileInfo>>, r: &mut OnDiskFiles, choice: &Choice) {
    let mut durable_info: Option<FileInfo> = exts.get(".durable").and_then(|d| d.first()).cloned();
    let all: Vec<FileInfo> = exts.get(".data").cloned().unwrap_or_default();
    let mut frag_sets: Vec<Vec<FileInfo>> = Vec::new();
    let mut durable_set: Option<usize> = None;
    let mut i = 0;
    while i < all.len() {
        let ts = all[i].timestamp;
        let end = all[i..].iter().position(|f| f.timestamp < ts).map_or(all.len(), |n| i + n);
        let mut set: Vec<FileInfo> = all[i..end].to_vec();
        i = end;
        set.sort_by_key(|f| f.frag_index);
        if let Some(d) = set.iter().find(|f| f.durable) {
            if durable_info.as_ref().is_none_or(|di| di.timestamp < ts) {
                durable_info = Some(d.clone());
            }
        }
        let is_durable = durable_info.as_ref().is_some_and(|d| d.timestamp == ts);
        if is_durable {
            // Durability may come from a legacy .durable.
            for f in &mut set {
                f.durable = true;
            }
        }
        frag_sets.push(set);
        if is_durable {
            durable_set = Some(frag_sets.len() - 1);
            break; // older frags are obsolete
        }
    }
    // Which frag set: by preference, or the durable one.
    let mut frag_index = choice.frag_index;
    let chosen_set = match &choice.frag_prefs {
        Some(prefs) => {
            let mut candidates: Vec<usize> = (0..frag_sets.len()).collect();
            let mut chosen = None;
            for pref in prefs {
                let Some(pos) = candidates.iter().position(|&k| frag_sets[k][0].timestamp == pref.timestamp) else {
                    continue;
                };
                let k = candidates[pos];
                // Swift takes the last of `list(set(available) - set(exclude))`:
                // for small indexes CPython's set order is ascending, so
                // the highest.
                let acceptable =
                    frag_sets[k].iter().filter_map(|f| f.frag_index).filter(|fi| !pref.exclude.contains(fi)).max();
                match acceptable {
                    Some(fi) => {
                        chosen = Some(k);
                        frag_index = Some(fi);
                        break;
                    }
                    None => {
                        candidates.remove(pos);
                    }
                }
            }
            // None acceptable at a preferred time: the newest left.
            chosen.or_else(|| candidates.iter().copied().max_by_key(|&k| frag_sets[k][0].timestamp))
        }
        None => durable_set,
    };
    let chosen_frag = chosen_set.and_then(|k| match frag_index {
        Some(fi) => frag_sets[k].iter().find(|f| f.frag_index == Some(fi)).cloned(),
        None => frag_sets[k].last().cloned(),
    });
    if let Some(frag) = &chosen_frag {
        r.data_info = Some(frag.clone());
        r.durable_frag_set = durable_set.map(|k| frag_sets[k].clone());
        if chosen_set != durable_set {
            // Hide (not obsolete) the .meta older than the chosen data.
            if let Some(metas) = exts.get_mut(".meta") {
                metas.retain(|m| m.timestamp > frag.timestamp);
            }
        }
    }
    if let Some(d) = &durable_info {
        for list in exts.values_mut() {
            let (keep, older): (Vec<FileInfo>, Vec<FileInfo>) =
                list.drain(..).partition(|f| f.timestamp >= d.timestamp);
            *list = keep;
            r.obsolete.extend(older);
        }
    }
    if durable_set.is_none() {
        if let Some(durables) = exts.remove(".durable") {
            r.obsolete.extend(durables);
        }
    }
    for (k, set) in frag_sets.iter().enumerate() {
        if Some(k) != durable_set && Some(k) != chosen_set {
            r.possible_reclaim.extend(set.iter().cloned());
        }
    }
    if durable_set.is_none() {
        if let Some(metas) = exts.get(".meta") {
            r.possible_reclaim.extend(metas.iter().cloned());
        }
    }
    r.frag_sets = frag_sets;
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

/// How long a non-durable EC fragment is kept even past `reclaim_age`
/// (Swift's `commit_window`): its commit may still be coming.
pub const COMMIT_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// Swift's `cleanup_ondisk_files`: remove what the state makes obsolete, a
/// tombstone older than `reclaim_age` seconds at `now`, stray `.meta` files
/// (and EC frag sets that will never be durable) as old, and the directory
/// itself once nothing is left. A directory that does not exist is empty.
pub fn cleanup_ondisk_files(dir: &Path, layout: Layout, reclaim_age: f64, now: Timestamp) -> io::Result<Cleaned> {
    let mut files: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Cleaned::default()),
        Err(e) => return Err(e),
    };
    let mut state = OnDiskFiles::from_names(files.iter().map(String::as_str), layout);
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
    let settled = |f: &FileInfo| {
        f.durable
            || std::fs::metadata(dir.join(&f.name))
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > COMMIT_WINDOW))
    };
    let reclaim: Vec<FileInfo> =
        state.possible_reclaim.iter().filter(|f| reclaimable(f.timestamp) && settled(f)).cloned().collect();
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
    /// EC: the chosen fragment's index.
    pub frag_index: Option<u32>,
    /// EC: the durable timestamp, if any (replicated: the data's).
    pub durable_timestamp: Option<Timestamp>,
    /// EC: every frag set's timestamp and fragment indexes, newest first.
    pub fragments: Vec<(Timestamp, Vec<u32>)>,
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
pub fn gather(dir: &Path, layout: Layout, choice: &Choice) -> io::Result<Files> {
    let names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Files::default()),
        Err(e) => return Err(e),
    };
    let s = OnDiskFiles::choosing(names.iter().map(String::as_str), layout, choice);
    let info = |f: &FileInfo| Info { ts: f.timestamp, ctype: f.ctype_timestamp, path: dir.join(&f.name) };
    let durable_timestamp = match layout {
        Layout::Replicated => s.data_info.as_ref().map(|d| d.timestamp),
        Layout::Ec { .. } => s.durable_frag_set.as_ref().and_then(|set| set.first()).map(|f| f.timestamp),
    };
    Ok(Files {
        data: s.data_info.as_ref().map(info),
        tombstone: s.ts_info.as_ref().map(info),
        meta: s.meta_info.as_ref().map(info),
        ctype_meta: s.ctype_info.as_ref().map(info),
        obsolete: s.obsolete.iter().map(|f| dir.join(&f.name)).collect(),
        frag_index: s.data_info.as_ref().and_then(|d| d.frag_index),
        durable_timestamp,
        fragments: s
            .frag_sets
            .iter()
            .filter_map(|set| Some((set.first()?.timestamp, set.iter().filter_map(|f| f.frag_index).collect())))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).expect("ts")
    }

    fn state(names: &[&str]) -> OnDiskFiles {
        OnDiskFiles::from_names(names.iter().copied(), Layout::Replicated)
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
        let c = cleanup_ondisk_files(&d, Layout::Replicated, 604800.0, t("3")).expect("clean");
        assert_eq!(c.files, ["0000000002.00000.ts"], "the data is obsolete, the young tombstone stays");
        let c = cleanup_ondisk_files(&d, Layout::Replicated, 604800.0, t("700000")).expect("clean");
        assert!(c.files.is_empty() && c.state.ts_info.is_none());
        assert!(!d.exists(), "an emptied hash directory goes");
    }
}
