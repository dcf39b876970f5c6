//! One slow disk must not slow the node: a device on the slow FUSE
//! filesystem (tests/util/slowfs.rs) next to a plain one.

use crate::object_api::{request, ts};
use crate::util::slowfs::{ensure_fuse, SlowFs};
use crate::util::{try_request, wait_until, Server, TempDir, SWIFT_CONF};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A node with devices `fast` (a directory) and `slow` (the slow FUSE
/// mirror of another directory).
struct SlowNode {
    server: Server,
    fs: SlowFs,
    _dir: TempDir,
}

impl SlowNode {
    fn start(object_extra: &str) -> SlowNode {
        ensure_fuse().expect("FUSE (fuse3) is needed for the slow-disk tests");
        let dir = TempDir::new("slowdisk");
        let root = dir.path().join("node");
        let backing = dir.path().join("slow-backing");
        for d in [root.join("fast"), root.join("slow"), backing.clone()] {
            std::fs::create_dir_all(d).expect("dirs");
        }
        let fs = SlowFs::mount(&backing, &root.join("slow"), 32).expect("mount the slow filesystem");
        let conf = dir.path().join("swift.conf");
        std::fs::write(&conf, SWIFT_CONF).expect("swift.conf");
        // The updater sweeps once at start only: it must not touch the slow
        // device while a test counts operations.
        let cfg = format!(
            "[server]\nworkers = 1\n[admin]\naddress = \"127.0.0.1:0\"\n[storage]\ndevices = {:?}\nmount_check = false\n\
             swift_conf = {:?}\nobject_updater_interval = 3600.0\n\
             [[listen]]\naddress = \"127.0.0.1:0\"\nlength_required = []\npipeline = [\"object\"]\n\n\
             [processors.object]\n{object_extra}\n",
            root.display().to_string(),
            conf.display().to_string()
        );
        SlowNode { server: Server::start(&cfg), fs, _dir: dir }
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    fn delay(&self, ms: u64) {
        self.fs.control.delay_ms.store(ms, Ordering::Relaxed);
    }

    fn ops(&self) -> u64 {
        self.fs.control.ops.load(Ordering::Relaxed)
    }
}

fn put(addr: SocketAddr, path: &str, body: &[u8]) -> u16 {
    let t = ts();
    request(addr, "PUT", path, &[("X-Timestamp", &t), ("Content-Type", "application/octet-stream")], body).status
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get((v.len() * 99 / 100).min(v.len().saturating_sub(1))).copied().unwrap_or_default()
}

#[test]
fn a_slow_device_only_slows_its_own_requests() {
    // 1 s per filesystem operation: any fast-device request that waited on
    // the slow disk would take a second or more.
    // Per device: 2 threads and 8 waiting; the fast device's 8 clients fit,
    // the slow device's 32 do not.
    let node = SlowNode::start("threads_per_device = 2\nqueue_per_device = 8\nmax_queue_wait = 0\n");
    let addr = node.addr();
    let body = vec![7u8; 4096];
    for i in 0..20 {
        assert_eq!(put(addr, &format!("/fast/0/AUTH_t/c/o{i}"), &body), 201);
    }
    assert_eq!(put(addr, "/slow/0/AUTH_t/c/seed", &body), 201);
    node.delay(1000);

    // 32 clients hammer the slow device with GETs and PUTs.
    let stop = Arc::new(AtomicBool::new(false));
    let hammer: Vec<_> = (0..32)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut shed: Vec<Duration> = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let t0 = Instant::now();
                    let r = if n % 2 == 0 {
                        try_request(addr, "GET", "/slow/0/AUTH_t/c/seed", &[], &[])
                    } else {
                        let t = ts();
                        try_request(
                            addr,
                            "PUT",
                            &format!("/slow/0/AUTH_t/c/h{t}-{n}"),
                            &[("X-Timestamp", &t), ("Content-Type", "text/plain")],
                            b"x",
                        )
                    };
                    if let Some(r) = r.filter(|r| r.status == 503) {
                        assert_eq!(r.header("retry-after"), Some("1"), "a shed request says when to retry");
                        shed.push(t0.elapsed());
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    n += 1;
                }
                let _ = t;
                shed
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    // Meanwhile 8 clients use the fast device.
    let deadline = Instant::now() + Duration::from_secs(3);
    let fast: Vec<_> = (0..8)
        .map(|t| {
            let body = body.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut n = 0;
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    let status = if n % 2 == 0 {
                        request(addr, "GET", &format!("/fast/0/AUTH_t/c/o{}", (t + n) % 20), &[], &[]).status
                    } else {
                        put(addr, &format!("/fast/0/AUTH_t/c/new-{t}-{n}"), &body)
                    };
                    lat.push(t0.elapsed());
                    assert!(status == 200 || status == 201, "fast device answered {status}");
                    n += 1;
                }
                lat
            })
        })
        .collect();
    let lat: Vec<Duration> = fast.into_iter().flat_map(|h| h.join().expect("fast client")).collect();
    stop.store(true, Ordering::Relaxed);
    node.delay(0);
    let shed: Vec<Duration> = hammer.into_iter().flat_map(|h| h.join().expect("slow client")).collect();

    let p = p99(lat.clone());
    eprintln!("fast device under slow-disk load: {} requests, p99 {p:?}; slow device: {} shed", lat.len(), shed.len());
    assert!(lat.len() > 100, "the fast device kept serving ({} requests in 3 s)", lat.len());
    assert!(p < Duration::from_millis(500), "fast-device p99 {p:?} shows waits on the slow disk (1 s per operation)");
    assert!(!shed.is_empty(), "the slow device's overflow was shed");
    let mut shed = shed;
    shed.sort();
    let median = shed[shed.len() / 2];
    eprintln!("slow device overflow: {} answered 503, median {median:?}, p99 {:?}", shed.len(), p99(shed.clone()));
    assert!(median < Duration::from_millis(200), "overflow answered at once, not after the disk: median {median:?}");
}

#[test]
fn max_queue_wait_sheds_without_touching_the_disk() {
    // One thread for the slow device; a request that waited over 50 ms is
    // answered 503 by the thread that picks it up, without running.
    let node = SlowNode::start("threads_per_device = 1\nqueue_per_device = 8\nmax_queue_wait = 0.05\n");
    let addr = node.addr();
    assert_eq!(put(addr, "/slow/0/AUTH_t/c/o", b"hello"), 201);
    node.delay(100);

    // What one GET costs the disk, alone.
    let before = node.ops();
    assert_eq!(request(addr, "GET", "/slow/0/AUTH_t/c/o", &[], &[]).status, 200);
    let one_get = node.ops() - before;
    assert!(one_get > 0);

    // One GET runs (for some hundreds of ms); three more wait behind it
    // longer than max_queue_wait.
    let before = node.ops();
    let first = std::thread::spawn(move || request(addr, "GET", "/slow/0/AUTH_t/c/o", &[], &[]).status);
    std::thread::sleep(Duration::from_millis(30));
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(move || {
                let r = request(addr, "GET", "/slow/0/AUTH_t/c/o", &[], &[]);
                (r.status, r.header("retry-after").map(str::to_string))
            })
        })
        .collect();
    assert_eq!(first.join().expect("first"), 200);
    for w in waiting {
        assert_eq!(w.join().expect("waiting"), (503, Some("1".to_string())));
    }
    // The running GET costs what a GET costs; had the three waiting ones
    // run, they would have added their own path walks and reads.
    let during = node.ops() - before;
    assert!(during <= one_get, "the shed requests touched the disk: {during} operations, one GET takes {one_get}");
    let shed_age = |node: &SlowNode| -> u64 {
        node.server.status()["devices"]
            .as_array()
            .map(|a| {
                a.iter().filter(|d| d["name"] == "object:slow").map(|d| d["shed"]["age"].as_u64().unwrap_or(0)).sum()
            })
            .unwrap_or(0)
    };
    // Workers publish their figures once a second.
    wait_until("/status to count them by reason", Duration::from_secs(10), || shed_age(&node) == 3);
    let metrics = crate::util::get(node.server.admin.expect("admin"), "/metrics").text();
    assert!(
        metrics.lines().any(|l| l.starts_with("aerie_queue_shed_total{")
            && l.contains("queue=\"slow\"")
            && l.contains("reason=\"age\"")
            && l.ends_with(" 3")),
        "{metrics}"
    );
    assert!(metrics.contains("aerie_queue_wait_seconds_bucket{"), "queue-wait histogram");
    assert!(metrics.contains("aerie_queue_io_seconds_count{"), "I/O histogram");
    node.delay(0);
}

#[test]
fn a_slow_device_is_flagged_in_status_and_the_log_and_cleared() {
    let node = SlowNode::start("threads_per_device = 2\nqueue_per_device = 16\nslow_latency = 0.1\n");
    let addr = node.addr();
    assert_eq!(put(addr, "/slow/0/AUTH_t/c/o", b"hello"), 201);
    assert_eq!(put(addr, "/fast/0/AUTH_t/c/o", b"hello"), 201);
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = ["slow", "fast"]
        .into_iter()
        .map(|dev| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    request(addr, "GET", &format!("/{dev}/0/AUTH_t/c/o"), &[], &[]);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();
    let slow_flag = |node: &SlowNode, name: &str| -> Option<bool> {
        node.server.status()["devices"].as_array()?.iter().find(|d| d["name"] == name).and_then(|d| d["slow"].as_bool())
    };
    node.delay(40); // a GET is a dozen operations: ~0.5 s
    wait_until("the slow flag", Duration::from_secs(30), || slow_flag(&node, "object:slow") == Some(true));
    assert_eq!(slow_flag(&node, "object:fast"), Some(false), "the fast device is not flagged");
    assert!(node.server.wait_log("device object:slow is slow", Duration::from_secs(5)), "{}", node.server.log());
    let metrics = crate::util::get(node.server.admin.expect("admin"), "/metrics").text();
    assert!(metrics.contains("aerie_device_slow{processor=\"object\",queue=\"slow\"} 1"), "{metrics}");

    node.delay(0);
    wait_until("the slow flag to clear", Duration::from_secs(30), || slow_flag(&node, "object:slow") == Some(false));
    assert!(node.server.wait_log("device object:slow is no longer slow", Duration::from_secs(5)));
    assert_eq!(node.server.log().matches("device object:slow is slow").count(), 1, "logged once per change");
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.join().expect("load");
    }
}

#[test]
fn a_log_file_on_a_slow_disk_never_slows_requests() {
    ensure_fuse().expect("FUSE (fuse3) is needed for the slow-disk tests");
    let dir = TempDir::new("slowlog");
    let (backing, logs) = (dir.path().join("backing"), dir.path().join("logs"));
    for d in [&backing, &logs] {
        std::fs::create_dir_all(d).expect("dirs");
    }
    let fs = SlowFs::mount(&backing, &logs, 4).expect("mount the slow filesystem");
    let log = logs.join("aerie.log");
    let s = Server::start(&crate::util::config(
        "workers = 1",
        "",
        &format!("[log]\naccess = true\nerror_log = {:?}\n", log.display().to_string()),
    ));
    // From now on every write to the log file takes a second.
    fs.control.delay_ms.store(1000, Ordering::Relaxed);
    let mut c = crate::util::Client::connect(s.addr());
    let mut worst = Duration::ZERO;
    let mut latencies = Vec::new();
    for i in 0..10_000 {
        let t = Instant::now();
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = c.read_response();
        let took = t.elapsed();
        assert_eq!(r.status, 200, "request {i}");
        worst = worst.max(took);
        latencies.push(took);
        if i == 5_000 {
            // SIGUSR1 reopens the files: the writer thread's job too.
            s.signal(nix::sys::signal::Signal::SIGUSR1);
        }
    }
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!("10,000 hello requests with a log file at 1 s per write: p99 {p99:?}, worst {worst:?}");
    // Before, each access line was written on the loop thread: every request
    // took a second. A request that waited on the log would take >= 1 s.
    assert!(worst < Duration::from_millis(500), "worst {worst:?}");
    // The worker reports its counters once a second.
    wait_until("the dropped lines to be counted in /metrics", Duration::from_secs(10), || {
        let dropped: f64 = s
            .admin_get("/metrics")
            .text()
            .lines()
            .filter(|l| l.starts_with("aerie_log_lines_dropped_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        dropped > 0.0
    });
    fs.control.delay_ms.store(0, Ordering::Relaxed);
}
