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
use std::time::Duration;

/// Every node's own replicators off: only Swift's replicate here.
fn no_replicator(_: usize, config: String) -> String {
    config.replace("[replication]\n", "[replication]\nobject_replicator = false\ndb_replicator = false\n")
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

/// Two containers, "near" with two objects and "far" with one.
fn first_writes(c: &Cluster) {
    c.ok(&["post", "near"]);
    c.ok(&["post", "far"]);
    for i in 0..2 {
        c.write_file(&format!("n/{i}"), &data(100 + i, 10 + i as u64));
    }
    c.ok(&["upload", "near", "n"]);
    c.write_file("f/0", &data(50, 1));
    c.ok(&["upload", "far", "f"]);
}

/// What a replica that is down misses: a few rows and a delete in "near"
/// (a few behind: usync), twelve rows in "far" (far behind: rsync then
/// merge), a container it never heard of ("fresh": rsync,
/// complete_rsync), container and account metadata.
fn missed_writes(c: &Cluster) {
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
}

#[test]
fn swifts_database_replicators_heal_aerie_nodes() {
    let mut c = Cluster::start(3, no_replicator);
    let _rsyncd = super::interop::rsyncd(&c);
    first_writes(&c);
    c.kill_node(3);
    // While node 3 is down: two more rows and a delete in "near" (a few
    // behind: usync), twelve in "far" (far behind: rsync then merge), a
    // container node 3 never heard of (rsync, complete_rsync), metadata.
    missed_writes(&c);
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

/// Long enough for the file clock to move past a database's last change
/// (a tick is at most 10 ms): a `sync` answered now is kept in memory.
fn settle() {
    std::thread::sleep(Duration::from_millis(60));
}

/// SQL run on a database by another process (Python's sqlite3), as
/// Swift's own daemons write to aerie's files.
fn outside_write(db: &std::path::Path, sql: &str) {
    let ok = Command::new("python3")
        .arg("-c")
        .arg("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit(); c.close()")
        .arg(db)
        .arg(sql)
        .status()
        .expect("python3");
    assert!(ok.success(), "{sql}");
}

#[test]
fn a_sync_answered_from_memory_follows_every_change_to_the_database() {
    // One worker, so every call reaches the process that keeps the answer.
    let n = crate::container_api::Node::service_workers("container", 1);
    let t = |s: u64| format!("{}.00000", 1_700_000_000 + s);
    let c = "/sda1/0/AUTH_t/c";
    assert_eq!(n.req("PUT", c, &[("X-Timestamp", &t(1))]).status, 201);
    let put = |name: &str, s: u64| {
        let h =
            [("X-Timestamp", t(s)), ("X-Size", "5".into()), ("X-Content-Type", "a/b".into()), ("X-Etag", "e".into())];
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(n.req("PUT", &format!("{c}/{name}"), &h).status, 201);
    };
    put("o1", 2);
    let db = crate::util::files_under(&n.root.join("sda1/containers"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "db"))
        .expect("the container's database");
    let path = format!("/sda1/0/{}", db.file_stem().and_then(|s| s.to_str()).expect("hash"));
    // The sender's view: in sync at the max row, the same timestamps, no
    // metadata: a call that writes nothing, answered from memory the
    // second time.
    let sync = |point: i64| {
        format!(r#"["sync", {point}, "{}", "remote-sda9", "{}", "{}", "0", ""]"#, "0".repeat(32), t(1), t(1))
    };
    let ask = || rpc(n.addr(), &path, &sync(1)).json();
    let first = ask();
    assert_eq!((first["count"].as_i64(), first["point"].as_i64()), (Some(1), Some(-1)), "{first}");
    settle();
    let kept = rpc(n.addr(), &path, &sync(1)).text();
    assert_eq!(rpc(n.addr(), &path, &sync(1)).text(), kept, "answered again, the same bytes");
    // The first call merged the sender's earlier creation time.
    let kept: serde_json::Value = serde_json::from_str(&kept).expect("json");
    assert_eq!(kept["created_at"].as_str(), Some(t(1).as_str()), "{kept}");

    // A row through the server (.pending, then merged on open).
    put("o2", 3);
    let a = ask();
    assert_eq!((a["count"].as_i64(), a["max_row"].as_i64()), (Some(2), Some(2)), "a new row: {a}");
    let copy = db.with_extension("copy");
    std::fs::copy(&db, &copy).expect("copy");
    settle();
    ask();
    // Metadata POSTed to the container.
    let r = n.req("POST", c, &[("X-Timestamp", &t(4)), ("X-Container-Meta-Color", "blue")]);
    assert_eq!(r.status, 204);
    let a = ask();
    assert!(a["metadata"].as_str().is_some_and(|m| m.contains("X-Container-Meta-Color")), "metadata: {a}");
    settle();
    ask();
    // A sync point merged by the RPC.
    let merged = rpc(n.addr(), &path, r#"["merge_syncs", [{"remote_id": "remote-sda9", "sync_point": 9}]]"#);
    assert_eq!(merged.status, 202);
    assert_eq!(ask()["point"], 9, "the merged point");
    settle();
    ask();
    // Another process writing the file in place (the same size): a point
    // lowered, which no RPC does.
    outside_write(&db, "UPDATE incoming_sync SET sync_point = 5 WHERE remote_id = 'remote-sda9'");
    assert_eq!(ask()["point"], 5, "a change by another process");
    settle();
    ask();
    // The file replaced by an older copy (an operator's restore).
    let tmp = db.with_extension("restore");
    std::fs::copy(&copy, &tmp).expect("copy back");
    std::fs::rename(&tmp, &db).expect("rename over");
    let a = ask();
    assert_eq!((a["count"].as_i64(), a["point"].as_i64()), (Some(2), Some(-1)), "the restored file: {a}");
    assert!(a["metadata"].as_str().is_some_and(|m| !m.contains("Color")), "{a}");
    settle();
    ask();
    // A call that changes the replica (a newer point with the same hash
    // merges it) is never answered from memory.
    let hash = a["hash"].as_str().expect("hash").to_string();
    let same_hash = format!(r#"["sync", 2, "{hash}", "remote-sda9", "{}", "{}", "0", ""]"#, t(1), t(1));
    assert_eq!(rpc(n.addr(), &path, &same_hash).json()["point"], 2, "the hash matched: point merged");
    settle();
    assert_eq!(ask()["point"], 2);
    // Gone: 404, as before it was ever asked.
    std::fs::remove_file(&db).expect("rm");
    assert_eq!(rpc(n.addr(), &path, &sync(1)).status, 404);
}

/// aerie's own replicators a pass a second, and a `per_diff` of two so a
/// handful of rows behind already counts as far behind (rsync then merge).
fn fast_dbs(_: usize, config: String) -> String {
    config.replace("interval = 5.0", "interval = 1.0\nper_diff = 2\ndatabases_per_second = 0")
}

/// A container (or account, with `container` None) as node `n`'s server
/// answers a direct GET: status, the headers replicas must agree on, and
/// the listing.
fn direct(c: &Cluster, n: usize, part: u32, account: &str, container: Option<&str>) -> (u16, Vec<String>, String) {
    let (service, path) = match container {
        Some(name) => ("CONTAINER", format!("/d{n}/{part}/{account}/{name}?format=json")),
        None => ("ACCOUNT", format!("/d{n}/{part}/{account}?format=json")),
    };
    let r = crate::util::get(c.node_addr(n, service), &path);
    let mut headers: Vec<String> = r
        .headers
        .iter()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            k.ends_with("-object-count")
                || k.ends_with("-bytes-used")
                || k.ends_with("-container-count")
                || k.contains("-meta-")
                || k == "x-put-timestamp"
                || k == "x-backend-delete-timestamp"
        })
        .map(|(k, v)| format!("{}: {v}", k.to_ascii_lowercase()))
        .collect();
    headers.sort();
    (r.status, headers, r.text())
}

/// The nodes whose devices hold a database of `container` (of AUTH_test).
fn holders(c: &Cluster, nodes: usize, container: &str) -> Vec<usize> {
    (1..=nodes)
        .filter(|&i| {
            state(c, i, "container")
                .as_object()
                .is_some_and(|m| m.values().any(|db| db["info"]["container"] == container))
        })
        .collect()
}

/// Wait until every node's `read` is the same and `done` holds for it;
/// the answers of each node when it does not come.
fn agree(
    c: &Cluster,
    what: &str,
    nodes: &[usize],
    read: impl Fn(usize) -> (u16, Vec<String>, String),
    done: impl Fn(&(u16, Vec<String>, String)) -> bool,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let all: Vec<_> = nodes.iter().map(|&n| (n, read(n))).collect();
        if done(&all[0].1) && all.iter().all(|(_, a)| *a == all[0].1) {
            return;
        }
        if std::time::Instant::now() > deadline {
            let logs: String = nodes
                .iter()
                .map(|&n| {
                    let log = c.node_log(n);
                    let errors: Vec<&str> =
                        log.lines().filter(|l| l.contains("replicat") && !l.contains("INFO")).rev().take(12).collect();
                    format!("node {n}: {errors:#?}\n")
                })
                .collect();
            panic!("{what} never agreed: {all:#?}\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn aeries_replicators_bring_back_a_node_that_missed_container_and_account_updates_and_move_a_handoff_home() {
    let mut c = Cluster::start(4, fast_dbs);
    let _rsyncd = super::interop::rsyncd(&c);
    let (apart, account_nodes) = c.primaries("account", "AUTH_test", None);
    // The node that goes down is an account primary and a primary of both
    // containers used here, so it misses their updates, and the new
    // container's third copy goes to a handoff meanwhile.
    let down = account_nodes[0];
    let pick = |prefix: &str| -> String {
        (0..200)
            .map(|i| format!("{prefix}{i}"))
            .find(|name| c.primaries("container", "AUTH_test", Some(name)).1.contains(&down))
            .expect("a container name with the node as a primary")
    };
    let (keep, fresh) = (pick("keep"), pick("fresh"));
    let (kpart, keep_nodes) = c.primaries("container", "AUTH_test", Some(&keep));
    let (fpart, fresh_nodes) = c.primaries("container", "AUTH_test", Some(&fresh));
    let handoff = (1..=4).find(|n| !fresh_nodes.contains(n)).expect("a handoff node");
    c.ok(&["post", &keep]);
    c.ok(&["post", "gone"]);
    for i in 0..3 {
        c.write_file(&format!("a/{i}"), &data(300 + i, 30 + i as u64));
    }
    c.ok(&["upload", &keep, "a"]);
    c.write_file("g", &data(10, 1));
    c.ok(&["upload", "gone", "g"]);
    crate::util::wait_until("every replica of the container to list it", Duration::from_secs(60), || {
        keep_nodes.iter().all(|&n| direct(&c, n, kpart, "AUTH_test", Some(&keep)).2.matches("\"name\"").count() == 3)
    });

    c.kill_node(down);
    for i in 0..6 {
        c.write_file(&format!("b/{i}"), &data(600 + i, 60 + i as u64));
    }
    c.ok(&["upload", &keep, "b"]);
    c.ok(&["delete", &keep, "a/0"]);
    c.ok(&["post", &keep, "-m", "color:green"]);
    c.ok(&["delete", "gone"]);
    c.ok(&["post", &fresh]);
    c.write_file("x", &data(20, 2));
    c.ok(&["upload", &fresh, "x"]);
    c.ok(&["post", "-m", "team:blue"]);
    assert!(holders(&c, 4, &fresh).contains(&handoff), "the proxy put the new container on the handoff");
    let others: Vec<usize> = keep_nodes.iter().copied().filter(|&n| n != down).collect();
    let want = direct(&c, others[0], kpart, "AUTH_test", Some(&keep));
    assert_ne!(want.1, Vec::<String>::new(), "{want:?}");

    c.restart_node(down);
    // After the replicators' passes a direct GET of the container on each
    // primary answers the same listing, counts and metadata.
    agree(
        &c,
        "the container's replicas",
        &keep_nodes,
        |n| direct(&c, n, kpart, "AUTH_test", Some(&keep)),
        |first| first.2.matches("\"name\"").count() == 8,
    );
    let got = direct(&c, down, kpart, "AUTH_test", Some(&keep));
    assert!(got.1.iter().any(|h| h == "x-container-meta-color: green"), "{got:?}");
    assert!(got.1.iter().any(|h| h == "x-container-object-count: 8"), "{got:?}");
    // The account's replicas agree too (containers, counts, metadata).
    agree(
        &c,
        "the account's replicas",
        &account_nodes,
        |n| direct(&c, n, apart, "AUTH_test", None),
        |first| first.2.contains(&format!("\"name\": \"{fresh}\"")) && !first.2.contains("\"name\": \"gone\""),
    );
    let account = direct(&c, down, apart, "AUTH_test", None);
    assert!(account.1.iter().any(|h| h == "x-account-meta-team: blue"), "{account:?}");
    // The deleted container is deleted on the node that missed the DELETE.
    let gone_part = c.primaries("container", "AUTH_test", Some("gone")).0;
    if c.primaries("container", "AUTH_test", Some("gone")).1.contains(&down) {
        crate::util::wait_until("the missed container DELETE to reach the node", Duration::from_secs(90), || {
            direct(&c, down, gone_part, "AUTH_test", Some("gone")).0 == 404
        });
    }
    // The handoff's copy of the new container went to its primaries and
    // left the handoff.
    crate::util::wait_until("the handoff database to move home", Duration::from_secs(90), || {
        let h = holders(&c, 4, &fresh);
        h.len() == 3 && !h.contains(&handoff)
    });
    for &n in &fresh_nodes {
        let (status, headers, listing) = direct(&c, n, fpart, "AUTH_test", Some(&fresh));
        assert_eq!(status, 200, "node {n}");
        assert!(listing.contains("\"name\": \"x\""), "node {n}: {listing}");
        assert!(headers.iter().any(|h| h == "x-container-object-count: 1"), "node {n}: {headers:?}");
    }
    let sent: f64 = (1..=4).map(|n| c.metric(n, "aerie_db_replication_rows_sent_total")).sum();
    let whole: f64 = (1..=4)
        .map(|n| {
            c.metric(n, "aerie_db_replication_rsyncs_total") + c.metric(n, "aerie_db_replication_remote_merges_total")
        })
        .sum();
    let removed: f64 = c.metric(handoff, "aerie_db_replication_removes_total");
    assert!(sent > 0.0 && whole > 0.0 && removed >= 1.0, "rows {sent}, whole databases {whole}, removed {removed}");
}

/// An account state without the figures container updaters report
/// (counts, bytes, the hash over them): names, timestamps, metadata.
fn without_counts(state: &serde_json::Value) -> serde_json::Value {
    let mut s = state.clone();
    for db in s.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
        if let Some(info) = db["info"].as_object_mut() {
            for k in ["object_count", "bytes_used", "hash"] {
                info.remove(k);
            }
        }
        if let Some(rows) = db["rows"].as_array_mut() {
            for r in rows.iter_mut() {
                if let Some(r) = r.as_array_mut() {
                    // [name, put, delete, object_count, bytes_used, deleted]
                    r.truncate(3);
                }
            }
        }
    }
    s
}

/// Node config text with the `service` listener moved to `port` (a port
/// the rings do not know: Swift's server takes the ring's).
fn move_listener(config: &str, service: &str, port: u16) -> String {
    config
        .split("\n[[listen]]")
        .map(|section| {
            if !section.contains(&format!("\"{service}\"]")) {
                return section.to_string();
            }
            section
                .lines()
                .map(|l| if l.starts_with("address = ") { format!("address = \"127.0.0.1:{port}\"") } else { l.into() })
                .collect::<Vec<String>>()
                .join("\n")
        })
        .collect::<Vec<String>>()
        .join("\n[[listen]]")
}

/// Swift's container and account servers on node `i`'s ring ports and
/// devices.
fn swift_db_servers(c: &Cluster, i: usize) -> [crate::util::SwiftServer; 2] {
    ["container", "account"].map(|kind| {
        crate::util::start_swift_server_at(kind, &c.node_root(i), c.node_addr(i, &kind.to_ascii_uppercase()).port())
    })
}

#[test]
fn a_database_passed_from_memory_still_sends_every_change_and_takes_its_peers_metadata() {
    // Node 1 replicates, a pass a second; nodes 2 and 3 only answer.
    let c = Cluster::start(3, |i, config| {
        let config = fast_dbs(i, config);
        if i == 1 {
            config
        } else {
            config.replace("[replication]\n", "[replication]\ndb_replicator = false\n")
        }
    });
    c.ok(&["post", "steady"]);
    c.write_file("o", &data(10, 1));
    c.ok(&["upload", "steady", "o"]);
    let (part, nodes) = c.primaries("container", "AUTH_test", Some("steady"));
    assert_eq!(nodes.len(), 3);
    // Node 1 has one container database: "steady".
    let unopened = || {
        let text = crate::util::get(c.node_addr(1, "ADMIN"), "/metrics").text();
        text.lines()
            .filter(|l| l.starts_with("aerie_db_replication_unopened_total{service=\"container\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    crate::util::wait_until("node 1 to pass its databases from memory", Duration::from_secs(60), || unopened() > 0.0);
    let read = |n: usize| direct(&c, n, part, "AUTH_test", Some("steady"));
    let all = [1, 2, 3];

    // A row only node 1's replica has (written to its server directly).
    let ts = aerie_storage::Timestamp::now().internal();
    let row = [("X-Timestamp", ts.as_str()), ("X-Size", "3"), ("X-Content-Type", "a/b"), ("X-Etag", "e")];
    let r = crate::object_api::request(
        c.node_addr(1, "CONTAINER"),
        "PUT",
        &format!("/d1/{part}/AUTH_test/steady/only-on-1"),
        &row,
        b"",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    agree(&c, "a row written to node 1 alone", &all, read, |(_, _, listing)| listing.contains("only-on-1"));

    // Metadata another process wrote into node 1's file, in place.
    let db1 = crate::util::files_under(&super::device(&c, 1).join("containers"))
        .into_iter()
        .find(|p| {
            p.extension().is_some_and(|e| e == "db")
                && state(&c, 1, "container")[p.file_stem().and_then(|s| s.to_str()).unwrap_or("")]["info"]["container"]
                    == "steady"
        })
        .expect("node 1's replica");
    let before = unopened();
    crate::util::wait_until("another pass from memory", Duration::from_secs(30), || unopened() > before);
    let md = format!(r#"{{"X-Container-Meta-Shade": ["dark", "{}"]}}"#, aerie_storage::Timestamp::now().internal());
    outside_write(&db1, &format!("UPDATE container_stat SET metadata = '{md}'"));
    agree(&c, "metadata written into node 1's file", &all, read, |(_, headers, _)| {
        headers.iter().any(|h| h == "x-container-meta-shade: dark")
    });

    // Newer metadata on node 2 alone: node 1 takes it from node 2's answer
    // and sends it to node 3.
    let before = unopened();
    crate::util::wait_until("another pass from memory", Duration::from_secs(30), || unopened() > before);
    let ts = aerie_storage::Timestamp::now().internal();
    let r = crate::object_api::request(
        c.node_addr(2, "CONTAINER"),
        "POST",
        &format!("/d2/{part}/AUTH_test/steady"),
        &[("X-Timestamp", ts.as_str()), ("X-Container-Meta-Shade", "light")],
        b"",
    );
    assert_eq!(r.status, 204, "{}", r.text());
    agree(&c, "metadata posted to node 2 alone", &all, read, |(_, headers, _)| {
        headers.iter().any(|h| h == "x-container-meta-shade: light")
    });
    let before = unopened();
    crate::util::wait_until("passes from memory again once in sync", Duration::from_secs(30), || unopened() > before);
}

#[test]
fn aeries_database_replicators_heal_swifts_own_container_and_account_servers() {
    // Node 3's containers and accounts are served by Swift's servers (its
    // aerie keeps the object service and moves the other two listeners to
    // ports the rings do not know). Nodes 1 and 2 replicate with aerie's
    // replicators, `per_diff = 3`.
    let spare = [crate::util::free_port(), crate::util::free_port()];
    let c = Cluster::start(3, |i, config| {
        // Rows reach Swift's node only by replication (no async pendings
        // replayed), so each way of catching up is taken.
        let config = config
            .replace("interval = 5.0", "interval = 1.0\nper_diff = 3\ndatabases_per_second = 0")
            .replace("object_updater_interval = 1.0", "object_updater_interval = 3600.0");
        if i != 3 {
            return config;
        }
        move_listener(&move_listener(&config, "container", spare[0]), "account", spare[1])
    });
    let _rsyncd = super::interop::rsyncd(&c);
    let swift = swift_db_servers(&c, 3);
    first_writes(&c);
    crate::util::wait_until("Swift's servers to have both containers", Duration::from_secs(60), || {
        state(&c, 3, "container").as_object().is_some_and(|m| m.len() == 2)
    });
    // Swift's servers are down while rows are added and deleted, metadata
    // POSTed and a container created: a few rows behind in "near" (usync),
    // twelve of thirteen in "far" (rsync then merge), "fresh" missing
    // (rsync, complete_rsync).
    drop(swift);
    missed_writes(&c);
    for kind in ["container", "account"] {
        assert_ne!(state(&c, 3, kind), state(&c, 1, kind), "Swift's node missed {kind} updates");
    }
    let swift = swift_db_servers(&c, 3);
    let read = |n: usize| (0, Vec::new(), state(&c, n, "container").to_string());
    agree(&c, "aerie and Swift's container servers", &[1, 2, 3], read, |_| true);
    // The account's rows, timestamps and metadata agree. Its per-container
    // counts need not yet: when Swift's server takes an account by
    // rsync_then_merge it merges its own stale rows over the copy it was
    // sent (AccountBroker.merge_items lets a merged record's counts win),
    // and they come right with the next container updater report.
    let read = |n: usize| (0, Vec::new(), without_counts(&state(&c, n, "account")).to_string());
    agree(&c, "aerie and Swift's account servers", &[1, 2, 3], read, |_| true);
    let meta = state(&c, 3, "account");
    assert!(meta.to_string().contains("X-Account-Meta-Team"), "the account's metadata came by sync: {meta}");
    let near = state(&c, 3, "container").to_string();
    assert!(near.contains("X-Container-Meta-Color"), "{near}");
    // Every way a replica catches up was taken, and nothing failed once
    // the replicas agreed.
    let metric = |name: &str| -> f64 { (1..=2).map(|n| c.metric(n, name)).sum() };
    assert!(metric("aerie_db_replication_diffs_total") >= 1.0);
    assert!(metric("aerie_db_replication_remote_merges_total") >= 1.0);
    assert!(metric("aerie_db_replication_rsyncs_total") >= 1.0);
    let failures = metric("aerie_db_replication_failures_total");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(metric("aerie_db_replication_failures_total"), failures, "passes in sync fail nothing");
    drop(swift);
}

#[test]
fn tombstone_rows_and_deleted_containers_are_reclaimed_after_reclaim_age() {
    // A reclaim_age of seconds, so the test sees what takes a week (long
    // enough to see the tombstone before it goes, even when a loaded
    // machine takes 15 s over the writes).
    let c = Cluster::start(3, |_, config| {
        config.replace("interval = 5.0", "interval = 1.0").replace("[storage]\n", "[storage]\nreclaim_age = 30.0\n")
    });
    c.ok(&["post", "kept"]);
    c.ok(&["post", "brief"]);
    for name in ["kept", "brief"] {
        c.write_file("o", &data(10, 1));
        c.ok(&["upload", name, "o"]);
        c.ok(&["delete", name, "o"]);
    }
    c.write_file("p", &data(20, 2));
    c.ok(&["upload", "kept", "p"]);
    c.ok(&["delete", "brief"]);
    let tombstones = |n: usize| -> usize {
        state(&c, n, "container")
            .as_object()
            .map(|m| {
                m.values()
                    .filter(|db| db["info"]["container"] == "kept")
                    .flat_map(|db| db["rows"].as_array().cloned().unwrap_or_default())
                    .filter(|r| r[4] == 1)
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(tombstones(1), 1, "the delete left a tombstone row");
    assert_eq!(holders(&c, 3, "brief").len(), 3, "the deleted container's databases are still there");
    crate::util::wait_until(
        "the tombstones and the deleted container to be reclaimed",
        Duration::from_secs(90),
        || (1..=3).all(|n| tombstones(n) == 0) && holders(&c, 3, "brief").is_empty(),
    );
    // The live container and its object stayed.
    assert_eq!(holders(&c, 3, "kept").len(), 3);
    assert_eq!(c.ok(&["list", "kept"]).trim(), "p");
    let removed: f64 = (1..=3).map(|n| c.metric(n, "aerie_db_replication_removes_total")).sum();
    assert!(removed >= 3.0, "each node removed its copy: {removed}");
}
