//! The configuration being written: every aerie key with where its value
//! came from, the listeners, the settings not taken over and why, then the
//! TOML text.

use std::fmt::Write as _;

/// Where a value came from, for its comment.
#[derive(Debug, Clone, PartialEq)]
pub enum Provenance {
    /// A Swift setting: `object-server.conf:4 [DEFAULT] workers = 8`.
    Swift(String),
    /// What Swift does when the setting is absent (the text says what).
    SwiftDefault(String),
}

impl Provenance {
    fn describe(&self) -> String {
        match self {
            Provenance::Swift(s) => s.clone(),
            Provenance::SwiftDefault(s) => format!("{s} (not set: Swift's default)"),
        }
    }
}

/// One aerie key.
#[derive(Debug, Clone)]
struct Key {
    name: &'static str,
    value: toml::Value,
    from: Provenance,
    notes: Vec<String>,
    /// The other settings that gave the same value (`file:line [section]`).
    also: Vec<String>,
}

/// One `[[listen]]`.
#[derive(Debug, Clone)]
pub struct Listener {
    /// `address`.
    pub address: String,
    /// `backlog`.
    pub backlog: u32,
    /// `max_body_size`, when not aerie's default.
    pub max_body_size: Option<u64>,
    /// `pipeline`.
    pub pipeline: Vec<String>,
    /// Comment lines above it.
    pub notes: Vec<String>,
}

/// A Swift setting aerie does not take over.
#[derive(Debug, Clone, PartialEq)]
pub struct Unmapped {
    /// `object-server.conf:12 [DEFAULT]`.
    pub at: String,
    /// The key.
    pub key: String,
    /// The value as written.
    pub value: String,
    /// Why.
    pub why: String,
}

/// The order of the tables in the output.
const TABLES: &[&str] =
    &["server", "admin", "log", "storage", "replication", "processors.object", "processors.container"];

/// The configuration being written.
#[derive(Debug, Default)]
pub struct Draft {
    keys: Vec<(&'static str, Key)>,
    /// The listeners, in order.
    pub listeners: Vec<Listener>,
    /// Settings not taken over.
    pub unmapped: Vec<Unmapped>,
    /// What the operator should hear about (also printed on stderr).
    pub warnings: Vec<String>,
    /// Lines for the head of the file.
    pub header: Vec<String>,
}

impl Draft {
    /// Set `table.name`. A second value for a key already set from
    /// elsewhere is kept out, with a note and a warning: aerie has one
    /// value per node where Swift had one per server.
    pub fn set(&mut self, table: &'static str, name: &'static str, value: toml::Value, from: Provenance) {
        debug_assert!(TABLES.contains(&table), "unknown table {table}");
        if let Some((_, k)) = self.keys.iter_mut().find(|(t, k)| *t == table && k.name == name) {
            if k.value != value {
                let note = format!(
                    "{} is not used: aerie has one {table}.{name} for the node, and {} came first",
                    from.describe(),
                    k.from.describe()
                );
                self.warnings.push(note.clone());
                k.notes.push(note);
            } else if let Provenance::Swift(said) = from {
                let at = said.split_once("] ").map_or(said.clone(), |(at, _)| format!("{at}]"));
                let first = matches!(&k.from, Provenance::Swift(f) if f.starts_with(&at));
                if !first && !k.also.contains(&at) {
                    k.also.push(at);
                }
            }
            return;
        }
        self.keys.push((table, Key { name, value, from, notes: Vec::new(), also: Vec::new() }));
    }

    /// Replace `table.name` whatever it held (for values that combine
    /// several servers', such as the largest worker count).
    pub fn replace(
        &mut self,
        table: &'static str,
        name: &'static str,
        value: toml::Value,
        from: Provenance,
        note: String,
    ) {
        self.keys.retain(|(t, k)| !(*t == table && k.name == name));
        self.keys.push((table, Key { name, value, from, notes: vec![note], also: Vec::new() }));
    }

    /// The value of `table.name`, if set.
    pub fn get(&self, table: &str, name: &str) -> Option<&toml::Value> {
        self.keys.iter().find(|(t, k)| *t == table && k.name == name).map(|(_, k)| &k.value)
    }

    /// Add a note to `table.name` (which must be set).
    pub fn note(&mut self, table: &str, name: &str, note: String) {
        if let Some((_, k)) = self.keys.iter_mut().find(|(t, k)| *t == table && k.name == name) {
            k.notes.push(note);
        }
    }

    /// Say something the operator must hear.
    pub fn warn(&mut self, w: String) {
        self.warnings.push(w);
    }

    /// The TOML text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for h in &self.header {
            comment(&mut out, h);
        }
        for table in TABLES {
            let keys: Vec<&Key> = self.keys.iter().filter(|(t, _)| t == table).map(|(_, k)| k).collect();
            if keys.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\n[{table}]");
            for k in keys {
                comment(&mut out, &k.from.describe());
                if !k.also.is_empty() {
                    comment(&mut out, &format!("the same in {}", k.also.join(", ")));
                }
                for n in &k.notes {
                    comment(&mut out, n);
                }
                let _ = writeln!(out, "{} = {}", k.name, k.value);
            }
        }
        for l in &self.listeners {
            out.push('\n');
            for n in &l.notes {
                comment(&mut out, n);
            }
            let _ = writeln!(out, "[[listen]]");
            let _ = writeln!(out, "address = {}", toml::Value::String(l.address.clone()));
            let _ = writeln!(out, "backlog = {}", l.backlog);
            if let Some(m) = l.max_body_size {
                let _ = writeln!(out, "max_body_size = {m}");
            }
            comment(&mut out, "the proxy sends container PUTs and object POSTs without a length");
            let _ = writeln!(out, "length_required = []");
            let pipeline: Vec<toml::Value> = l.pipeline.iter().map(|p| toml::Value::String(p.clone())).collect();
            let _ = writeln!(out, "pipeline = {}", toml::Value::Array(pipeline));
        }
        if !self.unmapped.is_empty() {
            out.push('\n');
            comment(&mut out, "Swift settings not taken over, each with why:");
            for u in &self.unmapped {
                let value = u.value.replace('\n', " ");
                comment(&mut out, &format!("  {} {} = {}", u.at, u.key, value));
                comment(&mut out, &format!("      {}", u.why));
            }
        }
        out
    }
}

/// Write `text` as comment lines of at most about 78 columns.
fn comment(out: &mut String, text: &str) {
    let indent: String = text.chars().take_while(|c| *c == ' ').collect();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + line.len() + word.len() + 3 > 78 {
            let _ = writeln!(out, "# {indent}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    let _ = writeln!(out, "# {indent}{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_value_is_kept_out_with_a_note() {
        let mut d = Draft::default();
        d.set("server", "workers", toml::Value::Integer(4), Provenance::Swift("a.conf:1 [DEFAULT] workers = 4".into()));
        d.set("server", "workers", toml::Value::Integer(4), Provenance::Swift("b.conf:1 [DEFAULT] workers = 4".into()));
        assert!(d.warnings.is_empty());
        d.set("server", "workers", toml::Value::Integer(8), Provenance::Swift("c.conf:1 [DEFAULT] workers = 8".into()));
        assert_eq!(d.get("server", "workers"), Some(&toml::Value::Integer(4)));
        assert_eq!(d.warnings.len(), 1);
        let text = d.render();
        assert!(
            text.contains(
                "[server]\n# a.conf:1 [DEFAULT] workers = 4\n# the same in b.conf:1 [DEFAULT]\n# c.conf:1 [DEFAULT] workers = 8 is not used"
            ),
            "{text}"
        );
        assert!(text.contains("\nworkers = 4\n"));
        let parsed: toml::Table = text.parse().expect("TOML");
        assert_eq!(parsed["server"]["workers"].as_integer(), Some(4));
    }

    #[test]
    fn long_comments_wrap_and_values_are_quoted() {
        let mut d = Draft::default();
        let long = "word ".repeat(40);
        d.set("storage", "devices", toml::Value::String("/srv/\"odd\"".into()), Provenance::SwiftDefault(long));
        let text = d.render();
        assert!(text.lines().all(|l| l.len() <= 80), "{text}");
        let parsed: toml::Table = text.parse().expect("TOML");
        assert_eq!(parsed["storage"]["devices"].as_str(), Some("/srv/\"odd\""));
    }
}
