//! Hostile and unlucky conditions: paths that try to leave the devices
//! root, slowloris clients, disks that fail, too few file descriptors.

use crate::object_api::{request, ts};
use crate::util::slowfs::{ensure_fuse, SlowFs};
use crate::util::{files_under, get, raise_nofile, wait_until, Client, Server, TempDir, SWIFT_CONF};
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// An object node on `root` (devices are its subdirectories).
fn object_node(dir: &TempDir, root: &Path, server_extra: &str) -> Server {
    let conf = dir.path().join("swift.conf");
    std::fs::write(&conf, SWIFT_CONF).expect("swift.conf");
    Server::start(&format!(
        "[server]\nworkers = 1\n{server_extra}\n[admin]\naddress = \"127.0.0.1:0\"\n[storage]\ndevices = {:?}\n\
         mount_check = false\nswift_conf = {:?}\nobject_updater_interval = 3600.0\n\
         [[listen]]\naddress = \"127.0.0.1:0\"\nlength_required = []\npipeline = [\"object\"]\n",
        root.display().to_string(),
        conf.display().to_string()
    ))
}

fn raw_status(addr: std::net::SocketAddr, raw: &[u8]) -> u16 {
    let mut c = Client::connect(addr);
    c.send(raw);
    c.try_read_response(false).map_or(0, |r| r.status)
}

#[test]
fn no_path_reaches_outside_the_devices_root() {
    let dir = TempDir::new("paths");
    let root = dir.path().join("node");
    std::fs::create_dir_all(root.join("sda1")).expect("device");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).expect("outside");
    std::fs::write(outside.join("canary"), b"canary").expect("canary");
    // A device that is a symlink out of the root.
    std::os::unix::fs::symlink(&outside, root.join("evil")).expect("symlink");
    let node = object_node(&dir, &root, "");
    let addr = node.addr();
    let t = ts();
    let put = |path: &str| {
        request(addr, "PUT", path, &[("X-Timestamp", &t), ("Content-Type", "text/plain")], b"payload").status
    };
    let long = "x".repeat(300);
    let cases: Vec<(String, &[u16])> = vec![
        ("/evil/0/a/c/o".into(), &[507]),
        ("/../0/a/c/o".into(), &[400, 507]),
        ("/./0/a/c/o".into(), &[400, 507]),
        ("/%2e%2e/0/a/c/o".into(), &[400, 507]),
        ("/%2E%2E/0/a/c/o".into(), &[400, 507]),
        ("/sda1%2f..%2f..%2foutside/0/a/c/o".into(), &[400, 507]),
        ("/sda1/..%2f..%2f/a/c/o".into(), &[400]),
        ("/sda1/%2e%2e/a/c/o".into(), &[400]),
        ("/sda1/0/a%00/c/o".into(), &[400, 412]),
        ("/sda1/0/a/c/o%ff%fe".into(), &[412]),
        (format!("/{long}/0/a/c/o"), &[507, 400]),
        // Swift checks the name length only when an object is created.
        (format!("/sda1/0/a/c/{}", "o".repeat(2000)), &[400, 404]),
        ("/sda1/0/a/c".into(), &[400, 405]),
    ];
    for (path, allowed) in &cases {
        for method in ["PUT", "GET", "DELETE"] {
            let status = if method == "PUT" {
                put(path)
            } else {
                request(addr, method, path, &[("X-Timestamp", &t)], b"").status
            };
            assert!(allowed.contains(&status), "{method} {path}: {status}, expected one of {allowed:?}");
        }
    }
    // Object names with dots and slashes are just names: hashed, stored
    // inside the device.
    assert_eq!(put("/sda1/0/a/c/../../../../outside/canary"), 201);
    assert_eq!(request(addr, "GET", "/sda1/0/a/c/../../../../outside/canary", &[], b"").text(), "payload");
    // Nothing outside the root changed; the object landed in the device.
    assert_eq!(files_under(&outside), vec![outside.join("canary")]);
    assert_eq!(std::fs::read(outside.join("canary")).expect("canary"), b"canary");
    assert!(files_under(&root.join("sda1")).iter().any(|p| p.extension().is_some_and(|e| e == "data")));
    // Raw bytes the request parser must refuse.
    for raw in [
        &b"GET /sda1/0/a/c/o\x00x HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &b"GET /sda1/0/a/c/o x HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &b"GET sda1/0/a/c/o HTTP/1.1\r\nHost: x\r\n\r\n"[..],
    ] {
        let status = raw_status(addr, raw);
        // 400, or 505 when the space made the version unreadable.
        assert!(matches!(status, 0 | 400 | 505), "{:?}: {status}", String::from_utf8_lossy(raw));
    }
    assert_eq!(get(addr, "/sda1/0/a/c/../../../../outside/canary").status, 200, "still serving");
}

#[test]
fn slowloris_connections_do_not_starve_a_normal_client_and_are_closed() {
    raise_nofile();
    let s = Server::start(&crate::util::config("workers = 1\nheader_timeout = 3.0", "", "[log]\naccess = false"));
    let addr = s.addr();
    let mut slow: Vec<TcpStream> = Vec::new();
    for _ in 0..2000 {
        match TcpStream::connect(addr) {
            Ok(c) => slow.push(c),
            Err(e) => panic!("connection {} refused: {e}", slow.len()),
        }
    }
    let head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let started = Instant::now();
    let mut i = 0;
    let mut worst = Duration::ZERO;
    // One byte per connection per second; a normal client meanwhile.
    while started.elapsed() < Duration::from_secs(2) {
        for c in slow.iter_mut() {
            let _ = c.write_all(&head[i % head.len()..i % head.len() + 1]);
        }
        i += 1;
        let t0 = Instant::now();
        assert_eq!(get(addr, "/").text(), "test");
        worst = worst.max(t0.elapsed());
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("normal client during slowloris: worst {worst:?}");
    assert!(worst < Duration::from_secs(2), "a normal request waited {worst:?} behind 2,000 trickling clients");
    // header_timeout closes them (408 or a plain close).
    wait_until("the trickling connections to be closed", Duration::from_secs(20), || {
        let mut closed = 0;
        for c in slow.iter_mut() {
            c.set_nonblocking(true).expect("nonblocking");
            let mut buf = [0u8; 512];
            match std::io::Read::read(c, &mut buf) {
                Ok(0) => closed += 1,
                Ok(_) => {
                    // The 408; the close follows.
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => closed += 1,
            }
        }
        closed == slow.len()
    });
    assert_eq!(get(addr, "/").text(), "test");
}

#[test]
fn a_failing_disk_answers_errors_and_the_other_devices_keep_serving() {
    ensure_fuse().expect("FUSE (fuse3) is needed");
    let dir = TempDir::new("faults");
    let root = dir.path().join("node");
    let backing = dir.path().join("bad-backing");
    for d in [root.join("good"), root.join("bad"), backing.clone()] {
        std::fs::create_dir_all(d).expect("dirs");
    }
    let fs = SlowFs::mount(&backing, &root.join("bad"), 8).expect("mount");
    let node = object_node(&dir, &root, "");
    let addr = node.addr();
    let put = |dev: &str, name: &str| {
        let t = ts();
        request(
            addr,
            "PUT",
            &format!("/{dev}/0/a/c/{name}"),
            &[("X-Timestamp", &t), ("Content-Type", "text/plain")],
            b"x",
        )
        .status
    };
    assert_eq!(put("bad", "before"), 201);
    // Every operation on the bad disk now fails with EIO.
    fs.control.errno.store(nix::errno::Errno::EIO as i32, Ordering::Relaxed);
    let write = put("bad", "during");
    assert!(matches!(write, 500 | 503 | 507), "a PUT to a failing disk: {write}");
    let read = request(addr, "GET", "/bad/0/a/c/before", &[], b"").status;
    assert!(matches!(read, 404 | 500 | 503 | 507), "a GET from a failing disk: {read}");
    for i in 0..20 {
        assert_eq!(put("good", &format!("o{i}")), 201, "the good device serves");
        assert_eq!(request(addr, "GET", &format!("/good/0/a/c/o{i}"), &[], b"").text(), "x");
    }
    // A read-only disk: writes refused, reads served.
    fs.control.errno.store(0, Ordering::Relaxed);
    fs.control.errno.store(0, Ordering::Relaxed);
    let ro = dir.path().join("ro");
    std::fs::create_dir_all(&ro).expect("ro");
    drop(fs);
    let status = std::process::Command::new("mount").args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"]).arg(&ro).status();
    if status.is_ok_and(|s| s.success()) {
        let ro_dev = root.join("rodev");
        std::fs::create_dir_all(&ro_dev).expect("rodev");
        let bind = std::process::Command::new("mount").arg("--bind").arg(&ro).arg(&ro_dev).status();
        assert!(bind.is_ok_and(|s| s.success()));
        // A device added to a running node is served once the master has
        // seen it (within about a second).
        crate::util::wait_until("the new device to be served", std::time::Duration::from_secs(10), || {
            put("rodev", "first") == 201
        });
        let remount = std::process::Command::new("mount").args(["-o", "remount,bind,ro"]).arg(&ro_dev).status();
        assert!(remount.is_ok_and(|s| s.success()));
        let write = put("rodev", "second");
        let _ = std::process::Command::new("umount").arg("-l").arg(&ro_dev).status();
        let _ = std::process::Command::new("umount").arg("-l").arg(&ro).status();
        assert!(matches!(write, 500 | 503 | 507), "a PUT to a read-only disk: {write}");
    }
    assert_eq!(put("good", "after"), 201);
}

#[test]
fn running_out_of_file_descriptors_refuses_connections_and_recovers() {
    // The server starts under `ulimit -n 64` (a wrapper script, so the
    // test process keeps its own limit).
    let dir = TempDir::new("nofile");
    let wrapper = dir.path().join("aerie-64");
    std::fs::write(&wrapper, format!("#!/bin/sh\nulimit -n 64\nexec {} \"$@\"\n", env!("CARGO_BIN_EXE_aerie")))
        .expect("wrapper");
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let s = Server::start_binary(&wrapper, &crate::util::config("workers = 1", "", "[log]\naccess = false"));
    let addr = s.addr();
    let worker = s.wait_workers(1)[0];
    let cpu = |pid: u32| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|st| {
                let f: Vec<u64> =
                    st.rsplit(')').next()?.split_whitespace().skip(11).take(2).filter_map(|x| x.parse().ok()).collect();
                Some(f.iter().sum())
            })
            .unwrap_or(0)
    };
    // Hold more connections than the worker has descriptors.
    let mut held = Vec::new();
    for _ in 0..200 {
        if let Ok(c) = TcpStream::connect(addr) {
            held.push(c);
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu(worker);
    std::thread::sleep(Duration::from_secs(2));
    let spent = cpu(worker) - before;
    assert!(spent < 100, "the worker spins while out of descriptors ({spent} ticks in 2 s)");
    assert!(crate::util::is_alive(worker), "the worker survives");
    // Free them: it serves again.
    drop(held);
    wait_until("serving again", Duration::from_secs(20), || {
        TcpStream::connect(addr).ok().is_some_and(|mut c| {
            c.set_read_timeout(Some(Duration::from_secs(2))).ok();
            c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").is_ok() && {
                let mut buf = String::new();
                std::io::Read::read_to_string(&mut c, &mut buf).is_ok() && buf.ends_with("test")
            }
        })
    });
    assert_eq!(s.workers(), vec![worker], "no restart was needed");
}

#[test]
fn an_object_with_unreadable_metadata_is_quarantined_and_answers_404() {
    let dir = TempDir::new("badmeta");
    let root = dir.path().join("node");
    std::fs::create_dir_all(root.join("sda1")).expect("device");
    let node = object_node(&dir, &root, "");
    let addr = node.addr();
    let t = ts();
    let put = request(addr, "PUT", "/sda1/0/a/c/o", &[("X-Timestamp", &t), ("Content-Type", "text/plain")], b"hello");
    assert_eq!(put.status, 201);
    let mut all = Vec::new();
    for f in files_under(&root.join("sda1/objects")) {
        if f.extension().is_some_and(|e| e == "data") {
            all.push(f);
        }
    }
    let [data] = all.as_slice() else { panic!("one data file: {all:?}") };
    xattr::set(data, "user.swift.metadata", b"\x80\x02}q\x00(garbage").expect("corrupt the metadata");
    assert_eq!(request(addr, "GET", "/sda1/0/a/c/o", &[], b"").status, 404);
    assert!(!data.exists(), "moved away");
    assert!(
        files_under(&root.join("sda1/quarantined")).iter().any(|f| f.extension().is_some_and(|e| e == "data")),
        "quarantined under the device"
    );
    assert_eq!(request(addr, "HEAD", "/sda1/0/a/c/o", &[], b"").status, 404);
}

/// Threads of a process, from /proc.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn requests_for_devices_the_node_lacks_start_no_queue_and_cannot_starve_a_real_one() {
    let dir = TempDir::new("fakedev");
    let root = dir.path().join("node");
    for d in ["sda1", "sdb1"] {
        std::fs::create_dir_all(root.join(d)).expect("device");
    }
    let s = object_node(&dir, &root, "");
    let worker = s.status()["workers"]
        .as_array()
        .and_then(|w| w.iter().find(|w| w["role"] == "worker"))
        .and_then(|w| w["pid"].as_u64())
        .expect("the worker's pid") as u32;
    let before = threads(worker);
    // Before the fix: every new name got a queue and its threads (one
    // worker started 1,024 threads), and once 256 names were used a real,
    // not yet used device got 503 until the worker was replaced.
    for i in 0..300 {
        let r = request(s.addr(), "GET", &format!("/fake{i}/0/a/c/o"), &[], b"");
        assert_eq!(r.status, 507, "fake{i}: {}", r.text());
        assert!(r.text().contains(&format!("Drive: fake{i}")), "Swift's 507 page: {}", r.text());
    }
    assert!(
        threads(worker) <= before + 1,
        "no threads for devices that do not exist: {} → {}",
        before,
        threads(worker)
    );
    let t = ts();
    let r = request(s.addr(), "PUT", "/sdb1/0/a/c/o", &[("X-Timestamp", &t), ("Content-Type", "text/plain")], b"x");
    assert_eq!(r.status, 201, "the real device still gets a queue");
    assert_eq!(request(s.addr(), "GET", "/sdb1/0/a/c/o", &[], b"").text(), "x");
    // Checks Swift makes before the device still come first.
    let r = request(s.addr(), "GET", "/fake/0/a/c/o", &[("X-Backend-Storage-Policy-Index", "9")], b"");
    assert_eq!(r.status, 503, "an unknown policy is 503 even on a device the node lacks");
    let metrics = s.admin_get("/metrics").text();
    let unknown: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("aerie_unknown_device_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(unknown >= 300.0, "counted in /metrics: {unknown}");
}
