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
use aerie_storage::pickle::{loads, put_str, put_utf8, put_value, Value};
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
    /// Append as pickled in `hashes.pkl` and REPLICATE answers.
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            SuffixHash::Md5(h) => put_str(out, h),
            SuffixHash::Frags(m) => {
                let items = m
                    .iter()
                    .map(|(k, v)| (k.map_or(Value::None, |i| Value::Int(i64::from(i))), Value::Str(v.clone())))
                    .collect();
                put_value(out, &Value::Dict(items));
            }
        }
    }

    /// From a pickled value (taken); `None` for anything else.
    pub fn from_value(v: Value) -> Option<SuffixHash> {
        let v = match v {
            Value::Dict(items) => items,
            other => return other.into_string().filter(|h| !h.is_empty()).map(SuffixHash::Md5),
        };
        let mut m = BTreeMap::new();
        for (k, v) in v {
            let key = match k {
                Value::None => None,
                Value::Int(i) => Some(u32::try_from(i).ok()?),
                _ => return None,
            };
            m.insert(key, v.into_string()?);
        }
        Some(SuffixHash::Frags(m))
    }
}

/// A whole pickled dict (protocol 2): `}`, then `(` the items `u` when
/// there are any (`items` writes them), then STOP.
fn put_dict(out: &mut Vec<u8>, any: bool, items: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(&[0x80, 2, b'}']);
    if any {
        out.push(b'(');
        items(out);
        out.push(b'u');
    }
    out.push(b'.');
}

/// Append `{suffix: hash|None, …}` then the extra items, as one pickled
/// dict, straight from the map.
fn put_hashes(out: &mut Vec<u8>, hashes: &SuffixHashes, extra: &[(&str, Value)]) {
    put_dict(out, !hashes.is_empty() || !extra.is_empty(), |out| {
        for (k, v) in hashes {
            put_str(out, k);
            match v {
                Some(h) => h.put(out),
                None => out.push(b'N'),
            }
        }
        for (k, v) in extra {
            put_str(out, k);
            put_value(out, v);
        }
    });
}

/// The suffix hashes of a pickled dict's items (taken). An item whose
/// key is not a suffix goes to `other`, which says whether to go on.
pub fn hashes_from_items(
    items: Vec<(Value, Value)>,
    mut other: impl FnMut(Value, Value) -> bool,
) -> Option<SuffixHashes> {
    let mut out = SuffixHashes::new();
    for (k, v) in items {
        // Text, or bytes (a py2 Swift's `str`).
        let key = match k {
            Value::Str(s) => Ok(s),
            Value::Bytes(b) => String::from_utf8(b).map_err(|e| Value::Bytes(e.into_bytes())),
            k => Err(k),
        };
        let go_on = match key {
            Ok(key) if valid_suffix(&key) => {
                out.insert(key, SuffixHash::from_value(v));
                true
            }
            Ok(key) => other(Value::Str(key), v),
            Err(k) => other(k, v),
        };
        if !go_on {
            return None;
        }
    }
    Some(out)
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
    let (mut valid, mut updated) = (true, -1.0);
    let hashes = hashes_from_items(items, |k, v| match k.as_bytes() {
        Some(b"valid") => {
            valid = matches!(v, Value::Bool(true)) || matches!(v, Value::Int(n) if n != 0);
            true
        }
        Some(b"updated") => {
            updated = match v {
                Value::Float(f) => f,
                Value::Int(n) => n as f64,
                _ => -1.0,
            };
            true
        }
        _ => false,
    });
    match hashes {
        Some(hashes) => Stored { valid, updated, hashes },
        None => Stored::invalid(),
    }
}

/// Write `hashes.pkl` (temporary file in the partition, fsync, rename),
/// stamped with the time now.
pub fn write_hashes(part_dir: &Path, valid: bool, hashes: &SuffixHashes) -> io::Result<()> {
    let updated = Timestamp::now().units() as f64 / 100_000.0;
    let mut out = Vec::with_capacity(64 + hashes.len() * 48);
    put_hashes(&mut out, hashes, &[("valid", Value::Bool(valid)), ("updated", Value::Float(updated))]);
    let mut tmp = TempFile::create(part_dir)?;
    tmp.file().write_all(&out)?;
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

/// `hashes.pkl`'s bytes when nothing waits in `hashes.invalid` (both
/// read under the partition's lock, as `consolidate` reads them — it would
/// write nothing then); `None` when there are invalidations or no file.
pub fn steady_bytes(part_dir: &Path) -> io::Result<Option<Vec<u8>>> {
    let _lock = lock_path(part_dir, ".lock", LOCK_TIMEOUT)?;
    match std::fs::metadata(part_dir.join(HASH_INVALIDATIONS_FILE)) {
        Ok(m) if m.len() > 0 => return Ok(None),
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    match std::fs::read(part_dir.join(HASH_FILE)) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A pickled suffix-hash dict (a `hashes.pkl` or a REPLICATE answer) read
/// in place: each suffix, as its number, with its hash's bytes, sorted by
/// suffix. What a steady pass compares, thousands of suffixes a partition,
/// without building a map or a string. Only the flat shape that Swift's
/// and aerie's writers give a replicated partition's hashes is a view
/// (text keys; text or `None` values; `valid`, `updated`): anything else
/// is left to the full reader.
#[derive(Debug)]
pub struct View<'a> {
    entries: Vec<(u16, Option<&'a [u8]>)>,
    valid: bool,
}

/// One value of the flat shape.
enum Atom<'a> {
    Str(&'a [u8]),
    None,
    Bool(bool),
    Int(i64),
    Float,
}

fn suffix_number(s: &[u8]) -> Option<u16> {
    if s.len() != 3 {
        return None;
    }
    s.iter().try_fold(0u16, |n, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        Some(n * 16 + u16::from(d))
    })
}

impl<'a> View<'a> {
    /// Read the bytes as a view; `None` when they are not of the flat shape.
    pub fn parse(data: &'a [u8]) -> Option<View<'a>> {
        let mut v = View { entries: Vec::with_capacity(data.len() / 40), valid: true };
        let mut pos = 0;
        let take = |pos: &mut usize, n: usize| -> Option<&'a [u8]> {
            let b = data.get(*pos..pos.checked_add(n)?)?;
            *pos += n;
            Some(b)
        };
        // The dict seen; inside a MARK; a key waiting for its value; pairs
        // since the last SETITEM(S).
        let (mut dict, mut mark, mut pending) = (false, false, 0usize);
        let mut key: Option<&'a [u8]> = None;
        loop {
            let op = *take(&mut pos, 1)?.first()?;
            let atom = match op {
                0x80 => {
                    take(&mut pos, 1)?;
                    continue;
                }
                0x95 => {
                    take(&mut pos, 8)?;
                    continue;
                }
                b'}' if !dict => {
                    dict = true;
                    continue;
                }
                b'(' if dict && !mark && key.is_none() && pending == 0 => {
                    mark = true;
                    continue;
                }
                b'u' if mark && key.is_none() => {
                    (mark, pending) = (false, 0);
                    continue;
                }
                b's' if !mark && key.is_none() && pending == 1 => {
                    pending = 0;
                    continue;
                }
                b'q' if dict => {
                    take(&mut pos, 1)?;
                    continue;
                }
                b'r' if dict => {
                    take(&mut pos, 4)?;
                    continue;
                }
                0x94 if dict => continue,
                b'.' if dict && !mark && key.is_none() && pending == 0 && pos == data.len() => break,
                b'X' => {
                    let n = take(&mut pos, 4)?;
                    let n = u32::from_le_bytes([n[0], n[1], n[2], n[3]]) as usize;
                    Atom::Str(take(&mut pos, n)?)
                }
                0x8c => {
                    let n = usize::from(*take(&mut pos, 1)?.first()?);
                    Atom::Str(take(&mut pos, n)?)
                }
                b'N' => Atom::None,
                0x88 => Atom::Bool(true),
                0x89 => Atom::Bool(false),
                b'G' => {
                    take(&mut pos, 8)?;
                    Atom::Float
                }
                b'K' => Atom::Int(i64::from(*take(&mut pos, 1)?.first()?)),
                b'M' => {
                    let b = take(&mut pos, 2)?;
                    Atom::Int(i64::from(u16::from_le_bytes([b[0], b[1]])))
                }
                b'J' => {
                    let b = take(&mut pos, 4)?;
                    Atom::Int(i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                }
                _ => return None,
            };
            if !dict {
                return None;
            }
            let Some(k) = key.take() else {
                // A key: text only.
                let Atom::Str(k) = atom else { return None };
                key = Some(k);
                continue;
            };
            pending += 1;
            match (k, atom) {
                (b"valid", Atom::Bool(b)) => v.valid = b,
                (b"valid", Atom::Int(n)) => v.valid = n != 0,
                (b"valid", Atom::None) => v.valid = false,
                (b"updated", _) => {}
                (k, atom) => {
                    let n = suffix_number(k)?;
                    let h = match atom {
                        // Text, as the full reader insists.
                        Atom::Str(h) => {
                            if !h.is_ascii() {
                                std::str::from_utf8(h).ok()?;
                            }
                            Some(h).filter(|h| !h.is_empty())
                        }
                        Atom::None => None,
                        _ => return None,
                    };
                    v.entries.push((n, h));
                }
            }
        }
        // A repeated key: the last value wins, as in Python.
        v.entries.reverse();
        v.entries.sort_by_key(|e| e.0);
        v.entries.dedup_by_key(|e| e.0);
        Some(v)
    }

    /// Valid, with every suffix's hash known: the answer as it stands.
    pub fn steady(&self) -> bool {
        self.valid && self.entries.iter().all(|e| e.1.is_some())
    }

    /// Whether a suffix is in it.
    pub fn contains(&self, suffix: &str) -> bool {
        suffix_number(suffix.as_bytes()).is_some_and(|n| self.entries.binary_search_by_key(&n, |e| e.0).is_ok())
    }

    /// Whether every suffix directory the partition lists now is in it:
    /// a listing (`do_listdir`) would add nothing to hash then.
    pub fn lists_all(&self, part_dir: &Path) -> bool {
        let Ok(entries) = std::fs::read_dir(part_dir) else { return false };
        entries.flatten().all(|e| e.file_name().to_str().is_none_or(|n| n.len() != 3 || self.contains(n)))
    }

    /// How many suffixes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether some suffix of these has a hash that `remote` lacks or has
    /// otherwise (Swift's rule: suffixes only the peer has are its own).
    pub fn differs_from(&self, remote: &View<'_>) -> bool {
        let mut r = remote.entries.iter().peekable();
        for (n, h) in &self.entries {
            while r.next_if(|e| e.0 < *n).is_some() {}
            match r.peek() {
                Some((rn, rh)) if rn == n && rh == h => {}
                _ => return true,
            }
        }
        false
    }

    /// The REPLICATE answer: the suffixes and their hashes, pickled.
    pub fn pickle(&self) -> Vec<u8> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = Vec::with_capacity(8 + self.entries.len() * 45);
        put_dict(&mut out, !self.entries.is_empty(), |out| {
            for (n, h) in &self.entries {
                let d = |shift: u16| HEX[usize::from((n >> shift) & 15)];
                put_utf8(out, &[d(8), d(4), d(0)]);
                // Text: `parse` took only UTF-8.
                match h {
                    Some(h) => put_utf8(out, h),
                    None => out.push(b'N'),
                }
            }
        });
        out
    }
}

/// The REPLICATE answer's pickle: `{suffix: md5hex|{fi: md5hex}|None}`.
pub fn pickle_hashes(hashes: &SuffixHashes) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + hashes.len() * 48);
    put_hashes(&mut out, hashes, &[]);
    out
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

    /// Suffix hashes made up: every `step`th suffix, some `None`.
    fn made_up(step: usize, seed: u64, nones: bool) -> SuffixHashes {
        let mut x = seed;
        (0..4096usize)
            .step_by(step)
            .map(|n| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let h = (x >> 60 != 0 || !nones).then(|| SuffixHash::Md5(format!("{:032x}", x >> 40)));
                (format!("{n:03x}"), h)
            })
            .collect()
    }

    #[test]
    fn a_view_reads_what_the_full_reader_reads() {
        let d = scratch("view");
        for (step, nones) in [(1, false), (3, false), (7, true), (4096, false)] {
            let h = made_up(step, step as u64, nones);
            write_hashes(&d, true, &h).expect("write");
            let bytes = std::fs::read(d.join(HASH_FILE)).expect("read");
            let v = View::parse(&bytes).expect("aerie's hashes.pkl is a view");
            assert_eq!(v.len(), h.len());
            assert_eq!(v.steady(), !nones, "steady only with every hash known");
            let answer = pickle_hashes(&h);
            assert_eq!(v.pickle(), answer, "the same answer as from the map");
            let back = View::parse(&answer).expect("an answer is a view");
            assert!(!v.differs_from(&back));
        }
        write_hashes(&d, false, &made_up(5, 1, false)).expect("write");
        let bytes = std::fs::read(d.join(HASH_FILE)).expect("read");
        assert!(!View::parse(&bytes).expect("view").steady(), "not valid: not steady");
        // An empty partition's.
        let v = View::parse(b"\x80\x02}.").expect("empty");
        assert!(v.is_empty() && v.steady());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_view_knows_whether_a_listing_would_add_a_suffix() {
        let d = scratch("lists");
        let h = made_up(1000, 7, false);
        for k in h.keys() {
            std::fs::create_dir_all(d.join(k)).expect("suffix dir");
        }
        write_hashes(&d, true, &h).expect("write");
        let bytes = std::fs::read(d.join(HASH_FILE)).expect("read");
        let v = View::parse(&bytes).expect("view");
        assert!(h.keys().all(|k| v.contains(k)) && !v.contains("fff") && !v.contains("zz"));
        // hashes.pkl, hashes.invalid, .lock and the suffixes: nothing new.
        std::fs::write(d.join(HASH_INVALIDATIONS_FILE), b"").expect("invalid");
        assert!(v.lists_all(&d));
        // A suffix hashes.pkl does not know (rsync put it there), or a
        // three-letter name that is no suffix (Swift's listing takes it).
        std::fs::create_dir_all(d.join("fff")).expect("dir");
        assert!(!v.lists_all(&d));
        std::fs::remove_dir(d.join("fff")).expect("rm");
        std::fs::create_dir_all(d.join("tmp")).expect("dir");
        assert!(!v.lists_all(&d));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_view_takes_pythons_shapes_and_leaves_the_rest_to_the_full_reader() {
        // pickle.dumps({'abc': 'x'*32, 'def': None, 'valid': True,
        // 'updated': 1.5}, 2): memo puts after every string.
        let mut py = b"\x80\x02}q\x00(X\x03\x00\x00\x00abcq\x01X \x00\x00\x00".to_vec();
        py.extend_from_slice(&[b'x'; 32]);
        py.extend_from_slice(b"q\x02X\x03\x00\x00\x00defq\x03NX\x05\x00\x00\x00validq\x04\x88X\x07\x00\x00\x00updatedq\x05G?\xf8\x00\x00\x00\x00\x00\x00u.");
        let v = View::parse(&py).expect("Python's hashes.pkl");
        assert_eq!(v.entries, vec![(0xabc, Some(&[b'x'; 32][..])), (0xdef, None)]);
        assert!(v.valid && !v.steady());
        // More than a thousand items: SETITEMS in batches; a lone SETITEM.
        let one = b"\x80\x02}q\x00X\x03\x00\x00\x00abcq\x01X\x01\x00\x00\x00hq\x02s.";
        assert_eq!(View::parse(one).expect("SETITEM").entries, vec![(0xabc, Some(&b"h"[..]))]);
        let batches = b"\x80\x02}(X\x03\x00\x00\x00001X\x01\x00\x00\x00au(X\x03\x00\x00\x00000X\x01\x00\x00\x00bu.";
        assert_eq!(View::parse(batches).expect("batches").entries, vec![(0, Some(&b"b"[..])), (1, Some(&b"a"[..]))]);
        // A repeated key: the last value, as Python.
        let rep = b"\x80\x02}(X\x03\x00\x00\x00abcX\x01\x00\x00\x00aX\x03\x00\x00\x00abcX\x01\x00\x00\x00bu.";
        assert_eq!(View::parse(rep).expect("repeat").entries, vec![(0xabc, Some(&b"b"[..]))]);
        let full = read_from(rep);
        assert_eq!(full.get("abc"), Some(&Some(SuffixHash::Md5("b".into()))));
        // Not the flat shape: EC's nested dicts, a memo GET, a key that is
        // no suffix, bytes, non-UTF-8 text, truncation, trailing bytes.
        for bad in [
            &b"\x80\x02}(X\x03\x00\x00\x00abc}(NX\x01\x00\x00\x00au."[..],
            b"\x80\x02}q\x00(X\x03\x00\x00\x00abcq\x01h\x01u.",
            b"\x80\x02}(X\x03\x00\x00\x00ABCX\x01\x00\x00\x00au.",
            b"\x80\x02}(X\x04\x00\x00\x00abcdX\x01\x00\x00\x00au.",
            b"\x80\x02}(C\x03abcX\x01\x00\x00\x00au.",
            b"\x80\x02}(X\x03\x00\x00\x00abcX\x01\x00\x00\x00\xffu.",
            b"\x80\x02}(X\x03\x00\x00\x00abcX\x01\x00\x00\x00a",
            b"\x80\x02}(X\x03\x00\x00\x00abcu.",
            b"\x80\x02}.x",
            b"\x80\x02q\x00}.",
            b"\x80\x02N.",
            b"",
        ] {
            assert!(View::parse(bad).is_none(), "{bad:?}");
        }
    }

    fn read_from(bytes: &[u8]) -> SuffixHashes {
        let Ok(Value::Dict(items)) = loads(bytes) else { panic!("not a dict") };
        hashes_from_items(items, |_, _| true).expect("hashes")
    }

    #[test]
    fn a_view_differs_exactly_where_the_maps_do() {
        let differs = |l: &SuffixHashes, r: &SuffixHashes| l.iter().any(|(k, v)| r.get(k) != Some(v));
        for seed in 0..200u64 {
            let local = made_up(1 + (seed % 5) as usize, seed, false);
            let mut remote = local.clone();
            match seed % 4 {
                0 => {}
                1 => {
                    // A suffix the peer lacks.
                    let k = local.keys().nth((seed as usize * 7) % local.len()).cloned().expect("a key");
                    remote.remove(&k);
                }
                2 => {
                    // A suffix only the peer has: no business of ours.
                    remote.insert("fff".into(), Some(SuffixHash::Md5("e".repeat(32))));
                    remote.remove("000");
                    remote.insert("000".into(), local["000"].clone());
                }
                _ => {
                    // Another hash, or none, for one suffix.
                    let k = local.keys().nth((seed as usize * 13) % local.len()).cloned().expect("a key");
                    let h = (seed % 8 != 3).then(|| SuffixHash::Md5("0".repeat(32)));
                    remote.insert(k, h);
                }
            }
            let (lp, rp) = (pickle_hashes(&local), pickle_hashes(&remote));
            let (lv, rv) = (View::parse(&lp).expect("local"), View::parse(&rp).expect("remote"));
            assert_eq!(lv.differs_from(&rv), differs(&local, &remote), "seed {seed}");
            assert_eq!(read_from(&rp), remote, "the full reader agrees (seed {seed})");
        }
    }
}
