//! The account service over HTTP against the real binary (§7), and its
//! databases shared with Swift's own account server.

use crate::container_api::Node;
use crate::object_api::{request, ts};
use crate::util::{start_swift_server, system_swift_conf, Response, TempDir};

const A: &str = "/sda1/0/AUTH_a";

fn node() -> Node {
    Node::service("account")
}

/// A container row as a container server sends it.
fn row(n: &Node, name: &str, put: &str, del: &str, count: u64, bytes: u64, policy: &str) -> Response {
    let (c, b) = (count.to_string(), bytes.to_string());
    n.req(
        "PUT",
        &format!("{A}/{name}"),
        &[
            ("X-Timestamp", put),
            ("X-Put-Timestamp", put),
            ("X-Delete-Timestamp", del),
            ("X-Object-Count", &c),
            ("X-Bytes-Used", &b),
            ("X-Backend-Storage-Policy-Index", policy),
        ],
    )
}

#[test]
fn create_rows_stats_and_per_policy_headers() {
    let n = node();
    let h = n.req("HEAD", A, &[]);
    assert_eq!((h.status, h.header("x-account-status")), (404, None));
    let t = ts();
    assert_eq!(n.req("PUT", A, &[("X-Timestamp", &t), ("X-Account-Meta-Owner", "ops")]).status, 201);
    let t2 = ts();
    assert_eq!(n.req("PUT", A, &[("X-Timestamp", &t2)]).status, 202);
    let (p1, p2, p3) = (ts(), ts(), ts());
    assert_eq!(row(&n, "c1", &p1, "0", 2, 10, "0").status, 201);
    assert_eq!(row(&n, "c2", &p2, "0", 3, 100, "1").status, 201);
    assert_eq!(row(&n, "c3", &p3, "0", 0, 0, "1").status, 201);
    // A report carries the container's current counts: they replace the
    // row's, while its timestamps only move forward.
    assert_eq!(row(&n, "c1", &p1, "0", 4, 20, "0").status, 201);
    let h = n.req("HEAD", A, &[]);
    assert_eq!(h.status, 204);
    assert_eq!(h.header("x-account-container-count"), Some("3"));
    assert_eq!(h.header("x-account-object-count"), Some("7"));
    assert_eq!(h.header("x-account-bytes-used"), Some("120"));
    assert_eq!(h.header("x-account-meta-owner"), Some("ops"));
    assert_eq!(h.header("x-put-timestamp"), Some(t2.as_str()), "a PUT to an existing account moves it on");
    assert!(h.header("x-timestamp").is_some_and(|c| c >= t.as_str()), "X-Timestamp is when the database was made");
    assert_eq!(h.header("x-account-storage-policy-gold-container-count"), Some("1"));
    assert_eq!(h.header("x-account-storage-policy-gold-bytes-used"), Some("20"));
    assert_eq!(h.header("x-account-storage-policy-silver-container-count"), Some("2"));
    assert_eq!(h.header("x-account-storage-policy-silver-object-count"), Some("3"));
    assert_eq!(h.header("content-type"), Some("text/plain; charset=utf-8"));
    let old = "0000000001.00000";
    assert_eq!(row(&n, "c1", old, "0", 5, 30, "0").status, 201);
    let g = n.req("GET", &format!("{A}?format=json&prefix=c1"), &[]).json();
    assert_eq!((g[0]["bytes"].as_u64(), g[0]["last_modified"].as_str().map(|s| &s[..4])), (Some(30), Some("2026")));
    // The container is deleted: a 204, and it leaves the counts.
    let d = ts();
    assert_eq!(row(&n, "c3", &p3, &d, 0, 0, "1").status, 204);
    let h = n.req("HEAD", A, &[]);
    assert_eq!(h.header("x-account-container-count"), Some("2"));
    assert_eq!(h.header("x-account-storage-policy-silver-container-count"), Some("1"));
    // Rows for a missing account: 404, unless the account is auto-created.
    assert_eq!(row_for(&n, "/sda1/0/AUTH_none/c").status, 404);
    assert_eq!(row_for(&n, "/sda1/0/.expiring_objects/1795305600").status, 201);
    assert_eq!(n.req("HEAD", "/sda1/0/.expiring_objects", &[]).header("x-account-container-count"), Some("1"));
    // A row without its numbers is refused.
    assert_eq!(n.req("PUT", &format!("{A}/x"), &[("X-Timestamp", &ts())]).status, 400);
    let bad = n.req(
        "PUT",
        &format!("{A}/x"),
        &[("X-Put-Timestamp", "soon"), ("X-Delete-Timestamp", "0"), ("X-Object-Count", "0"), ("X-Bytes-Used", "0")],
    );
    assert_eq!((bad.status, bad.text()), (400, "Invalid X-Put-Timestamp header".to_string()));
    let bad = n.req(
        "PUT",
        &format!("{A}/x"),
        &[("X-Put-Timestamp", &ts()), ("X-Delete-Timestamp", "0"), ("X-Object-Count", "many"), ("X-Bytes-Used", "0")],
    );
    assert_eq!(bad.status, 400);
    assert_eq!(n.req("GET", &format!("{A}?format=json&prefix=x"), &[]).text(), "[]", "nothing stored");
}

fn row_for(n: &Node, path: &str) -> Response {
    let t = ts();
    n.req(
        "PUT",
        path,
        &[("X-Put-Timestamp", &t), ("X-Delete-Timestamp", "0"), ("X-Object-Count", "0"), ("X-Bytes-Used", "0")],
    )
}

#[test]
fn listings_formats_and_parameters() {
    let n = node();
    n.req("PUT", A, &[("X-Timestamp", &ts())]);
    assert_eq!(n.req("GET", A, &[]).status, 204, "an empty plain listing");
    let empty = n.req("GET", &format!("{A}?format=json"), &[]);
    assert_eq!((empty.status, empty.text()), (200, "[]".to_string()));
    for name in ["a", "a-1", "a-2", "b", "\u{e9}"] {
        let t = ts();
        let q = aerie_storage::path::quote(name);
        assert_eq!(row(&n, &q, &t, "0", 1, 7, if name == "b" { "1" } else { "0" }).status, 201);
    }
    let g = n.req("GET", &format!("{A}?format=json"), &[]);
    assert_eq!(g.status, 200);
    let v = g.json();
    assert_eq!(v.as_array().map(Vec::len), Some(5));
    assert_eq!((v[0]["name"].as_str(), v[0]["count"].as_u64(), v[0]["bytes"].as_u64()), (Some("a"), Some(1), Some(7)));
    assert!(v[0]["last_modified"].as_str().is_some_and(|s| s.len() == 26 && s.contains('T')), "{v}");
    assert_eq!(v[3]["storage_policy"], "silver");
    assert_eq!(v[4]["name"], "\u{e9}");
    let names = |q: &str| -> Vec<String> {
        n.req("GET", &format!("{A}?format=json&{q}"), &[])
            .json()
            .as_array()
            .expect("array")
            .iter()
            .map(|e| e["name"].as_str().or(e["subdir"].as_str()).unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(names("delimiter=-"), ["a", "a-", "b", "\u{e9}"]);
    assert_eq!(names("prefix=a-"), ["a-1", "a-2"]);
    assert_eq!(names("marker=a-1&end_marker=b"), ["a-2"]);
    assert_eq!(names("limit=2&reverse=yes"), ["\u{e9}", "b"]);
    assert_eq!(n.req("GET", &format!("{A}?limit=10001"), &[]).status, 412);
    let plain = n.req("GET", &format!("{A}?prefix=a"), &[]);
    assert_eq!((plain.status, plain.text()), (200, "a\na-1\na-2\n".to_string()));
    assert_eq!(plain.header("x-account-container-count"), Some("5"), "listings carry the account headers");
    let x = n.req("GET", &format!("{A}?format=xml&prefix=b"), &[]);
    assert_eq!(x.header("content-type"), Some("application/xml; charset=utf-8"));
    let body = x.text();
    assert!(
        body.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<account name=\"AUTH_a\">\n<container><name>b</name><count>1</count><bytes>7</bytes>"),
        "{body}"
    );
    assert!(body.ends_with("<storage_policy>silver</storage_policy></container>\n</account>"), "{body}");
    assert_eq!(n.req("GET", A, &[("Accept", "image/png")]).status, 406);
    assert_eq!(n.req("GET", "/sda1/0/AUTH_missing?format=json", &[]).status, 404);
}

#[test]
fn delete_recreate_post_and_bad_requests() {
    let n = node();
    assert_eq!(n.req("POST", A, &[("X-Timestamp", &ts())]).status, 404);
    assert_eq!(n.req("DELETE", A, &[("X-Timestamp", &ts())]).status, 404);
    n.req("PUT", A, &[("X-Timestamp", &ts())]);
    // Metadata: set, replace, delete with an empty value, and the limits.
    assert_eq!(n.req("POST", A, &[("X-Timestamp", &ts()), ("X-Account-Meta-A", "1")]).status, 204);
    assert_eq!(n.req("POST", A, &[("X-Timestamp", &ts()), ("X-Account-Meta-B", "2")]).status, 204);
    assert_eq!(n.req("POST", A, &[("X-Timestamp", &ts()), ("X-Account-Meta-A", "")]).status, 204);
    let h = n.req("HEAD", A, &[]);
    assert_eq!((h.header("x-account-meta-a"), h.header("x-account-meta-b")), (None, Some("2")));
    let long = "k".repeat(129);
    let r = n.req("POST", A, &[("X-Timestamp", &ts()), (&format!("X-Account-Meta-{long}"), "v")]);
    assert_eq!((r.status, r.text()), (400, format!("Metadata name too long: x-account-meta-K{}", &long[1..])));
    let big = "v".repeat(257);
    assert_eq!(n.req("POST", A, &[("X-Timestamp", &ts()), ("X-Account-Meta-Big", &big)]).status, 400);
    assert_eq!(n.req("POST", A, &[]).status, 400, "no X-Timestamp");
    assert_eq!(n.req("PUT", A, &[("X-Timestamp", "yesterday")]).status, 400);
    assert_eq!(n.req("GET", "/sda1/0", &[]).status, 400);
    assert_eq!(n.req("COPY", A, &[]).status, 405);
    // Deleted: 404 with X-Account-Status, then 403 "Recently deleted" to a PUT.
    let d = n.req("DELETE", A, &[("X-Timestamp", &ts())]);
    assert_eq!((d.status, d.header("x-account-status")), (204, Some("Deleted")));
    let h = n.req("HEAD", A, &[]);
    assert_eq!((h.status, h.header("x-account-status")), (404, Some("Deleted")));
    let r = n.req("PUT", A, &[("X-Timestamp", &ts())]);
    assert_eq!((r.status, r.text()), (403, "Recently deleted".to_string()));
    assert_eq!(row_for(&n, &format!("{A}/c")).status, 404, "no rows into a deleted account");
    assert_eq!(n.req("GET", "/nodev/0/AUTH_a", &[]).status, 507, "a missing device");
}

#[test]
fn interop_databases_are_shared_with_swifts_account_server() {
    let conf = system_swift_conf();
    let dir = TempDir::new("ainterop");
    let root = dir.path().join("node");
    std::fs::create_dir_all(root.join("sda1")).expect("dev");
    let n = Node::on(dir, root.clone(), conf, "account", 2);
    let sw = start_swift_server("account", &root);
    // aerie creates and records containers; Swift reports them.
    n.req("PUT", A, &[("X-Timestamp", &ts()), ("X-Account-Meta-X", "1")]);
    for (name, policy) in [("b", "0"), ("a-1", "1"), ("\u{e9}t\u{e9}", "0")] {
        let t = ts();
        assert_eq!(row(&n, &aerie_storage::path::quote(name), &t, "0", 3, 11, policy).status, 201);
    }
    for q in ["", "&delimiter=-", "&reverse=true&limit=2", "&prefix=a"] {
        let a = request(n.addr(), "GET", &format!("{A}?format=json{q}"), &[], b"");
        let s = request(sw.addr, "GET", &format!("{A}?format=json{q}"), &[], b"");
        assert_eq!((a.status, a.json()), (s.status, s.json()), "listing {q}");
    }
    for q in ["?format=xml", "?prefix=a", "?format=txt&prefix=zz"] {
        let a = request(n.addr(), "GET", &format!("{A}{q}"), &[], b"");
        let s = request(sw.addr, "GET", &format!("{A}{q}"), &[], b"");
        assert_eq!(
            (a.status, a.text(), a.header("content-type")),
            (s.status, s.text(), s.header("content-type")),
            "{q}"
        );
    }
    let a = request(n.addr(), "HEAD", A, &[], b"");
    let s = request(sw.addr, "HEAD", A, &[], b"");
    let mut wanted: Vec<(String, String)> = s
        .headers
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-account-") || k.eq_ignore_ascii_case("x-timestamp"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    wanted.sort();
    assert!(wanted.len() >= 10, "{wanted:?}");
    for (k, v) in &wanted {
        assert_eq!(a.header(k), Some(v.as_str()), "{k}");
    }
    // Swift's own tool reads aerie's database.
    let db = crate::util::find_db(&root, "accounts", &crate::util::md5_hex(b"changeme/AUTH_achangeme"));
    let info = crate::util::swift_db_info("account", &db);
    assert!(info.contains("Container Count: 3") && info.contains("Object Count: 9"), "{info}");
    assert!(info.contains("Bytes Used: 33") && info.contains("X-Account-Meta-X: 1"), "{info}");
    // Swift creates and records; aerie reads it.
    let t = ts();
    assert_eq!(request(sw.addr, "PUT", "/sda1/0/AUTH_sw", &[("X-Timestamp", &t)], b"").status, 201);
    let p = ts();
    let r = request(
        sw.addr,
        "PUT",
        "/sda1/0/AUTH_sw/one",
        &[
            ("X-Put-Timestamp", &p),
            ("X-Delete-Timestamp", "0"),
            ("X-Object-Count", "2"),
            ("X-Bytes-Used", "5"),
            ("X-Backend-Storage-Policy-Index", "1"),
        ],
        b"",
    );
    assert_eq!(r.status, 201);
    let a = request(n.addr(), "GET", "/sda1/0/AUTH_sw?format=json", &[], b"");
    let s = request(sw.addr, "GET", "/sda1/0/AUTH_sw?format=json", &[], b"");
    assert_eq!(a.json(), s.json());
    let h = request(n.addr(), "HEAD", "/sda1/0/AUTH_sw", &[], b"");
    assert_eq!(h.header("x-account-storage-policy-silver-bytes-used"), Some("5"));
    // Deleted by aerie; Swift sees it deleted.
    assert_eq!(request(n.addr(), "DELETE", "/sda1/0/AUTH_sw", &[("X-Timestamp", &ts())], b"").status, 204);
    let s = request(sw.addr, "HEAD", "/sda1/0/AUTH_sw", &[], b"");
    assert_eq!((s.status, s.header("x-account-status")), (404, Some("Deleted")));
}

/// One node serving all three services on three listeners, with the
/// updaters sweeping every half second; swift.conf is in the returned
/// directory (where the updaters look for rings).
fn full_node() -> (crate::util::Server, TempDir) {
    let dir = TempDir::new("fullnode");
    let root = dir.path().join("node");
    std::fs::create_dir_all(root.join("sda1")).expect("dev");
    let conf = dir.path().join("swift.conf");
    std::fs::write(&conf, crate::util::SWIFT_CONF).expect("conf");
    let mut cfg = format!(
        "[server]\nworkers = 2\n[admin]\naddress = \"127.0.0.1:0\"\n[storage]\ndevices = {:?}\nmount_check = false\nswift_conf = {:?}\nobject_updater_interval = 0.5\ncontainer_updater_interval = 0.5\n",
        root.display().to_string(),
        conf.display().to_string()
    );
    for service in ["object", "container", "account"] {
        cfg.push_str(&format!(
            "[[listen]]\naddress = \"127.0.0.1:0\"\nlength_required = []\npipeline = [\"{service}\"]\n"
        ));
    }
    (crate::util::Server::start(&cfg), dir)
}

#[test]
fn account_statistics_follow_object_uploads_through_the_container_updater() {
    let (s, dir) = full_node();
    let (obj, cont, acct) = (s.addrs[0], s.addrs[1], s.addrs[2]);
    // The account ring names this node's account server.
    crate::util::write_ring(dir.path(), "account", &[(acct, "sda1")]);
    let part = {
        let ring = aerie_storage::ring::Ring::load(&dir.path().join("account.ring.gz")).expect("ring");
        let conf = aerie_storage::swift_conf::parse(crate::util::SWIFT_CONF).expect("conf");
        ring.partition(&conf.salt, "AUTH_u", None, None).to_string()
    };
    assert_eq!(request(acct, "PUT", &format!("/sda1/{part}/AUTH_u"), &[("X-Timestamp", &ts())], b"").status, 201);
    // The container PUT names an account replica that is down: the update
    // fails, and the container updater must deliver it through the ring.
    let t = ts();
    let h = [
        ("X-Account-Host", "127.0.0.1:1"),
        ("X-Account-Device", "sda1"),
        ("X-Account-Partition", part.as_str()),
        ("X-Timestamp", &t),
    ];
    assert_eq!(request(cont, "PUT", "/sda1/0/AUTH_u/c", &h, b"").status, 201);
    let cont_host = cont.to_string();
    let to_container =
        [("X-Container-Host", cont_host.as_str()), ("X-Container-Device", "sda1"), ("X-Container-Partition", "0")];
    let mut total = 0;
    for i in 0..20 {
        let body = vec![b'x'; 100 * i + 1];
        total += body.len();
        let t = ts();
        let mut h = to_container.to_vec();
        h.extend([("X-Timestamp", t.as_str()), ("Content-Type", "application/octet-stream")]);
        assert_eq!(request(obj, "PUT", &format!("/sda1/0/AUTH_u/c/o{i}"), &h, &body).status, 201);
    }
    let head = || request(acct, "HEAD", &format!("/sda1/{part}/AUTH_u"), &[], b"");
    let figures = |r: &Response| {
        (
            r.header("x-account-container-count").map(str::to_string),
            r.header("x-account-object-count").map(str::to_string),
            r.header("x-account-bytes-used").map(str::to_string),
        )
    };
    let want = (Some("1".to_string()), Some("20".to_string()), Some(total.to_string()));
    crate::util::wait_until("the account to count 20 objects", std::time::Duration::from_secs(30), || {
        figures(&head()) == want
    });
    assert_eq!(head().header("x-account-storage-policy-gold-object-count"), Some("20"));
    // Deletes converge too.
    for i in 0..5 {
        let t = ts();
        let mut h = to_container.to_vec();
        h.push(("X-Timestamp", &t));
        assert_eq!(request(obj, "DELETE", &format!("/sda1/0/AUTH_u/c/o{i}"), &h, b"").status, 204);
    }
    let gone: usize = (0..5).map(|i| 100 * i + 1).sum();
    let want = (Some("1".to_string()), Some("15".to_string()), Some((total - gone).to_string()));
    crate::util::wait_until("the account to count 15 objects", std::time::Duration::from_secs(30), || {
        figures(&head()) == want
    });
    let st = s.status();
    assert!(st["workers"].as_array().is_some_and(|w| w.iter().any(|w| w["role"] == "container-updater")), "{st}");
    // A container whose account exists on no replica of the ring is
    // quarantined by the updater, as Swift's does.
    let t = ts();
    assert_eq!(request(cont, "PUT", "/sda1/0/AUTH_nowhere/orphan", &[("X-Timestamp", &t)], b"").status, 201);
    crate::util::wait_until("the orphan container to be quarantined", std::time::Duration::from_secs(30), || {
        crate::util::files_under(&dir.path().join("node/sda1/quarantined/containers"))
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "db"))
    });
    assert_eq!(request(cont, "HEAD", "/sda1/0/AUTH_nowhere/orphan", &[], b"").status, 404);
}
