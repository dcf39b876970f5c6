//! Chaos under load: 32 clients PUT, GET, DELETE and list on a node
//! serving the object and container services while its workers are
//! SIGKILLed, the master is sent HUPs and the object updater is killed.
//! Nothing acknowledged may be lost. AERIE_CHAOS_SECS sets the length (CI:
//! 10 s; `scripts/chaos.sh` runs 60 s).

use crate::object_api::ts;
use crate::util::{files_under, md5_hex, try_request, wait_until, Server, TempDir, SWIFT_CONF};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a client knows of one of its objects.
#[derive(Debug, Clone, PartialEq)]
enum Known {
    /// Acknowledged with this body MD5 (201).
    Present(String),
    /// Acknowledged deleted (204 or 404).
    Absent,
    /// A request on it failed mid-way: either may be true.
    Unknown,
}

#[test]
fn nothing_acknowledged_is_lost_while_workers_die() {
    let secs: u64 = std::env::var("AERIE_CHAOS_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let dir = TempDir::new("chaos");
    let root = dir.path().join("node");
    for d in ["sda1", "sdb1"] {
        std::fs::create_dir_all(root.join(d)).expect("device");
    }
    let conf = dir.path().join("swift.conf");
    std::fs::write(&conf, SWIFT_CONF).expect("conf");
    let server = Server::start(&format!(
        "[server]\nworkers = 4\n[admin]\naddress = \"127.0.0.1:0\"\n[log]\naccess = false\n[storage]\ndevices = {:?}\n\
         mount_check = false\nswift_conf = {:?}\nobject_updater_interval = 0.5\ncontainer_updater_interval = 0.5\n\
         [[listen]]\naddress = \"127.0.0.1:0\"\nlength_required = []\npipeline = [\"object\"]\n\
         [[listen]]\naddress = \"127.0.0.1:0\"\nlength_required = []\npipeline = [\"container\"]\n",
        root.display().to_string(),
        conf.display().to_string()
    ));
    let (obj, cont) = (server.addrs[0], server.addrs[1]);
    let t = ts();
    for dev in ["sda1", "sdb1"] {
        let r =
            try_request(cont, "PUT", &format!("/{dev}/7/AUTH_c/box"), &[("X-Timestamp", &t)], b"").expect("container");
        assert_eq!(r.status, 201);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (requests, broken) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let clients: Vec<_> = (0..32)
        .map(|k| {
            let (stop, requests, broken) = (stop.clone(), requests.clone(), broken.clone());
            let chost = cont.to_string();
            std::thread::spawn(move || {
                let mut known: HashMap<String, Known> = HashMap::new();
                let dev = if k % 2 == 0 { "sda1" } else { "sdb1" };
                let upd =
                    [("X-Container-Host", chost.as_str()), ("X-Container-Device", dev), ("X-Container-Partition", "7")];
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    requests.fetch_add(1, Ordering::Relaxed);
                    let name = format!("k{k}-{}", n % 40);
                    let path = format!("/{dev}/3/AUTH_c/box/{name}");
                    match n % 5 {
                        0 | 1 => {
                            let body = format!("{k}/{n}/{}", "x".repeat((n % 7) as usize * 300)).into_bytes();
                            let t = ts();
                            let mut h = vec![("X-Timestamp", t.as_str()), ("Content-Type", "text/plain")];
                            h.extend_from_slice(&upd);
                            match try_request(obj, "PUT", &path, &h, &body).map(|r| r.status) {
                                Some(201) => {
                                    known.insert(name, Known::Present(md5_hex(&body)));
                                }
                                other => {
                                    broken.fetch_add(1, Ordering::Relaxed);
                                    assert!(matches!(other, None | Some(500..=599)), "PUT {path}: {other:?}");
                                    known.insert(name, Known::Unknown);
                                }
                            }
                        }
                        2 | 3 => match try_request(obj, "GET", &path, &[], b"") {
                            Some(r) if r.status == 200 => {
                                if let Some(Known::Present(m)) = known.get(&name) {
                                    assert_eq!(&md5_hex(&r.body), m, "GET {path} returned other bytes");
                                }
                                assert_ne!(
                                    known.get(&name),
                                    Some(&Known::Absent),
                                    "GET {path}: deleted object came back"
                                );
                            }
                            Some(r) if r.status == 404 => {
                                assert!(!matches!(known.get(&name), Some(Known::Present(_))), "GET {path}: lost");
                            }
                            _ => {
                                broken.fetch_add(1, Ordering::Relaxed);
                            }
                        },
                        _ => {
                            let t = ts();
                            let mut h = vec![("X-Timestamp", t.as_str())];
                            h.extend_from_slice(&upd);
                            match try_request(obj, "DELETE", &path, &h, b"").map(|r| r.status) {
                                Some(204 | 404) => {
                                    known.insert(name, Known::Absent);
                                }
                                _ => {
                                    broken.fetch_add(1, Ordering::Relaxed);
                                    known.insert(name, Known::Unknown);
                                }
                            }
                            if n % 10 == 4 {
                                let _ = try_request(cont, "GET", &format!("/{dev}/7/AUTH_c/box?format=json"), &[], b"");
                            }
                        }
                    }
                }
                (dev, known)
            })
        })
        .collect();

    // The chaos: a random worker killed every 1.5 s, a HUP every 4 s, the
    // object updater killed once.
    let started = Instant::now();
    let mut kills = 0;
    let mut hups = 0;
    let mut updater_killed = false;
    let mut tick = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(500));
        tick += 1;
        let status = server.status();
        let workers: Vec<(u64, String)> = status["workers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|w| w["state"] == "ready")
                    .map(|w| (w["pid"].as_u64().unwrap_or(0), w["role"].as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        if tick % 3 == 0 {
            let serving: Vec<u64> = workers.iter().filter(|(_, r)| r == "worker").map(|(p, _)| *p).collect();
            if let Some(&victim) = serving.get((tick as usize / 3) % serving.len().max(1)) {
                let _ = kill(Pid::from_raw(victim as i32), Signal::SIGKILL);
                kills += 1;
            }
        }
        if tick % 8 == 0 {
            server.signal(Signal::SIGHUP);
            hups += 1;
        }
        if !updater_killed && tick == 5 {
            if let Some((p, _)) = workers.iter().find(|(_, r)| r == "object-updater") {
                let _ = kill(Pid::from_raw(*p as i32), Signal::SIGKILL);
                updater_killed = true;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let results: Vec<(&str, HashMap<String, Known>)> = clients.into_iter().map(|c| c.join().expect("client")).collect();
    let total = requests.load(Ordering::Relaxed);
    let failed = broken.load(Ordering::Relaxed);
    eprintln!(
        "chaos {secs}s: {total} requests, {failed} failed in flight, {kills} workers killed, {hups} HUPs, object updater killed: {updater_killed}"
    );
    assert!(updater_killed, "the object updater was found and killed");
    assert!(total > 500, "the load ran ({total} requests)");

    // Every acknowledged write is readable with its bytes; every
    // acknowledged delete stays deleted.
    let mut present = 0;
    for (dev, known) in &results {
        for (name, k) in known {
            let path = format!("/{dev}/3/AUTH_c/box/{name}");
            let r = try_request(obj, "GET", &path, &[], b"").expect("GET after the chaos");
            match k {
                Known::Present(m) => {
                    assert_eq!(r.status, 200, "{path} was acknowledged and is gone");
                    assert_eq!(&md5_hex(&r.body), m, "{path} has other bytes");
                    present += 1;
                }
                Known::Absent => assert_eq!(r.status, 404, "{path} was deleted and is back"),
                Known::Unknown => {}
            }
        }
    }
    // No temporary file outside tmp/.
    for f in &files_under(&root) {
        let rel = f.strip_prefix(&root).expect("under root").to_string_lossy().into_owned();
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if rel.contains("/objects/") {
            assert!(
                [".data", ".ts", ".meta"].iter().any(|x| name.ends_with(x))
                    || name.starts_with("hashes")
                    || name == ".lock",
                "stray file {rel}"
            );
        }
    }
    // Listings match the acknowledged writes once the updaters caught up.
    wait_until("the listings to match the acknowledged writes", Duration::from_secs(60), || {
        results.iter().all(|(dev, known)| {
            let Some(r) = try_request(cont, "GET", &format!("/{dev}/7/AUTH_c/box?format=json"), &[], b"") else {
                return false;
            };
            let listed: Vec<String> = serde_json::from_slice::<serde_json::Value>(&r.body)
                .ok()
                .and_then(|v| {
                    v.as_array().map(|a| a.iter().filter_map(|e| e["name"].as_str().map(str::to_string)).collect())
                })
                .unwrap_or_default();
            known.iter().all(|(name, k)| match k {
                Known::Present(_) => listed.contains(name),
                Known::Absent => !listed.contains(name),
                Known::Unknown => true,
            })
        })
    });
    eprintln!("invariants hold: {present} acknowledged objects readable with their MD5, listings match");
}
