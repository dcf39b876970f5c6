//! Corrupt objects are quarantined: on open and while being read.

use super::*;

#[test]
fn corrupt_objects_are_quarantined_and_answer_404() {
    let n = Node::start();
    let (_, t) = put(&n, OBJ, b"hello", &[]);
    let data = n.root.join("sda1/objects/0/ef2/12ff799997ba082a30012665b4e4fef2").join(format!("{t}.data"));
    // The size no longer matches the stored Content-Length.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&data)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"!"))
        .expect("corrupt");
    let r = n.req("GET", OBJ, &[], b"");
    assert_eq!(r.status, 404);
    assert!(!data.exists(), "moved away");
    assert!(
        n.files("sda1").iter().any(|f| f.starts_with("quarantined/objects/12ff799997ba082a30012665b4e4fef2/")),
        "{:?}",
        n.files("sda1")
    );
    assert_eq!(
        n.req("PUT", OBJ, &[("X-Timestamp", &ts()), ("Content-Type", "a")], b"new").status,
        201,
        "a new PUT works"
    );
    assert_eq!(n.req("GET", OBJ, &[], b"").body, b"new");
}

/// The quarantined copies of an object's files under a device.
fn quarantined(n: &Node, device: &str, hash: &str) -> Vec<String> {
    n.files(device).into_iter().filter(|f| f.starts_with(&format!("quarantined/objects/{hash}"))).collect()
}

#[test]
fn a_get_that_reads_bytes_not_matching_the_etag_quarantines_the_object() {
    let n = Node::start();
    let hash = "12ff799997ba082a30012665b4e4fef2";
    let (_, t) = put(&n, OBJ, b"hello", &[]);
    let data = n.root.join("sda1/objects/0/ef2").join(hash).join(format!("{t}.data"));
    // Same length, other bytes, metadata untouched: only reading tells.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"jello"))
        .expect("corrupt");
    let r = n.req("HEAD", OBJ, &[], b"");
    assert_eq!(r.status, 200, "a HEAD reads no bytes and cannot tell");
    let r = n.req("GET", OBJ, &[("Range", "bytes=1-2")], b"");
    assert_eq!((r.status, r.body.as_slice()), (206, &b"el"[..]), "a range read does not check the whole file");
    assert!(quarantined(&n, "sda1", hash).is_empty());
    let r = n.req("GET", OBJ, &[], b"");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"jello"[..]), "the bytes go out once, as Swift sends them");
    wait_until("the object to be quarantined", Duration::from_secs(5), || !quarantined(&n, "sda1", hash).is_empty());
    assert!(!data.exists());
    assert_eq!(n.req("GET", OBJ, &[], b"").status, 404, "the next GET sends the proxy elsewhere");
    assert_eq!(n.req("HEAD", OBJ, &[], b"").status, 404);
    let hashes_invalid = std::fs::read_to_string(n.root.join("sda1/objects/0/hashes.invalid")).unwrap_or_default();
    assert!(hashes_invalid.lines().any(|l| l == "ef2"), "the replicator is told: {hashes_invalid:?}");
    // Swift's own tool reads the quarantined file.
    let q = n
        .root
        .join("sda1")
        .join(quarantined(&n, "sda1", hash).into_iter().find(|f| f.ends_with(".data")).expect("the quarantined .data"));
    let info_bin = crate::util::swift_python().parent().expect("bin").join("swift-object-info");
    let out = std::process::Command::new(info_bin).arg(&q).output().expect("swift-object-info");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("Path: /AUTH_t/c/o"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A good copy comes back with the next PUT (or the replicator).
    put(&n, OBJ, b"hello", &[]);
    assert_eq!(n.req("GET", OBJ, &[], b"").body, b"hello");
    assert_eq!(n.req("GET", OBJ, &[], b"").status, 200, "a good object is never quarantined by reading it");
}

#[test]
fn a_data_file_shorter_than_its_metadata_is_quarantined_on_get_head_and_post() {
    let n = Node::start();
    for (i, method) in ["GET", "HEAD", "POST"].into_iter().enumerate() {
        let path = format!("/sda1/0/AUTH_t/c/short{i}");
        let (r, t) = put(&n, &path, b"abcd", &[]);
        assert_eq!(r.status, 201);
        let data = n
            .files("sda1")
            .into_iter()
            .find(|f| f.starts_with("objects/") && f.ends_with(&format!("{t}.data")))
            .map(|f| n.root.join("sda1").join(f))
            .expect("the data file");
        let hash = data.parent().and_then(|p| p.file_name()).map(|s| s.to_string_lossy().into_owned()).expect("hash");
        // Zero bytes on disk; the metadata still says 4.
        std::fs::OpenOptions::new().write(true).open(&data).and_then(|f| f.set_len(0)).expect("truncate");
        let t2 = ts();
        let headers: Vec<(&str, &str)> = if method == "POST" { vec![("X-Timestamp", t2.as_str())] } else { vec![] };
        let r = n.req(method, &path, &headers, b"");
        assert_eq!(r.status, 404, "{method} of a short data file");
        assert!(!data.exists(), "{method}: moved away");
        assert!(!quarantined(&n, "sda1", &hash).is_empty(), "{method}: quarantined");
        assert_eq!(n.req("GET", &path, &[], b"").status, 404);
    }
}
