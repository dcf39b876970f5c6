//! The same files through Swift's own object server, both ways.

use super::*;

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
