//! Disks that fail: unmounted, full, killed writes, metadata too large.

use super::*;

#[test]
fn an_unmounted_device_is_507_with_mount_check() {
    let n = Node::start_with("", "");
    drop(n);
    let dir = TempDir::new("mc");
    let root = dir.path().join("node");
    std::fs::create_dir_all(root.join("sda1")).expect("dir");
    let conf = dir.path().join("swift.conf");
    std::fs::write(&conf, SWIFT_CONF).expect("conf");
    let s = Server::start(&format!(
        "[server]\nworkers = 1\n[admin]\naddress = \"127.0.0.1:0\"\n[storage]\ndevices = {:?}\nmount_check = true\nswift_conf = {:?}\n[[listen]]\naddress = \"127.0.0.1:0\"\nlength_required = []\npipeline = [\"object\"]\n",
        root.display().to_string(),
        conf.display().to_string()
    ));
    let r = request(s.addr(), "PUT", "/sda1/0/a/c/o", &[("X-Timestamp", &ts()), ("Content-Type", "a")], b"x");
    assert_eq!(r.status, 507, "a plain directory is not a mounted device");
}

#[test]
fn a_full_device_answers_507_leaves_no_partial_object_and_others_keep_serving() {
    let n = Node::start();
    let small = n.root.join("sda1");
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&small)
        .status()
        .expect("mount");
    assert!(status.success(), "mounting a tmpfs needs root (CI runs as root)");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(small.clone());
    let big = vec![7u8; 12 * 1024 * 1024];
    let (r, _) = put(&n, "/sda1/0/a/c/big", &big, &[]);
    assert_eq!(r.status, 507, "{}", r.text());
    let files = n.files("sda1");
    assert!(!files.iter().any(|f| f.ends_with(".data") || f.starts_with("tmp/tmp")), "{files:?}");
    // A chunked upload (size unknown up front) also fails cleanly.
    let mut c = Client::connect(n.addr());
    c.send(
        format!(
            "PUT /sda1/0/a/c/big2 HTTP/1.1\r\nX-Timestamp: {}\r\nContent-Type: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            ts()
        )
        .as_bytes(),
    );
    let chunk = vec![1u8; 1 << 20];
    for _ in 0..12 {
        c.send(format!("{:x}\r\n", chunk.len()).as_bytes());
        if std::io::Write::write_all(c.stream(), &chunk).is_err() {
            break;
        }
        c.send(b"\r\n");
    }
    let _ = std::io::Write::write_all(c.stream(), b"0\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 507);
    assert!(!n.files("sda1").iter().any(|f| f.ends_with(".data") || f.starts_with("tmp/tmp")));
    let (r, _) = put(&n, "/sdb1/0/a/c/fine", b"ok", &[]);
    assert_eq!(r.status, 201, "the other device serves");
    let (r, _) = put(&n, "/sda1/0/a/c/tiny", b"ok", &[]);
    assert_eq!(r.status, 201, "a small object still fits");
}

#[test]
fn sigkill_mid_put_keeps_the_previous_version_and_no_partial_file() {
    let n = Node::start();
    let (r, _) = put(&n, OBJ, b"old version", &[]);
    assert_eq!(r.status, 201);
    let mut c = Client::connect(n.addr());
    let len = 100 * 1024 * 1024;
    c.send(
        format!("PUT {OBJ} HTTP/1.1\r\nX-Timestamp: {}\r\nContent-Type: a\r\nContent-Length: {len}\r\n\r\n", ts())
            .as_bytes(),
    );
    let chunk = vec![3u8; 1 << 20];
    for _ in 0..20 {
        c.send(&chunk);
    }
    // Kill whichever worker holds the upload.
    std::thread::sleep(Duration::from_millis(200));
    for w in n.server.workers() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(w as i32), nix::sys::signal::Signal::SIGKILL);
    }
    drop(c);
    // Two workers, the object updater and the object replicator come back.
    wait_until("replacements", Duration::from_secs(10), || n.server.workers().len() == 4);
    wait_until("serving", Duration::from_secs(10), || n.req("GET", OBJ, &[], b"").status == 200);
    assert_eq!(n.req("GET", OBJ, &[], b"").body, b"old version");
    let files = n.files("sda1");
    let outside_tmp: Vec<&String> = files.iter().filter(|f| !f.starts_with("tmp/") && f.ends_with(".data")).collect();
    assert_eq!(outside_tmp.len(), 1, "only the old version is visible: {files:?}");
}

#[test]
fn metadata_too_big_for_ext4_xattrs_is_507_and_stores_nothing() {
    let n = Node::start();
    let big = "s".repeat(3000);
    let (r, _) = put(&n, OBJ, b"x", &[("X-Object-Sysmeta-A", &big), ("X-Object-Sysmeta-B", &big)]);
    let fs = std::process::Command::new("stat").args(["-f", "-c", "%T"]).arg(&n.root).output().expect("stat");
    let fs = String::from_utf8_lossy(&fs.stdout).trim().to_string();
    if fs == "ext2/ext3" {
        // ext4 keeps a file's xattrs in one 4 KiB block.
        assert_eq!(r.status, 507, "{}", r.text());
        assert!(
            !n.files("sda1").iter().any(|f| f.ends_with(".data") || f.starts_with("tmp/tmp")),
            "{:?}",
            n.files("sda1")
        );
    } else {
        assert_eq!(r.status, 201, "{fs} holds large xattrs");
    }
}
