//! A cluster heals itself through aerie's object replicator, as its users
//! would see it, through the real Swift proxy: a node that was down while
//! objects were written, deleted and POSTed catches up; a wiped device is
//! refilled; a handoff's copy moves to its primary and leaves the handoff;
//! a corrupted object is quarantined and replaced from a peer; an object
//! that landed behind `hashes.pkl`'s back is found by the listing every
//! tenth pass makes.

use super::{device as dev_root, objects, swift_py, tree};
use crate::swift_cluster::{data, Cluster};
use crate::util::{md5_hex, wait_until};
use std::time::Duration;

/// A pass a second, so the tests wait seconds, not the default 30.
fn fast(_: usize, config: String) -> String {
    config.replace("interval = 5.0", "interval = 1.0")
}

fn wait_in_sync(c: &Cluster, nodes: &[usize], what: &str) {
    wait_until(what, Duration::from_secs(90), || {
        let first = objects(&dev_root(c, nodes[0]));
        !first.is_empty() && nodes.iter().all(|&i| objects(&dev_root(c, i)) == first)
    });
}

#[test]
fn a_node_that_missed_writes_deletes_and_posts_catches_up_and_a_wiped_device_is_refilled() {
    let mut c = Cluster::start(3, fast);
    c.ok(&["post", "heal"]);
    for i in 0..6 {
        c.write_file(&format!("early/{i}"), &data(1000 + i, i as u64));
    }
    c.ok(&["upload", "heal", "early"]);
    wait_in_sync(&c, &[1, 2, 3], "the first objects everywhere");
    // Node 3 misses new objects, a delete and a POST.
    c.kill_node(3);
    for i in 0..6 {
        c.write_file(&format!("late/{i}"), &data(5000 + i, 100 + i as u64));
    }
    c.ok(&["upload", "heal", "late"]);
    c.ok(&["delete", "heal", "early/0"]);
    c.ok(&["post", "heal", "early/1", "-m", "color:green"]);
    let missed = objects(&dev_root(&c, 1));
    assert_ne!(objects(&dev_root(&c, 3)), missed);
    c.restart_node(3);
    wait_in_sync(&c, &[1, 2, 3], "node 3 to catch up");
    let f = objects(&dev_root(&c, 3));
    assert!(f.iter().any(|p| p.ends_with(".ts")) && f.iter().any(|p| p.ends_with(".meta")), "{f:?}");

    // A replaced disk: the device's directory is empty again.
    c.kill_node(2);
    for e in std::fs::read_dir(dev_root(&c, 2)).expect("device").flatten() {
        let _ = std::fs::remove_dir_all(e.path()).or_else(|_| std::fs::remove_file(e.path()));
    }
    c.restart_node(2);
    wait_in_sync(&c, &[1, 2, 3], "the wiped device to be refilled");
    for i in 1..6 {
        let want = data(1000 + i, i as u64);
        assert_eq!(md5_hex(&c.download("heal", &format!("early/{i}"))), md5_hex(&want));
    }
    assert!(
        c.metric(1, "aerie_replication_objects_sent_total") + c.metric(3, "aerie_replication_objects_sent_total") > 0.0
    );
}

#[test]
fn a_handoff_copy_moves_to_its_primary_and_leaves_the_handoff() {
    let mut c = Cluster::start(4, fast);
    c.ok(&["post", "ho"]);
    c.write_file("obj", &data(3000, 7));
    c.ok(&["upload", "ho", "obj"]);
    let holders = |c: &Cluster| -> Vec<usize> {
        (1..=4).filter(|&i| objects(&dev_root(c, i)).iter().any(|f| f.ends_with(".data"))).collect()
    };
    let primaries = holders(&c);
    assert_eq!(primaries.len(), 3, "three replicas");
    let handoff = (1..=4).find(|i| !primaries.contains(i)).expect("a fourth node");
    // With a primary down, a new version goes to the handoff instead.
    let down = primaries[0];
    c.kill_node(down);
    c.write_file("obj", &data(3001, 8));
    c.ok(&["upload", "ho", "obj"]);
    assert!(holders(&c).contains(&handoff), "the proxy wrote to the handoff");
    c.restart_node(down);
    wait_until("the handoff to be reverted", Duration::from_secs(90), || {
        let h = holders(&c);
        h.len() == 3 && !h.contains(&handoff) && h.contains(&down)
    });
    let part_dirs: Vec<String> = tree(&dev_root(&c, handoff))
        .into_iter()
        .filter(|f| f.contains("objects/") && !f.starts_with("objects-"))
        .collect();
    assert!(!part_dirs.iter().any(|f| f.ends_with(".data")), "nothing left on the handoff: {part_dirs:?}");
    assert_eq!(md5_hex(&c.download("ho", "obj")), md5_hex(&data(3001, 8)));
}

#[test]
fn a_corrupted_object_is_quarantined_and_replaced_from_a_peer() {
    let c = Cluster::start(3, fast);
    c.ok(&["post", "rot"]);
    let good = data(70_000, 42);
    c.write_file("victim", &good);
    c.ok(&["upload", "rot", "victim"]);
    wait_in_sync(&c, &[1, 2, 3], "three copies");
    let file = objects(&dev_root(&c, 1)).into_iter().find(|f| f.ends_with(".data")).expect("a data file");
    let path = dev_root(&c, 1).join(&file);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[100] ^= 0xff;
    std::fs::write(&path, &bytes).expect("rot a byte in place");
    // A GET of the whole object from node 1 reads it, finds the MD5 wrong
    // and moves it to quarantine.
    let part_path = format!("/d1/{}", file.trim_start_matches("objects/").split('/').next().expect("partition"));
    let r = crate::util::get(c.node_addr(1, "OBJECT"), &format!("{part_path}/AUTH_test/rot/victim"));
    assert_eq!(r.status, 200);
    wait_until("quarantine", Duration::from_secs(10), || dev_root(&c, 1).join("quarantined").exists());
    wait_until("a good copy from a peer", Duration::from_secs(90), || {
        std::fs::read(&path).is_ok_and(|b| md5_hex(&b) == md5_hex(&good))
    });
}

#[test]
fn an_object_hashes_pkl_does_not_know_is_found_by_the_periodic_listing_and_sent() {
    // Every node in sync, each partition's hashes cached; then node 1's
    // hashes.pkl forgets the object's suffix (files put there as rsync
    // puts them, with nothing invalidated), and the others lose the object.
    // Every pass finds the cached hashes equal everywhere; only a listing
    // of the partition (every tenth pass) can see the suffix again.
    let mut c = Cluster::start(3, fast);
    c.ok(&["post", "behind"]);
    let body = data(4096, 9);
    c.write_file("obj", &body);
    c.ok(&["upload", "behind", "obj"]);
    wait_in_sync(&c, &[1, 2, 3], "three copies");
    let file = objects(&dev_root(&c, 1)).into_iter().find(|f| f.ends_with(".data")).expect("a data file");
    let parts: Vec<&str> = file.split('/').collect();
    let (part, suffix) = (parts[1], parts[2]);
    let roots: Vec<std::path::PathBuf> = (0..=3).map(|i| dev_root(&c, i.max(1))).collect();
    let part_dir = |i: usize| roots[i].join("objects").join(part);
    let p1 = part_dir(1).to_string_lossy().into_owned();
    let read =
        || -> serde_json::Value { serde_json::from_str(&swift_py("swift_hashes.py", &["read", &p1])).expect("json") };
    wait_until("node 1 to cache the suffix's hash", Duration::from_secs(30), || {
        read().get(suffix).is_some_and(|h| h.is_string())
    });
    for i in 1..=3 {
        c.kill_node(i);
    }
    for i in [2, 3] {
        std::fs::remove_dir_all(part_dir(i).join(suffix)).expect("suffix gone");
        for f in ["hashes.pkl", "hashes.invalid"] {
            let _ = std::fs::remove_file(part_dir(i).join(f));
        }
    }
    let mut cached = read();
    assert!(cached.get(suffix).is_some_and(|h| h.is_string()), "{suffix} cached: {cached}");
    cached.as_object_mut().expect("dict").remove(suffix);
    cached.as_object_mut().expect("dict").remove("updated");
    swift_py("swift_hashes.py", &["write", &p1, &cached.to_string()]);
    let _ = std::fs::remove_file(part_dir(1).join("hashes.invalid"));
    for i in 1..=3 {
        c.restart_node(i);
    }
    wait_until("the listing to find the object and send it", Duration::from_secs(90), || {
        [2, 3].iter().all(|&i| objects(&dev_root(&c, i)).contains(&file))
    });
    assert_eq!(md5_hex(&c.download("behind", "obj")), md5_hex(&body));
}
