//! The container service over HTTP against the real binary (§6), and its
//! databases shared with Swift's own container server.

use crate::object_api::{request, ts};
use crate::util::{start_swift_server, system_swift_conf, Response, Server, TempDir, SWIFT_CONF};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// An aerie node serving one database service on device `sda1`.
pub struct Node {
    pub server: Server,
    pub root: PathBuf,
    _dir: TempDir,
}

impl Node {
    fn start() -> Node {
        Node::service("container")
    }

    /// A node whose listener's pipeline is just `service`.
    pub fn service(service: &str) -> Node {
        Node::service_workers(service, 2)
    }

    /// The same with `workers` workers.
    pub fn service_workers(service: &str, workers: usize) -> Node {
        let dir = TempDir::new("dbsvc");
        let root = dir.path().join("node");
        std::fs::create_dir_all(root.join("sda1")).expect("dev");
        let conf = dir.path().join("swift.conf");
        std::fs::write(&conf, SWIFT_CONF).expect("conf");
        Node::on(dir, root, conf, service, workers)
    }

    /// A node on `root`'s devices with the given swift.conf.
    pub fn on(dir: TempDir, root: PathBuf, conf: PathBuf, service: &str, workers: usize) -> Node {
        let cfg = format!(
            "[server]\nworkers = {workers}\n[admin]\naddress = \"127.0.0.1:0\"\n[storage]\ndevices = {:?}\nmount_check = false\nswift_conf = {:?}\n\
             [[listen]]\naddress = \"127.0.0.1:0\"\nlength_required = []\npipeline = [{service:?}]\n",
            root.display().to_string(),
            conf.display().to_string()
        );
        Node { server: Server::start(&cfg), root, _dir: dir }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn req(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        request(self.addr(), method, path, headers, b"")
    }

    fn put_row(&self, path: &str, size: &str, ctype: &str, etag: &str) -> Response {
        self.req("PUT", path, &[("X-Timestamp", &ts()), ("X-Size", size), ("X-Content-Type", ctype), ("X-Etag", etag)])
    }
}

const C: &str = "/sda1/0/AUTH_t/c";

fn names(r: &Response) -> Vec<String> {
    r.json()
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["name"].as_str().or(e["subdir"].as_str()).unwrap_or_default().to_string())
        .collect()
}

#[test]
fn create_head_rows_and_stats() {
    let n = Node::start();
    let h = n.req("HEAD", C, &[]);
    assert_eq!(h.status, 404);
    assert_eq!(h.header("x-backend-put-timestamp"), Some("0000000000.00000"));
    assert_eq!(h.header("x-backend-storage-policy-index"), Some("0"));
    let t = ts();
    let r = n.req("PUT", C, &[("X-Timestamp", &t), ("X-Container-Meta-Color", "blue"), ("X-Container-Read", ".r:*")]);
    assert_eq!((r.status, r.header("x-backend-storage-policy-index")), (201, Some("0")));
    assert_eq!(n.req("PUT", C, &[("X-Timestamp", &ts())]).status, 202);
    assert_eq!(n.put_row(&format!("{C}/o1"), "3", "text/plain", "abc").status, 201);
    assert_eq!(n.put_row(&format!("{C}/o2"), "5", "application/x; swift_bytes=1234; charset=utf8", "def").status, 201);
    let h = n.req("HEAD", C, &[]);
    assert_eq!(h.status, 204);
    assert_eq!(h.header("x-container-object-count"), Some("2"));
    assert_eq!(h.header("x-container-bytes-used"), Some("8"), "bytes-used sums stored sizes, not swift_bytes");
    assert_eq!(h.header("x-container-meta-color"), Some("blue"));
    assert_eq!(h.header("x-container-read"), Some(".r:*"));
    assert_eq!(h.header("x-backend-sharding-state"), Some("unsharded"));
    assert_eq!(h.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(h.header("last-modified").is_some());
    let g = n.req("GET", &format!("{C}?format=json"), &[]);
    assert_eq!(g.status, 200);
    let v = g.json();
    assert_eq!(v[1]["bytes"], 1234);
    assert_eq!(v[1]["content_type"], "application/x;charset=utf8");
    assert_eq!(v[0]["hash"], "abc");
    assert!(v[0]["last_modified"].as_str().is_some_and(|s| s.len() == 26 && s.contains('T')));
    assert_eq!(g.header("x-backend-record-type"), Some("object"));
    // A DELETE row removes it from the stats.
    assert_eq!(n.req("DELETE", &format!("{C}/o1"), &[("X-Timestamp", &ts())]).status, 204);
    assert_eq!(n.req("HEAD", C, &[]).header("x-container-object-count"), Some("1"));
    // Rows for a missing container: 404, unless the account is auto-created.
    assert_eq!(n.put_row("/sda1/0/AUTH_t/nope/o", "1", "a", "b").status, 404);
    let task = "/sda1/0/.expiring_objects/1795305600/task";
    let row = |extra: &[(&str, &str)]| {
        let t = ts();
        let mut h = vec![
            ("X-Timestamp", t.as_str()),
            ("X-Size", "0"),
            ("X-Content-Type", "text/plain"),
            ("X-Etag", "d41d8cd98f00b204e9800998ecf8427e"),
        ];
        h.extend_from_slice(extra);
        n.req("PUT", task, &h)
    };
    // Creating it needs the policy index (Swift's _maybe_autocreate).
    assert_eq!(row(&[]).status, 400);
    assert_eq!(row(&[("X-Backend-Storage-Policy-Index", "0")]).status, 201);
    assert_eq!(
        n.req("HEAD", "/sda1/0/.expiring_objects/1795305600", &[]).header("x-container-object-count"),
        Some("1")
    );
}

#[test]
fn listings_parameters_and_formats() {
    let n = Node::start();
    n.req("PUT", C, &[("X-Timestamp", &ts())]);
    for name in ["a", "a/", "a/b", "a/c/d", "b", "c-1", "c-2", "d", "\u{e9}", "\u{10000}"] {
        let quoted = aerie_storage::path::quote(name);
        assert_eq!(n.put_row(&format!("{C}/{quoted}"), "1", "t", "e").status, 201);
    }
    let l = |q: &str| n.req("GET", &format!("{C}?format=json&{q}"), &[]);
    assert_eq!(names(&l("delimiter=/")), ["a", "a/", "b", "c-1", "c-2", "d", "\u{e9}", "\u{10000}"]);
    assert_eq!(names(&l("prefix=a/&delimiter=/")), ["a/", "a/b", "a/c/"]);
    assert_eq!(names(&l("path=a")), ["a/b"]);
    assert_eq!(names(&l("marker=b&end_marker=d")), ["c-1", "c-2"]);
    assert_eq!(names(&l("limit=2&reverse=on")), ["\u{10000}", "\u{e9}"], "UTF-8 byte order, reversed");
    assert_eq!(names(&l("delimiter=-&prefix=c")), ["c-"]);
    assert_eq!(names(&l("delimiter=c-&prefix=c")), ["c-1", "c-2"], "the delimiter is looked for after the prefix");
    assert_eq!(
        names(&l("delimiter=/c")),
        ["a", "a/", "a/b", "a/c", "b", "c-1", "c-2", "d", "\u{e9}", "\u{10000}"],
        "multi-character delimiter"
    );
    assert_eq!(l("limit=10001").status, 412);
    assert_eq!(l("limit=-1").json().as_array().map(Vec::len), Some(10), "a non-digit limit is ignored");
    assert_eq!(l("prefix=zz").text(), "[]");
    let plain = n.req("GET", &format!("{C}?prefix=a/b"), &[]);
    assert_eq!((plain.status, plain.text()), (200, "a/b\n".to_string()));
    assert_eq!(n.req("GET", &format!("{C}?prefix=zz"), &[]).status, 204, "an empty plain listing is 204");
    let x = n.req("GET", &format!("{C}?format=xml&prefix=a/&delimiter=/"), &[]);
    assert!(
        x.text()
            .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<container name=\"c\"><object><name>a/</name>"),
        "{}",
        x.text()
    );
    assert!(x.text().contains("<subdir name=\"a/c/\"><name>a/c/</name></subdir></container>"));
    let a = n.req("GET", C, &[("Accept", "application/json;q=0.9, text/xml")]);
    assert_eq!(a.header("content-type"), Some("text/xml; charset=utf-8"));
    assert_eq!(n.req("GET", C, &[("Accept", "image/png")]).status, 406);
    assert_eq!(n.req("GET", C, &[("Accept", "garbage")]).status, 400);
    assert_eq!(n.req("GET", &format!("{C}?prefix=%FF"), &[]).status, 400);
    let shard = n.req("GET", C, &[("X-Backend-Record-Type", "shard")]);
    assert_eq!((shard.text(), shard.header("x-backend-record-type")), ("[]".to_string(), Some("shard")));
}

#[test]
fn delete_post_metadata_limits_and_policies() {
    let n = Node::start();
    let t0 = ts();
    n.req("PUT", C, &[("X-Timestamp", &t0), ("X-Backend-Storage-Policy-Index", "1")]);
    assert_eq!(n.req("HEAD", C, &[]).header("x-backend-storage-policy-index"), Some("1"));
    let r = n.req("PUT", C, &[("X-Timestamp", &ts()), ("X-Backend-Storage-Policy-Index", "0")]);
    assert_eq!((r.status, r.header("x-backend-storage-policy-index")), (409, Some("1")));
    assert_eq!(n.req("PUT", C, &[("X-Timestamp", &ts()), ("X-Backend-Storage-Policy-Default", "0")]).status, 202);
    // Three POSTs of 40 items: the third breaks the cumulative limit.
    for (i, want) in [(0, 204), (1, 204), (2, 400)] {
        let items: Vec<(String, String)> =
            (0..40).map(|k| (format!("X-Container-Meta-K{i}-{k}"), "v".to_string())).collect();
        let mut h: Vec<(&str, &str)> = items.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let t = ts();
        h.push(("X-Timestamp", &t));
        let r = n.req("POST", C, &h);
        assert_eq!(r.status, want, "POST {i}: {}", r.text());
        if want == 400 {
            assert_eq!(r.text(), "Too many metadata items; max 90");
        }
    }
    // An empty value deletes.
    assert_eq!(n.req("POST", C, &[("X-Timestamp", &ts()), ("X-Container-Meta-K0-0", "")]).status, 204);
    assert_eq!(n.req("HEAD", C, &[]).header("x-container-meta-k0-0"), None);
    n.put_row(&format!("{C}/o"), "1", "t", "e");
    assert_eq!(
        n.req(
            "PUT",
            &format!("{C}/o"),
            &[
                ("X-Timestamp", &ts()),
                ("X-Backend-Storage-Policy-Index", "1"),
                ("X-Size", "1"),
                ("X-Content-Type", "t"),
                ("X-Etag", "e")
            ]
        )
        .status,
        201
    );
    assert_eq!(n.req("DELETE", C, &[("X-Timestamp", &ts())]).status, 409, "not empty");
    n.req("DELETE", &format!("{C}/o"), &[("X-Timestamp", &ts())]);
    n.req("DELETE", &format!("{C}/o"), &[("X-Timestamp", &ts()), ("X-Backend-Storage-Policy-Index", "1")]);
    assert_eq!(n.req("DELETE", C, &[("X-Timestamp", &ts())]).status, 204);
    let h = n.req("HEAD", C, &[]);
    assert_eq!(h.status, 404);
    assert_ne!(h.header("x-backend-delete-timestamp"), Some("0000000000.00000"));
    assert_eq!(n.req("DELETE", C, &[("X-Timestamp", &ts())]).status, 404, "deleting a deleted container");
    assert_eq!(n.req("POST", C, &[("X-Timestamp", &ts())]).status, 404);
    // Recreated, with a new policy, without the old metadata.
    let r = n.req("PUT", C, &[("X-Timestamp", &ts()), ("X-Backend-Storage-Policy-Index", "0")]);
    assert_eq!(r.status, 201);
    let h = n.req("HEAD", C, &[]);
    assert_eq!(h.header("x-backend-storage-policy-index"), Some("0"));
    assert_eq!(h.header("x-container-meta-k1-0"), None);
    assert_eq!(n.req("PUT", C, &[]).status, 400);
    assert_eq!(
        n.req("PUT", C, &[("X-Timestamp", &ts()), ("X-Backend-Storage-Policy-Index", "9")]).text(),
        "Invalid X-Backend-Storage-Policy-Index '9'"
    );
}

#[test]
fn account_updates_on_put_and_delete() {
    let n = Node::start();
    // c2's account is missing.
    let (stub_addr, rx) = crate::util::stub_server(|head| {
        if head.first().is_some_and(|l| l.contains("/c2 ")) {
            crate::util::NOT_FOUND
        } else {
            crate::util::CREATED
        }
    });
    let host = stub_addr.to_string();
    // The container updater may report too: only the container server's own
    // updates are checked.
    let next = || loop {
        let lines = rx.recv_timeout(Duration::from_secs(5)).expect("account update");
        if lines.iter().any(|l| l.starts_with("User-Agent: container-server ")) {
            return lines;
        }
    };
    let acct = [("X-Account-Host", host.as_str()), ("X-Account-Device", "sdz"), ("X-Account-Partition", "3")];
    let t = ts();
    let mut h = acct.to_vec();
    h.push(("X-Timestamp", &t));
    assert_eq!(n.req("PUT", C, &h).status, 201);
    let lines = next();
    assert_eq!(lines[0], "PUT /sdz/3/AUTH_t/c HTTP/1.1");
    let has = |k: &str, v: &str| lines.iter().any(|l| l.eq_ignore_ascii_case(&format!("{k}: {v}")));
    assert!(
        has("X-Put-Timestamp", &t)
            && has("X-Delete-Timestamp", "0")
            && has("X-Object-Count", "0")
            && has("X-Bytes-Used", "0"),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.starts_with("User-Agent: container-server ")));
    let mut h = acct.to_vec();
    let t2 = ts();
    h.push(("X-Timestamp", &t2));
    assert_eq!(n.req("DELETE", C, &h).status, 204);
    assert!(next()[0].starts_with("PUT /sdz/3/AUTH_t/c"));
    // Every account replica says 404: the container PUT answers 404.
    let mut h = acct.to_vec();
    let t3 = ts();
    h.push(("X-Timestamp", &t3));
    assert_eq!(n.req("PUT", "/sda1/0/AUTH_t/c2", &h).status, 404);
    let mut bad =
        vec![("X-Account-Host", "1.2.3.4:1,5.6.7.8:2"), ("X-Account-Device", "a"), ("X-Account-Partition", "3")];
    let t4 = ts();
    bad.push(("X-Timestamp", &t4));
    assert_eq!(n.req("PUT", "/sda1/0/AUTH_t/c3", &bad).status, 400);
}

#[test]
fn a_corrupt_database_is_quarantined_and_others_keep_serving() {
    let n = Node::start();
    n.req("PUT", C, &[("X-Timestamp", &ts())]);
    n.req("PUT", "/sda1/0/AUTH_t/other", &[("X-Timestamp", &ts())]);
    let db = walk_find(&n.root, |p| {
        p.extension().is_some_and(|e| e == "db") && p.to_string_lossy().contains("51f22aa92a8834b71582822235e921f6")
    });
    std::fs::write(&db, b"this is not a database at all, just some bytes to make it fail").expect("corrupt");
    assert_eq!(n.req("HEAD", C, &[]).status, 404);
    assert!(!db.exists(), "moved to quarantine");
    assert!(walk_find_opt(&n.root.join("sda1/quarantined/containers"), |_| true).is_some());
    assert_eq!(n.req("HEAD", "/sda1/0/AUTH_t/other", &[]).status, 204);
}

fn walk_find_opt(dir: &std::path::Path, f: impl Fn(&std::path::Path) -> bool + Copy) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(x) = walk_find_opt(&p, f) {
                return Some(x);
            }
        } else if f(&p) {
            return Some(p);
        }
    }
    None
}

fn walk_find(dir: &std::path::Path, f: impl Fn(&std::path::Path) -> bool + Copy) -> PathBuf {
    walk_find_opt(dir, f).expect("file")
}

#[test]
fn interop_databases_are_shared_with_swifts_container_server() {
    let conf = system_swift_conf();
    let dir = TempDir::new("cinterop");
    let root = dir.path().join("node");
    std::fs::create_dir_all(root.join("sda1")).expect("dev");
    let n = Node::on(dir, root.clone(), conf, "container", 2);
    let swift_server = start_swift_server("container", &root);
    let swift = swift_server.addr;
    // aerie creates, Swift lists.
    n.req("PUT", C, &[("X-Timestamp", &ts()), ("X-Container-Meta-X", "1")]);
    for name in ["b", "a/x", "\u{e9}t\u{e9}"] {
        n.put_row(&format!("{C}/{}", aerie_storage::path::quote(name)), "4", "text/plain; swift_bytes=9", "h");
    }
    for q in ["", "&delimiter=/", "&reverse=true&limit=2", "&prefix=a"] {
        let a = request(n.addr(), "GET", &format!("{C}?format=json{q}"), &[], b"");
        let s = request(swift, "GET", &format!("{C}?format=json{q}"), &[], b"");
        assert_eq!((a.status, a.json()), (s.status, s.json()), "listing {q}");
    }
    let a = request(n.addr(), "HEAD", C, &[], b"");
    let s = request(swift, "HEAD", C, &[], b"");
    for h in [
        "x-container-object-count",
        "x-container-bytes-used",
        "x-put-timestamp",
        "x-timestamp",
        "x-container-meta-x",
        "x-backend-storage-policy-index",
    ] {
        assert_eq!(a.header(h), s.header(h), "{h}");
    }
    // Swift's own tool reads aerie's database (hash of /AUTH_t/c with
    // prefix and suffix "changeme").
    let db = crate::util::find_db(&root, "containers", "51f22aa92a8834b71582822235e921f6");
    let info = crate::util::swift_db_info("container", &db);
    assert!(info.contains("Object Count: 3") && info.contains("Bytes Used: 12"), "{info}");
    assert!(info.contains("Storage Policy: gold (0)") && info.contains("X-Container-Meta-X: 1"), "{info}");
    // Swift creates and adds rows; aerie reads them.
    let t = ts();
    assert_eq!(request(swift, "PUT", "/sda1/0/AUTH_t/sw", &[("X-Timestamp", &t)], b"").status, 201);
    for name in ["one", "two"] {
        let r = request(
            swift,
            "PUT",
            &format!("/sda1/0/AUTH_t/sw/{name}"),
            &[("X-Timestamp", &ts()), ("X-Size", "2"), ("X-Content-Type", "a/b"), ("X-Etag", "e")],
            b"",
        );
        assert_eq!(r.status, 201);
    }
    let a = request(n.addr(), "GET", "/sda1/0/AUTH_t/sw?format=json", &[], b"");
    let s = request(swift, "GET", "/sda1/0/AUTH_t/sw?format=json", &[], b"");
    assert_eq!(a.json(), s.json());
    assert_eq!(a.json().as_array().map(Vec::len), Some(2));
}

#[test]
fn a_database_replaced_on_disk_is_read_from_the_new_file() {
    // Pool threads keep connections open between requests; a file replaced
    // under the same path (as replication does) must not be read through a
    // connection to the old one.
    let n = Node::start();
    n.req("PUT", C, &[("X-Timestamp", &ts())]);
    n.put_row(&format!("{C}/o"), "7", "t", "e");
    n.req("PUT", "/sda1/0/AUTH_t/empty", &[("X-Timestamp", &ts())]);
    for _ in 0..20 {
        assert_eq!(n.req("HEAD", C, &[]).header("x-container-object-count"), Some("1"));
    }
    let db = crate::util::find_db(&n.root, "containers", "51f22aa92a8834b71582822235e921f6");
    let empty = crate::util::find_db(&n.root, "containers", &crate::util::md5_hex(b"changeme/AUTH_t/emptychangeme"));
    let copy = db.with_extension("copy");
    std::fs::copy(&empty, &copy).expect("copy");
    std::fs::rename(&copy, &db).expect("replace");
    for _ in 0..20 {
        assert_eq!(n.req("HEAD", C, &[]).header("x-container-object-count"), Some("0"));
    }
}

#[test]
fn a_locked_database_answers_503_and_loses_no_row() {
    use std::io::BufRead;
    let n = Node::start();
    n.req("PUT", C, &[("X-Timestamp", &ts())]);
    let db = crate::util::find_db(&n.root, "containers", "51f22aa92a8834b71582822235e921f6");
    // Another process holds the database exclusively (as a long Swift
    // replication merge or a stuck tool would).
    let mut holder = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys, time\nc = sqlite3.connect(sys.argv[1], isolation_level=None)\nc.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\ntime.sleep(60)",
        ])
        .arg(&db)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut line = String::new();
    std::io::BufReader::new(holder.stdout.take().expect("stdout")).read_line(&mut line).expect("read");
    assert_eq!(line.trim(), "locked");
    let guard = Kill(&mut holder);
    // Rows still go in (into the pending file)...
    for i in 0..5 {
        assert_eq!(n.put_row(&format!("{C}/o{i}"), "2", "t", "e").status, 201);
    }
    // ...while a reader waits for the lock, then gives up with 503.
    let h = n.req("HEAD", C, &[]);
    assert_eq!((h.status, h.header("retry-after")), (503, Some("1")));
    drop(guard);
    let h = n.req("HEAD", C, &[]);
    assert_eq!(h.status, 204);
    assert_eq!(h.header("x-container-object-count"), Some("5"), "no row lost while the database was busy");
    assert!(n.server.log().contains("is locked"), "{}", n.server.log());
}

#[test]
fn container_and_account_metadata_limits_come_from_swift_conf() {
    for service in ["container", "account"] {
        let dir = TempDir::new("metalimits");
        let root = dir.path().join("node");
        std::fs::create_dir_all(root.join("sda1")).expect("dev");
        let conf = dir.path().join("swift.conf");
        std::fs::write(
            &conf,
            format!("{SWIFT_CONF}\n[swift-constraints]\nmax_meta_count = 2\nmax_meta_value_length = 10\n"),
        )
        .expect("conf");
        let n = Node::on(dir, root, conf, service, 1);
        let (path, prefix) = if service == "container" {
            ("/sda1/0/AUTH_t/c", "X-Container-Meta-")
        } else {
            ("/sda1/0/AUTH_t", "X-Account-Meta-")
        };
        let (a, b, c) = (format!("{prefix}A"), format!("{prefix}B"), format!("{prefix}C"));
        let t = ts();
        let r = n.req("PUT", path, &[("X-Timestamp", &t), (&a, "1"), (&b, "2"), (&c, "3")]);
        assert_eq!((r.status, r.text()), (400, "Too many metadata items; max 2".to_string()), "{service}");
        let r = n.req("PUT", path, &[("X-Timestamp", &ts()), (&a, "01234567890")]);
        assert_eq!(r.status, 400, "{service}: a value over max_meta_value_length");
        assert!(r.text().starts_with("Metadata value longer than 10:"), "{service}: {}", r.text());
        assert_eq!(n.req("PUT", path, &[("X-Timestamp", &ts()), (&a, "1"), (&b, "2")]).status, 201, "{service}");
        // The limit holds for the stored metadata as a whole, too.
        let r = n.req("POST", path, &[("X-Timestamp", &ts()), (&c, "3")]);
        assert_eq!(r.status, 400, "{service}: a third item through POST");
    }
}

/// §6.10: `UPDATE` merges the JSON rows of its body as a replica's
/// `merge_items` does, with Swift's checks — the same requests on Swift's
/// own container server give the same statuses and the same listing.
#[test]
fn update_merges_json_rows_as_swifts_container_server_does() {
    system_swift_conf();
    let n = Node::start();
    let swift_dir = TempDir::new("swupdate");
    std::fs::create_dir_all(swift_dir.path().join("sda1")).expect("dev");
    let swift_server = start_swift_server("container", swift_dir.path());
    let q = "/sda1/0/.expiring_objects/1795305600";
    let t0 = ts();
    let t1 = ts();
    let t2 = ts();
    let t3 = ts();
    let row = |name: &str, created: &str, deleted: u8| {
        format!(
            r#"{{"name": "{name}", "created_at": "{created}", "size": 0, "content_type": "application/async-deleted", "etag": "d41d8cd98f00b204e9800998ecf8427e", "deleted": {deleted}, "storage_policy_index": 0}}"#
        )
    };
    let body = format!(
        "[{}, {}, {}]",
        row("1795305600-AUTH_t/segs/a", &t1, 0),
        row("1795305600-AUTH_t/segs/b", &t1, 0),
        row("1795305600-AUTH_t/segs/c", &t1, 0)
    );
    // Later rows: b deleted, c older than what is there (kept as it is),
    // a with a newer content type given as its own key.
    let later = format!(
        r#"[{}, {}, {{"name": "1795305600-AUTH_t/segs/a", "created_at": "{t1}", "ctype_timestamp": "{t3}", "size": 0, "content_type": "text/new", "etag": "d41d8cd98f00b204e9800998ecf8427e", "deleted": 0, "storage_policy_index": 0}}]"#,
        row("1795305600-AUTH_t/segs/b", &t2, 1),
        row("1795305600-AUTH_t/segs/c", &t0, 1),
    );
    let policy = ("X-Backend-Storage-Policy-Index", "0");
    // (what, path, headers, body)
    type Case<'a> = (&'a str, String, Vec<(&'a str, String)>, String);
    let cases: Vec<Case> = vec![
        // The path: a row's is refused.
        ("object path", format!("{q}/obj"), vec![("X-Timestamp", ts())], body.clone()),
        ("no timestamp", q.to_string(), vec![], body.clone()),
        // A missing database: auto-created only with the policy index.
        ("no policy index", q.to_string(), vec![("X-Timestamp", ts())], body.clone()),
        (
            "not auto-created",
            "/sda1/0/AUTH_t/nope".to_string(),
            vec![("X-Timestamp", ts()), (policy.0, policy.1.into())],
            body.clone(),
        ),
        ("bad policy", q.to_string(), vec![("X-Timestamp", ts()), (policy.0, "7".into())], body.clone()),
        ("created", q.to_string(), vec![("X-Timestamp", ts()), (policy.0, policy.1.into())], body.clone()),
        ("bad json", q.to_string(), vec![("X-Timestamp", ts())], "[{".to_string()),
        ("merged", q.to_string(), vec![("X-Timestamp", ts())], later),
        ("empty list", q.to_string(), vec![("X-Timestamp", ts())], "[]".to_string()),
    ];
    for (what, path, headers, body) in &cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let a = request(n.addr(), "UPDATE", path, &h, body.as_bytes());
        let s = request(swift_server.addr, "UPDATE", path, &h, body.as_bytes());
        assert_eq!(a.status, s.status, "{what}: aerie {} / Swift {}", a.text(), s.text());
    }
    let a = request(n.addr(), "GET", &format!("{q}?format=json"), &[], b"");
    let s = request(swift_server.addr, "GET", &format!("{q}?format=json"), &[], b"");
    assert_eq!(a.status, 200);
    let strip = |v: serde_json::Value| -> serde_json::Value {
        // Each server lists its own last_modified of the same rows.
        serde_json::Value::Array(
            v.as_array()
                .expect("list")
                .iter()
                .map(|r| serde_json::json!([r["name"], r["content_type"], r["bytes"], r["hash"], r["last_modified"]]))
                .collect(),
        )
    };
    assert_eq!(strip(a.json()), strip(s.json()));
    assert_eq!(names(&a), ["1795305600-AUTH_t/segs/a", "1795305600-AUTH_t/segs/c"]);
    assert_eq!(a.json()[0]["content_type"], "text/new");
    // A row without its timestamp is refused, and nothing of that body is
    // merged (Swift's server fails it with a 500 instead).
    let bad = format!("[{}, {{\"name\": \"x\", \"size\": 0}}]", row("1795305600-AUTH_t/segs/d", &ts(), 0));
    let r = request(n.addr(), "UPDATE", q, &[("X-Timestamp", &ts())], bad.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("created_at"), "{}", r.text());
    assert_eq!(names(&request(n.addr(), "GET", &format!("{q}?format=json"), &[], b"")).len(), 2);
    assert_eq!(n.req("HEAD", q, &[]).header("x-container-object-count"), Some("2"));
}
