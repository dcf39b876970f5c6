//! `aerie import-swift-conf [DIR] [--node ID]`: take over a Swift storage
//! node's configuration as it is.
//!
//! The servers' files are found as `swift-init` finds them
//! (`swift/common/manager.py`, `search_tree`): in DIR, every
//! `<service>-server*` that is a `.conf` file or a `.conf.d` directory, and
//! inside a `<service>-server/` directory every `.conf` file and `.conf.d`
//! directory; each is one running server. They are read as Swift reads
//! them ([`ini`]). Servers that share a devices root are one node — one
//! aerie master serving all their ports (a SAIO's `object-server/1.conf`,
//! `container-server/1.conf` and `account-server/1.conf`; a node's public
//! and replication servers). [`map`] turns one node's servers into an
//! aerie.toml ([`draft`]), which is printed, then checked as
//! `aerie --check-config` would.

pub mod draft;
pub mod ini;
pub mod map;
pub mod why;

use crate::catalog::CATALOG;
use crate::config::{RawConfig, Source};
use ini::Ini;
use std::fmt;
use std::path::{Path, PathBuf};

/// The three storage servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    /// `object-server`
    Object,
    /// `container-server`
    Container,
    /// `account-server`
    Account,
}

impl Service {
    /// All three, in the order their listeners are written.
    pub const ALL: [Service; 3] = [Service::Object, Service::Container, Service::Account];

    /// aerie's processor name, and Swift's `egg:swift#<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Service::Object => "object",
            Service::Container => "container",
            Service::Account => "account",
        }
    }

    /// Swift's server name.
    pub fn server(self) -> &'static str {
        match self {
            Service::Object => "object-server",
            Service::Container => "container-server",
            Service::Account => "account-server",
        }
    }
}

/// One Swift server: a file or a `.conf.d` directory.
#[derive(Debug)]
pub struct Instance {
    /// Which server.
    pub service: Service,
    /// Its file or directory.
    pub path: PathBuf,
    /// Its settings.
    pub ini: Ini,
    /// Its pipeline.
    pub app: map::App,
    /// The name that tells it from its siblings (`1` for
    /// `object-server/1.conf`; empty for `object-server.conf`).
    pub stem: String,
}

/// What stops the import.
#[derive(Debug)]
pub enum ImportError {
    /// A file could not be read or parsed.
    Read(ini::IniError),
    /// The configuration is one Swift would not run, or aerie cannot take
    /// over as it is.
    Swift(String),
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::Read(e) => write!(f, "{e}"),
            ImportError::Swift(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ImportError {}

impl From<ini::IniError> for ImportError {
    fn from(e: ini::IniError) -> Self {
        ImportError::Read(e)
    }
}

/// Swift's configuration directory.
pub const DEFAULT_DIR: &str = "/etc/swift";

/// Every server configured in `dir`, as `swift-init` finds them.
pub fn discover(dir: &Path) -> Result<Vec<Instance>, ImportError> {
    let list = |d: &Path| -> Result<Vec<PathBuf>, ImportError> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(|e| ImportError::Swift(format!("could not list {}: {e}", d.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        v.sort();
        Ok(v)
    };
    let mut found = Vec::new();
    for service in Service::ALL {
        let mut paths: Vec<PathBuf> = Vec::new();
        for path in list(dir)? {
            let name = file_name(&path);
            if !name.starts_with(service.server()) {
                continue;
            }
            if path.is_dir() {
                walk(&path, &mut paths, &list)?;
            } else if name.ends_with(".conf") {
                paths.push(path);
            }
        }
        paths.sort();
        for path in paths {
            let ini = Ini::read(&path)?;
            let app = map::app_of(service, &path, &ini)?;
            let base = file_name(&path);
            let stem =
                if path.parent() == Some(dir) { "" } else { base.trim_end_matches(".d").trim_end_matches(".conf") }
                    .to_string();
            found.push(Instance { service, path, ini, app, stem });
        }
    }
    Ok(found)
}

/// `search_tree`'s walk of a matching directory: a `.conf.d` directory is
/// one server; otherwise its `.conf` files are, and its `.conf.d`
/// subdirectories, and it is descended into only when it has none.
fn walk(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    list: &dyn Fn(&Path) -> Result<Vec<PathBuf>, ImportError>,
) -> Result<(), ImportError> {
    if file_name(dir).ends_with(".conf.d") {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    let entries = list(dir)?;
    let mut subdirs = Vec::new();
    let mut found_dir = false;
    for p in entries {
        if p.is_dir() {
            if file_name(&p).ends_with(".conf.d") {
                found_dir = true;
                out.push(p);
            } else {
                subdirs.push(p);
            }
        } else if file_name(&p).ends_with(".conf") {
            out.push(p);
        }
    }
    if !found_dir {
        for d in subdirs {
            walk(&d, out, list)?;
        }
    }
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// One node: the servers that share a devices root.
#[derive(Debug)]
pub struct Node<'a> {
    /// How `--node` names it: the servers' common stem (`1`), else the
    /// devices root.
    pub id: String,
    /// The devices root.
    pub devices: String,
    /// Its servers.
    pub instances: Vec<&'a Instance>,
}

/// Group servers into nodes by devices root, in order of first appearance.
pub fn nodes(instances: &[Instance]) -> Vec<Node<'_>> {
    let mut nodes: Vec<Node<'_>> = Vec::new();
    for inst in instances {
        let devices = inst.app.devices();
        match nodes.iter_mut().find(|n| n.devices == devices) {
            Some(n) => n.instances.push(inst),
            None => nodes.push(Node { id: String::new(), devices, instances: vec![inst] }),
        }
    }
    for n in &mut nodes {
        let first = n.instances.first().map(|i| i.stem.clone()).unwrap_or_default();
        n.id = if !first.is_empty() && n.instances.iter().all(|i| i.stem == first) { first } else { n.devices.clone() };
    }
    nodes
}

/// The command: the aerie.toml text for one node of `dir`, and the
/// warnings to print. `Err` when the import cannot be done.
pub fn import(dir: &Path, node: Option<&str>) -> Result<(String, Vec<String>), ImportError> {
    let instances = discover(dir)?;
    if instances.is_empty() {
        return Err(ImportError::Swift(format!(
            "no object-server, container-server or account-server configuration in {}",
            dir.display()
        )));
    }
    let all = nodes(&instances);
    let describe = |n: &Node<'_>| {
        let files: Vec<String> = n.instances.iter().map(|i| shown(dir, &i.path)).collect();
        format!("  {}  (devices {}: {})", n.id, n.devices, files.join(", "))
    };
    let chosen = match node {
        Some(id) => all.iter().position(|n| n.id == id || n.devices == id).ok_or_else(|| {
            let list: Vec<String> = all.iter().map(describe).collect();
            ImportError::Swift(format!("no node `{id}` in {}; its nodes are:\n{}", dir.display(), list.join("\n")))
        })?,
        None if all.len() == 1 => 0,
        None => {
            let list: Vec<String> = all.iter().map(describe).collect();
            return Err(ImportError::Swift(format!(
                "{} configures {} nodes (servers with different devices roots); choose one with --node:\n{}",
                dir.display(),
                all.len(),
                list.join("\n")
            )));
        }
    };
    let draft = map::map_node(dir, &all, chosen)?;
    Ok((draft.render(), draft.warnings.clone()))
}

/// A path as the output names it: relative to the directory read.
pub fn shown(dir: &Path, p: &Path) -> String {
    p.strip_prefix(dir).map(|r| r.display().to_string()).unwrap_or_else(|_| p.display().to_string())
}

/// Check text as `aerie --check-config` would.
pub fn check(text: &str) -> Result<(), String> {
    let raw = RawConfig::parse(text, &Source::Embedded).map_err(|e| e.to_string())?;
    raw.validate(&CATALOG).map(|_| ()).map_err(|e| e.to_string())
}
