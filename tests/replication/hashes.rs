//! REPLICATE's suffix hashes are Swift's: for the same hash directories
//! (data, tombstones, `.meta`, content-type POSTs, reclaimable tombstones,
//! obsolete files, rsync's temporaries) aerie's answer equals what Swift's
//! `DiskFileManager._get_hashes` computes, both leave the same files
//! behind, and each reads the other's `hashes.pkl` and `hashes.invalid`.

use super::{swift_py, tree};
use crate::object_api::{put, Node};
use crate::util::system_swift_conf;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

fn touch(dir: &Path, names: &[String]) {
    std::fs::create_dir_all(dir).expect("dir");
    for n in names {
        std::fs::write(dir.join(n), b"").expect("file");
    }
}

/// A timestamp `ago` seconds before now, in internal form.
fn ago(secs: u64, offset: u64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
    let t = format!("{:010}.{:05}", now - secs, 0);
    if offset > 0 {
        format!("{t}_{offset:016x}")
    } else {
        t
    }
}

/// A partition with every kind of hash directory the suffix hash treats
/// differently.
fn lay_out(part: &Path) {
    let h = |suffix: &str, n: u8| format!("{:029x}{suffix}", u128::from(n) + 0xabc);
    let dirs: Vec<(String, Vec<String>)> = vec![
        (h("001", 1), vec![format!("{}.data", ago(500, 0))]),
        (h("002", 1), vec![format!("{}.data", ago(500, 0)), format!("{}.meta", ago(400, 0))]),
        // A POST with a content type, then a newer one without.
        (
            h("003", 1),
            vec![format!("{}.data", ago(500, 0)), format!("{}+0.meta", ago(300, 0)), format!("{}.meta", ago(200, 0))],
        ),
        (h("004", 1), vec![format!("{}.ts", ago(100, 0))]),
        // Older than a week: reclaimed, and the suffix goes with it.
        (h("005", 1), vec![format!("{}.ts", ago(700_000, 0))]),
        // Obsolete files and an offset tombstone in one suffix, two dirs.
        (h("006", 1), vec![format!("{}.data", ago(900, 0)), format!("{}.ts", ago(800, 1))]),
        (h("006", 2), vec![format!("{}.data", ago(900, 0)), format!("{}.data", ago(600, 0))]),
        // A lone .meta contributes nothing; rsync's temporary is ignored.
        (h("007", 1), vec![format!("{}.meta", ago(100, 0))]),
        (h("008", 1), vec![format!("{}.data", ago(50, 0)), format!(".{}.data.Ab12Cd", ago(40, 0))]),
    ];
    for (hash, files) in dirs {
        let suffix = &hash[hash.len() - 3..];
        touch(&part.join(suffix).join(&hash), &files);
    }
}

fn copy_tree(from: &Path, to: &Path) {
    let out = std::process::Command::new("cp").arg("-a").arg(from).arg(to).output().expect("cp");
    assert!(out.status.success(), "cp: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn replicate_answers_the_hashes_swifts_diskfile_manager_computes() {
    system_swift_conf();
    let n = Node::start();
    let part = n.root.join("sda1/objects/5");
    lay_out(&part);
    // Swift works on a copy of the same directories.
    let swift_root = n.root.parent().expect("dir").join("swift-root");
    std::fs::create_dir_all(swift_root.join("sda1/objects")).expect("dirs");
    copy_tree(&part, &swift_root.join("sda1/objects/5"));

    let r = n.req("REPLICATE", "/sda1/5", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let body = n.root.parent().expect("dir").join("replicate.pkl");
    std::fs::write(&body, &r.body).expect("body");
    let aerie: serde_json::Value =
        serde_json::from_str(&swift_py("swift_hashes.py", &["unpickle", &body.to_string_lossy()])).expect("json");
    let swift: serde_json::Value =
        serde_json::from_str(&swift_py("swift_hashes.py", &["hashes", &swift_root.to_string_lossy(), "sda1", "5"]))
            .expect("json");
    assert_eq!(aerie, swift, "aerie's REPLICATE answer (unpickled by Swift) is Swift's own hashes");
    let suffixes: Vec<&String> = swift.as_object().expect("dict").keys().collect();
    assert_eq!(suffixes, ["001", "002", "003", "004", "006", "007", "008"], "005 was reclaimed away");
    assert_eq!(swift["007"], "d41d8cd98f00b204e9800998ecf8427e", "a lone .meta hashes as nothing");

    // The same files are left behind (obsolete ones and the old tombstone
    // gone, rsync's temporary kept), apart from each side's own cache.
    let left = |root: &Path| -> Vec<String> {
        tree(&root.join("sda1/objects/5")).into_iter().filter(|f| !f.starts_with("hashes.") && f != ".lock").collect()
    };
    assert_eq!(left(&n.root), left(&swift_root));

    // Each reads the other's cache: Swift reads aerie's hashes.pkl as valid
    // and equal to the answer ...
    let read: serde_json::Value =
        serde_json::from_str(&swift_py("swift_hashes.py", &["read", &part.to_string_lossy()])).expect("json");
    assert_eq!(read["valid"], true);
    for (k, v) in swift.as_object().expect("dict") {
        assert_eq!(&read[k], v, "suffix {k} in aerie's hashes.pkl");
    }
    // ... and aerie trusts a hashes.pkl Swift wrote (a cached value it
    // could not have computed itself comes back as is).
    let mut cached = swift.clone();
    cached["001"] = serde_json::json!("0123456789abcdef0123456789abcdef");
    cached["valid"] = serde_json::json!(true);
    swift_py("swift_hashes.py", &["write", &part.to_string_lossy(), &cached.to_string()]);
    let r = n.req("REPLICATE", "/sda1/5", &[], b"");
    std::fs::write(&body, &r.body).expect("body");
    let again: serde_json::Value =
        serde_json::from_str(&swift_py("swift_hashes.py", &["unpickle", &body.to_string_lossy()])).expect("json");
    assert_eq!(again["001"], "0123456789abcdef0123456789abcdef", "aerie used Swift's hashes.pkl");
    // A big cache as Swift writes it (SETITEMS in batches of a thousand,
    // memo indexes past 255), answered as it stands.
    let mut big = serde_json::Map::new();
    for n in 0..2000u32 {
        big.insert(format!("{:03x}", n * 2), serde_json::json!(format!("{:032x}", u128::from(n) * 7919)));
    }
    big.insert("valid".into(), serde_json::json!(true));
    swift_py(
        "swift_hashes.py",
        &["write", &part.to_string_lossy(), &serde_json::Value::Object(big.clone()).to_string()],
    );
    let r = n.req("REPLICATE", "/sda1/5", &[], b"");
    std::fs::write(&body, &r.body).expect("body");
    let answer: serde_json::Value =
        serde_json::from_str(&swift_py("swift_hashes.py", &["unpickle", &body.to_string_lossy()])).expect("json");
    big.remove("valid");
    assert_eq!(answer, serde_json::Value::Object(big), "Swift's 2000-suffix hashes.pkl is the answer");
    swift_py("swift_hashes.py", &["write", &part.to_string_lossy(), &cached.to_string()]);

    // A write through aerie invalidates its suffix in hashes.invalid, which
    // Swift's consolidate folds in (and empties).
    let (w, _) = put(&n, "/sda1/5/AUTH_t/c/o", b"x", &[]);
    assert_eq!(w.status, 201);
    let inv = std::fs::read_to_string(part.join("hashes.invalid")).expect("hashes.invalid");
    let suffix = inv.lines().last().expect("a line").to_string();
    assert_eq!(suffix.len(), 3, "{inv:?}");
    let c: serde_json::Value =
        serde_json::from_str(&swift_py("swift_hashes.py", &["consolidate", &part.to_string_lossy()])).expect("json");
    assert!(c.get(&suffix).is_some_and(|v| v.is_null()), "{suffix} marked for rehashing: {c}");
    assert_eq!(std::fs::metadata(part.join("hashes.invalid")).map(|m| m.len()).ok(), Some(0));
    let _ = std::fs::remove_dir_all(&swift_root);
}

#[test]
fn replicate_marks_suffixes_and_refuses_bad_paths() {
    let n = Node::start();
    // A partition that does not exist: an empty dict, nothing created.
    let r = n.req("REPLICATE", "/sda1/9", &[], b"");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"\x80\x02}."[..]));
    assert!(!n.root.join("sda1/objects/9").exists());
    // Suffixes: the valid ones appended to hashes.invalid, a pickled None.
    let r = n.req("REPLICATE", "/sda1/9/abc-XYZ-..-def", &[], b"");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"\x80\x02N."[..]));
    let inv = std::fs::read_to_string(n.root.join("sda1/objects/9/hashes.invalid")).expect("hashes.invalid");
    assert_eq!(inv, "abc\ndef\n");
    let r = n.req("REPLICATE", "/sda1/9/..%2f..%2f..%2fetc", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(std::fs::read_to_string(n.root.join("sda1/objects/9/hashes.invalid")).expect("read"), "abc\ndef\n");
    for (path, status) in [
        ("/sda1/notanumber", 400),
        ("/sda1/-1", 400),
        ("/sda1", 400),
        ("/sda1/..", 400),
        ("/../1", 400),
        ("/nodev/1", 507),
    ] {
        let r = n.req("REPLICATE", path, &[], b"");
        assert_eq!(r.status, status, "REPLICATE {path}: {}", r.text());
    }
    let r = n.req("REPLICATE", "/sda1/1", &[("X-Backend-Storage-Policy-Index", "7")], b"");
    assert_eq!((r.status, r.text().trim()), (503, "No policy with index 7"));
    // Nothing was written outside the device directories.
    let mut top: Vec<String> = std::fs::read_dir(&n.root)
        .expect("root")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["sda1", "sdb1"]);
}

/// Every thread of a process: its name and its nice value.
fn thread_nices(pid: u32) -> Vec<(String, i64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| {
            let comm = std::fs::read_to_string(t.path().join("comm")).ok()?.trim().to_string();
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            // Fields after the name: state is field 3, nice field 19.
            let nice = stat.rsplit(')').next()?.split_whitespace().nth(16)?.parse().ok()?;
            Some((comm, nice))
        })
        .collect()
}

#[test]
fn replication_work_runs_at_the_configured_cpu_priority() {
    let n = Node::start();
    // A REPLICATE starts the device's replication lane; a HEAD its client
    // queue (in whichever worker takes each).
    for _ in 0..4 {
        assert_eq!(n.req("REPLICATE", "/sda1/9", &[], b"").status, 200);
        assert_eq!(n.req("HEAD", "/sda1/9/a/c/o", &[], b"").status, 404);
    }
    let threads: Vec<(String, i64)> =
        crate::util::children(n.server.pid()).into_iter().flat_map(thread_nices).collect();
    let lane: Vec<&(String, i64)> = threads.iter().filter(|(c, _)| c.starts_with("object:sda1/rep")).collect();
    let client: Vec<&(String, i64)> = threads.iter().filter(|(c, _)| c.starts_with("object:sda1:")).collect();
    assert!(!lane.is_empty() && !client.is_empty(), "both queues have threads: {threads:?}");
    assert!(lane.iter().all(|(_, nice)| *nice == 10), "replication lane at nice 10 (the default): {lane:?}");
    assert!(client.iter().all(|(_, nice)| *nice == 0), "client requests' threads unchanged: {client:?}");
    let replicator: Vec<(String, i64)> = crate::util::children(n.server.pid())
        .into_iter()
        .map(thread_nices)
        .find(|t| t.iter().any(|(c, _)| c.contains("object-r")))
        .expect("the object replicator process");
    assert!(replicator.iter().all(|(_, nice)| *nice == 10), "every replicator thread at nice 10: {replicator:?}");
}
