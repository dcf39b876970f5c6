//! An erasure-coded policy on aerie nodes: Swift's proxy (PyECLib,
//! `liberasurecode_rs_vand`, 4 data + 2 parity fragments) in front of three
//! aerie nodes with two devices each, the EC policy the default beside a
//! replicated one. Fragment archives land as Swift names them
//! (`<ts>#<index>#d.data`), downloads survive a node down, Swift's own
//! object server reads fragments aerie wrote and aerie reads those Swift
//! wrote, and a PUT whose commit phase never comes leaves a fragment no
//! ordinary GET serves.

use crate::swift_cluster::{data, Cluster};
use crate::util::{md5_hex, start_swift_server_via, try_request, Client, Response, TempDir};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

const EC: &[(&str, &str)] = &[("EC", "1"), ("DEVICES_PER_NODE", "2")];

/// Every `.data` file under a root.
fn data_files(root: &Path) -> Vec<PathBuf> {
    crate::util::files_under(root).into_iter().filter(|p| p.extension().is_some_and(|x| x == "data")).collect()
}

/// The fragment indexes of an object's durable fragments on the cluster.
fn durable_fragments(c: &Cluster, nodes: usize, hash: &str) -> Vec<u32> {
    let mut idx: Vec<u32> = (1..=nodes)
        .flat_map(|n| data_files(&c.node_root(n)))
        .filter(|p| p.to_string_lossy().contains(hash))
        .filter_map(|p| {
            let name = p.file_name()?.to_string_lossy().into_owned();
            let stem = name.strip_suffix("#d.data")?;
            stem.rsplit('#').next()?.parse().ok()
        })
        .collect();
    idx.sort_unstable();
    idx
}

#[test]
fn swift_clients_store_and_read_erasure_coded_objects_on_aerie_nodes() {
    let mut c = Cluster::start_env(3, EC, |_, t| t);
    c.ok(&["post", "ecc"]);
    let stat = c.stat(&["ecc"]);
    assert_eq!(stat.get("X-Storage-Policy").map(String::as_str), Some("ec42"), "{stat:?}");
    const MIB: usize = 1 << 20;
    let files = [("one", data(1, 7)), ("five", data(5 * MIB, 8)), ("forty", data(40 * MIB, 9))];
    for (name, bytes) in &files {
        c.write_file(name, bytes);
        c.ok(&["upload", "ecc", name]);
        assert_eq!(md5_hex(&c.download("ecc", name)), md5_hex(bytes), "{name}");
    }
    let listing = c.ok(&["list", "ecc", "--long"]);
    for (name, bytes) in &files {
        assert!(
            listing.lines().any(|l| l.contains(name) && l.trim_start().starts_with(&bytes.len().to_string())),
            "{listing}"
        );
    }
    // Six fragments, one of each index, each durable, across the devices.
    let text = std::fs::read_to_string(c.dir().join("swift/swift.conf")).expect("swift.conf");
    let conf = aerie_storage::swift_conf::parse(&text).expect("swift.conf");
    for (name, _) in &files {
        let hash = conf.salt.hash_path("AUTH_test", Some("ecc"), Some(name));
        assert_eq!(durable_fragments(&c, 3, &hash), [0, 1, 2, 3, 4, 5], "{name}");
    }
    c.ok(&["post", "ecc", "five", "-m", "color:blue"]);
    let stat = c.stat(&["ecc", "five"]);
    assert_eq!(stat.get("Meta Color").map(String::as_str), Some("blue"), "{stat:?}");
    // A node down (two of six fragments gone): every object still reads.
    c.kill_node(3);
    for (name, bytes) in &files {
        assert_eq!(md5_hex(&c.download("ecc", name)), md5_hex(bytes), "{name} with node 3 down");
    }
    c.restart_node(3);
    c.ok(&["delete", "ecc", "one"]);
    assert!(!c.swift(&["stat", "ecc", "one"]).status.success(), "deleted");
    assert!(!c.ok(&["list", "ecc"]).lines().any(|l| l == "one"));
}

/// A multiphase PUT of one fragment, as Swift's proxy sends it; with
/// `commit` false the connection is dropped after the data phase. The
/// interim answers' heads and the final answer (if any).
fn multiphase_put(
    addr: SocketAddr,
    path: &str,
    ts: &str,
    body: &[u8],
    fi: u32,
    commit: bool,
) -> (Vec<String>, Option<Response>) {
    let boundary = "ec0ffee0ec0ffee0ec0ffee0ec0ffee0ec0ffee0ec0ffee0ec0ffee0ec0ffee0";
    let mut c = Client::connect(addr);
    c.set_timeout(std::time::Duration::from_secs(30));
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nX-Timestamp: {ts}\r\n\
         Content-Type: application/octet-stream\r\nX-Backend-Storage-Policy-Index: 1\r\nX-Backend-Obj-Content-Length: {}\r\n\
         X-Backend-Obj-Multipart-Mime-Boundary: {boundary}\r\nX-Backend-Obj-Metadata-Footer: yes\r\n\
         X-Backend-Obj-Multiphase-Commit: yes\r\n\r\n",
        body.len()
    );
    c.stream().write_all(head.as_bytes()).expect("head");
    let interim_head = |c: &mut Client| -> String {
        match c.read_head() {
            Some((status, headers)) => {
                let mut t = format!("HTTP/1.1 {status}\r\n");
                for (k, v) in headers {
                    t.push_str(&format!("{k}: {v}\r\n"));
                }
                t
            }
            None => "closed".to_string(),
        }
    };
    let mut interim = vec![interim_head(&mut c)];
    let chunk = |c: &mut Client, b: &[u8]| {
        let mut out = format!("{:x}\r\n", b.len()).into_bytes();
        out.extend_from_slice(b);
        out.extend_from_slice(b"\r\n");
        c.stream().write_all(&out).expect("chunk");
    };
    chunk(&mut c, format!("--{boundary}\r\nX-Document: object body\r\n\r\n").as_bytes());
    chunk(&mut c, body);
    let footer = format!(
        r#"{{"Etag": "{}", "X-Object-Sysmeta-Ec-Frag-Index": "{fi}", "X-Object-Sysmeta-Ec-Etag": "e", "X-Object-Sysmeta-Ec-Content-Length": "{}"}}"#,
        md5_hex(body),
        body.len() * 4
    );
    let footer_doc = format!(
        "\r\n--{boundary}\r\nX-Document: object metadata\r\nContent-MD5: {}\r\n\r\n{footer}\r\n--{boundary}\r\n",
        md5_hex(footer.as_bytes())
    );
    chunk(&mut c, footer_doc.as_bytes());
    chunk(&mut c, b"");
    interim.push(interim_head(&mut c));
    if !commit {
        return (interim, None);
    }
    chunk(&mut c, format!("X-Document: put commit\r\n\r\nput_commit_confirmation\r\n--{boundary}--").as_bytes());
    chunk(&mut c, b"");
    (interim, Some(c.read_response()))
}

fn get(addr: SocketAddr, path: &str, prefs: Option<&str>) -> Response {
    let mut h = vec![("X-Backend-Storage-Policy-Index", "1")];
    if let Some(p) = prefs {
        h.push(("X-Backend-Fragment-Preferences", p));
    }
    try_request(addr, "GET", path, &h, b"").expect("GET")
}

#[test]
fn fragments_are_committed_in_two_phases_and_read_by_swifts_object_server_too() {
    let c = Cluster::start_env(3, EC, |_, t| t);
    let aerie = c.node_addr(1, "OBJECT");
    let run = c.dir().join("swift-run");
    // Swift's object server on a scratch device of its own, same policies.
    let scratch = TempDir::new("ecswift");
    std::fs::create_dir_all(scratch.path().join("d1")).expect("dev");
    let swift = start_swift_server_via("object", scratch.path(), crate::util::free_port(), Some(&run));
    // A real fragment archive (index 2 of a 4+2 encoding of one segment):
    // Swift's reader checks the fragment headers and quarantines others.
    let frag_file = scratch.path().join("frag");
    let out = std::process::Command::new(crate::util::swift_python())
        .args(["-c", "import sys; from pyeclib.ec_iface import ECDriver; d = ECDriver(k=4, m=2, ec_type='liberasurecode_rs_vand'); open(sys.argv[1], 'wb').write(d.encode(bytes(range(256)) * 300)[2])"])
        .arg(&frag_file)
        .output()
        .expect("encode with pyeclib");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let body = std::fs::read(&frag_file).expect("fragment");
    for (who, addr) in [("aerie", aerie), ("Swift", swift.addr)] {
        let ts = format!(
            "{:.5}",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("now").as_secs_f64()
        );
        // Committed: durable, served.
        let (interim, resp) = multiphase_put(addr, &format!("/d1/3/AUTH_test/c/whole-{who}"), &ts, &body, 2, true);
        assert!(
            interim[0].contains("X-Obj-Multiphase-Commit: yes") && interim[0].contains("X-Obj-Metadata-Footer: yes"),
            "{who}: {interim:?}"
        );
        assert!(interim[1].starts_with("HTTP/1.1 100"), "{who}: {interim:?}");
        assert_eq!(resp.map(|r| r.status), Some(201), "{who}");
        let r = get(addr, &format!("/d1/3/AUTH_test/c/whole-{who}"), None);
        assert_eq!((r.status, md5_hex(&r.body)), (200, md5_hex(&body)), "{who}");
        assert_eq!(r.header("x-object-sysmeta-ec-frag-index"), Some("2"), "{who}");
        assert_eq!(r.header("x-backend-durable-timestamp"), Some(ts.as_str()), "{who}");
        assert_eq!(r.header("x-backend-fragments"), Some(format!("{{\"{ts}\": [2]}}").as_str()), "{who}");
        // Cut after the data phase: the fragment stays, not durable, and
        // only a read that allows any time (empty preferences) gets it.
        let (interim, resp) = multiphase_put(addr, &format!("/d1/3/AUTH_test/c/cut-{who}"), &ts, &body, 4, false);
        assert!(interim[1].starts_with("HTTP/1.1 100") && resp.is_none(), "{who}: {interim:?}");
        std::thread::sleep(std::time::Duration::from_millis(500));
        let r = get(addr, &format!("/d1/3/AUTH_test/c/cut-{who}"), None);
        assert_eq!(r.status, 404, "{who}: a fragment never committed is not served");
        let r = get(addr, &format!("/d1/3/AUTH_test/c/cut-{who}"), Some("[]"));
        assert_eq!((r.status, md5_hex(&r.body)), (200, md5_hex(&body)), "{who}");
        assert_eq!(r.header("x-backend-durable-timestamp"), None, "{who}");
        assert_eq!(r.header("x-backend-fragments"), Some(format!("{{\"{ts}\": [4]}}").as_str()), "{who}");
    }
    let names = |root: &Path| -> Vec<String> {
        let mut n: Vec<String> = data_files(root)
            .iter()
            .filter_map(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
            .map(|n| n.split_once('#').map(|(_, rest)| rest.to_string()).unwrap_or(n))
            .collect();
        n.sort();
        n
    };
    let aerie_files: Vec<String> = names(&c.node_root(1).join("d1"));
    assert_eq!(aerie_files, names(&scratch.path().join("d1")), "the same file names as Swift's server");
    assert!(
        aerie_files.iter().any(|n| *n == "2#d.data") && aerie_files.iter().any(|n| *n == "4.data"),
        "{aerie_files:?}"
    );
    // Each reads what the other wrote. Swift's server over aerie's device:
    drop(swift);
    let over_aerie = start_swift_server_via("object", &c.node_root(1), crate::util::free_port(), Some(&run));
    let r = get(over_aerie.addr, "/d1/3/AUTH_test/c/whole-aerie", None);
    assert_eq!((r.status, md5_hex(&r.body)), (200, md5_hex(&body)), "Swift reads aerie's fragment");
    assert_eq!(get(over_aerie.addr, "/d1/3/AUTH_test/c/cut-aerie", None).status, 404);
    // and aerie over the fragments Swift's server wrote, copied with their
    // xattrs into its device.
    let from = scratch.path().join("d1/objects-1/3");
    let to = c.node_root(1).join("d1/objects-1/3");
    let status = std::process::Command::new("cp").arg("-a").arg(format!("{}/.", from.display())).arg(&to).status();
    assert!(status.is_ok_and(|s| s.success()), "copy Swift's fragments");
    let r = get(aerie, "/d1/3/AUTH_test/c/whole-Swift", None);
    assert_eq!((r.status, md5_hex(&r.body)), (200, md5_hex(&body)), "aerie reads Swift's fragment");
    assert_eq!(r.header("x-object-sysmeta-ec-frag-index"), Some("2"));
    assert_eq!(get(aerie, "/d1/3/AUTH_test/c/cut-Swift", None).status, 404);
    assert_eq!(get(aerie, "/d1/3/AUTH_test/c/cut-Swift", Some("[]")).status, 200);
}

/// One pass of Swift's object-reconstructor as node `n` (its devices, its
/// object port), through the cluster's `swift-run`.
fn reconstructor_pass(c: &Cluster, n: usize) {
    let conf = c.dir().join(format!("node{n}/object-reconstructor.conf"));
    let user = String::from_utf8_lossy(&std::process::Command::new("id").arg("-un").output().expect("id").stdout)
        .trim()
        .to_string();
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\ndevices = {}\nmount_check = false\nbind_ip = 127.0.0.1\nbind_port = {}\nswift_dir = {}\nuser = {user}\n\
             log_name = reconstructor{n}\nlog_address = /dev/null\n\n[object-reconstructor]\nhandoffs_first = false\n",
            c.node_root(n).display(),
            c.node_addr(n, "OBJECT").port(),
            c.dir().join("swift").display()
        ),
    )
    .expect("reconstructor conf");
    let bin = crate::util::swift_python().with_file_name("swift-object-reconstructor");
    let out = std::process::Command::new(c.dir().join("swift-run"))
        .arg(bin)
        .arg(&conf)
        .args(["--once", "-v"])
        .output()
        .expect("run swift-object-reconstructor");
    assert!(
        out.status.success(),
        "reconstructor on node {n}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn swifts_reconstructor_rebuilds_a_wiped_device_on_an_aerie_node() {
    let mut c = Cluster::start_env(3, EC, |_, t| t);
    c.ok(&["post", "ecc"]);
    const MIB: usize = 1 << 20;
    let files: Vec<(String, Vec<u8>)> =
        (0..6).map(|i| (format!("obj{i}"), data(MIB + i * 1000, 20 + i as u64))).collect();
    for (name, bytes) in &files {
        c.write_file(name, bytes);
        c.ok(&["upload", "ecc", name]);
    }
    let text = std::fs::read_to_string(c.dir().join("swift/swift.conf")).expect("swift.conf");
    let conf = aerie_storage::swift_conf::parse(&text).expect("swift.conf");
    let on_d3 = |c: &Cluster| -> Vec<PathBuf> { data_files(&c.node_root(3).join("d3")) };
    let before = on_d3(&c);
    assert!(!before.is_empty(), "node 3's first device holds fragments");
    // The device is replaced by an empty one.
    std::fs::remove_dir_all(c.node_root(3).join("d3/objects-1")).expect("wipe");
    for n in 1..=3 {
        reconstructor_pass(&c, n);
    }
    let mut after: Vec<String> =
        on_d3(&c).iter().filter_map(|p| Some(p.strip_prefix(c.node_root(3)).ok()?.display().to_string())).collect();
    let mut want: Vec<String> =
        before.iter().filter_map(|p| Some(p.strip_prefix(c.node_root(3)).ok()?.display().to_string())).collect();
    after.sort();
    want.sort();
    assert_eq!(after, want, "every fragment back, durable, at its index");
    for (name, _) in &files {
        let hash = conf.salt.hash_path("AUTH_test", Some("ecc"), Some(name));
        assert_eq!(durable_fragments(&c, 3, &hash), [0, 1, 2, 3, 4, 5], "{name}");
    }
    // The rebuilt fragments serve: with node 1 down, node 3's (one of
    // them rebuilt) and node 2's are all there is.
    c.kill_node(1);
    for (name, bytes) in &files {
        assert_eq!(md5_hex(&c.download("ecc", name)), md5_hex(bytes), "{name}");
    }
}
