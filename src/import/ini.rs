//! Swift's configuration files as Swift reads them: Python's `ConfigParser`
//! (sections, `key = value` or `key: value`, indented continuation lines,
//! `#`/`;` comment lines, keys kept in their case, a duplicate section or
//! key within one file refused, later files of a `conf.d` directory
//! overriding earlier ones, `%(name)s` interpolation only in values that
//! contain `%(`), and the two ways Swift looks a setting up:
//!
//! * a daemon section (`[object-replicator]`) through `readconf`: the
//!   section's own value, else `[DEFAULT]`'s;
//! * a paste-deploy section (`[app:object-server]`, `[filter:recon]`): the
//!   `[DEFAULT]` value wins over the section's unless the section says
//!   `set key = value` — paste-deploy's rule, which surprises operators, so
//!   the importer follows it exactly.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a setting was written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Origin {
    /// The file.
    pub file: PathBuf,
    /// Its 1-based line.
    pub line: usize,
}

/// One setting as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The section it is in (`DEFAULT` for `[DEFAULT]`).
    pub section: String,
    /// The key as written (for paste-deploy's `set key`, without `set `).
    pub key: String,
    /// The value, interpolated, continuation lines joined with `\n`.
    pub value: String,
    /// Where it was written.
    pub origin: Origin,
    /// Written as `set key = value` (paste-deploy: overrides `[DEFAULT]`).
    pub set: bool,
}

/// A parse error, with the file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniError {
    /// Where.
    pub file: PathBuf,
    /// The 1-based line (0: the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for IniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

/// The files of one Swift server's configuration, merged.
#[derive(Debug, Clone, Default)]
pub struct Ini {
    /// `[DEFAULT]`, in order.
    pub defaults: Vec<Entry>,
    /// The other sections by name, each in order.
    pub sections: BTreeMap<String, Vec<Entry>>,
    /// The files read, in order.
    pub files: Vec<PathBuf>,
    /// Settings a later file of a `conf.d` directory replaced, each with
    /// where the replacement is.
    pub overridden: Vec<(Entry, Origin)>,
}

/// A setting looked up through the rules of one section kind.
pub type Lookup = BTreeMap<String, Entry>;

impl Ini {
    /// Read one file, or every `*.conf` of a directory (not starting with a
    /// dot) in name order, as Swift's `readconf` does.
    pub fn read(path: &Path) -> Result<Ini, IniError> {
        let whole = |message: String| IniError { file: path.to_path_buf(), line: 0, message };
        let files = if path.is_dir() {
            let mut files = Vec::new();
            let dir = std::fs::read_dir(path).map_err(|e| whole(format!("could not list: {e}")))?;
            for entry in dir {
                let entry = entry.map_err(|e| whole(format!("could not list: {e}")))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".conf") && !name.starts_with('.') {
                    files.push(entry.path());
                }
            }
            files.sort();
            if files.is_empty() {
                return Err(whole("no *.conf file in this directory".into()));
            }
            files
        } else {
            vec![path.to_path_buf()]
        };
        let mut ini = Ini::default();
        for file in &files {
            let text = std::fs::read_to_string(file).map_err(|e| IniError {
                file: file.clone(),
                line: 0,
                message: format!("could not read: {e}"),
            })?;
            ini.parse_file(file, &text)?;
        }
        ini.files = files;
        ini.interpolate()?;
        Ok(ini)
    }

    /// Parse text as if read from `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Ini, IniError> {
        let mut ini = Ini::default();
        ini.parse_file(file, text)?;
        ini.files = vec![file.to_path_buf()];
        ini.interpolate()?;
        Ok(ini)
    }

    fn parse_file(&mut self, file: &Path, text: &str) -> Result<(), IniError> {
        let err = |line: usize, message: String| IniError { file: file.to_path_buf(), line, message };
        // The section being read (None before the first header) and whether
        // this file named it already; the entry a continuation line extends.
        let mut section: Option<String> = None;
        let mut seen_sections: Vec<String> = Vec::new();
        let mut seen_keys: Vec<(String, String)> = Vec::new();
        let mut last: Option<(usize, usize)> = None; // (indent, index in the section)
        for (n, raw) in text.lines().enumerate() {
            let line_no = n + 1;
            let trimmed = raw.trim();
            if trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            let indent = raw.len() - raw.trim_start().len();
            if trimmed.is_empty() {
                // Python keeps empty lines inside a value and trims them at
                // the end; an empty line ends nothing by itself.
                if let (Some(s), Some((_, i))) = (&section, last) {
                    if let Some(e) = self.section_mut(s).get_mut(i) {
                        e.value.push('\n');
                    }
                }
                continue;
            }
            if let (Some(s), Some((key_indent, i))) = (&section, last) {
                if indent > key_indent {
                    if let Some(e) = self.section_mut(s).get_mut(i) {
                        e.value.push('\n');
                        e.value.push_str(trimmed);
                    }
                    continue;
                }
            }
            if let Some(name) = header(trimmed) {
                if seen_sections.iter().any(|s| s == name) {
                    return Err(err(line_no, format!("section [{name}] appears twice in this file")));
                }
                seen_sections.push(name.to_string());
                if name != "DEFAULT" {
                    self.sections.entry(name.to_string()).or_default();
                }
                section = Some(name.to_string());
                last = None;
                continue;
            }
            let Some(s) = section.clone() else {
                return Err(err(line_no, "a setting before the first [section] header".into()));
            };
            let Some(at) = trimmed.find(['=', ':']) else {
                return Err(err(line_no, format!("expected `key = value`, found `{trimmed}`")));
            };
            let key = trimmed[..at].trim_end();
            let value = trimmed[at + 1..].trim();
            if key.is_empty() {
                return Err(err(line_no, "a setting without a key".into()));
            }
            let (key, set) = match key.strip_prefix("set ") {
                Some(k) if s != "DEFAULT" => (k.trim().to_string(), true),
                _ => (key.to_string(), false),
            };
            if seen_keys.iter().any(|(ss, k)| *ss == s && *k == key) {
                return Err(err(line_no, format!("`{key}` appears twice in [{s}] in this file")));
            }
            seen_keys.push((s.clone(), key.clone()));
            let entry = Entry {
                section: s.clone(),
                key,
                value: value.to_string(),
                origin: Origin { file: file.to_path_buf(), line: line_no },
                set,
            };
            let entries = self.section_mut(&s);
            // A later file overrides an earlier one's value in place.
            let index = match entries.iter().position(|e| e.key == entry.key && e.set == entry.set) {
                Some(i) => {
                    let by = entry.origin.clone();
                    let old = std::mem::replace(&mut entries[i], entry);
                    self.overridden.push((old, by));
                    i
                }
                None => {
                    entries.push(entry);
                    entries.len() - 1
                }
            };
            last = Some((indent, index));
        }
        for entries in std::iter::once(&mut self.defaults).chain(self.sections.values_mut()) {
            for e in entries.iter_mut() {
                let kept = e.value.trim_end().len();
                e.value.truncate(kept);
            }
        }
        Ok(())
    }

    fn section_mut(&mut self, name: &str) -> &mut Vec<Entry> {
        if name == "DEFAULT" {
            &mut self.defaults
        } else {
            self.sections.entry(name.to_string()).or_default()
        }
    }

    /// Expand `%(name)s` in values that contain `%(` (Swift's
    /// `NicerInterpolation`): names come from the value's section, then
    /// `[DEFAULT]`, then `here` (the file's directory) and `__file__`.
    fn interpolate(&mut self) -> Result<(), IniError> {
        let defaults = self.defaults.clone();
        let expand_all = |entries: &mut Vec<Entry>, own: &[Entry]| -> Result<(), IniError> {
            for e in entries.iter_mut() {
                if e.value.contains("%(") {
                    e.value = expand(&e.value, own, &defaults, &e.origin, 0)?;
                }
            }
            Ok(())
        };
        let own = self.defaults.clone();
        expand_all(&mut self.defaults, &own)?;
        for entries in self.sections.values_mut() {
            let own = entries.clone();
            expand_all(entries, &own)?;
        }
        Ok(())
    }

    /// Whether a section exists.
    pub fn has(&self, section: &str) -> bool {
        self.sections.contains_key(section)
    }

    /// A daemon section's settings as `readconf` gives them: the section's
    /// own over `[DEFAULT]`'s. None when the section does not exist.
    pub fn daemon(&self, section: &str) -> Option<Lookup> {
        let own = self.sections.get(section)?;
        let mut out: Lookup = self.defaults.iter().map(|e| (e.key.clone(), e.clone())).collect();
        for e in own {
            out.insert(e.key.clone(), e.clone());
        }
        Some(out)
    }

    /// A paste-deploy section's settings as the app or filter factory gets
    /// them: `[DEFAULT]` over the section's own, `set key` over both.
    pub fn paste(&self, section: &str) -> Option<Lookup> {
        let own = self.sections.get(section)?;
        let mut out: Lookup = self.defaults.iter().map(|e| (e.key.clone(), e.clone())).collect();
        for e in own.iter().filter(|e| !e.set) {
            out.entry(e.key.clone()).or_insert_with(|| e.clone());
        }
        for e in own.iter().filter(|e| e.set) {
            out.insert(e.key.clone(), e.clone());
        }
        Some(out)
    }

    /// What a paste-deploy section runs: `use = egg:swift#name` gives
    /// `name`; `paste.*_factory = swift.obj.server:app_factory` the
    /// service (`object`) or the module's last part.
    pub fn uses(&self, section: &str) -> Option<String> {
        let own = self.sections.get(section)?;
        let find = |k: &str| own.iter().find(|e| e.key == k).map(|e| e.value.clone());
        if let Some(u) = find("use") {
            return Some(u.rsplit('#').next().unwrap_or(&u).trim().to_string());
        }
        let factory = find("paste.app_factory").or_else(|| find("paste.filter_factory"))?;
        let module = factory.split(':').next().unwrap_or("").trim();
        Some(match module {
            "swift.obj.server" => "object".into(),
            "swift.container.server" => "container".into(),
            "swift.account.server" => "account".into(),
            m => m.rsplit('.').next().unwrap_or(m).to_string(),
        })
    }

    /// Every setting as written, `[DEFAULT]` first.
    pub fn written(&self) -> impl Iterator<Item = &Entry> {
        self.defaults.iter().chain(self.sections.values().flatten())
    }
}

/// The name in a `[name]` header line (Python's `\[(?P<header>.+)\]`).
fn header(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    let name = &rest[..end];
    (!name.is_empty()).then_some(name)
}

fn expand(value: &str, own: &[Entry], defaults: &[Entry], origin: &Origin, depth: usize) -> Result<String, IniError> {
    let err = |message: String| IniError { file: origin.file.clone(), line: origin.line, message };
    if depth > 10 {
        return Err(err(format!("interpolation of `{value}` goes more than 10 levels deep")));
    }
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(r) = after.strip_prefix('%') {
            out.push('%');
            rest = r;
        } else if let Some(r) = after.strip_prefix('(') {
            let Some(close) = r.find(")s") else {
                return Err(err(format!("bad interpolation in `{value}`: `%(` needs `)s`")));
            };
            let name = &r[..close];
            let found =
                own.iter().chain(defaults).find(|e| e.key == name).map(|e| e.value.clone()).or_else(|| match name {
                    "here" => origin.file.parent().map(|p| p.display().to_string()),
                    "__file__" => Some(origin.file.display().to_string()),
                    _ => None,
                });
            let Some(found) = found else {
                return Err(err(format!("`%({name})s` names no setting in this section or [DEFAULT]")));
            };
            out.push_str(&if found.contains('%') { expand(&found, own, defaults, origin, depth + 1)? } else { found });
            rest = &r[close + 2..];
        } else {
            return Err(err(format!("bad interpolation in `{value}`: a `%` must be `%%` or `%(name)s`")));
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ini(text: &str) -> Ini {
        Ini::parse(Path::new("/etc/swift/object-server.conf"), text).expect("parses")
    }

    fn value(l: &Lookup, k: &str) -> Option<String> {
        l.get(k).map(|e| e.value.clone())
    }

    #[test]
    fn reads_sections_keys_comments_and_continuations() {
        let i = ini("# top\n[DEFAULT]\nbind_port = 6200\n; other\nWorkers: 4\n[app:x]\nuse = egg:swift#object\nlong = a\n  b\n\n  c\n\n");
        assert_eq!(i.defaults.len(), 2);
        assert_eq!(i.defaults[1].key, "Workers");
        assert_eq!(i.defaults[1].value, "4");
        assert_eq!(i.defaults[1].origin.line, 5);
        let app = i.paste("app:x").expect("section");
        assert_eq!(value(&app, "long").as_deref(), Some("a\nb\n\nc"));
        assert_eq!(value(&app, "bind_port").as_deref(), Some("6200"));
    }

    #[test]
    fn paste_sections_let_default_win_unless_set() {
        let i = ini("[DEFAULT]\nlog_level = INFO\nworkers = 2\n[app:o]\nlog_level = DEBUG\nset workers = 5\nown = 1\n[o-replicator]\nlog_level = DEBUG\n");
        let app = i.paste("app:o").expect("app");
        assert_eq!(value(&app, "log_level").as_deref(), Some("INFO"));
        assert_eq!(value(&app, "workers").as_deref(), Some("5"));
        assert_eq!(value(&app, "own").as_deref(), Some("1"));
        let d = i.daemon("o-replicator").expect("daemon");
        assert_eq!(value(&d, "log_level").as_deref(), Some("DEBUG"));
        assert_eq!(value(&d, "workers").as_deref(), Some("2"));
        assert!(i.daemon("nope").is_none());
    }

    #[test]
    fn interpolates_only_values_with_a_name() {
        let i = ini("[DEFAULT]\nroot = /srv\nreserve = 1%\n[x]\ndevices = %(root)s/node\npct = 100%%\n");
        let d = i.daemon("x").expect("x");
        assert_eq!(value(&d, "devices").as_deref(), Some("/srv/node"));
        assert_eq!(value(&d, "reserve").as_deref(), Some("1%"));
        assert_eq!(value(&d, "pct").as_deref(), Some("100%%"));
        let i = ini("[x]\nconf = %(here)s/internal.conf\n");
        assert_eq!(value(&i.daemon("x").expect("x"), "conf").as_deref(), Some("/etc/swift/internal.conf"));
        let e = Ini::parse(Path::new("/a.conf"), "[x]\na = %(nope)s\n").expect_err("unknown name");
        assert_eq!(e.line, 2);
    }

    #[test]
    fn refuses_what_python_refuses() {
        for bad in ["key = 1\n", "[a]\nx = 1\nx = 2\n", "[a]\n[a]\n", "[a]\njust words\n", "[a]\n = 1\n"] {
            assert!(Ini::parse(Path::new("/a.conf"), bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_later_file_overrides_an_earlier_one() {
        let dir = std::env::temp_dir().join(format!("aerie-ini-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("10-base.conf"), "[DEFAULT]\nworkers = 2\ndevices = /srv/node\n").expect("w");
        std::fs::write(dir.join("20-local.conf"), "[DEFAULT]\nworkers = 8\n").expect("w");
        std::fs::write(dir.join(".hidden.conf"), "[DEFAULT]\nworkers = 99\n").expect("w");
        std::fs::write(dir.join("README"), "not read").expect("w");
        let i = Ini::read(&dir).expect("reads");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(i.files.len(), 2);
        assert_eq!(i.overridden.len(), 1);
        assert_eq!(i.overridden[0].0.value, "2");
        assert_eq!(i.overridden[0].1.file, dir.join("20-local.conf"));
        assert_eq!(i.defaults.iter().find(|e| e.key == "workers").map(|e| e.value.as_str()), Some("8"));
        assert!(i.defaults.iter().any(|e| e.key == "devices"));
    }
}
