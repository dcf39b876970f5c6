//! Container updates and async pendings, on the wire as Swift sends them.

use super::*;

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
    let dead = std::net::SocketAddr::from(([127, 0, 0, 1], crate::util::free_port()));
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
