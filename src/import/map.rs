//! One node's Swift servers → aerie keys.
//!
//! Each Swift setting is looked up the way the Swift program that reads it
//! looks it up (the server's through paste-deploy, a daemon's through
//! `readconf`), with Swift's default where it matters for a drop-in (the
//! worker count, the user, the listen backlog), and written to the aerie
//! key that does the same. Every setting written in the files that no
//! aerie key takes is listed with why ([`why`]). aerie has one value per
//! node where Swift had one per server: the first server's value is kept
//! and the others noted, except the worker count, where the largest wins
//! (each aerie worker serves every service).

use super::draft::{Draft, Listener, Provenance, Unmapped};
use super::ini::{Entry, Ini, Lookup, Origin};
use super::{shown, ImportError, Instance, Node, Service};
use aerie_storage::swift_conf::truthy;
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use toml::Value;

/// Swift's defaults that the import writes out when a file is silent.
const SWIFT_DEVICES: &str = "/srv/node";
const SWIFT_DIR: &str = "/etc/swift";
const SWIFT_USER: &str = "swift";
const SWIFT_BACKLOG: u32 = 4096;
const SWIFT_BIND_IP: &str = "0.0.0.0";
const SWIFT_FALLOCATE_RESERVE: &str = "1%";
const SWIFT_RECON_CACHE: &str = "/var/cache/swift";
/// The object server's default `allowed_headers`.
const SWIFT_ALLOWED_HEADERS: &str = "Content-Disposition, Content-Encoding, X-Delete-At, X-Object-Manifest, \
     X-Static-Large-Object, Cache-Control, Content-Language, Expires, X-Robots-Tag";

/// The daemon sections of each server's file.
fn daemon_sections(s: Service) -> &'static [(&'static str, Daemon)] {
    match s {
        Service::Object => &[
            ("object-replicator", Daemon::Replicator),
            ("object-updater", Daemon::Updater),
            ("object-auditor", Daemon::Kept),
            ("object-reconstructor", Daemon::Kept),
            ("object-expirer", Daemon::Kept),
            ("object-relinker", Daemon::Kept),
        ],
        Service::Container => &[
            ("container-replicator", Daemon::Replicator),
            ("container-updater", Daemon::Updater),
            ("container-auditor", Daemon::Kept),
            ("container-sync", Daemon::Kept),
            ("container-sharder", Daemon::Kept),
        ],
        Service::Account => &[
            ("account-replicator", Daemon::Replicator),
            ("account-auditor", Daemon::Kept),
            ("account-reaper", Daemon::Kept),
        ],
    }
}

/// What aerie does with a daemon section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Daemon {
    /// aerie's replicator replaces it.
    Replicator,
    /// aerie's updater replaces it.
    Updater,
    /// Swift's daemon keeps running on the node.
    Kept,
}

/// A server's WSGI pipeline, as paste-deploy loads it.
#[derive(Debug)]
pub struct App {
    /// (pipeline name, section, what `use` names) for each filter.
    pub filters: Vec<(String, String, String)>,
    /// The app's section.
    pub section: String,
    /// The app's settings, paste-deploy's way.
    pub conf: Lookup,
}

impl App {
    /// The sections the pipeline loads: the app's, then each filter's.
    pub fn sections(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.section).chain(self.filters.iter().map(|f| &f.1))
    }

    /// The devices root the server serves.
    pub fn devices(&self) -> String {
        self.conf.get("devices").map(|e| e.value.clone()).unwrap_or_else(|| SWIFT_DEVICES.to_string())
    }
}

/// Load a server's pipeline: refused, naming `path`, where Swift's server
/// would not start or is not the `service` it is named after.
pub fn app_of(service: Service, path: &Path, ini: &Ini) -> Result<App, ImportError> {
    let file = path.display();
    let names: Vec<String> = match ini.sections.get("pipeline:main") {
        Some(p) => {
            let line = p
                .iter()
                .find(|e| e.key == "pipeline")
                .ok_or_else(|| ImportError::Swift(format!("{file}: [pipeline:main] has no `pipeline` setting")))?;
            line.value.split_whitespace().map(str::to_string).collect()
        }
        None if ini.has("app:main") => vec!["main".to_string()],
        None => {
            return Err(ImportError::Swift(format!(
                "{file}: neither [pipeline:main] nor [app:main]: Swift's {} would not start",
                service.server()
            )))
        }
    };
    let Some((app_name, filter_names)) = names.split_last() else {
        return Err(ImportError::Swift(format!("{file}: [pipeline:main] pipeline is empty")));
    };
    let section = format!("app:{app_name}");
    let app_egg = ini.uses(&section).ok_or_else(|| {
        ImportError::Swift(format!(
            "{file}: the pipeline ends in `{app_name}` but [{section}] is missing or names no `use`"
        ))
    })?;
    if app_egg != service.name() {
        return Err(ImportError::Swift(format!(
            "{file}: [{section}] runs `{app_egg}`, not Swift's {} (egg:swift#{}): aerie cannot take it over",
            service.server(),
            service.name()
        )));
    }
    let mut filters = Vec::new();
    for f in filter_names {
        let fs = format!("filter:{f}");
        let e = ini.uses(&fs).ok_or_else(|| {
            ImportError::Swift(format!("{file}: the pipeline names `{f}` but [{fs}] is missing or names no `use`"))
        })?;
        filters.push((f.clone(), fs, e));
    }
    let conf = ini.paste(&section).unwrap_or_default();
    Ok(App { filters, section, conf })
}

struct Mapper<'a> {
    dir: &'a Path,
    draft: Draft,
    used: BTreeSet<Origin>,
    /// Each server's worker count, and where it came from.
    workers: Vec<(usize, Provenance)>,
    /// Swift daemons configured on this node that aerie does not replace.
    kept: BTreeSet<String>,
    /// The users named that this machine does not have.
    users: Vec<String>,
}

impl Mapper<'_> {
    fn at(&self, e: &Entry) -> String {
        format!("{}:{} [{}]", shown(self.dir, &e.origin.file), e.origin.line, e.section)
    }

    /// `object-server.conf:4 [DEFAULT] workers = 8`.
    fn said(&self, e: &Entry) -> String {
        format!("{} {} = {}", self.at(e), e.key, e.value)
    }

    fn from(&self, e: &Entry) -> Provenance {
        Provenance::Swift(self.said(e))
    }

    /// Look a setting up and count it as taken over. An empty value counts
    /// as not set (it is listed as not taken over).
    fn take(&mut self, c: &Lookup, key: &str) -> Option<Entry> {
        let e = c.get(key).filter(|e| !e.value.trim().is_empty())?.clone();
        self.used.insert(e.origin.clone());
        Some(e)
    }

    fn bad(&self, e: &Entry, what: &str) -> ImportError {
        ImportError::Swift(format!("{} {} = {}: {what}; Swift would not start with it", self.at(e), e.key, e.value))
    }

    fn float(&self, e: &Entry) -> Result<f64, ImportError> {
        e.value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| self.bad(e, "not a number"))
    }

    fn int(&self, e: &Entry) -> Result<i64, ImportError> {
        e.value.trim().parse::<i64>().map_err(|_| self.bad(e, "not a whole number"))
    }

    /// A number (seconds, a percentage, a rate) → an aerie key.
    fn number(&mut self, c: &Lookup, key: &str, table: &'static str, name: &'static str) -> Result<(), ImportError> {
        if let Some(e) = self.take(c, key) {
            let v = self.float(&e)?;
            let from = self.from(&e);
            self.draft.set(table, name, Value::Float(v), from);
        }
        Ok(())
    }

    /// A whole-number setting → an aerie key.
    fn count(&mut self, c: &Lookup, key: &str, table: &'static str, name: &'static str) -> Result<(), ImportError> {
        if let Some(e) = self.take(c, key) {
            let v = self.int(&e)?;
            if v < 0 {
                return Err(self.bad(&e, "negative"));
            }
            let from = self.from(&e);
            self.draft.set(table, name, Value::Integer(v), from);
        }
        Ok(())
    }

    fn flag(&mut self, c: &Lookup, key: &str, table: &'static str, name: &'static str) {
        if let Some(e) = self.take(c, key) {
            let from = self.from(&e);
            self.draft.set(table, name, Value::Boolean(truthy(&e.value)), from);
        }
    }

    fn text(&mut self, c: &Lookup, key: &str, table: &'static str, name: &'static str) {
        if let Some(e) = self.take(c, key) {
            let from = self.from(&e);
            self.draft.set(table, name, Value::String(e.value.clone()), from);
        }
    }

    /// A server: its listener(s) and the settings of its app and filters.
    fn server(&mut self, inst: &Instance) -> Result<(), ImportError> {
        let app = &inst.app;
        // The lines that say what runs: the pipeline and each part's `use`.
        let pipeline_line = inst.ini.sections.get("pipeline:main").and_then(|p| p.iter().find(|e| e.key == "pipeline"));
        let mut taken: Vec<Entry> = pipeline_line.into_iter().cloned().collect();
        for s in app.sections() {
            if let Some(own) = inst.ini.sections.get(s) {
                let factory =
                    |e: &&Entry| matches!(e.key.as_str(), "use" | "paste.app_factory" | "paste.filter_factory");
                taken.extend(own.iter().filter(factory).cloned());
            }
        }
        for e in &taken {
            self.used.insert(e.origin.clone());
        }
        let c = app.conf.clone();
        let svc = inst.service;
        let file = shown(self.dir, &inst.path);

        // The pipeline: Swift's healthcheck and recon are aerie's; the
        // service answers what Swift's app does.
        let mut pipeline = Vec::new();
        for (name, section, what) in &app.filters {
            match what.as_str() {
                "healthcheck" | "recon" => {
                    pipeline.push(what.clone());
                    if what == "recon" {
                        let fc = inst.ini.paste(section).unwrap_or_default();
                        self.text(&fc, "recon_cache_path", "storage", "recon_cache_path");
                    }
                }
                other => {
                    if let Some(p) = pipeline_line {
                        self.draft.unmapped.push(Unmapped {
                            at: self.at(p),
                            key: "pipeline".into(),
                            value: format!("… {name} …"),
                            why: filter_why(other),
                        });
                    }
                }
            }
        }
        if let Some(e) = self.take(&c, "replication_server") {
            if !truthy(&e.value) {
                pipeline.push("no-replication".into());
            }
            taken.push(e);
        }
        pipeline.push(svc.name().to_string());

        // Where it listens.
        let mut notes = vec![format!("{file}: Swift's {}", svc.server())];
        notes.extend(taken.iter().map(|e| self.said(e)));
        let ip_entry = self.take(&c, "bind_ip");
        let ip_text = ip_entry.as_ref().map_or(SWIFT_BIND_IP.to_string(), |e| e.value.clone());
        let backlog = match self.take(&c, "backlog") {
            Some(e) => {
                notes.push(self.said(&e));
                u32::try_from(self.int(&e)?).map_err(|_| self.bad(&e, "out of range"))?
            }
            None => SWIFT_BACKLOG,
        };
        // The object server's servers_per_port (0: off, as Swift's default).
        let spp = if svc == Service::Object { self.take(&c, "servers_per_port") } else { None };
        if let Some(e) = &spp {
            notes.push(self.said(e));
        }
        let per_port = match &spp {
            Some(e) => self.int(e)? > 0,
            None => false,
        };
        let mut ports = Vec::new();
        if per_port {
            let ring_ip = self.take(&c, "ring_ip");
            notes.extend(ring_ip.iter().map(|e| self.said(e)));
            let mine = ring_ip.as_ref().map_or(ip_text.clone(), |e| e.value.clone());
            match ring_ports(&self.swift_dir(&c), &mine) {
                Ok(p) if !p.is_empty() => {
                    notes.push(format!(
                        "Swift ran a server per port of this node's disks in the object rings ({}); aerie serves them all from its workers, each device on its own queue and threads; bind_port is not used, as in Swift",
                        p.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
                    ));
                    ports = p;
                }
                found => {
                    let why = match found {
                        Err(e) => e,
                        Ok(_) => format!("no device of the object rings is on {mine}"),
                    };
                    self.draft.warn(format!(
                        "{file}: servers_per_port is set but the ports cannot be read from the rings ({why}): only bind_port is listened on; add a [[listen]] per ring port"
                    ));
                }
            }
        }
        if ports.is_empty() {
            let Some(pe) = self.take(&c, "bind_port") else {
                return Err(ImportError::Swift(format!(
                    "{file}: no bind_port: Swift's {} refuses to start without one",
                    svc.server()
                )));
            };
            let p = pe.value.trim().parse::<u16>().map_err(|_| self.bad(&pe, "not a port"))?;
            ports.push(p);
            notes.push(self.said(&pe));
        }
        if let Some(e) = &ip_entry {
            notes.push(self.said(e));
        }
        let ip = resolve(&ip_text).ok_or_else(|| {
            ImportError::Swift(format!("{file}: bind_ip = {ip_text} is not an address this machine can resolve"))
        })?;
        let max_body_size = (svc == Service::Object).then(|| self.max_file_size(&c));
        for port in ports {
            self.draft.listeners.push(Listener {
                address: SocketAddr::new(ip, port).to_string(),
                backlog,
                max_body_size,
                pipeline: pipeline.clone(),
                notes: std::mem::take(&mut notes),
            });
        }

        // The node-wide settings.
        match self.take(&c, "workers") {
            Some(e) => {
                let n = if e.value.trim() == "auto" {
                    cpus()
                } else {
                    usize::try_from(self.int(&e)?).map_err(|_| self.bad(&e, "negative"))?.max(1)
                };
                let from = self.from(&e);
                self.workers.push((n, from));
            }
            None => {
                self.workers.push((cpus(), Provenance::SwiftDefault(format!("{file}: workers = auto, one per CPU"))))
            }
        }
        match self.take(&c, "user") {
            Some(e) => {
                let from = self.from(&e);
                self.user(e.value.trim(), from);
            }
            None => self.user(SWIFT_USER, Provenance::SwiftDefault(format!("{file}: user = {SWIFT_USER}"))),
        }
        let swift_dir = self.take(&c, "swift_dir");
        let conf = Path::new(swift_dir.as_ref().map_or(SWIFT_DIR, |e| e.value.trim())).join("swift.conf");
        let from = match &swift_dir {
            Some(e) => self.from(e),
            None => Provenance::SwiftDefault(format!("{file}: swift_dir = {SWIFT_DIR}")),
        };
        self.draft.set("storage", "swift_conf", Value::String(conf.display().to_string()), from);
        match self.take(&c, "devices") {
            Some(e) => {
                let from = self.from(&e);
                self.draft.set("storage", "devices", Value::String(e.value.trim().to_string()), from)
            }
            None => self.draft.set(
                "storage",
                "devices",
                Value::String(SWIFT_DEVICES.into()),
                Provenance::SwiftDefault(format!("{file}: devices = {SWIFT_DEVICES}")),
            ),
        }
        if c.contains_key("mount_check") {
            self.flag(&c, "mount_check", "storage", "mount_check");
        } else {
            self.draft.set(
                "storage",
                "mount_check",
                Value::Boolean(true),
                Provenance::SwiftDefault(format!("{file}: mount_check = true")),
            );
        }
        match self.take(&c, "fallocate_reserve") {
            Some(e) => {
                if aerie_storage::fs::Reserve::parse(&e.value).is_none() {
                    return Err(self.bad(&e, "neither a byte count nor a percentage"));
                }
                let from = self.from(&e);
                self.draft.set("storage", "fallocate_reserve", Value::String(e.value.trim().to_string()), from);
            }
            None => self.draft.set(
                "storage",
                "fallocate_reserve",
                Value::String(SWIFT_FALLOCATE_RESERVE.into()),
                Provenance::SwiftDefault(format!("{file}: fallocate_reserve = {SWIFT_FALLOCATE_RESERVE}")),
            ),
        }
        if let Some(e) = self.take(&c, "log_level") {
            let level = match e.value.trim().to_ascii_uppercase().as_str() {
                "DEBUG" => "debug",
                "INFO" | "NOTICE" => "info",
                "WARN" | "WARNING" => "warn",
                "ERROR" | "CRITICAL" | "FATAL" => "error",
                _ => return Err(self.bad(&e, "not a log level")),
            };
            let from = self.from(&e);
            self.draft.set("log", "level", Value::String(level.into()), from);
        }
        self.flag(&c, "log_requests", "log", "access");
        self.number(&c, "bind_timeout", "server", "bind_timeout")?;
        self.count(&c, "max_clients", "server", "max_connections")?;
        self.number(&c, "client_timeout", "server", "body_timeout")?;
        match svc {
            Service::Object => {
                self.number(&c, "conn_timeout", "processors.object", "conn_timeout")?;
                self.number(&c, "node_timeout", "processors.object", "node_timeout")?;
                self.number(&c, "container_update_timeout", "processors.object", "container_update_timeout")?;
                self.number(&c, "etag_validate_pct", "processors.object", "etag_validate_pct")?;
                self.number(&c, "reclaim_age", "storage", "reclaim_age")?;
                self.count(
                    &c,
                    "replication_concurrency_per_device",
                    "replication",
                    "replication_concurrency_per_device",
                )?;
                self.number(&c, "replication_lock_timeout", "replication", "replication_lock_timeout")?;
                self.count(&c, "replication_failure_threshold", "replication", "replication_failure_threshold")?;
                self.number(&c, "replication_failure_ratio", "replication", "replication_failure_ratio")?;
                if let Some(e) = c.get("allowed_headers") {
                    if !same_headers(&e.value, SWIFT_ALLOWED_HEADERS) {
                        let at = self.at(e);
                        self.draft.warn(format!(
                            "{at} allowed_headers = {}: aerie's object service stores Swift's default list only ({SWIFT_ALLOWED_HEADERS}); the others would not be kept on PUT or POST",
                            e.value
                        ));
                    }
                }
            }
            Service::Container => {
                self.number(&c, "conn_timeout", "processors.container", "conn_timeout")?;
                self.number(&c, "node_timeout", "processors.container", "node_timeout")?;
                if let Some(e) = self.take(&c, "allowed_sync_hosts") {
                    let hosts: Vec<Value> = e
                        .value
                        .split(',')
                        .map(str::trim)
                        .filter(|h| !h.is_empty())
                        .map(|h| Value::String(h.to_string()))
                        .collect();
                    let from = self.from(&e);
                    self.draft.set("storage", "allowed_sync_hosts", Value::Array(hosts), from);
                }
                if let Some(e) = c.get("allow_versions").filter(|e| truthy(&e.value)) {
                    let at = self.at(e);
                    self.draft.warn(format!(
                        "{at} allow_versions = {}: aerie's container service stores X-Versions-Location only as Swift does without it: a container's existing one stays, a new or changed one is not stored (the proxy's versioned_writes replaces it)",
                        e.value
                    ));
                }
            }
            Service::Account => {}
        }
        Ok(())
    }

    /// `server.user`, when this machine has that user; otherwise left out
    /// with a warning (once per name), so the result still checks here.
    fn user(&mut self, name: &str, from: Provenance) {
        if nix::unistd::User::from_name(name).ok().flatten().is_some() {
            return self.draft.set("server", "user", Value::String(name.to_string()), from);
        }
        let said = match &from {
            Provenance::Swift(s) => s.clone(),
            Provenance::SwiftDefault(s) => format!("{s} (Swift's default)"),
        };
        if self.users.iter().any(|u| u == name) {
            self.draft.header.push(format!("{said}: left out as well"));
            return;
        }
        self.users.push(name.to_string());
        let w = format!(
            "server.user is left out: the Swift servers run as `{name}` ({said}), which this machine has no user of; aerie would run as whoever starts it"
        );
        self.draft.warn(w.clone());
        self.draft.header.push(w);
    }

    fn swift_dir(&self, c: &Lookup) -> PathBuf {
        PathBuf::from(c.get("swift_dir").map_or(SWIFT_DIR, |e| e.value.trim()))
    }

    /// swift.conf's max_file_size (Swift's default is 5 GiB and 2 bytes),
    /// the largest body the object server accepts.
    fn max_file_size(&mut self, c: &Lookup) -> u64 {
        let path = self.swift_dir(c).join("swift.conf");
        match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| aerie_storage::swift_conf::parse(&t))
        {
            Ok(s) => s.constraints.max_file_size,
            Err(e) => {
                let d = aerie_storage::swift_conf::Constraints::default().max_file_size;
                self.draft.warn(format!(
                    "could not read {}: {e}; max_body_size assumes Swift's default max_file_size",
                    path.display()
                ));
                d
            }
        }
    }

    /// A server's daemon sections.
    fn daemons(&mut self, inst: &Instance) -> Result<(), ImportError> {
        let file = shown(self.dir, &inst.path);
        for (section, role) in daemon_sections(inst.service) {
            let Some(c) = inst.ini.daemon(section) else { continue };
            let here = Provenance::Swift(format!("{file} [{section}]"));
            match (inst.service, role) {
                (_, Daemon::Kept) => {
                    self.kept.insert(format!("swift-{section}"));
                }
                (Service::Object, Daemon::Replicator) => {
                    self.draft.set("replication", "object_replicator", Value::Boolean(true), here);
                    self.replicator(&c)?;
                    self.flag(&c, "handoffs_first", "replication", "handoffs_first");
                    self.number(&c, "http_timeout", "replication", "http_timeout")?;
                }
                (_, Daemon::Replicator) => {
                    self.draft.set("replication", "db_replicator", Value::Boolean(true), here);
                    self.replicator(&c)?;
                    self.number(&c, "conn_timeout", "replication", "conn_timeout")?;
                    self.count(&c, "per_diff", "replication", "per_diff")?;
                    self.count(&c, "max_diffs", "replication", "max_diffs")?;
                    self.number(&c, "databases_per_second", "replication", "databases_per_second")?;
                    self.flag(&c, "rsync_compress", "replication", "rsync_compress");
                    let module = if inst.service == Service::Container {
                        "container_rsync_module"
                    } else {
                        "account_rsync_module"
                    };
                    self.text(&c, "rsync_module", "replication", module);
                }
                (Service::Object, Daemon::Updater) => {
                    self.number(&c, "interval", "storage", "object_updater_interval")?;
                    self.text(&c, "recon_cache_path", "storage", "recon_cache_path");
                }
                (_, Daemon::Updater) => {
                    self.number(&c, "interval", "storage", "container_updater_interval")?;
                    self.number(&c, "account_suppression_time", "storage", "container_updater_suppression")?;
                    self.text(&c, "recon_cache_path", "storage", "recon_cache_path");
                }
            }
        }
        Ok(())
    }

    /// What every replicator section shares.
    fn replicator(&mut self, c: &Lookup) -> Result<(), ImportError> {
        if c.contains_key("interval") {
            self.number(c, "interval", "replication", "interval")?;
        } else {
            self.number(c, "run_pause", "replication", "interval")?;
        }
        self.count(c, "concurrency", "replication", "concurrency")?;
        self.number(c, "node_timeout", "replication", "node_timeout")?;
        self.number(c, "reclaim_age", "storage", "reclaim_age")?;
        self.text(c, "recon_cache_path", "storage", "recon_cache_path");
        if let Some(e) = self.take(c, "nice_priority") {
            let v = self.int(&e)?;
            if !(-20..=19).contains(&v) {
                return Err(self.bad(&e, "not between -20 and 19"));
            }
            let from = self.from(&e);
            self.draft.set("replication", "nice_priority", Value::Integer(v), from);
        }
        Ok(())
    }
}

/// Whether two `allowed_headers` lists name the same headers.
fn same_headers(a: &str, b: &str) -> bool {
    let set = |s: &str| -> BTreeSet<String> {
        s.split(',').map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect()
    };
    set(a) == set(b)
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn resolve(host: &str) -> Option<IpAddr> {
    host.parse::<IpAddr>().ok().or_else(|| (host, 0).to_socket_addrs().ok()?.next().map(|a| a.ip()))
}

/// The ports of the object rings' devices on `ip` (every address of this
/// machine for `0.0.0.0` or `::`), as Swift's servers_per_port binds them.
fn ring_ports(swift_dir: &Path, ip: &str) -> Result<Vec<u16>, String> {
    let mine: Vec<IpAddr> = match resolve(ip) {
        Some(a) if !a.is_unspecified() => vec![a],
        Some(_) => crate::background::local_ips(),
        None => return Err(format!("ring_ip {ip} does not resolve")),
    };
    let mut rings: Vec<PathBuf> = Vec::new();
    let conf = std::fs::read_to_string(swift_dir.join("swift.conf")).map_err(|e| e.to_string());
    match conf.and_then(|t| aerie_storage::swift_conf::parse(&t)) {
        Ok(s) => {
            for p in &s.policies {
                let name =
                    if p.index == 0 { "object.ring.gz".to_string() } else { format!("object-{}.ring.gz", p.index) };
                rings.push(swift_dir.join(name));
            }
        }
        Err(_) => rings.push(swift_dir.join("object.ring.gz")),
    }
    let mut ports = BTreeSet::new();
    let mut read = 0;
    for r in &rings {
        let Ok(ring) = aerie_storage::ring::Ring::load(r) else { continue };
        read += 1;
        for d in ring.devices() {
            if d.ip.parse::<IpAddr>().is_ok_and(|a| mine.contains(&a)) {
                ports.insert(d.port);
            }
        }
    }
    if read == 0 {
        return Err(format!("no object ring in {}", swift_dir.display()));
    }
    Ok(ports.into_iter().collect())
}

/// Why a filter of the pipeline is not taken over.
fn filter_why(what: &str) -> String {
    match what {
        "backend_ratelimit" => "Swift's backend_ratelimit filter is not taken over: aerie bounds each device's load with its own queue (processors.<service>.queue_per_device, 503 with Retry-After when full)".into(),
        "xprofile" => "Swift's profiler (eventlet) has no aerie equivalent: use perf on the workers".into(),
        other => format!("the `{other}` filter has no aerie equivalent: requests reach the service without it"),
    }
}

/// Build one node's configuration.
pub fn map_node(dir: &Path, all: &[Node<'_>], chosen: usize) -> Result<Draft, ImportError> {
    let node = &all[chosen];
    let mut m = Mapper {
        dir,
        draft: Draft::default(),
        used: BTreeSet::new(),
        workers: Vec::new(),
        kept: BTreeSet::new(),
        users: Vec::new(),
    };
    let files: Vec<String> = node.instances.iter().map(|i| shown(dir, &i.path)).collect();
    m.draft.header.push(format!(
        "aerie.toml taken over from Swift's configuration in {} by `aerie import-swift-conf` (aerie {}).",
        dir.display(),
        env!("CARGO_PKG_VERSION")
    ));
    m.draft.header.push(format!("Read: {}.", files.join(", ")));
    m.draft.header.push(
        "Above each key: the Swift setting it comes from. At the end: every setting aerie does not take over, with why. Check with `aerie --check-config -c FILE`.".into(),
    );
    for inst in &node.instances {
        m.server(inst)?;
    }
    for inst in &node.instances {
        m.daemons(inst)?;
    }

    // Workers: each aerie worker serves every service.
    let most = m.workers.iter().map(|(n, _)| *n).max();
    if let Some((most, from)) = m.workers.iter().find(|(n, _)| Some(*n) == most).cloned() {
        let all: Vec<String> = m.workers.iter().map(|(n, f)| format!("{n} ({})", describe(f))).collect();
        m.draft.replace(
            "server",
            "workers",
            Value::Integer(most as i64),
            from,
            format!(
                "each aerie worker serves every service, so the largest of the servers' counts: {}",
                all.join("; ")
            ),
        );
    }
    let services: BTreeSet<Service> = node.instances.iter().map(|i| i.service).collect();
    let has = |s: &str| node.instances.iter().any(|i| i.ini.has(s));
    if services.contains(&Service::Object) && !has("object-replicator") {
        m.draft.set(
            "replication",
            "object_replicator",
            Value::Boolean(false),
            Provenance::Swift(
                "no [object-replicator] section: Swift's object-replicator would not run with these files".into(),
            ),
        );
    }
    let db = services.contains(&Service::Container) || services.contains(&Service::Account);
    if db && !has("container-replicator") && !has("account-replicator") {
        m.draft.set(
            "replication",
            "db_replicator",
            Value::Boolean(false),
            Provenance::Swift(
                "no [container-replicator] or [account-replicator] section: Swift's would not run".into(),
            ),
        );
    } else if db && m.draft.get("replication", "db_replicator") == Some(&Value::Boolean(true)) {
        for (svc, section) in [(Service::Container, "container-replicator"), (Service::Account, "account-replicator")] {
            if services.contains(&svc) && !has(section) {
                let note = format!(
                    "there is no [{section}], but aerie's database replicator runs for every database service in a pipeline"
                );
                m.draft.warn(note.clone());
                m.draft.note("replication", "db_replicator", note);
            }
        }
    }
    if m.draft.get("storage", "recon_cache_path").is_none() {
        m.draft.set(
            "storage",
            "recon_cache_path",
            Value::String(SWIFT_RECON_CACHE.into()),
            Provenance::SwiftDefault(format!("recon_cache_path = {SWIFT_RECON_CACHE}")),
        );
    }
    // Several nodes on one machine (a SAIO) need admin listeners of their own.
    if all.len() > 1 {
        let address = admin_address(all, chosen, dir)?;
        m.draft.set(
            "admin",
            "address",
            Value::String(address),
            Provenance::Swift(format!(
                "{} configures {} nodes on this machine: each gets an admin listener of its own, on its own address",
                dir.display(),
                all.len()
            )),
        );
    }
    if !m.kept.is_empty() {
        let kept: Vec<String> = m.kept.iter().cloned().collect();
        m.draft.header.push(format!(
            "Swift's daemons configured here that aerie does not replace, which keep running on these files as today: {}.",
            kept.join(", ")
        ));
    }

    // Everything written that no aerie key took.
    for inst in &node.instances {
        let in_pipeline: Vec<&String> = inst.app.sections().collect();
        for e in inst.ini.written() {
            if m.used.contains(&e.origin) {
                continue;
            }
            let at = m.at(e);
            let why = super::why::why(inst, e, &in_pipeline);
            m.draft.unmapped.push(Unmapped { at, key: e.key.clone(), value: e.value.clone(), why });
        }
        for (e, by) in &inst.ini.overridden {
            let why =
                format!("replaced by {}:{}, a later file of the directory, as in Swift", shown(dir, &by.file), by.line);
            m.draft.unmapped.push(Unmapped { at: m.at(e), key: e.key.clone(), value: e.value.clone(), why });
        }
    }
    Ok(m.draft)
}

fn describe(f: &Provenance) -> String {
    match f {
        Provenance::Swift(s) | Provenance::SwiftDefault(s) => s.clone(),
    }
}

/// The admin address of node `chosen` of several on one machine: its
/// first listener's address (loopback for a wildcard) at 8079, or the next
/// port that no other node's admin takes.
fn admin_address(all: &[Node<'_>], chosen: usize, dir: &Path) -> Result<String, ImportError> {
    let mut taken: Vec<SocketAddr> = Vec::new();
    for (i, n) in all.iter().enumerate() {
        let ip = n
            .instances
            .first()
            .and_then(|inst| inst.app.conf.get("bind_ip").and_then(|e| resolve(&e.value)))
            .filter(|ip| !ip.is_unspecified())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let mut a = SocketAddr::new(ip, 8079);
        while taken.contains(&a) {
            a.set_port(a.port() + 1);
        }
        if i == chosen {
            return Ok(a.to_string());
        }
        taken.push(a);
    }
    Err(ImportError::Swift(format!("no node {chosen} in {}", dir.display())))
}
