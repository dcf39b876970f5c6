//! Container and account replication against Swift 2.38.3's own daemons:
//! `swift-container-replicator` and `swift-account-replicator` run on an
//! aerie node's disks (as an operator would run them beside aerie) bring
//! the other aerie nodes' databases up to date through aerie's
//! `REPLICATE` RPC — rows a few behind (usync), many behind (rsync then
//! merge) and a database the node never had (rsync, complete_rsync) —
//! and the replicas end as Swift's brokers read them: the same rows,
//! counts, timestamps and metadata.

use super::swift_py;
use crate::swift_cluster::{data, Cluster};
use std::process::Command;

/// Every node's own replicators off: only Swift's replicate here.
fn no_replicator(_: usize, config: String) -> String {
    config.replace("[replication]\n", "[replication]\nobject_replicator = false\n")
}

/// One pass of Swift's `kind`-replicator over node `i`'s devices, with a
/// tiny `per_diff` so that a few rows behind already counts as far behind.
fn swift_db_replicator_once(c: &Cluster, i: usize, kind: &str) -> String {
    let dir = c.node_root(i).parent().expect("node dir").to_path_buf();
    let conf = dir.join(format!("{kind}-replicator.conf"));
    let user = String::from_utf8_lossy(&Command::new("id").arg("-un").output().expect("id").stdout).trim().to_string();
    let port = c.node_addr(i, &kind.to_ascii_uppercase()).port();
    let rsync_module = format!("rsync://127.0.0.1:{}/{kind}{{replication_port}}", c.env("RSYNC_PORT"));
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\ndevices = {}\nmount_check = false\nbind_ip = 127.0.0.1\nbind_port = {port}\nswift_dir = {}\n\
             user = {user}\nlog_name = {kind}-replicator\n\n[pipeline:main]\npipeline = {kind}-server\n\n\
             [app:{kind}-server]\nuse = egg:swift#{kind}\n\n[{kind}-replicator]\nconcurrency = 2\nper_diff = 3\n\
             max_diffs = 100\nnode_timeout = 10\nrecon_cache_path = {}\nrsync_module = {rsync_module}\n",
            c.node_root(i).display(),
            dir.parent().expect("cluster dir").join("swift").display(),
            dir.display()
        ),
    )
    .expect("replicator conf");
    let bin = crate::util::swift_python().parent().expect("venv bin").join(format!("swift-{kind}-replicator"));
    let out = Command::new(&bin).arg(&conf).arg("once").arg("-v").output().expect("run the replicator");
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "swift-{kind}-replicator on node {i}: {log}");
    assert!(!log.contains("Traceback"), "swift-{kind}-replicator on node {i}: {log}");
    log
}

/// Node `i`'s databases of `kind` as Swift's brokers read them.
fn state(c: &Cluster, i: usize, kind: &str) -> serde_json::Value {
    let dev = super::device(c, i);
    serde_json::from_str(&swift_py("db_state.py", &[&dev.to_string_lossy(), kind])).expect("json")
}

#[test]
fn swifts_database_replicators_heal_aerie_nodes() {
    let mut c = Cluster::start(3, no_replicator);
    let _rsyncd = super::interop::rsyncd(&c);
    c.ok(&["post", "near"]);
    c.ok(&["post", "far"]);
    for i in 0..2 {
        c.write_file(&format!("n/{i}"), &data(100 + i, 10 + i as u64));
    }
    c.ok(&["upload", "near", "n"]);
    c.write_file("f/0", &data(50, 1));
    c.ok(&["upload", "far", "f"]);
    c.kill_node(3);
    // While node 3 is down: two more rows and a delete in "near" (a few
    // behind: usync), twelve in "far" (far behind: rsync then merge), a
    // container node 3 never heard of (rsync, complete_rsync), metadata.
    c.write_file("n/2", &data(102, 12));
    c.ok(&["upload", "near", "n/2"]);
    c.ok(&["delete", "near", "n/0"]);
    c.ok(&["post", "near", "-m", "color:green"]);
    c.ok(&["post", "-m", "team:blue"]);
    for i in 1..13 {
        c.write_file(&format!("f/{i}"), &data(60 + i, 20 + i as u64));
    }
    c.ok(&["upload", "far", "f"]);
    c.ok(&["post", "fresh"]);
    c.write_file("x/0", &data(70, 3));
    c.ok(&["upload", "fresh", "x"]);
    c.restart_node(3);
    for kind in ["container", "account"] {
        assert_ne!(state(&c, 3, kind), state(&c, 1, kind), "node 3 missed {kind} updates");
    }
    for kind in ["container", "account"] {
        let log = swift_db_replicator_once(&c, 1, kind) + &swift_db_replicator_once(&c, 2, kind);
        // The one failure Swift's client may count is its own: it waits
        // count/2000 s for rsync_then_merge (6 ms for 13 rows) and gives up
        // while the node goes on to merge (SWIFT-REPLICATION.md §5.4).
        let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
        let own_timeouts =
            errors.iter().filter(|l| l.contains("reading HTTP response") && l.contains("Timeout (0.0")).count();
        assert_eq!(errors.len(), own_timeouts, "{log}");
        let failures: u64 =
            log.split(" failures").filter_map(|p| p.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok())).sum();
        assert!(failures <= own_timeouts as u64, "{log}");
        if kind == "container" {
            // All three ways a replica catches up were taken.
            let stat = |name: &str| -> u64 {
                log.split_whitespace()
                    .filter_map(|w| w.strip_prefix(&format!("{name}:")))
                    .filter_map(|n| n.parse::<u64>().ok())
                    .sum()
            };
            assert!(stat("diff") >= 1 && stat("remote_merge") >= 1 && stat("rsync") >= 1, "{log}");
        }
        let (s1, s2, s3) = (state(&c, 1, kind), state(&c, 2, kind), state(&c, 3, kind));
        assert_eq!(s3, s1, "node 3's {kind} databases caught up through aerie's REPLICATE");
        assert_eq!(s2, s1);
    }
    let meta = &state(&c, 3, "account");
    assert!(meta.to_string().contains("X-Account-Meta-Team"), "the account's metadata came by sync: {meta}");
    // The listing through the proxy agrees with the replicas.
    let listed = c.ok(&["list", "far"]);
    assert_eq!(listed.lines().count(), 13, "{listed}");
    // A pass with everything in sync changes nothing and fails nothing.
    let before = state(&c, 3, "container");
    let log = swift_db_replicator_once(&c, 1, "container");
    assert!(!log.contains("ERROR"), "{log}");
    assert_eq!(state(&c, 3, "container"), before);
}

/// `REPLICATE` to `addr` with a JSON body.
fn rpc(addr: std::net::SocketAddr, path: &str, body: &str) -> crate::util::Response {
    let len = body.len().to_string();
    crate::object_api::request(
        addr,
        "REPLICATE",
        path,
        &[("Content-Type", "application/json"), ("Content-Length", &len)],
        body.as_bytes(),
    )
}

#[test]
fn the_rpc_answers_as_swifts_container_server_does_and_refuses_what_it_should() {
    let n = crate::container_api::Node::service("container");
    let t = |s: u64| format!("{}.00000", 1_700_000_000 + s);
    let c = "/sda1/0/AUTH_t/c";
    assert_eq!(n.req("PUT", c, &[("X-Timestamp", &t(1)), ("X-Container-Meta-Color", "blue")]).status, 201);
    for (i, name) in ["o1", "o%C3%A92"].iter().enumerate() {
        let r = n.req(
            "PUT",
            &format!("{c}/{name}"),
            &[("X-Timestamp", &t(2 + i as u64)), ("X-Size", "5"), ("X-Content-Type", "text/plain"), ("X-Etag", "x")],
        );
        assert_eq!(r.status, 201);
    }
    let db = crate::util::files_under(&n.root.join("sda1/containers"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "db"))
        .expect("the container's database");
    let hash = db.file_stem().and_then(|s| s.to_str()).expect("hash").to_string();
    let path = format!("/sda1/0/{hash}");
    // Swift's own container server on a copy of the same device.
    let swift_root = crate::util::TempDir::new("swiftdb");
    let ok = Command::new("cp").arg("-a").arg(n.root.join("sda1")).arg(swift_root.path()).status().expect("cp");
    assert!(ok.success());
    let swift = crate::util::start_swift_server("container", swift_root.path());
    let sync = format!(
        r#"["sync", 1, "00000000000000000000000000000000", "remote-sda9", "{}", "{}", "0", "{{\"X-Container-Meta-Shape\": [\"round\", \"{}\"]}}"]"#,
        t(0),
        t(1),
        t(9)
    );
    for body in [
        sync.as_str(),
        r#"["get_shard_ranges"]"#,
        r#"["merge_items", [{"ROWID": 7, "name": "o3", "created_at": "1700000005.00000", "size": 3, "content_type": "a/b", "etag": "e", "deleted": 0, "storage_policy_index": 0}], "remote-sda9"]"#,
        r#"["merge_syncs", [{"remote_id": "other-sda8", "sync_point": 4}]]"#,
        sync.as_str(),
    ] {
        let (a, s) = (rpc(n.addr(), &path, body), rpc(swift.addr, &path, body));
        assert_eq!((a.status, a.text()), (s.status, s.text()), "aerie and Swift answer {body} alike");
    }
    // The sync answer is Swift's, byte for byte, with the point merge_items left.
    let answer = rpc(n.addr(), &path, &sync).json();
    assert_eq!(answer["point"], 7, "{answer}");
    assert_eq!(answer["count"], 3);
    // What must be refused is refused, and nothing is written.
    let before = rpc(n.addr(), &path, &sync).text();
    for (body, why) in [
        ("not json", "bad JSON"),
        (r#"{"op": "sync"}"#, "not a list"),
        ("[]", "no op"),
        (r#"[7]"#, "an op that is not a string"),
        (r#"["drop_table"]"#, "an unknown op"),
        (
            r#"["merge_items", [{"ROWID": 8, "name": "", "created_at": "1700000006.00000", "size": 1, "content_type": "a", "etag": "e", "deleted": 0}], "x"]"#,
            "an empty name",
        ),
        (
            r#"["merge_items", [{"ROWID": 8, "name": "ok", "created_at": "yesterday", "size": 1, "content_type": "a", "etag": "e", "deleted": 0}], "x"]"#,
            "a bad timestamp",
        ),
        (
            r#"["merge_items", [{"ROWID": 8, "name": "ok", "created_at": "1700000006.00000", "size": "big", "content_type": "a", "etag": "e", "deleted": 0}], "x"]"#,
            "a size that is not a number",
        ),
        (r#"["merge_syncs", [{"remote_id": 5}]]"#, "a bad sync point"),
        (r#"["complete_rsync", "../../../etc/passwd"]"#, "a temporary name outside tmp/"),
        (r#"["rsync_then_merge", "x", "../../../x.db"]"#, "a database name that climbs"),
        (r#"["sync", "one"]"#, "too few arguments"),
    ] {
        let r = rpc(n.addr(), &path, body);
        assert_eq!(r.status, 400, "{why}: {}", r.text());
    }
    assert_eq!(rpc(n.addr(), &path, &sync).text(), before, "nothing was written by a refused op");
    // Paths: a hash that is not one, a partition that is not a number, a
    // database that is not here (tmp/ made for a coming rsync), a device
    // that is not.
    for p in ["/sda1/0/..%2f..%2fetc".to_string(), format!("/sda1/x/{hash}"), "/sda1/0".to_string()] {
        let (r, s) = (rpc(n.addr(), &p, &sync), rpc(swift.addr, &p, &sync));
        assert_eq!(r.status, s.status, "{p}: {} / {}", r.text(), s.text());
        assert!(r.status == 400 || r.status == 404, "{p}: {}", r.status);
    }
    std::fs::remove_dir_all(n.root.join("sda1/tmp")).ok();
    let missing = format!("/sda1/0/{}", "f".repeat(32));
    assert_eq!(rpc(n.addr(), &missing, &sync).status, 404);
    assert!(n.root.join("sda1/tmp").is_dir(), "tmp/ is there for an rsync to land in");
    assert_eq!(rpc(n.addr(), &format!("/nodev/0/{hash}"), &sync).status, 507);
    drop(swift);
}
