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

const OBJ: &str = "/sda1/0/AUTH_t/c/o";

fn put(node: &Node, path: &str, body: &[u8], extra: &[(&str, &str)]) -> (Response, String) {
    let t = ts();
    let mut h: Vec<(&str, &str)> = vec![("X-Timestamp", &t)];
    if !extra.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
        h.push(("Content-Type", "text/plain"));
    }
    h.extend_from_slice(extra);
    (node.req("PUT", path, &h, body), t)
}

#[test]
fn put_then_get_and_head_return_the_object_with_its_headers() {
    let n = Node::start();
    let (r, t) = put(
        &n,
        OBJ,
        b"hello",
        &[
            ("X-Object-Meta-Color", "blue"),
            ("X-Object-Sysmeta-X", "s"),
            ("Content-Disposition", "inline"),
            ("X-Backend-Junk", "no"),
            ("X-Unknown", "no"),
        ],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("etag"), Some(format!("\"{}\"", md5_hex(b"hello")).as_str()));
    let g = n.req("GET", OBJ, &[], b"");
    assert_eq!(g.status, 200);
    assert_eq!(g.body, b"hello");
    assert_eq!(g.header("content-type"), Some("text/plain"));
    assert_eq!(g.header("x-object-meta-color"), Some("blue"));
    assert_eq!(g.header("x-object-sysmeta-x"), Some("s"));
    assert_eq!(g.header("content-disposition"), Some("inline"));
    assert_eq!(g.header("x-backend-junk"), None, "only the allowed keys are stored");
    assert_eq!(g.header("x-unknown"), None);
    assert_eq!(g.header("x-timestamp"), Some(t.as_str()));
    assert_eq!(g.header("x-backend-timestamp"), Some(t.as_str()));
    assert_eq!(g.header("x-backend-data-timestamp"), Some(t.as_str()));
    assert_eq!(g.header("x-backend-durable-timestamp"), Some(t.as_str()));
    assert!(g.header("last-modified").is_some_and(|v| v.ends_with(" GMT")));
    let h = n.req("HEAD", OBJ, &[("Range", "bytes=0-1")], b"");
    assert_eq!(h.status, 200, "HEAD ignores Range");
    assert_eq!(h.header("content-length"), Some("5"));
    // On disk: Swift's layout (hash of /AUTH_t/c/o with prefix and suffix
    // "changeme" is 12ff799997ba082a30012665b4e4fef2).
    let files = n.files("sda1");
    assert!(files.contains(&format!("objects/0/ef2/12ff799997ba082a30012665b4e4fef2/{t}.data")), "{files:?}");
    assert!(files.contains(&"objects/0/hashes.invalid".to_string()), "{files:?}");
    assert!(!files.iter().any(|f| f.starts_with("tmp/") && !f.ends_with(".lock")), "no temp files left: {files:?}");
}

#[test]
fn put_prechecks_answer_before_the_body() {
    let n = Node::start();
    let t = ts();
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (vec![("Content-Type", "a/b")], 400, "Missing X-Timestamp header"),
        (vec![("X-Timestamp", "nope"), ("Content-Type", "a/b")], 400, "Invalid X-Timestamp header"),
        (vec![("X-Timestamp", &t)], 400, "No content type"),
        (vec![("X-Timestamp", &t), ("Content-Type", "a/b"), ("X-Delete-At", "x")], 400, "Non-integer X-Delete-At"),
        (vec![("X-Timestamp", &t), ("Content-Type", "a/b"), ("X-Delete-At", "1")], 400, "X-Delete-At in past"),
        (
            vec![("X-Timestamp", &t), ("Content-Type", "a/b"), ("X-Delete-After", "x")],
            400,
            "Non-integer X-Delete-After",
        ),
        (vec![("X-Timestamp", &t), ("Content-Type", "a/b"), ("X-Delete-After", "-5")], 400, "X-Delete-After in past"),
        (
            vec![("X-Timestamp", &t), ("Content-Type", "a/b"), ("X-Object-Meta-", "v")],
            400,
            "Metadata name cannot be empty",
        ),
    ];
    for (headers, status, body) in cases {
        let mut c = Client::connect(n.addr());
        let mut raw = String::from("PUT /sda1/0/a/c/o HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n");
        for (k, v) in &headers {
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        raw.push_str("\r\n");
        c.send(raw.as_bytes());
        let (st, _) = c.read_head().expect("a final response, not 100");
        assert_eq!(st, status, "{headers:?}");
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut c.reader, &mut rest);
        assert!(String::from_utf8_lossy(&rest).contains(body), "{headers:?}: {}", String::from_utf8_lossy(&rest));
    }
    let long = "x".repeat(1025);
    let r = n.req("PUT", &format!("/sda1/0/a/c/{long}"), &[("X-Timestamp", &ts()), ("Content-Type", "a/b")], b"x");
    assert_eq!((r.status, r.text()), (400, "Object name length of 1025 longer than 1024".to_string()));
    let big = "v".repeat(257);
    let r = n.req("PUT", OBJ, &[("X-Timestamp", &ts()), ("Content-Type", "a/b"), ("X-Object-Meta-K", &big)], b"x");
    assert_eq!((r.status, r.text()), (400, "Metadata value longer than 256: x-object-meta-K".to_string()));
    let mut c = Client::connect(n.addr());
    c.send(format!("PUT {OBJ} HTTP/1.1\r\nX-Timestamp: {}\r\nContent-Type: a/b\r\nContent-Length: 5368709123\r\nExpect: 100-continue\r\n\r\n", ts()).as_bytes());
    let r = c.read_response();
    assert_eq!((r.status, r.text()), (413, "Your request is too large.".to_string()));
    // No length at all.
    let mut c = Client::connect(n.addr());
    c.send(format!("PUT {OBJ} HTTP/1.1\r\nX-Timestamp: {}\r\nContent-Type: a/b\r\n\r\n", ts()).as_bytes());
    assert_eq!(c.read_response().status, 411);
    assert!(n.files("sda1").iter().all(|f| !f.ends_with(".data")), "nothing was stored");
}

#[test]
fn conflicts_if_none_match_and_etag_checks() {
    let n = Node::start();
    let (r, t1) = put(&n, OBJ, b"one", &[]);
    assert_eq!(r.status, 201);
    // An older or equal timestamp: 409 with the stored timestamp, before any body.
    let mut c = Client::connect(n.addr());
    c.send(format!("PUT {OBJ} HTTP/1.1\r\nX-Timestamp: 0000000001.00000\r\nContent-Type: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n").as_bytes());
    let (st, h) = c.read_head().expect("final");
    assert_eq!(st, 409);
    assert!(h.iter().any(|(k, v)| k.eq_ignore_ascii_case("x-backend-timestamp") && *v == t1));
    let r = n.req("PUT", OBJ, &[("X-Timestamp", &t1), ("Content-Type", "a")], b"one");
    assert_eq!(r.status, 409);
    let r = n.req("PUT", OBJ, &[("X-Timestamp", &ts()), ("Content-Type", "a"), ("If-None-Match", "*")], b"two");
    assert_eq!(r.status, 412);
    let r = n.req(
        "PUT",
        OBJ,
        &[("X-Timestamp", &ts()), ("Content-Type", "a"), ("If-None-Match", &format!("\"{}\"", md5_hex(b"one")))],
        b"x",
    );
    assert_eq!(r.status, 412);
    let r = n.req("PUT", OBJ, &[("X-Timestamp", &ts()), ("Content-Type", "a"), ("Etag", &md5_hex(b"other"))], b"two");
    assert_eq!(r.status, 422);
    let r = n.req(
        "PUT",
        OBJ,
        &[("X-Timestamp", &ts()), ("Content-Type", "a"), ("Etag", &md5_hex(b"two").to_uppercase())],
        b"two",
    );
    assert_eq!(r.status, 422, "the comparison is exact");
    let r = n.req(
        "PUT",
        OBJ,
        &[("X-Timestamp", &ts()), ("Content-Type", "a"), ("Etag", &format!("\"{}\"", md5_hex(b"two")))],
        b"two",
    );
    assert_eq!(r.status, 201);
    assert_eq!(n.req("GET", OBJ, &[], b"").body, b"two");
    // Replaced data is removed right after the write, off the request path.
    wait_until("older data to be removed", Duration::from_secs(5), || {
        n.files("sda1").iter().filter(|f| f.ends_with(".data")).count() == 1
    });
}

#[test]
fn zero_length_chunked_put_as_the_proxy_sends_it() {
    let n = Node::start();
    let mut c = Client::connect(n.addr());
    c.send(format!("PUT {OBJ} HTTP/1.1\r\nX-Timestamp: {}\r\nContent-Type: a/b\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n", ts()).as_bytes());
    assert_eq!(c.read_head().expect("100").0, 100);
    c.send(b"0\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 201);
    assert_eq!(r.header("etag"), Some("\"d41d8cd98f00b204e9800998ecf8427e\""));
    let g = n.req("GET", OBJ, &[], b"");
    assert_eq!((g.status, g.header("content-length")), (200, Some("0")));
}

#[test]
fn a_short_body_is_499_and_leaves_nothing() {
    let n = Node::start();
    let mut c = Client::connect(n.addr());
    c.send(
        format!(
            "PUT {OBJ} HTTP/1.1\r\nX-Timestamp: {}\r\nContent-Type: a/b\r\nContent-Length: 100\r\n\r\nonly ten b",
            ts()
        )
        .as_bytes(),
    );
    c.stream().shutdown(std::net::Shutdown::Write).expect("half close");
    let _ = c.try_read_response(false);
    wait_until("the aborted PUT to finish", Duration::from_secs(5), || n.server.log().contains("status=499"));
    assert!(
        n.files("sda1").iter().all(|f| !f.ends_with(".data") && !f.starts_with("tmp/tmp")),
        "{:?}",
        n.files("sda1")
    );
    assert_eq!(n.req("GET", OBJ, &[], b"").status, 404);
}

#[test]
fn delete_tombstones_and_backend_timestamps() {
    let n = Node::start();
    let r = n.req("DELETE", OBJ, &[("X-Timestamp", &ts())], b"");
    assert_eq!(r.status, 404, "deleting nothing is 404");
    let files = n.files("sda1");
    assert!(files.iter().any(|f| f.ends_with(".ts")), "…but still leaves a tombstone: {files:?}");
    let (_, t_put) = put(&n, OBJ, b"data", &[]);
    let t_del = ts();
    let r = n.req("DELETE", OBJ, &[("X-Timestamp", &t_del)], b"");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("x-backend-timestamp"), Some(t_del.as_str()));
    assert_eq!(r.header("x-backend-content-type"), Some("text/plain"));
    let g = n.req("GET", OBJ, &[], b"");
    assert_eq!(g.status, 404);
    assert_eq!(g.header("x-backend-timestamp"), Some(t_del.as_str()), "a tombstone 404 carries its timestamp");
    let h = n.req("HEAD", "/sda1/0/AUTH_t/c/never", &[], b"");
    assert_eq!((h.status, h.header("x-backend-timestamp")), (404, None));
    // Data newer than the request: 409.
    let (_, t2) = put(&n, OBJ, b"again", &[]);
    let r = n.req("DELETE", OBJ, &[("X-Timestamp", &t_put)], b"");
    assert_eq!((r.status, r.header("x-backend-timestamp")), (409, Some(t2.as_str())));
    let r = n.req("DELETE", OBJ, &[], b"");
    assert_eq!(r.status, 400);
}

#[test]
fn post_replaces_user_metadata_keeps_sysmeta_and_tracks_content_type() {
    let n = Node::start();
    let (_, t_put) = put(
        &n,
        OBJ,
        b"abc",
        &[("X-Object-Meta-A", "1"), ("X-Object-Sysmeta-S", "keep"), ("Content-Type", "text/plain")],
    );
    let t_post = ts();
    let r = n.req(
        "POST",
        OBJ,
        &[
            ("X-Timestamp", &t_post),
            ("X-Object-Meta-B", "2"),
            ("X-Object-Sysmeta-S", "changed"),
            ("Content-Type", "image/png"),
        ],
        b"",
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.header("x-backend-content-type"), Some("image/png"));
    assert_eq!(r.header("x-object-sysmeta-s"), Some("keep"));
    let g = n.req("GET", OBJ, &[], b"");
    assert_eq!(g.header("content-type"), Some("image/png"));
    assert_eq!(g.header("x-object-meta-a"), None, "PUT's user metadata is gone after a POST");
    assert_eq!(g.header("x-object-meta-b"), Some("2"));
    assert_eq!(g.header("x-object-sysmeta-s"), Some("keep"), "sysmeta cannot be changed by POST");
    assert_eq!(g.header("x-timestamp"), Some(t_post.as_str()));
    assert_eq!(g.header("x-backend-data-timestamp"), Some(t_put.as_str()));
    // A second POST without Content-Type keeps the POSTed content type, in
    // a .meta whose name carries the content-type timestamp.
    let r = n.req("POST", OBJ, &[("X-Timestamp", &ts()), ("X-Object-Meta-C", "3")], b"");
    assert_eq!(r.status, 202);
    let g = n.req("GET", OBJ, &[], b"");
    assert_eq!(g.header("content-type"), Some("image/png"));
    assert_eq!(g.header("x-object-meta-c"), Some("3"));
    // The older .meta is removed by the janitor after the answer.
    let metas = || -> Vec<String> { n.files("sda1").into_iter().filter(|f| f.ends_with(".meta")).collect() };
    wait_until("the replaced .meta to be cleaned up", Duration::from_secs(10), || metas().len() == 1);
    let metas = metas();
    assert!(metas[0].contains('-') || metas[0].contains('+'), "{metas:?}");
    // Older than the current metadata: 409; missing object: 404.
    let r = n.req("POST", OBJ, &[("X-Timestamp", &t_put)], b"");
    assert_eq!(r.status, 409);
    let r = n.req("POST", "/sda1/0/AUTH_t/c/missing", &[("X-Timestamp", &ts())], b"");
    assert_eq!(r.status, 404);
}

#[test]
fn ranges_single_multiple_and_unsatisfiable() {
    let n = Node::start();
    put(&n, OBJ, b"0123456789", &[("Content-Type", "text/x")]);
    let r = n.req("GET", OBJ, &[("Range", "bytes=2-4")], b"");
    assert_eq!((r.status, r.body.as_slice()), (206, &b"234"[..]));
    assert_eq!(r.header("content-range"), Some("bytes 2-4/10"));
    let r = n.req("GET", OBJ, &[("Range", "bytes=-3")], b"");
    assert_eq!(r.body, b"789");
    let r = n.req("GET", OBJ, &[("Range", "bytes=0-1,8-")], b"");
    assert_eq!(r.status, 206);
    let ct = r.header("content-type").expect("ctype").to_string();
    let boundary = ct.strip_prefix("multipart/byteranges;boundary=").expect("multipart");
    assert_eq!(boundary.len(), 32);
    let want = format!(
        "--{boundary}\r\nContent-Type: text/x\r\nContent-Range: bytes 0-1/10\r\n\r\n01\r\n--{boundary}\r\nContent-Type: text/x\r\nContent-Range: bytes 8-9/10\r\n\r\n89\r\n--{boundary}--"
    );
    assert_eq!(r.text(), want);
    let r = n.req("GET", OBJ, &[("Range", "bytes=20-")], b"");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */10"));
    assert_eq!(r.header("content-type"), Some("text/x"));
    assert!(r.text().contains("Requested Range Not Satisfiable"));
    let r = n.req("GET", OBJ, &[("Range", "bytes=5-1")], b"");
    assert_eq!((r.status, r.body.len()), (200, 10), "a bad Range is ignored");
}

#[test]
fn conditional_requests_in_swifts_order() {
    let n = Node::start();
    put(&n, OBJ, b"abc", &[]);
    let etag = md5_hex(b"abc");
    let q = |h: &[(&str, &str)]| n.req("GET", OBJ, h, b"").status;
    assert_eq!(q(&[("If-None-Match", &format!("\"{etag}\""))]), 304);
    assert_eq!(q(&[("If-None-Match", "*"), ("Range", "bytes=0-0")]), 304, "conditionals before Range");
    assert_eq!(q(&[("If-Match", "\"nope\"")]), 412);
    assert_eq!(q(&[("If-Match", &etag)]), 200);
    assert_eq!(q(&[("If-Modified-Since", "Sun, 06 Nov 2094 08:49:37 GMT")]), 304);
    assert_eq!(q(&[("If-Unmodified-Since", "Sunday, 06-Nov-94 08:49:37 GMT")]), 412);
    assert_eq!(q(&[("If-Modified-Since", "Sun Nov  6 08:49:37 1994")]), 200);
    assert_eq!(q(&[("If-Modified-Since", "garbage")]), 200);
    let r = n.req("GET", "/sda1/0/AUTH_t/c/none", &[("If-Match", "*")], b"");
    assert_eq!(r.status, 412);
    // X-Backend-Etag-Is-At: the conditional etag comes from metadata.
    put(&n, "/sda1/0/AUTH_t/c/e", b"x", &[("X-Object-Sysmeta-Alt-Etag", "alt")]);
    let r = n.req(
        "GET",
        "/sda1/0/AUTH_t/c/e",
        &[("X-Backend-Etag-Is-At", "X-Object-Sysmeta-Alt-Etag"), ("If-Match", "alt")],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("etag"), Some(format!("\"{}\"", md5_hex(b"x")).as_str()), "Etag still shows the stored one");
}

#[test]
fn expiry_and_x_if_delete_at() {
    let n = Node::start();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
    let at = (now + 100).to_string();
    let (r, t) = put(&n, OBJ, b"x", &[("X-Delete-At", &at)]);
    assert_eq!(r.status, 201);
    assert_eq!(n.req("GET", OBJ, &[], b"").header("x-delete-at"), Some(at.as_str()));
    // Seen from a request time after the deadline, it is gone…
    let later = format!("{}.00000", now + 200);
    let g = n.req("GET", OBJ, &[("X-Timestamp", &later)], b"");
    assert_eq!((g.status, g.header("x-backend-timestamp")), (404, Some(t.as_str())));
    // …unless the proxy asks for expired objects.
    assert_eq!(n.req("GET", OBJ, &[("X-Timestamp", &later), ("X-Backend-Open-Expired", "true")], b"").status, 200);
    assert_eq!(n.req("DELETE", OBJ, &[("X-Timestamp", &later), ("X-If-Delete-At", "nope")], b"").status, 400);
    let r = n.req("DELETE", OBJ, &[("X-Timestamp", &later), ("X-If-Delete-At", "1")], b"");
    assert_eq!(r.status, 412);
    let r = n.req("DELETE", OBJ, &[("X-Timestamp", &later), ("X-If-Delete-At", &at)], b"");
    assert_eq!(r.status, 204, "the expirer reaps an expired object");
}

#[test]
fn bad_paths_policies_and_devices() {
    let n = Node::start();
    let t = ts();
    let h = [("X-Timestamp", t.as_str()), ("Content-Type", "a")];
    let r = n.req("PUT", "/sda1/0/a/c", &h, b"x");
    assert_eq!((r.status, r.text()), (400, "Invalid path: /sda1/0/a/c".to_string()));
    let r = n.req("GET", "/sda1/0/a/c/%FF", &[], b"");
    assert_eq!((r.status, r.text()), (412, "Invalid UTF8 or contains NULL".to_string()));
    let r = n.req("GET", "/sda1/0/a/c/o", &[("X-Backend-Storage-Policy-Index", "7")], b"");
    assert_eq!((r.status, r.text()), (503, "No policy with index 7".to_string()));
    let r = n.req("GET", "/nosuch/0/a/c/o", &[], b"");
    assert_eq!(r.status, 507);
    assert!(r.text().ends_with("Drive: nosuch</p></html>"), "{}", r.text());
    let r = n.req("PATCH", "/sda1/0/a/c/o", &[], b"");
    assert_eq!(r.status, 405);
    let r = n.req("GET", "/sda1/0/a/c/o", &[("X-Timestamp", "bad")], b"");
    assert_eq!(
        (r.status, r.text()),
        (400, "X-Timestamp should be a UNIX timestamp float value; was 'bad'".to_string())
    );
    let r = n.req("PUT", "/sda1/0/a/c/x%00y", &h, b"x");
    assert_eq!((r.status, r.text()), (400, "Invalid reserved-namespace object".to_string()));
    // Policy 1 lives in objects-1.
    let (r, _) = put(&n, "/sdb1/3/a/c/p1", b"one", &[("X-Backend-Storage-Policy-Index", "1")]);
    assert_eq!(r.status, 201);
    assert!(n.files("sdb1").iter().any(|f| f.starts_with("objects-1/3/")), "{:?}", n.files("sdb1"));
    assert_eq!(n.req("GET", "/sdb1/3/a/c/p1", &[], b"").status, 404, "policy 0 does not see it");
    assert_eq!(n.req("GET", "/sdb1/3/a/c/p1", &[("X-Backend-Storage-Policy-Index", "1")], b"").body, b"one");
}

#[test]
fn an_unmounted_device_is_507_with_mount_check() {
    let n = Node::start_with("", "");
    drop(n);
    let dir = TempDir::new("mc");
    let root = dir.path().join("node");
    std::fs::create_dir_all(root.join("sda1")).expect("dir");
    let conf = dir.path().join("swift.conf");
    std::fs::write(&conf, SWIFT_CONF).expect("conf");
    let s = Server::start(&format!(
        "[server]\nworkers = 1\n[admin]\naddress = \"127.0.0.1:0\"\n[storage]\ndevices = {:?}\nmount_check = true\nswift_conf = {:?}\n[[listen]]\naddress = \"127.0.0.1:0\"\nlength_required = []\npipeline = [\"object\"]\n",
        root.display().to_string(),
        conf.display().to_string()
    ));
    let r = request(s.addr(), "PUT", "/sda1/0/a/c/o", &[("X-Timestamp", &ts()), ("Content-Type", "a")], b"x");
    assert_eq!(r.status, 507, "a plain directory is not a mounted device");
}

#[test]
fn container_updates_reach_the_container_and_failures_become_async_pendings() {
    use std::io::{BufRead, BufReader, Write};
    let n = Node::start();
    let (stub_addr, rx) = crate::util::stub_server(|_| crate::util::CREATED);
    let host = stub_addr.to_string();
    let (r, t) = put(
        &n,
        "/sda1/0/AUTH_t/c/upd%20x",
        b"abc",
        &[
            ("X-Container-Host", &host),
            ("X-Container-Device", "sdb1"),
            ("X-Container-Partition", "5"),
            ("X-Trans-Id", "tx123"),
            ("X-Object-Sysmeta-Container-Update-Override-Etag", "abc; foo=bar"),
        ],
    );
    assert_eq!(r.status, 201);
    let lines = rx.recv_timeout(Duration::from_secs(5)).expect("the container update");
    assert_eq!(lines[0], "PUT /sdb1/5/AUTH_t/c/upd%20x HTTP/1.1");
    let has = |k: &str, v: &str| lines.iter().any(|l| l.eq_ignore_ascii_case(&format!("{k}: {v}")));
    assert!(has("X-Size", "3"), "{lines:?}");
    assert!(has("X-Content-Type", "text/plain"), "{lines:?}");
    assert!(has("X-Timestamp", &t), "{lines:?}");
    assert!(has("X-Etag", "abc; foo=bar"), "the override wins: {lines:?}");
    assert!(has("X-Trans-Id", "tx123"));
    assert!(has("X-Backend-Storage-Policy-Index", "0"));
    assert!(lines.iter().any(|l| l.starts_with("User-Agent: object-server ")));
    assert!(lines.iter().any(|l| l.starts_with("Referer: PUT http://")));
    // With the container host down the update is saved, in Swift's place.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let (r, _) = put(
        &n,
        "/sda1/0/AUTH_t/c/later",
        b"xyz",
        &[("X-Container-Host", &dead.to_string()), ("X-Container-Device", "sdb1"), ("X-Container-Partition", "5")],
    );
    assert_eq!(r.status, 201, "a failed container update does not fail the PUT");
    wait_until("an async pending", Duration::from_secs(5), || {
        n.files("sda1").iter().any(|f| f.starts_with("async_pending/"))
    });
    let pending = n.files("sda1").into_iter().find(|f| f.starts_with("async_pending/")).expect("pending");
    // Swift's updater could read it: a pickle with its keys.
    let python = crate::util::python_with(&[]);
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg("import pickle,sys; d=pickle.load(open(sys.argv[1],'rb')); print(d['op'], d['account'], d['container'], d['obj'], d['headers']['X-Size'])")
        .arg(n.root.join("sda1").join(&pending))
        .output()
        .expect("python");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "PUT AUTH_t c later 3",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The object updater (a process of its own) delivers it once the
    // container is back, and removes the record.
    let back = std::net::TcpListener::bind(dead).expect("the container comes back on its port");
    let (tx2, rx2) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Some(conn) = back.incoming().flatten().next() {
            let mut r = BufReader::new(conn.try_clone().expect("clone"));
            let mut first = String::new();
            let _ = r.read_line(&mut first);
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
                    break;
                }
            }
            let _ = (&conn).write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
            let _ = tx2.send(first);
        }
    });
    let first = rx2.recv_timeout(Duration::from_secs(20)).expect("the updater's delivery");
    assert_eq!(first.trim_end(), "PUT /sdb1/5/AUTH_t/c/later HTTP/1.1");
    wait_until("the delivered record to be removed", Duration::from_secs(10), || {
        !n.files("sda1").iter().any(|f| f.starts_with("async_pending/"))
    });
    let st = n.server.status();
    assert!(st["workers"].as_array().is_some_and(|w| w.iter().any(|w| w["role"] == "object-updater")), "{st}");
}

fn start_node_on_system_conf() -> Node {
    let conf = system_swift_conf();
    let dir = TempDir::new("interop");
    let root = dir.path().join("node");
    std::fs::create_dir_all(root.join("sda1")).expect("dir");
    let cfg = format!(
        "[server]\nworkers = 1\n[admin]\naddress = \"127.0.0.1:0\"\n[storage]\ndevices = {:?}\nmount_check = false\nswift_conf = {:?}\n[[listen]]\naddress = \"127.0.0.1:0\"\nlength_required = []\npipeline = [\"object\"]\n",
        root.display().to_string(),
        conf.display().to_string()
    );
    Node { server: Server::start(&cfg), root, _dir: dir }
}

fn comparable(r: &Response) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(k, _)| {
            !["date", "server", "connection", "transfer-encoding"].contains(&k.to_ascii_lowercase().as_str())
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    h.sort();
    h
}

#[test]
fn interop_objects_move_between_swift_and_aerie_both_ways() {
    let node = start_node_on_system_conf();
    let swift = start_swift_server("object", &node.root);
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let meta =
        [("X-Object-Meta-Caf\u{e9}", "\u{e9}t\u{e9}"), ("X-Object-Sysmeta-Slo", "yes"), ("Content-Encoding", "gzip")];
    // Written by Swift, served by aerie with identical bytes and headers.
    let t = ts();
    let mut h: Vec<(&str, &str)> = vec![("X-Timestamp", &t), ("Content-Type", "application/x; swift_bytes=5")];
    h.extend_from_slice(&[
        ("X-Object-Meta-Color", "blue"),
        ("X-Object-Sysmeta-Slo", "yes"),
        ("Content-Encoding", "gzip"),
    ]);
    let r = request(swift.addr, "PUT", "/sda1/0/AUTH_t/c/from-swift", &h, &body);
    assert_eq!(r.status, 201, "{}", r.text());
    for method in ["GET", "HEAD"] {
        let a = request(node.addr(), method, "/sda1/0/AUTH_t/c/from-swift", &[], b"");
        let s = request(swift.addr, method, "/sda1/0/AUTH_t/c/from-swift", &[], b"");
        assert_eq!(a.status, s.status);
        assert_eq!(a.body, s.body);
        assert_eq!(comparable(&a), comparable(&s), "{method}");
    }
    // Written by aerie, served by Swift identically and read by swift-object-info.
    let t = ts();
    let mut h: Vec<(&str, &str)> = vec![("X-Timestamp", &t), ("Content-Type", "text/plain")];
    h.extend_from_slice(&meta[1..]);
    h.push(("X-Object-Meta-Color", "red"));
    let r = request(node.addr(), "PUT", "/sda1/0/AUTH_t/c/from-aerie", &h, &body);
    assert_eq!(r.status, 201);
    let post_t = ts();
    let r = request(
        node.addr(),
        "POST",
        "/sda1/0/AUTH_t/c/from-aerie",
        &[("X-Timestamp", &post_t), ("X-Object-Meta-After", "post"), ("Content-Type", "image/png")],
        b"",
    );
    assert_eq!(r.status, 202);
    for (method, range) in [("GET", None), ("HEAD", None), ("GET", Some("bytes=10-20"))] {
        let extra: Vec<(&str, &str)> = range.map(|r| vec![("Range", r)]).unwrap_or_default();
        let a = request(node.addr(), method, "/sda1/0/AUTH_t/c/from-aerie", &extra, b"");
        let s = request(swift.addr, method, "/sda1/0/AUTH_t/c/from-aerie", &extra, b"");
        assert_eq!((a.status, &a.body), (s.status, &s.body), "{method} {range:?}");
        assert_eq!(comparable(&a), comparable(&s), "{method} {range:?}");
    }
    let info_bin = crate::util::swift_python().parent().expect("bin").join("swift-object-info");
    let data = node.files("sda1").into_iter().find(|f| f.ends_with(&format!("{t}.data"))).expect("data file");
    let out =
        std::process::Command::new(info_bin).arg(node.root.join("sda1").join(data)).output().expect("object-info");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("Path: /AUTH_t/c/from-aerie"), "{text}");
    assert!(text.contains("(valid)") && !text.contains("invalid"), "{text}");
    assert!(text.contains("X-Object-Sysmeta-Slo: yes"), "{text}");
    // Deleted by Swift, seen deleted by aerie with the same timestamp.
    let dt = ts();
    assert_eq!(request(swift.addr, "DELETE", "/sda1/0/AUTH_t/c/from-aerie", &[("X-Timestamp", &dt)], b"").status, 204);
    let a = request(node.addr(), "GET", "/sda1/0/AUTH_t/c/from-aerie", &[], b"");
    assert_eq!((a.status, a.header("x-backend-timestamp")), (404, Some(dt.as_str())));
}

#[test]
fn a_full_device_answers_507_leaves_no_partial_object_and_others_keep_serving() {
    let n = Node::start();
    let small = n.root.join("sda1");
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&small)
        .status()
        .expect("mount");
    assert!(status.success(), "mounting a tmpfs needs root (CI runs as root)");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(small.clone());
    let big = vec![7u8; 12 * 1024 * 1024];
    let (r, _) = put(&n, "/sda1/0/a/c/big", &big, &[]);
    assert_eq!(r.status, 507, "{}", r.text());
    let files = n.files("sda1");
    assert!(!files.iter().any(|f| f.ends_with(".data") || f.starts_with("tmp/tmp")), "{files:?}");
    // A chunked upload (size unknown up front) also fails cleanly.
    let mut c = Client::connect(n.addr());
    c.send(
        format!(
            "PUT /sda1/0/a/c/big2 HTTP/1.1\r\nX-Timestamp: {}\r\nContent-Type: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            ts()
        )
        .as_bytes(),
    );
    let chunk = vec![1u8; 1 << 20];
    for _ in 0..12 {
        c.send(format!("{:x}\r\n", chunk.len()).as_bytes());
        if std::io::Write::write_all(c.stream(), &chunk).is_err() {
            break;
        }
        c.send(b"\r\n");
    }
    let _ = std::io::Write::write_all(c.stream(), b"0\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 507);
    assert!(!n.files("sda1").iter().any(|f| f.ends_with(".data") || f.starts_with("tmp/tmp")));
    let (r, _) = put(&n, "/sdb1/0/a/c/fine", b"ok", &[]);
    assert_eq!(r.status, 201, "the other device serves");
    let (r, _) = put(&n, "/sda1/0/a/c/tiny", b"ok", &[]);
    assert_eq!(r.status, 201, "a small object still fits");
}

#[test]
fn sigkill_mid_put_keeps_the_previous_version_and_no_partial_file() {
    let n = Node::start();
    let (r, _) = put(&n, OBJ, b"old version", &[]);
    assert_eq!(r.status, 201);
    let mut c = Client::connect(n.addr());
    let len = 100 * 1024 * 1024;
    c.send(
        format!("PUT {OBJ} HTTP/1.1\r\nX-Timestamp: {}\r\nContent-Type: a\r\nContent-Length: {len}\r\n\r\n", ts())
            .as_bytes(),
    );
    let chunk = vec![3u8; 1 << 20];
    for _ in 0..20 {
        c.send(&chunk);
    }
    // Kill whichever worker holds the upload.
    std::thread::sleep(Duration::from_millis(200));
    for w in n.server.workers() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(w as i32), nix::sys::signal::Signal::SIGKILL);
    }
    drop(c);
    // Two workers and the object updater come back.
    wait_until("replacements", Duration::from_secs(10), || n.server.workers().len() == 3);
    wait_until("serving", Duration::from_secs(10), || n.req("GET", OBJ, &[], b"").status == 200);
    assert_eq!(n.req("GET", OBJ, &[], b"").body, b"old version");
    let files = n.files("sda1");
    let outside_tmp: Vec<&String> = files.iter().filter(|f| !f.starts_with("tmp/") && f.ends_with(".data")).collect();
    assert_eq!(outside_tmp.len(), 1, "only the old version is visible: {files:?}");
}

fn mime_put(
    n: &Node,
    path: &str,
    body: &[u8],
    footer: &str,
    md5_override: Option<&str>,
) -> (Vec<(String, String)>, Response) {
    let boundary = "d0ff1d0e4c7e4a1b9b2c6f9a1e2d3c4b5a697887766554433221100ffeeddccb";
    let md5 = md5_override.map(str::to_string).unwrap_or_else(|| md5_hex(footer.as_bytes()));
    let mut doc = format!("--{boundary}\r\nX-Document: object body\r\n\r\n").into_bytes();
    doc.extend_from_slice(body);
    doc.extend_from_slice(
        format!("\r\n--{boundary}\r\nX-Document: object metadata\r\nContent-MD5: {md5}\r\n\r\n{footer}\r\n--{boundary}--\r\n").as_bytes(),
    );
    let mut c = Client::connect(n.addr());
    c.send(
        format!(
            "PUT {path} HTTP/1.1\r\nX-Timestamp: {}\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\
             X-Backend-Obj-Content-Length: {}\r\nX-Backend-Obj-Metadata-Footer: yes\r\nX-Backend-Obj-Multipart-Mime-Boundary: {boundary}\r\n\r\n",
            ts(),
            body.len()
        )
        .as_bytes(),
    );
    let (status, interim) = c.read_head().expect("interim");
    assert_eq!(status, 100);
    c.send(format!("{:x}\r\n", doc.len()).as_bytes());
    c.send(&doc);
    c.send(b"\r\n0\r\n\r\n");
    (interim, c.read_response())
}

#[test]
fn mime_footer_puts_store_footer_metadata() {
    let n = Node::start();
    let footer = format!(
        "{{\"Etag\": \"{}\", \"X-Object-Sysmeta-Crypto-X\": \"secret\", \"X-Object-Meta-Footer\": \"yes\"}}",
        md5_hex(b"body bytes")
    );
    let (interim, r) = mime_put(&n, OBJ, b"body bytes", &footer, None);
    assert!(interim.iter().any(|(k, v)| k.eq_ignore_ascii_case("x-obj-metadata-footer") && v == "yes"), "{interim:?}");
    assert_eq!(r.status, 201, "{}", r.text());
    let g = n.req("GET", OBJ, &[], b"");
    assert_eq!(g.body, b"body bytes");
    assert_eq!(g.header("x-object-sysmeta-crypto-x"), Some("secret"));
    assert_eq!(g.header("x-object-meta-footer"), Some("yes"));
    let (_, r) = mime_put(&n, OBJ, b"x", "{}", Some("0123"));
    assert_eq!((r.status, r.text()), (422, "footer MD5 mismatch".to_string()));
    let (_, r) = mime_put(&n, OBJ, b"x", "{\"Etag\": \"nope\"}", None);
    assert_eq!(r.status, 422, "the footer Etag must match the body");
    let r = n.req(
        "PUT",
        OBJ,
        &[("X-Timestamp", &ts()), ("Content-Type", "a"), ("X-Backend-Obj-Metadata-Footer", "yes")],
        b"x",
    );
    assert_eq!((r.status, r.text()), (400, "no MIME boundary".to_string()));
}

#[test]
fn a_1_gib_get_streams_with_a_few_mib_of_worker_memory() {
    use std::io::Read;
    let n = Node::start();
    let size: u64 = 1 << 30;
    let mut c = Client::connect(n.addr());
    c.send(
        format!(
            "PUT /sda1/0/a/c/huge HTTP/1.1\r\nX-Timestamp: {}\r\nContent-Type: a\r\nContent-Length: {size}\r\n\r\n",
            ts()
        )
        .as_bytes(),
    );
    let chunk: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 253) as u8).collect();
    for _ in 0..(size >> 20) {
        c.send(&chunk);
    }
    assert_eq!(c.read_response().status, 201);
    let workers = n.server.workers();
    let before: u64 = workers.iter().map(|w| crate::util::rss(*w)).sum();
    let mut g = Client::connect(n.addr());
    g.send(b"GET /sda1/0/a/c/huge HTTP/1.1\r\nConnection: close\r\n\r\n");
    let (status, headers) = g.read_head().expect("head");
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("content-length") && v == &size.to_string()));
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0u64;
    let mut peak = before;
    let mut n_reads = 0u64;
    while got < size {
        let k = g.reader.read(&mut buf).expect("read");
        assert!(k > 0, "short body at {got}");
        got += k as u64;
        n_reads += 1;
        if n_reads % 64 == 0 {
            peak = peak.max(workers.iter().map(|w| crate::util::rss(*w)).sum());
        }
    }
    let growth = peak.saturating_sub(before);
    assert!(growth < 16 * 1024 * 1024, "workers' RSS grew by {growth} bytes during a 1 GiB GET");
}

#[test]
fn metadata_too_big_for_ext4_xattrs_is_507_and_stores_nothing() {
    let n = Node::start();
    let big = "s".repeat(3000);
    let (r, _) = put(&n, OBJ, b"x", &[("X-Object-Sysmeta-A", &big), ("X-Object-Sysmeta-B", &big)]);
    let fs = std::process::Command::new("stat").args(["-f", "-c", "%T"]).arg(&n.root).output().expect("stat");
    let fs = String::from_utf8_lossy(&fs.stdout).trim().to_string();
    if fs == "ext2/ext3" {
        // ext4 keeps a file's xattrs in one 4 KiB block.
        assert_eq!(r.status, 507, "{}", r.text());
        assert!(
            !n.files("sda1").iter().any(|f| f.ends_with(".data") || f.starts_with("tmp/tmp")),
            "{:?}",
            n.files("sda1")
        );
    } else {
        assert_eq!(r.status, 201, "{fs} holds large xattrs");
    }
}

#[test]
fn post_and_expiry_updates_match_the_captured_wire_format() {
    let n = Node::start();
    let (stub_addr, rx) = crate::util::stub_server(|_| crate::util::CREATED);
    let host = stub_addr.to_string();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
    let at = (now + 3600).to_string();
    let upd = [("X-Container-Host", host.as_str()), ("X-Container-Device", "sdb1"), ("X-Container-Partition", "5")];
    let mut h = upd.to_vec();
    h.extend_from_slice(&[
        ("X-Delete-At", at.as_str()),
        ("X-Delete-At-Host", host.as_str()),
        ("X-Delete-At-Device", "sdc1"),
        ("X-Delete-At-Partition", "7"),
        ("X-Object-Sysmeta-Container-Update-Override-Etag", "abc; foo=bar"),
    ]);
    let (r, t_put) = put(&n, "/sda1/0/AUTH_t/c/upd%20x", b"abc", &h);
    assert_eq!(r.status, 201);
    let mut got: Vec<Vec<String>> = (0..2).map(|_| rx.recv_timeout(Duration::from_secs(5)).expect("update")).collect();
    got.sort();
    let expirer = got.iter().find(|l| l[0].contains(".expiring_objects")).expect("the expirer enqueue");
    let container = got.iter().find(|l| !l[0].contains(".expiring_objects")).expect("the container update");
    let has = |l: &[String], k: &str, v: &str| l.iter().any(|x| x.eq_ignore_ascii_case(&format!("{k}: {v}")));
    assert!(expirer[0].starts_with("PUT /sdc1/7/.expiring_objects/"), "{expirer:?}");
    assert!(expirer[0].ends_with(&format!("/{at}-AUTH_t/c/upd%20x HTTP/1.1")), "{expirer:?}");
    assert!(
        has(expirer, "X-Size", "0") && has(expirer, "X-Content-Type", "text/plain;swift_expirer_bytes=3"),
        "{expirer:?}"
    );
    assert!(
        has(expirer, "X-Etag", "d41d8cd98f00b204e9800998ecf8427e") && has(expirer, "X-Content-Type-Timestamp", &t_put)
    );
    assert!(has(container, "X-Etag", "abc; foo=bar"));
    // The POST: a PUT to the container with the data timestamp, the new
    // content type and its timestamp; the removed expiry is dequeued through
    // an async pending, never sent directly.
    let t_post = ts();
    let mut h = upd.to_vec();
    h.extend_from_slice(&[("X-Timestamp", t_post.as_str()), ("Content-Type", "image/gif")]);
    let r = n.req("POST", "/sda1/0/AUTH_t/c/upd%20x", &h, b"");
    assert_eq!(r.status, 202);
    let post = rx.recv_timeout(Duration::from_secs(5)).expect("the POST's update");
    assert_eq!(post[0], "PUT /sdb1/5/AUTH_t/c/upd%20x HTTP/1.1");
    for (k, v) in [
        ("X-Timestamp", t_put.as_str()),
        ("X-Content-Type", "image/gif"),
        ("X-Content-Type-Timestamp", t_post.as_str()),
        ("X-Meta-Timestamp", t_post.as_str()),
        ("X-Size", "3"),
        ("X-Etag", "abc; foo=bar"),
    ] {
        assert!(has(&post, k, v), "{k}: {v} in {post:?}");
    }
    wait_until("the dequeue to be saved", Duration::from_secs(5), || {
        n.files("sda1").iter().any(|f| f.starts_with("async_pending/"))
    });
}

#[test]
fn ignore_range_if_metadata_present_and_fallocate_reserve() {
    let n = Node::start();
    put(&n, OBJ, b"0123456789", &[("X-Static-Large-Object", "True")]);
    let r = n.req(
        "GET",
        OBJ,
        &[("Range", "bytes=0-1"), ("X-Backend-Ignore-Range-If-Metadata-Present", "X-Static-Large-Object")],
        b"",
    );
    assert_eq!((r.status, r.body.len()), (200, 10), "the manifest is served whole");
    let r =
        n.req("GET", OBJ, &[("Range", "bytes=0-1"), ("X-Backend-Ignore-Range-If-Metadata-Present", "X-Other")], b"");
    assert_eq!(r.status, 206);
    drop(n);
    let full = Node::start_with("fallocate_reserve = \"100%\"", "");
    let (r, _) = put(&full, OBJ, b"x", &[]);
    assert_eq!(r.status, 507, "below the reserve");
}

#[test]
fn corrupt_objects_are_quarantined_and_answer_404() {
    let n = Node::start();
    let (_, t) = put(&n, OBJ, b"hello", &[]);
    let data = n.root.join("sda1/objects/0/ef2/12ff799997ba082a30012665b4e4fef2").join(format!("{t}.data"));
    // The size no longer matches the stored Content-Length.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&data)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"!"))
        .expect("corrupt");
    let r = n.req("GET", OBJ, &[], b"");
    assert_eq!(r.status, 404);
    assert!(!data.exists(), "moved away");
    assert!(
        n.files("sda1").iter().any(|f| f.starts_with("quarantined/objects/12ff799997ba082a30012665b4e4fef2/")),
        "{:?}",
        n.files("sda1")
    );
    assert_eq!(
        n.req("PUT", OBJ, &[("X-Timestamp", &ts()), ("Content-Type", "a")], b"new").status,
        201,
        "a new PUT works"
    );
    assert_eq!(n.req("GET", OBJ, &[], b"").body, b"new");
}

/// The quarantined copies of an object's files under a device.
fn quarantined(n: &Node, device: &str, hash: &str) -> Vec<String> {
    n.files(device).into_iter().filter(|f| f.starts_with(&format!("quarantined/objects/{hash}"))).collect()
}

#[test]
fn a_get_that_reads_bytes_not_matching_the_etag_quarantines_the_object() {
    let n = Node::start();
    let hash = "12ff799997ba082a30012665b4e4fef2";
    let (_, t) = put(&n, OBJ, b"hello", &[]);
    let data = n.root.join("sda1/objects/0/ef2").join(hash).join(format!("{t}.data"));
    // Same length, other bytes, metadata untouched: only reading tells.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"jello"))
        .expect("corrupt");
    let r = n.req("HEAD", OBJ, &[], b"");
    assert_eq!(r.status, 200, "a HEAD reads no bytes and cannot tell");
    let r = n.req("GET", OBJ, &[("Range", "bytes=1-2")], b"");
    assert_eq!((r.status, r.body.as_slice()), (206, &b"el"[..]), "a range read does not check the whole file");
    assert!(quarantined(&n, "sda1", hash).is_empty());
    let r = n.req("GET", OBJ, &[], b"");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"jello"[..]), "the bytes go out once, as Swift sends them");
    wait_until("the object to be quarantined", Duration::from_secs(5), || !quarantined(&n, "sda1", hash).is_empty());
    assert!(!data.exists());
    assert_eq!(n.req("GET", OBJ, &[], b"").status, 404, "the next GET sends the proxy elsewhere");
    assert_eq!(n.req("HEAD", OBJ, &[], b"").status, 404);
    let hashes_invalid = std::fs::read_to_string(n.root.join("sda1/objects/0/hashes.invalid")).unwrap_or_default();
    assert!(hashes_invalid.lines().any(|l| l == "ef2"), "the replicator is told: {hashes_invalid:?}");
    // Swift's own tool reads the quarantined file.
    let q = n
        .root
        .join("sda1")
        .join(quarantined(&n, "sda1", hash).into_iter().find(|f| f.ends_with(".data")).expect("the quarantined .data"));
    let info_bin = crate::util::swift_python().parent().expect("bin").join("swift-object-info");
    let out = std::process::Command::new(info_bin).arg(&q).output().expect("swift-object-info");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("Path: /AUTH_t/c/o"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A good copy comes back with the next PUT (or the replicator).
    put(&n, OBJ, b"hello", &[]);
    assert_eq!(n.req("GET", OBJ, &[], b"").body, b"hello");
    assert_eq!(n.req("GET", OBJ, &[], b"").status, 200, "a good object is never quarantined by reading it");
}

#[test]
fn a_data_file_shorter_than_its_metadata_is_quarantined_on_get_head_and_post() {
    let n = Node::start();
    for (i, method) in ["GET", "HEAD", "POST"].into_iter().enumerate() {
        let path = format!("/sda1/0/AUTH_t/c/short{i}");
        let (r, t) = put(&n, &path, b"abcd", &[]);
        assert_eq!(r.status, 201);
        let data = n
            .files("sda1")
            .into_iter()
            .find(|f| f.starts_with("objects/") && f.ends_with(&format!("{t}.data")))
            .map(|f| n.root.join("sda1").join(f))
            .expect("the data file");
        let hash = data.parent().and_then(|p| p.file_name()).map(|s| s.to_string_lossy().into_owned()).expect("hash");
        // Zero bytes on disk; the metadata still says 4.
        std::fs::OpenOptions::new().write(true).open(&data).and_then(|f| f.set_len(0)).expect("truncate");
        let t2 = ts();
        let headers: Vec<(&str, &str)> = if method == "POST" { vec![("X-Timestamp", t2.as_str())] } else { vec![] };
        let r = n.req(method, &path, &headers, b"");
        assert_eq!(r.status, 404, "{method} of a short data file");
        assert!(!data.exists(), "{method}: moved away");
        assert!(!quarantined(&n, "sda1", &hash).is_empty(), "{method}: quarantined");
        assert_eq!(n.req("GET", &path, &[], b"").status, 404);
    }
}
