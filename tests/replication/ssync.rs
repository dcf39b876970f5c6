//! The SSYNC receiver: Swift's own sender pushes objects, tombstones and
//! POSTed metadata into aerie and the copies are Swift-identical; hostile
//! senders get `:ERROR:` lines (or a closed connection) and nothing is
//! written outside the device.

use super::{swift_py, tree};
use crate::object_api::{put, ts, Node};
use crate::util::system_swift_conf;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// An SSYNC request with `body` (chunked; `end`: with its last chunk),
/// read to its end: (status, de-chunked response body).
fn ssync(addr: SocketAddr, path: &str, body: &[u8], end: bool) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut req =
        format!("SSYNC {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n")
            .into_bytes();
    if !body.is_empty() {
        req.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
        req.extend_from_slice(body);
        req.extend_from_slice(b"\r\n");
    }
    if end {
        req.extend_from_slice(b"0\r\n\r\n");
    }
    s.write_all(&req).expect("send");
    if !end {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, mut rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    if !head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return (status, rest.to_string());
    }
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after.get(n + 2..).unwrap_or("");
    }
    (status, out)
}

fn missing_check(lines: &[String]) -> Vec<u8> {
    let mut b = b":MISSING_CHECK: START\r\n".to_vec();
    for l in lines {
        b.extend_from_slice(l.as_bytes());
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(b":MISSING_CHECK: END\r\n");
    b
}

/// What is beside the node's devices root (nothing may appear there).
fn outside(n: &Node) -> Vec<String> {
    let parent = n.root.parent().expect("dir");
    let mut v: Vec<String> = tree(parent).into_iter().filter(|p| !p.starts_with("node/sd")).collect();
    v.retain(|p| !p.ends_with(".log") && !p.contains("aerie.toml"));
    v
}

#[test]
fn swifts_own_sender_pushes_objects_tombstones_and_metadata_into_aerie() {
    system_swift_conf();
    let n = Node::start();
    let base = "/sda1/0/AUTH_t/c";
    let (r, _) = put(&n, &format!("{base}/plain"), b"plain bytes", &[("X-Object-Meta-Color", "blue")]);
    assert_eq!(r.status, 201);
    let (r, _) = put(&n, &format!("{base}/posted"), b"posted", &[("Content-Encoding", "gzip")]);
    assert_eq!(r.status, 201);
    let t = ts();
    let r = n.req("POST", &format!("{base}/posted"), &[("X-Timestamp", &t), ("X-Object-Meta-Shape", "round")], b"");
    assert_eq!(r.status, 202);
    let t = ts();
    let r = n.req(
        "POST",
        &format!("{base}/posted"),
        &[("X-Timestamp", &t), ("Content-Type", "image/png"), ("X-Object-Meta-Shape", "square")],
        b"",
    );
    assert_eq!(r.status, 202);
    let (r, _) = put(&n, &format!("{base}/deleted"), b"gone soon", &[]);
    assert_eq!(r.status, 201);
    let t = ts();
    assert_eq!(n.req("DELETE", &format!("{base}/deleted"), &[("X-Timestamp", &t)], b"").status, 204);
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(put(&n, &format!("{base}/big"), &big, &[]).0.status, 201);

    let port = n.addr().port().to_string();
    let out = swift_py("ssync_push.py", &[&n.root.to_string_lossy(), "sda1", "0", "127.0.0.1", &port, "sdb1"]);
    let res: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(res["ok"], true, "Swift's sender succeeded: {out}");
    assert_eq!(res["in_sync"].as_array().map(Vec::len), Some(4));

    // The same files with the same metadata, as Swift reads them.
    let meta = |dev: &str| -> serde_json::Value {
        let dir = n.root.join(dev).join("objects/0");
        serde_json::from_str(&swift_py("metadata.py", &[&dir.to_string_lossy()])).expect("json")
    };
    let (a, b) = (meta("sda1"), meta("sdb1"));
    assert_eq!(a, b, "every .data, .meta and .ts replicated verbatim");
    assert_eq!(a.as_object().map(|m| m.len()), Some(5), "{a}");
    for name in ["plain", "posted", "big"] {
        let get = |dev: &str| n.req("GET", &format!("/{dev}/0/AUTH_t/c/{name}"), &[], b"");
        let (x, y) = (get("sda1"), get("sdb1"));
        assert_eq!((y.status, &y.body), (200, &x.body), "{name}: the same bytes");
        for h in ["etag", "content-type", "x-timestamp", "x-object-meta-shape", "content-encoding"] {
            assert_eq!(x.header(h), y.header(h), "{name}: {h}");
        }
    }
    assert_eq!(n.req("GET", "/sdb1/0/AUTH_t/c/deleted", &[], b"").status, 404);
    // Replicated writes send no container updates and queue nothing.
    assert!(!n.root.join("sdb1/async_pending").exists());
    // A second push finds everything in sync: nothing is wanted.
    let out = swift_py("ssync_push.py", &[&n.root.to_string_lossy(), "sda1", "0", "127.0.0.1", &port, "sdb1"]);
    assert!(out.contains("\"ok\": true"), "{out}");
}

#[test]
fn hostile_senders_get_errors_and_nothing_is_written_outside_the_device() {
    let n = Node::start_with("[replication]\nreplication_lock_timeout = 0.3\n", "");
    let before = outside(&n);
    let addr = n.addr();
    let hash = "0123456789abcdef0123456789abc000";
    // Paths: not a partition, escaping, no device.
    assert_eq!(ssync(addr, "/sdb1/notanumber", b"", true).0, 400);
    assert_eq!(ssync(addr, "/sdb1/../../etc", b"", true).0, 400);
    assert_eq!(ssync(addr, "/sdb1", b"", true).0, 400);
    assert_eq!(ssync(addr, "/nodev/1", b"", true).0, 507);
    // An offered "hash" that is a path.
    let (s, body) = ssync(addr, "/sdb1/1", &missing_check(&["../../../../tmp/x 1700000000.00000".into()]), true);
    assert_eq!(s, 200);
    assert!(body.contains(":ERROR: 0 'invalid object hash"), "{body:?}");
    // An over-long line.
    let mut long = b":MISSING_CHECK: START\r\n".to_vec();
    long.extend(std::iter::repeat_n(b'a', 70_000));
    let (_, body) = ssync(addr, "/sdb1/1", &long, true);
    assert!(body.contains(":ERROR: 0 ") && body.contains("longer than 65536"), "{body:?}");
    // Not the protocol at all.
    let (_, body) = ssync(addr, "/sdb1/1", b"GET / HTTP/1.1\r\n", true);
    assert!(body.contains(":ERROR: 0 'Looking for :MISSING_CHECK: START got"), "{body:?}");
    // An unknown subrequest method.
    let mut b = missing_check(&[format!("{hash} {}", ts())]);
    b.extend_from_slice(b":UPDATES: START\r\nGET /AUTH_t/c/o\r\nX-Timestamp: 1.0\r\n\r\n:UPDATES: END\r\n");
    let (_, body) = ssync(addr, "/sdb1/1", &b, true);
    assert!(body.contains(&format!("{hash} dm")) && body.contains(":ERROR: 0 'Invalid subrequest method GET'"));
    // A body that stops in the middle of a PUT: nothing is stored, and no
    // temporary file is left.
    let t = ts();
    let mut b = missing_check(&[format!("{hash} {t}")]);
    b.extend_from_slice(
        format!(":UPDATES: START\r\nPUT /AUTH_t/c/cut\r\nContent-Length: 100\r\nContent-Type: a\r\nX-Timestamp: {t}\r\n\r\n0123456789").as_bytes(),
    );
    ssync(addr, "/sdb1/1", &b, false);
    // A Content-Length that lies (shorter than what follows): the ETag
    // does not match, nothing is stored, the session fails.
    let t = ts();
    let mut b = missing_check(&[format!("{hash} {t}")]);
    b.extend_from_slice(
        format!(
            ":UPDATES: START\r\nPUT /AUTH_t/c/liar\r\nContent-Length: 3\r\nContent-Type: a\r\n\
             ETag: e80b5017098950fc58aad83c8c14978e\r\nX-Timestamp: {t}\r\n\r\nabcdef\r\n:UPDATES: END\r\n"
        )
        .as_bytes(),
    );
    let (_, body) = ssync(addr, "/sdb1/1", &b, true);
    assert!(body.contains(":ERROR:"), "{body:?}");
    // DELETE with a body.
    let mut b = missing_check(&[]);
    b.extend_from_slice(b":UPDATES: START\r\nDELETE /AUTH_t/c/o\r\nContent-Length: 5\r\nX-Timestamp: 1.0\r\n\r\n");
    let (_, body) = ssync(addr, "/sdb1/1", &b, true);
    assert!(body.contains(":ERROR: 0 'DELETE subrequest with content-length /AUTH_t/c/o'"), "{body:?}");
    // A subrequest path that climbs is just an object name, stored by its
    // hash inside the partition.
    let t = ts();
    let mut b = missing_check(&[]);
    b.extend_from_slice(
        format!(
            ":UPDATES: START\r\nPUT /../../../../../tmp/escape\r\nContent-Length: 1\r\nContent-Type: a\r\n\
             X-Timestamp: {t}\r\n\r\nx:UPDATES: END\r\n"
        )
        .as_bytes(),
    );
    ssync(addr, "/sdb1/1", &b, true);
    let files = n.files("sdb1");
    assert!(!files.iter().any(|f| f.ends_with(".data") && !f.starts_with("objects/1/")), "{files:?}");
    let stored = |name: &str| n.req("HEAD", &format!("/sdb1/1/{name}"), &[("X-Backend-Replication", "True")], b"");
    assert_eq!(stored("AUTH_t/c/cut").status, 404, "a PUT whose body was cut is not stored");
    assert_eq!(stored("AUTH_t/c/liar").status, 404, "a PUT whose length lied is not stored");
    assert_eq!(stored("../../../../../tmp/escape").status, 200, "the climbing name is an object like any other");
    assert_eq!(files.iter().filter(|f| f.ends_with(".data")).count(), 1, "{files:?}");
    assert!(!files.iter().any(|f| f.starts_with("tmp/")), "no temporary file left: {files:?}");
    assert_eq!(outside(&n), before, "nothing written outside the device");

    // A sender cannot switch the replication semantics off: its own
    // `X-Backend-Replication: False` is replaced, so an X-Delete-At in the
    // past (refused to a client) is taken, as from any replicator.
    let t = ts();
    let mut b = missing_check(&[]);
    b.extend_from_slice(
        format!(
            ":UPDATES: START\r\nPUT /AUTH_t/c/expired\r\nContent-Length: 1\r\nContent-Type: a\r\n\
             X-Backend-Replication: False\r\nX-Delete-At: 1000000000\r\nX-Timestamp: {t}\r\n\r\nx:UPDATES: END\r\n"
        )
        .as_bytes(),
    );
    let (_, body) = ssync(addr, "/sdb1/4", &b, true);
    assert!(body.ends_with(":UPDATES: START\r\n:UPDATES: END\r\n"), "{body:?}");
    assert_eq!(n.req("HEAD", "/sdb1/4/AUTH_t/c/expired", &[("X-Backend-Replication", "True")], b"").status, 200);

    // A check-only session (the sender hangs up after the missing check)
    // is a normal end.
    let (s, body) = ssync(addr, "/sdb1/2", &missing_check(&[format!("{hash} {}", ts())]), true);
    assert_eq!(s, 200);
    assert!(body.ends_with(":MISSING_CHECK: END\r\n") && !body.contains(":ERROR:"), "{body:?}");
    // A partition another session holds: the lock times out.
    let lock_dir = n.root.join("sdb1/objects/3");
    std::fs::create_dir_all(&lock_dir).expect("dir");
    let f = std::fs::File::create(lock_dir.join(".lock-replication")).expect("lock file");
    let held = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).expect("flock");
    let (_, body) = ssync(addr, "/sdb1/3", &missing_check(&[]), true);
    assert!(body.contains(":ERROR: 0 '0.3 seconds: ") && body.contains(".lock-replication'"), "{body:?}");
    drop(held);
    let (_, body) = ssync(addr, "/sdb1/3", &missing_check(&[]), true);
    assert!(body.contains(":MISSING_CHECK: END") && !body.contains(":ERROR:"), "{body:?}");
}
