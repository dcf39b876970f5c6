//! Swift's own object-replicator (2.38.3, from the venv), run on an aerie
//! node's disks as an operator would run it beside aerie, heals the other
//! aerie nodes through their REPLICATE and SSYNC: objects, tombstones and
//! POSTed metadata converge, with Swift-identical metadata everywhere.

use super::{device, objects, swift_py, tree};
use crate::swift_cluster::{data, Cluster};
use std::path::Path;
use std::process::Command;

/// Every node's own replicator off: only Swift's replicates here.
fn no_replicator(_: usize, config: String) -> String {
    config.replace("[replication]\n", "[replication]\nobject_replicator = false\n")
}

/// One pass of Swift's object-replicator over node `i`'s devices
/// (`sync_method` ssync, or rsync into the cluster's rsync daemon).
fn swift_replicator_once(c: &Cluster, i: usize, sync_method: &str) {
    let rsync_module = format!("rsync://127.0.0.1:{}/object{{replication_port}}", c.env("RSYNC_PORT"));
    let dir = c.node_root(i).parent().expect("node dir").to_path_buf();
    let conf = dir.join("object-replicator.conf");
    let user = String::from_utf8_lossy(&Command::new("id").arg("-un").output().expect("id").stdout).trim().to_string();
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\ndevices = {}\nmount_check = false\nbind_ip = 127.0.0.1\nbind_port = {}\nswift_dir = {}\n\
             user = {user}\nlog_name = object-replicator\n\n[pipeline:main]\npipeline = object-server\n\n\
             [app:object-server]\nuse = egg:swift#object\n\n[object-replicator]\nsync_method = {sync_method}\n\
             concurrency = 4\nrecon_cache_path = {}\nrsync_module = {rsync_module}\n",
            c.node_root(i).display(),
            c.node_addr(i, "OBJECT").port(),
            dir.parent().expect("cluster dir").join("swift").display(),
            dir.display()
        ),
    )
    .expect("replicator conf");
    let bin = crate::util::swift_python().parent().expect("venv bin").join("swift-object-replicator");
    let out = Command::new(&bin).arg(&conf).arg("once").arg("-v").output().expect("run swift-object-replicator");
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "swift-object-replicator on node {i}: {log}");
    assert!(!log.contains("Traceback"), "swift-object-replicator on node {i}: {log}");
}

/// The cluster's rsync daemon (`rsyncd.conf` from the cluster script),
/// killed when dropped.
pub(super) struct Rsyncd(std::process::Child);

impl Drop for Rsyncd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(super) fn rsyncd(c: &Cluster) -> Rsyncd {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/rsync.sh");
    let out = Command::new(script).output().expect("run scripts/rsync.sh");
    assert!(out.status.success(), "could not install rsync: {}", String::from_utf8_lossy(&out.stderr));
    let dir = c.node_root(1).parent().and_then(Path::parent).expect("cluster dir").to_path_buf();
    let port = c.env("RSYNC_PORT");
    let child = Command::new(String::from_utf8_lossy(&out.stdout).trim())
        .args(["--daemon", "--no-detach", "--address=127.0.0.1"])
        .arg(format!("--config={}", dir.join("rsyncd.conf").display()))
        .arg(format!("--port={port}"))
        .spawn()
        .expect("start rsync --daemon");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    crate::util::wait_until("the rsync daemon", std::time::Duration::from_secs(10), || {
        std::net::TcpStream::connect(addr).is_ok()
    });
    Rsyncd(child)
}

#[test]
fn swifts_object_replicator_in_ssync_mode_heals_aerie_nodes() {
    swift_replicator_heals_aerie_nodes("ssync");
}

#[test]
fn swifts_object_replicator_in_rsync_mode_heals_aerie_nodes() {
    swift_replicator_heals_aerie_nodes("rsync");
}

fn swift_replicator_heals_aerie_nodes(sync_method: &str) {
    let mut c = Cluster::start(3, no_replicator);
    let _rsyncd = (sync_method == "rsync").then(|| rsyncd(&c));
    c.ok(&["post", "sw"]);
    for i in 0..4 {
        c.write_file(&format!("a/{i}"), &data(2000 + i, 300 + i as u64));
    }
    c.ok(&["upload", "sw", "a"]);
    c.kill_node(3);
    for i in 0..4 {
        c.write_file(&format!("b/{i}"), &data(4000 + i, 400 + i as u64));
    }
    c.ok(&["upload", "sw", "b"]);
    c.ok(&["delete", "sw", "a/0"]);
    c.ok(&["post", "sw", "a/1", "-m", "color:red"]);
    c.restart_node(3);
    let dev = |i: usize| device(&c, i);
    assert_ne!(objects(&dev(3)), objects(&dev(1)), "node 3 missed the writes");
    swift_replicator_once(&c, 1, sync_method);
    swift_replicator_once(&c, 2, sync_method);
    assert_eq!(objects(&dev(3)), objects(&dev(1)), "node 3 caught up through aerie's REPLICATE and SSYNC");
    // The metadata is Swift's, byte for byte, on every replica.
    let meta = |i: usize| -> serde_json::Value {
        serde_json::from_str(&swift_py("metadata.py", &[&dev(i).join("objects").to_string_lossy()])).expect("json")
    };
    assert_eq!(meta(3), meta(1));
    assert_eq!(meta(2), meta(1));
    // hashes.invalid ends empty once replication settles (Swift's probe
    // test checks the same).
    swift_replicator_once(&c, 3, sync_method);
    for p in tree(&dev(3)).into_iter().filter(|f| f.ends_with("hashes.invalid")) {
        let len = std::fs::metadata(dev(3).join(&p)).map(|m| m.len()).unwrap_or(0);
        assert_eq!(len, 0, "{p} is consolidated");
    }
}

/// Swift's object server on node `i`'s object port and devices.
fn swift_object_server(c: &Cluster, i: usize) -> crate::util::SwiftServer {
    crate::util::start_swift_server_at("object", &c.node_root(i), c.node_addr(i, "OBJECT").port())
}

#[test]
fn aeries_replicator_heals_swifts_own_object_server() {
    // Node 3's objects are served by Swift's object server (its aerie keeps
    // the container and account services and moves its object listener to
    // a port the rings do not know).
    let spare = crate::util::free_port();
    let c = Cluster::start(3, |i, config| {
        let config = config.replace("interval = 5.0", "interval = 1.0");
        if i != 3 {
            return config;
        }
        let mut out = String::new();
        let mut object_listener = false;
        for line in config.lines() {
            if line.starts_with("address = ") && object_listener {
                out.push_str(&format!("address = \"127.0.0.1:{spare}\"\n"));
                object_listener = false;
                continue;
            }
            object_listener = line == "[[listen]]" && out.matches("[[listen]]").count() == 0;
            out.push_str(line);
            out.push('\n');
        }
        out
    });
    // The first [[listen]] is the object one: Swift's server takes its port.
    assert!(std::net::TcpStream::connect(c.node_addr(3, "OBJECT")).is_err(), "node 3's aerie left the port free");
    let swift = swift_object_server(&c, 3);
    c.ok(&["post", "tosw"]);
    // Swift's server is down while objects are written, deleted and POSTed.
    drop(swift);
    for i in 0..4 {
        c.write_file(&format!("x/{i}"), &data(3000 + i, 500 + i as u64));
    }
    c.ok(&["upload", "tosw", "x"]);
    c.ok(&["delete", "tosw", "x/0"]);
    c.ok(&["post", "tosw", "x/1", "-m", "color:blue"]);
    let swift = swift_object_server(&c, 3);
    let dev = |i: usize| device(&c, i);
    crate::util::wait_until("aerie to fill Swift's node", std::time::Duration::from_secs(90), || {
        objects(&dev(3)) == objects(&dev(1))
    });
    let meta = |i: usize| -> serde_json::Value {
        serde_json::from_str(&swift_py("metadata.py", &[&dev(i).join("objects").to_string_lossy()])).expect("json")
    };
    assert_eq!(meta(3), meta(1), "what aerie sent, Swift's server stored with the same metadata");
    drop(swift);
    drop(c);
}
