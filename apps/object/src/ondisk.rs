//! What a hash directory's file names say (§5.2): each name classified
//! (`<ts>.data`, `<ts>.ts`, `<ts>[±<hex>].meta`; anything else ignored, such
//! as rsync's temporary names), and the visible state worked out the way
//! Swift's `get_ondisk_files` does for replicated policies: the newest
//! tombstone wins over data at the same or an older timestamp, the newest
//! `.data` wins over older files, and of the `.meta` files newer than the
//! data the newest one and the one with the newest content-type timestamp
//! are kept. The rest is obsolete.

use aerie_storage::timestamp::decode_timestamps;
use aerie_storage::Timestamp;
use std::io;
use std::path::{Path, PathBuf};

/// A file in a hash directory, classified by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnDisk {
    /// `<ts>.data`
    Data(Timestamp),
    /// `<ts>.ts`
    Tombstone(Timestamp),
    /// `<ts>.meta` (no content type) or `<ts>±<hex>.meta` (with its
    /// content-type timestamp).
    Meta(Timestamp, Option<Timestamp>),
}

/// Classify a file name (`None` for anything else).
pub fn classify(name: &str) -> Option<OnDisk> {
    if let Some(ts) = name.strip_suffix(".data") {
        return Timestamp::parse(ts).ok().map(OnDisk::Data);
    }
    if let Some(ts) = name.strip_suffix(".ts") {
        return Timestamp::parse(ts).ok().map(OnDisk::Tombstone);
    }
    if let Some(ts) = name.strip_suffix(".meta") {
        let (m, c, _) = decode_timestamps(ts, true).ok()?;
        return Some(OnDisk::Meta(m, c));
    }
    None
}

/// A classified file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// Its timestamp.
    pub ts: Timestamp,
    /// A `.meta` file's content-type timestamp.
    pub ctype: Option<Timestamp>,
    /// Its path.
    pub path: PathBuf,
}

/// What the file names say the object is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Files {
    /// The newest `.data`, when it is the visible state.
    pub data: Option<Info>,
    /// The newest `.ts`, when no data is visible.
    pub tombstone: Option<Info>,
    /// The newest `.meta` newer than the data.
    pub meta: Option<Info>,
    /// The `.meta` holding the newest content type, when it is newer than
    /// the data.
    pub ctype_meta: Option<Info>,
    /// Files the visible state makes obsolete.
    pub obsolete: Vec<PathBuf>,
}

fn split_newer(list: Vec<Info>, than: Timestamp, obsolete: &mut Vec<PathBuf>) -> Vec<Info> {
    let (keep, old): (Vec<Info>, Vec<Info>) = list.into_iter().partition(|i| i.ts > than);
    obsolete.extend(old.into_iter().map(|i| i.path));
    keep
}

/// Read a hash directory's file names and work out the visible state, the
/// way Swift's `get_ondisk_files` does for replicated policies.
pub fn gather(dir: &Path) -> io::Result<Files> {
    let mut datas = Vec::new();
    let mut tombs = Vec::new();
    let mut metas = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Files::default()),
        Err(e) => return Err(e),
    };
    for e in entries {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        match classify(name) {
            Some(OnDisk::Data(ts)) => datas.push(Info { ts, ctype: None, path: e.path() }),
            Some(OnDisk::Tombstone(ts)) => tombs.push(Info { ts, ctype: None, path: e.path() }),
            Some(OnDisk::Meta(ts, ctype)) => metas.push(Info { ts, ctype, path: e.path() }),
            None => {}
        }
    }
    for list in [&mut datas, &mut tombs, &mut metas] {
        list.sort_by_key(|i| std::cmp::Reverse(i.ts));
    }
    let mut f = Files::default();
    // Everything at or before the newest tombstone is obsolete.
    if let Some(t) = tombs.first().map(|t| t.ts) {
        datas = split_newer(datas, t, &mut f.obsolete);
        metas = split_newer(metas, t, &mut f.obsolete);
        f.obsolete.extend(tombs.drain(1..).map(|i| i.path));
    }
    // Keep the newest .meta, and the one with the newest content type when
    // that is newer still.
    if metas.len() > 1 {
        let mut rest = metas.split_off(1);
        rest.sort_by_key(|i| std::cmp::Reverse(i.ctype));
        let newest_ctype = metas.first().and_then(|m| m.ctype);
        if rest.first().and_then(|r| r.ctype) > newest_ctype {
            if rest.first().map(|r| r.ts) == metas.first().map(|m| m.ts) {
                let better = rest.remove(0);
                f.obsolete.extend(metas.drain(..).map(|i| i.path));
                metas.push(better);
            } else {
                metas.push(rest.remove(0));
            }
        }
        f.obsolete.extend(rest.into_iter().map(|i| i.path));
    }
    if let Some(d) = datas.first().map(|d| d.ts) {
        f.obsolete.extend(datas.drain(1..).map(|i| i.path));
        tombs = split_newer(tombs, d, &mut f.obsolete);
        metas = split_newer(metas, d, &mut f.obsolete);
        debug_assert!(tombs.is_empty());
        f.data = datas.into_iter().next();
        f.meta = metas.first().cloned();
        if let Some(last) = metas.last() {
            if last.ctype.is_some_and(|c| c > d) {
                f.ctype_meta = Some(last.clone());
            }
        }
    } else {
        f.tombstone = tombs.into_iter().next();
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).expect("ts")
    }

    /// A scratch hash directory, removed when dropped.
    struct Scratch(PathBuf);

    impl std::ops::Deref for Scratch {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn dir_with(tag: &str, names: &[&str]) -> Scratch {
        let d = std::env::temp_dir().join(format!("aerie-gather-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("dir");
        for n in names {
            std::fs::write(d.join(n), b"").expect("file");
        }
        Scratch(d)
    }

    #[test]
    fn newest_tombstone_wins_over_equal_or_older_data() {
        let d = dir_with("a", &["0000000001.00000.data", "0000000002.00000.ts", "0000000001.50000.meta"]);
        let f = gather(&d).expect("gather");
        assert_eq!(f.tombstone.map(|x| x.ts), Some(t("2")));
        assert_eq!(f.obsolete.len(), 2);
        let d = dir_with(
            "b",
            &["0000000003.00000.data", "0000000002.00000.ts", "0000000004.00000.meta", "0000000005.00000.meta"],
        );
        let f = gather(&d).expect("gather");
        assert_eq!(f.data.map(|x| x.ts), Some(t("3")));
        assert_eq!(f.meta.map(|x| x.ts), Some(t("5")));
        assert_eq!(f.obsolete.len(), 2, "the old tombstone and the older .meta");
        let d = dir_with("c", &["0000000003.00000.ts", "0000000003.00000.data"]);
        assert!(gather(&d).expect("gather").tombstone.is_some(), "a tombstone wins a tie");
    }

    #[test]
    fn a_content_type_meta_is_kept_beside_the_newest_meta() {
        let d = dir_with("d", &["0000000001.00000.data", "0000000003.00000-100.meta", "0000000004.00000.meta"]);
        let f = gather(&d).expect("gather");
        assert_eq!(f.meta.map(|x| x.ts), Some(t("4")));
        assert_eq!(f.ctype_meta.map(|x| x.ts), Some(t("3")));
        assert!(f.obsolete.is_empty());
    }
}
