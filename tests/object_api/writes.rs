//! Object PUT, POST and DELETE: checks before the body, conflicts, tombstones, metadata.

use super::*;

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
