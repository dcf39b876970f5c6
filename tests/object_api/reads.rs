//! Object GET and HEAD: ranges, conditionals, expiry, paths, large bodies.

use super::*;

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
