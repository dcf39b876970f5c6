//! The object service over HTTP, against the real binary: the P0/P1 rows
//! of SWIFT-BACKEND.md §11 for the object server, the bytes on disk, and
//! interoperability with Swift's own object server from PyPI.

use crate::util::{
    md5_hex, start_swift_server, system_swift_conf, wait_until, Client, Response, Server, TempDir, SWIFT_CONF,
};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A node serving the object service on devices sda1 and sdb1.
pub struct Node {
    pub server: Server,
    pub root: PathBuf,
    _dir: TempDir,
}

impl Node {
    pub fn start() -> Node {
        Node::start_with("", "")
    }

    pub fn start_with(storage_extra: &str, object_extra: &str) -> Node {
        let dir = TempDir::new("obj");
        let root = dir.path().join("node");
        for d in ["sda1", "sdb1"] {
            std::fs::create_dir_all(root.join(d)).expect("device dir");
        }
        let conf = dir.path().join("swift.conf");
        std::fs::write(&conf, SWIFT_CONF).expect("swift.conf");
        let cfg = format!(
            "[server]\nworkers = 2\n[admin]\naddress = \"127.0.0.1:0\"\n[storage]\ndevices = {:?}\nmount_check = false\nswift_conf = {:?}\nobject_updater_interval = 0.3\n{storage_extra}\n\
             [[listen]]\naddress = \"127.0.0.1:0\"\nlength_required = []\nmax_body_size = 10995116277760\npipeline = [\"object\"]\n\n[processors.object]\nthreads_per_device = 2\n{object_extra}\n",
            root.display().to_string(),
            conf.display().to_string()
        );
        Node { server: Server::start(&cfg), root, _dir: dir }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        request(self.addr(), method, path, headers, body)
    }

    /// Files (relative paths) under a device, sorted.
    pub fn files(&self, device: &str) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.root.join(device), &self.root.join(device), &mut out);
        out.sort();
        out
    }
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(base, &p, out);
        } else {
            out.push(p.strip_prefix(base).unwrap_or(&p).display().to_string());
        }
    }
}

pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut c = Client::connect(addr);
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "PUT" {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body);
    c.send(&bytes);
    if method == "HEAD" {
        c.read_head_response()
    } else {
        c.read_response()
    }
}

static TS: AtomicU64 = AtomicU64::new(0);

/// A fresh, increasing timestamp in normal form.
pub fn ts() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_micros() as u64 / 10;
    let prev = TS.fetch_max(now, Ordering::SeqCst);
    let v = if now > prev { now } else { TS.fetch_add(1, Ordering::SeqCst) + 1 };
    format!("{:010}.{:05}", v / 100_000, v % 100_000)
}

pub const OBJ: &str = "/sda1/0/AUTH_t/c/o";

pub fn put(node: &Node, path: &str, body: &[u8], extra: &[(&str, &str)]) -> (Response, String) {
    let t = ts();
    let mut h: Vec<(&str, &str)> = vec![("X-Timestamp", &t)];
    if !extra.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
        h.push(("Content-Type", "text/plain"));
    }
    h.extend_from_slice(extra);
    (node.req("PUT", path, &h, body), t)
}

mod ec;
mod faults;
mod interop;
mod mime;
mod quarantine;
mod reads;
mod updates;
mod writes;
