//! Suffix hashes (SWIFT-REPLICATION.md §2.3–2.5): what a partition holds,
//! one MD5 per suffix directory, computed exactly as Swift's
//! `DiskFileManager` computes them — so that Swift's replicators and
//! aerie's agree on which suffixes differ — and cached in Swift's formats:
//! `<part>/hashes.pkl` (a pickled dict `{suffix: md5hex|None, 'valid': True,
//! 'updated': time}`) and `<part>/hashes.invalid` (one suffix per line,
//! appended by every write, folded into `hashes.pkl` by the next reader).
//! Both are read and written under `<part>/.lock`, the lock Swift's daemons
//! take on the same files.
//!
//! A suffix's hash: for each hash directory, in sorted order, cleaned up
//! first (obsolete files and tombstones older than `reclaim_age` removed;
//! `ondisk.rs`), the MD5 is fed `<meta ts>.meta`, `<tombstone ts>.ts`,
//! `<data ts>.data` and `<content-type ts>_ctype` for the files that define
//! the object's state; a suffix directory left empty is removed and drops
//! out of the dict.
//!
//! Everything here blocks on the disk: pool threads and background roles.

use crate::diskfile::policy_dir;
use crate::ondisk::{cleanup_ondisk_files, Layout};
use aerie_storage::fs::{create_dirs, lock_path, TempFile};
use aerie_storage::pickle::{dumps, loads, Value};
use aerie_storage::Timestamp;
use md5::{Digest, Md5};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The cached hashes.
pub const HASH_FILE: &str = "hashes.pkl";
/// Suffixes to rehash.
pub const HASH_INVALIDATIONS_FILE: &str = "hashes.invalid";
/// How long the partition's `.lock` is waited for (Swift's
/// `DEFAULT_LOCK_TIMEOUT`).
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// A suffix's hash: one MD5 (replicated), or one per fragment index plus
/// one (`None`) for durability and metadata (EC, §2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuffixHash {
    /// Replicated.
    Md5(String),
    /// Erasure coded.
    Frags(BTreeMap<Option<u32>, String>),
}

impl SuffixHash {
    /// As pickled in `hashes.pkl` and REPLICATE answers.
    pub fn to_value(&self) -> Value {
        match self {
            SuffixHash::Md5(h) => Value::Str(h.clone()),
            SuffixHash::Frags(m) => Value::Dict(
                m.iter()
                    .map(|(k, v)| (k.map_or(Value::None, |i| Value::Int(i64::from(i))), Value::Str(v.clone())))
                    .collect(),
            ),
        }
    }

    /// From a pickled value; `None` for anything else.
    pub fn from_value(v: &Value) -> Option<SuffixHash> {
        if let Some(h) = v.as_bytes().and_then(|b| std::str::from_utf8(b).ok()).filter(|h| !h.is_empty()) {
            return Some(SuffixHash::Md5(h.to_string()));
        }
        let Value::Dict(items) = v else { return None };
        let mut m = BTreeMap::new();
        for (k, v) in items {
            let key = match k {
                Value::None => None,
                Value::Int(i) => Some(u32::try_from(*i).ok()?),
                _ => return None,
            };
            m.insert(key, std::str::from_utf8(v.as_bytes()?).ok()?.to_string());
        }
        Some(SuffixHash::Frags(m))
    }
}

/// Suffix → hash (`None`: to be computed).
pub type SuffixHashes = BTreeMap<String, Option<SuffixHash>>;

/// Whether a name is a suffix directory's: three lower-case hex digits.
pub fn valid_suffix(s: &str) -> bool {
    s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The suffix of an object hash: its last three characters.
pub fn suffix_of(hash: &str) -> &str {
    hash.get(hash.len().saturating_sub(3)..).unwrap_or("000")
}

/// A partition's directory: `<dev>/objects[-N]/<part>`.
pub fn partition_dir(device_dir: &Path, policy: u32, partition: &str) -> PathBuf {
    device_dir.join(policy_dir("objects", policy)).join(partition)
}

/// What `hashes.pkl` holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Whether the hashes can be trusted (false: missing, corrupt).
    pub valid: bool,
    /// When they were written (`-1`: never said).
    pub updated: f64,
    /// The suffixes.
    pub hashes: SuffixHashes,
}

impl Stored {
    fn invalid() -> Stored {
        Stored { valid: false, updated: -1.0, hashes: SuffixHashes::new() }
    }
}

/// Read `hashes.pkl` as Swift's `read_hashes` does: unreadable, not a
/// pickle, or with a key that is not a suffix → not valid.
pub fn read_hashes(part_dir: &Path) -> Stored {
    let Ok(bytes) = std::fs::read(part_dir.join(HASH_FILE)) else { return Stored::invalid() };
    let Ok(Value::Dict(items)) = loads(&bytes) else { return Stored::invalid() };
    let mut s = Stored { valid: true, updated: -1.0, hashes: SuffixHashes::new() };
    for (k, v) in items {
        let Some(key) = k.as_bytes().and_then(|b| std::str::from_utf8(b).ok()).map(str::to_string) else {
            return Stored::invalid();
        };
        match key.as_str() {
            "valid" => s.valid = matches!(v, Value::Bool(true)) || matches!(v, Value::Int(n) if n != 0),
            "updated" => {
                s.updated = match v {
                    Value::Float(f) => f,
                    Value::Int(n) => n as f64,
                    _ => -1.0,
                }
            }
            k if valid_suffix(k) => {
                s.hashes.insert(key, SuffixHash::from_value(&v));
            }
            _ => return Stored::invalid(),
        }
    }
    s
}

/// Write `hashes.pkl` (temporary file in the partition, fsync, rename),
/// stamped with the time now.
pub fn write_hashes(part_dir: &Path, valid: bool, hashes: &SuffixHashes) -> io::Result<()> {
    let mut items: Vec<(Value, Value)> = hashes
        .iter()
        .map(|(k, v)| (Value::Str(k.clone()), v.as_ref().map_or(Value::None, SuffixHash::to_value)))
        .collect();
    items.push((Value::Str("valid".into()), Value::Bool(valid)));
    let updated = Timestamp::now().units() as f64 / 100_000.0;
    items.push((Value::Str("updated".into()), Value::Float(updated)));
    let mut tmp = TempFile::create(part_dir)?;
    tmp.file().write_all(&dumps(&Value::Dict(items)))?;
    tmp.commit(&part_dir.join(HASH_FILE), &[])
}

/// Append a suffix to `hashes.invalid` under the partition's lock (Swift's
/// `invalidate_hash`; the partition directory is made if missing).
pub fn invalidate(part_dir: &Path, suffix: &str) -> io::Result<()> {
    let _lock = lock_path(part_dir, ".lock", LOCK_TIMEOUT)?;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(part_dir.join(HASH_INVALIDATIONS_FILE))?;
    f.write_all(format!("{suffix}\n").as_bytes())
}

/// Fold `hashes.invalid` into `hashes.pkl` and empty it (Swift's
/// `consolidate_hashes`), under the partition's lock.
pub fn consolidate(part_dir: &Path) -> io::Result<Stored> {
    let _lock = lock_path(part_dir, ".lock", LOCK_TIMEOUT)?;
    let mut stored = read_hashes(part_dir);
    let inv = part_dir.join(HASH_INVALIDATIONS_FILE);
    let text = match std::fs::read_to_string(&inv) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let mut updated = false;
    for line in text.lines() {
        let s = line.trim();
        if valid_suffix(s) {
            stored.hashes.insert(s.to_string(), None);
            updated = true;
        }
    }
    if updated {
        write_hashes(part_dir, stored.valid, &stored.hashes)?;
        stored = read_hashes(part_dir);
    }
    if !text.is_empty() {
        std::fs::OpenOptions::new().write(true).truncate(true).open(&inv)?;
    }
    Ok(stored)
}

/// Move a hash directory (or a file where one should be) to
/// `<dev>/quarantined/objects[-N]/<hash>` (a unique name if one is there
/// already), and mark its suffix for rehashing (Swift's
/// `quarantine_dir_renamer`). The one way objects go to quarantine.
pub fn quarantine_dir(path: &Path) -> io::Result<PathBuf> {
    let (Some(suffix_dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::other("not a hash path"));
    };
    let (Some(part_dir), Some(objects_dir)) = (suffix_dir.parent(), suffix_dir.parent().and_then(Path::parent)) else {
        return Err(io::Error::other("not a hash path"));
    };
    let (Some(device_dir), Some(datadir)) = (objects_dir.parent(), objects_dir.file_name()) else {
        return Err(io::Error::other("not a hash path"));
    };
    if let Some(suffix) = suffix_dir.file_name().and_then(|s| s.to_str()) {
        if let Err(e) = invalidate(part_dir, suffix) {
            log::warn!("could not invalidate suffix {suffix} of {}: {e}", part_dir.display());
        }
    }
    let target_dir = device_dir.join("quarantined").join(datadir);
    create_dirs(&target_dir)?;
    let mut target = target_dir.join(name);
    if target.exists() {
        target = target_dir.join(format!("{}-{}", name.to_string_lossy(), uuid_hex()));
    }
    std::fs::rename(path, &target)?;
    Ok(target)
}

fn uuid_hex() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{:032x}", t ^ (u128::from(std::process::id()) << 64))
}

/// Hash one suffix directory (cleaning it up as it goes). `Ok(None)`: the
/// suffix is gone (no directory, or nothing left in it: it is removed).
pub fn hash_suffix(
    suffix_dir: &Path,
    layout: Layout,
    reclaim_age: f64,
    now: Timestamp,
) -> io::Result<Option<SuffixHash>> {
    let mut names: Vec<String> = match std::fs::read_dir(suffix_dir) {
        Ok(entries) => entries.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect(),
        Err(e) if matches!(e.raw_os_error(), Some(c) if c == nix::libc::ENOTDIR || c == nix::libc::ENOENT) => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    names.sort_unstable();
    // Replicated: everything into `None`'s MD5; EC: data into its index's.
    let mut md5s: BTreeMap<Option<u32>, Md5> = BTreeMap::new();
    let mut kept = false;
    for hsh in &names {
        let path = suffix_dir.join(hsh);
        let cleaned = match cleanup_ondisk_files(&path, layout, reclaim_age, now) {
            Ok(c) => c,
            Err(e) if matches!(e.raw_os_error(), Some(c) if c == nix::libc::ENOTDIR || c == nix::libc::ENODATA || c == nix::libc::EUCLEAN) =>
            {
                match quarantine_dir(&path) {
                    Ok(to) => log::error!("quarantined {} to {}: {e}", path.display(), to.display()),
                    Err(q) => log::error!("could not quarantine {} ({e}): {q}", path.display()),
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        if cleaned.files.is_empty() {
            continue;
        }
        kept = true;
        let s = &cleaned.state;
        let mut feed = |key: Option<u32>, parts: &[&[u8]]| {
            let m = md5s.entry(key).or_default();
            for p in parts {
                m.update(p);
            }
        };
        for info in [&s.meta_info, &s.ts_info].into_iter().flatten() {
            feed(None, &[info.timestamp.internal().as_bytes(), info.ext.as_bytes()]);
        }
        match layout {
            Layout::Replicated => {
                if let Some(data) = &s.data_info {
                    feed(None, &[data.timestamp.internal().as_bytes(), data.ext.as_bytes()]);
                }
            }
            Layout::Ec { .. } => {
                for f in s.frag_sets.iter().flatten() {
                    feed(f.frag_index, &[f.timestamp.internal().as_bytes()]);
                }
                if let Some(d) = s.durable_frag_set.as_ref().and_then(|set| set.first()) {
                    feed(None, &[d.timestamp.internal().as_bytes(), b".durable"]);
                }
            }
        }
        if let Some(ctype) = s.ctype_info.as_ref().and_then(|c| c.ctype_timestamp) {
            feed(None, &[ctype.internal().as_bytes(), b"_ctype"]);
        }
    }
    let result = |md5s: BTreeMap<Option<u32>, Md5>| -> SuffixHash {
        let hex = |m: Md5| aerie_storage::hash::hex(&m.finalize());
        match layout {
            Layout::Replicated => SuffixHash::Md5(hex(md5s.into_values().next().unwrap_or_default())),
            Layout::Ec { .. } => SuffixHash::Frags(md5s.into_iter().map(|(k, m)| (k, hex(m))).collect()),
        }
    };
    if kept {
        // A hash directory with files in it: the suffix stays.
        return Ok(Some(result(md5s)));
    }
    match std::fs::remove_dir(suffix_dir) {
        // Emptied: as if it had never been there.
        Ok(()) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(_) => Ok(Some(result(md5s))),
    }
}

/// A partition's suffix hashes (Swift's `_get_hashes`): the cached ones
/// with `hashes.invalid` folded in, every suffix whose hash is unknown (or
/// in `recalculate`) computed, every suffix directory found when
/// `do_listdir` (or when the cache was not valid), and the result written
/// back unless another writer changed `hashes.pkl` meanwhile (then again).
/// Returns how many suffixes were hashed, and the hashes.
pub fn get_hashes(
    part_dir: &Path,
    layout: Layout,
    recalculate: &[String],
    mut do_listdir: bool,
    reclaim_age: f64,
) -> io::Result<(usize, SuffixHashes)> {
    let mut hashed = 0;
    for _ in 0..16 {
        let orig = match consolidate(part_dir) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("unable to read {}: {e}", part_dir.join(HASH_FILE).display());
                Stored::invalid()
            }
        };
        // The usual steady case: valid, nothing to list, hash or redo —
        // the stored hashes are the answer, without a copy.
        if orig.valid && !do_listdir && recalculate.is_empty() && orig.hashes.values().all(Option::is_some) {
            return Ok((hashed, orig.hashes));
        }
        let (orig, mut hashes) = if orig.valid {
            let h = orig.hashes.clone();
            (orig, h)
        } else {
            do_listdir = true;
            (read_hashes(part_dir), SuffixHashes::new())
        };
        let mut modified = false;
        if do_listdir {
            for e in std::fs::read_dir(part_dir)?.flatten() {
                if let Some(name) = e.file_name().to_str().filter(|n| n.len() == 3) {
                    hashes.entry(name.to_string()).or_insert(None);
                }
            }
            modified = true;
        }
        for s in recalculate {
            hashes.insert(s.clone(), None);
        }
        let now = Timestamp::now();
        let todo: Vec<String> = hashes.iter().filter(|(_, h)| h.is_none()).map(|(s, _)| s.clone()).collect();
        for suffix in todo {
            modified = true;
            match hash_suffix(&part_dir.join(&suffix), layout, reclaim_age, now) {
                Ok(Some(h)) => {
                    hashes.insert(suffix, Some(h));
                    hashed += 1;
                }
                Ok(None) => {
                    hashes.remove(&suffix);
                }
                Err(e) => log::error!("error hashing suffix {}: {e}", part_dir.join(&suffix).display()),
            }
        }
        if !modified {
            return Ok((hashed, hashes));
        }
        let _lock = lock_path(part_dir, ".lock", LOCK_TIMEOUT)?;
        if read_hashes(part_dir) == orig {
            write_hashes(part_dir, true, &hashes)?;
            return Ok((hashed, hashes));
        }
        // Another writer changed hashes.pkl while this one hashed: again.
    }
    Err(io::Error::other(format!("{}: hashes.pkl kept changing", part_dir.display())))
}

/// The REPLICATE answer's pickle: `{suffix: md5hex|{fi: md5hex}|None}`.
pub fn pickle_hashes(hashes: &SuffixHashes) -> Vec<u8> {
    let items = hashes
        .iter()
        .map(|(k, v)| (Value::Str(k.clone()), v.as_ref().map_or(Value::None, SuffixHash::to_value)))
        .collect();
    dumps(&Value::Dict(items))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("aerie-hashes-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("dir");
        d
    }

    fn touch(dir: &Path, names: &[&str]) {
        std::fs::create_dir_all(dir).expect("dir");
        for n in names {
            std::fs::write(dir.join(n), b"").expect("file");
        }
    }

    /// SWIFT-REPLICATION.md §2.5's worked values, verified against Swift.
    #[test]
    fn suffix_hashes_match_swifts_worked_values() {
        let d = scratch("worked");
        let now = Timestamp::parse("1700001000").expect("ts");
        let cases: &[(&[&[&str]], &str)] = &[
            (&[&["1700000000.00000.data"]], "841dfe823721b5f14b4a246ea0776457"),
            (&[&["1700000000.00000.data", "1700000100.00000.meta"]], "39d03167426c60f64a41909a41fbee62"),
            (&[&["1700000200.00000.ts"]], "80a6a2c2a978485c2d98360d6bac456b"),
            (
                &[&["1700000000.00000.data", "1700000100.00000.meta"], &["1700000200.00000.ts"]],
                "e07db1359985e6fbd0137e07a94c1ef7",
            ),
            (&[&["1700000000.00000.data", "1700000300.00000+0.meta"]], "7c3fb7208cf266068236c397c6e642f0"),
            (&[&["1700000000.00000_0000000000000001.ts"]], "388107b96ea3569be579b58cff6d430d"),
            (&[&["1700000100.00000.meta"]], "d41d8cd98f00b204e9800998ecf8427e"),
        ];
        for (i, (dirs, want)) in cases.iter().enumerate() {
            let sfx = d.join(format!("c{i:02}"));
            for (j, files) in dirs.iter().enumerate() {
                touch(&sfx.join(format!("{j}aaaaaaaaaaaaaaaaaaaaaaaaaaaaaac{i:02}")), files);
            }
            let got = hash_suffix(&sfx, Layout::Replicated, 604800.0, now).expect("hash");
            assert_eq!(got, Some(SuffixHash::Md5(want.to_string())), "case {i}: {dirs:?}");
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn hashes_are_cached_invalidated_and_empty_suffixes_dropped() {
        let d = scratch("cache");
        let part = d.join("objects/7");
        // Recent: nothing here is old enough to reclaim at a week.
        let ts = Timestamp::from_units(Timestamp::now().units() - 100 * 100_000, 0).internal();
        touch(&part.join("abc/00000000000000000000000000000abc"), &[&format!("{ts}.data")]);
        touch(&part.join("def/00000000000000000000000000000def"), &[&format!("{ts}.ts")]);
        let (n, h) = get_hashes(&part, Layout::Replicated, &[], false, 604800.0).expect("hashes");
        assert_eq!((n, h.len()), (2, 2), "no cache: every suffix found and hashed");
        assert!(read_hashes(&part).valid);
        let (n, h2) = get_hashes(&part, Layout::Replicated, &[], false, 604800.0).expect("hashes");
        assert_eq!((n, &h2), (0, &h), "the cache is trusted");
        // A tombstone past reclaim_age goes, and its suffix with it.
        invalidate(&part, "def").expect("invalidate");
        let (n, h3) = get_hashes(&part, Layout::Replicated, &[], false, 10.0).expect("hashes");
        assert_eq!(n, 0);
        assert_eq!(h3.keys().collect::<Vec<_>>(), ["abc"]);
        assert!(!part.join("def").exists());
        assert_eq!(std::fs::metadata(part.join(HASH_INVALIDATIONS_FILE)).map(|m| m.len()).ok(), Some(0));
        let _ = std::fs::remove_dir_all(&d);
    }
}
