//! `aerie import-swift-conf` on Swift's own configurations — the sample
//! files of the swift 2.38.3 sdist, every setting in them switched on, a
//! SAIO's four nodes, a node split into public and replication servers with
//! a conf.d directory, and servers_per_port — checked three ways: the
//! output passes `aerie --check-config`, every setting written in the Swift
//! files is named in the output (taken over, or listed with why), and the
//! values are the ones Swift's own loader reads from the same files; then
//! a node started from it serves the Swift servers' ports and devices.

use crate::util::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// The unpacked swift 2.38.3 sdist (`scripts/swift-sdist.sh`).
fn sdist() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/swift-sdist.sh");
    let out = Command::new(script).output().expect("run scripts/swift-sdist.sh");
    assert!(out.status.success(), "could not fetch Swift's sdist: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn aerie(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_aerie")).args(args).output().expect("run aerie");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Import `dir` (one node, or `--node`), insisting on success.
fn import(dir: &Path, node: Option<&str>) -> (String, toml::Table) {
    let d = dir.display().to_string();
    let mut args = vec!["import-swift-conf", d.as_str()];
    if let Some(n) = node {
        args.extend(["--node", n]);
    }
    let r = aerie(&args);
    assert_eq!(r.code, 0, "import-swift-conf {args:?} failed: {}\n{}", r.stderr, r.stdout);
    let table: toml::Table = r.stdout.parse().unwrap_or_else(|e| panic!("not TOML ({e}):\n{}", r.stdout));
    (r.stdout, table)
}

/// `aerie --check-config` on the text.
fn check_config(dir: &Path, text: &str) {
    let path = dir.join("aerie.toml");
    std::fs::write(&path, text).expect("write aerie.toml");
    let r = aerie(&["--check-config", "-c", &path.display().to_string()]);
    assert_eq!(r.code, 0, "--check-config refused the import: {}\n{text}", r.stderr);
}

/// Every setting written in the Swift files under `dir`: (path relative to
/// `dir`, line, key), read as plainly as possible (not with aerie's parser).
fn written(dir: &Path) -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    for f in files_under(dir) {
        let name = f.display().to_string();
        if !name.ends_with(".conf") || name.ends_with("swift.conf") {
            continue;
        }
        let rel = f.strip_prefix(dir).expect("under dir").display().to_string();
        let text = std::fs::read_to_string(&f).expect("read");
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') || t.starts_with(';') || t.starts_with('[') || line.starts_with(' ') {
                continue;
            }
            let key = t.split(['=', ':']).next().unwrap_or("").trim().to_string();
            out.push((rel.clone(), i + 1, key));
        }
    }
    out
}

/// Each setting written in the files is named in the output at its
/// `file:line`: above the key it became, or in the list of the others.
fn assert_all_named(dir: &Path, output: &str) {
    let written = written(dir);
    assert!(written.len() > 10, "too few settings read: {written:?}");
    let named = |f: &str, l: usize| {
        let at = format!("{f}:{l}");
        output.match_indices(&at).any(|(i, _)| !output[i + at.len()..].starts_with(|c: char| c.is_ascii_digit()))
    };
    let missing: Vec<_> = written.iter().filter(|(f, l, _)| !named(f, *l)).collect();
    assert!(missing.is_empty(), "settings the output does not name: {missing:?}\n{output}");
}

/// The settings Swift's own loader gives a server's app and a daemon
/// section (paste-deploy's and readconf's rules), as JSON.
fn swift_view(conf: &Path, daemon: &str) -> serde_json::Value {
    let py = swift_python();
    let script = "import json, sys\n\
        from swift.common.wsgi import load_app_config\n\
        from swift.common.utils import readconf\n\
        app = {k: v for k, v in load_app_config(sys.argv[1]).items() if isinstance(v, str)}\n\
        try:\n    d = readconf(sys.argv[1], sys.argv[2])\nexcept ValueError:\n    d = {}\n\
        print(json.dumps({'app': app, 'daemon': {k: v for k, v in d.items() if isinstance(v, str)}}))\n";
    let out = Command::new(py).arg("-c").arg(script).arg(conf).arg(daemon).output().expect("run python");
    assert!(out.status.success(), "Swift could not read {}: {}", conf.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The text with its comment lines joined, for phrases the wrapping split.
fn flat(text: &str) -> String {
    let words = text.lines().flat_map(|l| l.trim_start_matches('#').split_whitespace());
    words.collect::<Vec<_>>().join(" ")
}

fn float(t: &toml::Table, table: &str, key: &str) -> f64 {
    let mut v = &t[table.split('.').next().expect("table")];
    for part in table.split('.').skip(1) {
        v = &v[part];
    }
    match &v[key] {
        toml::Value::Float(f) => *f,
        toml::Value::Integer(i) => *i as f64,
        other => panic!("{table}.{key} is {other:?}"),
    }
}

fn listeners(t: &toml::Table) -> Vec<(String, Vec<String>)> {
    t["listen"]
        .as_array()
        .expect("[[listen]]")
        .iter()
        .map(|l| {
            let addr = l["address"].as_str().expect("address").to_string();
            let p = l["pipeline"].as_array().expect("pipeline").iter().map(|s| s.as_str().expect("name").to_string());
            (addr, p.collect())
        })
        .collect()
}

fn now() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    format!("{}.{:05}", d.as_secs(), d.subsec_micros() / 10)
}

/// Put an account, a container and an object on `device` through the
/// node's three listeners, and find their files under `devices`.
fn serve_devices(object: SocketAddr, container: SocketAddr, account: SocketAddr, devices: &Path, device: &str) {
    let ts = now();
    let put = |addr: SocketAddr, path: &str, body: &str| {
        let r = request(
            addr,
            &format!(
                "PUT /{device}/0/{path} HTTP/1.1\r\nHost: x\r\nX-Timestamp: {ts}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        );
        assert_eq!(r.status, 201, "PUT {path} on {addr}: {}", r.text());
    };
    put(account, "AUTH_import", "");
    put(container, "AUTH_import/c", "");
    put(object, "AUTH_import/c/o", "hello");
    let found = |dir: &str, ext: &str| {
        files_under(&devices.join(device).join(dir)).iter().any(|f| f.display().to_string().ends_with(ext))
    };
    assert!(found("accounts", ".db"), "no account database on {device}");
    assert!(found("containers", ".db"), "no container database on {device}");
    assert!(found("objects", ".data"), "no object file on {device}");
    let r = get(object, &format!("/{device}/0/AUTH_import/c/o"));
    assert_eq!((r.status, r.text()), (200, "hello".to_string()));
}

/// Swift's sample configs, with the edits every operator makes (where the
/// disks are, the node's address and ports, mount_check off for a test
/// machine's plain directories): taken over, checked, and started.
#[test]
fn swifts_sample_configs_are_taken_over_and_the_node_serves_their_ports_and_devices() {
    let src = sdist().join("etc");
    let tmp = TempDir::new("import-sample");
    let dir = tmp.path().join("swift");
    let devices = tmp.path().join("devices");
    std::fs::create_dir_all(devices.join("sda1")).expect("device");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::copy(src.join("swift.conf-sample"), dir.join("swift.conf")).expect("swift.conf");
    let mut ports = Vec::new();
    for (svc, default_port) in [("object", 6200), ("container", 6201), ("account", 6202)] {
        let text = std::fs::read_to_string(src.join(format!("{svc}-server.conf-sample"))).expect("sample");
        let port = free_port();
        ports.push(port);
        let text = text.replacen(&format!("bind_port = {default_port}\n"), &format!("bind_port = {port}\n"), 1).replacen(
            "[DEFAULT]\n",
            &format!(
                "[DEFAULT]\nbind_ip = 127.0.0.1\ndevices = {}\nmount_check = false\nswift_dir = {}\nrecon_cache_path = {}\n",
                devices.display(),
                dir.display(),
                tmp.path().join("recon").display()
            ),
            1,
        );
        std::fs::write(dir.join(format!("{svc}-server.conf")), text).expect("write conf");
    }
    let (text, t) = import(&dir, None);
    check_config(tmp.path(), &text);
    assert_all_named(&dir, &text);
    // What the samples switch on that aerie does not take over is named.
    assert!(
        flat(&text).contains("pipeline = … backend_ratelimit … Swift's backend_ratelimit filter is not taken over"),
        "{text}"
    );
    assert!(flat(&text).contains("[filter:xprofile] is not in [pipeline:main]"), "{text}");
    assert_eq!(t["storage"]["devices"].as_str(), Some(devices.display().to_string().as_str()));
    assert_eq!(t["storage"]["mount_check"].as_bool(), Some(false));
    let l = listeners(&t);
    let want: Vec<(String, Vec<String>)> = ["object", "container", "account"]
        .iter()
        .zip(&ports)
        .map(|(svc, p)| (format!("127.0.0.1:{p}"), vec!["healthcheck".into(), "recon".into(), svc.to_string()]))
        .collect();
    assert_eq!(l, want);

    let server = Server::start_with(&text, &["--admin", "127.0.0.1:0"]);
    let addrs: Vec<SocketAddr> = ports.iter().map(|p| SocketAddr::from(([127, 0, 0, 1], *p))).collect();
    let mut got = server.addrs.clone();
    got.sort();
    let mut sorted = addrs.clone();
    sorted.sort();
    assert_eq!(got, sorted, "the node listens where the Swift servers did");
    serve_devices(addrs[0], addrs[1], addrs[2], &devices, "sda1");
    assert_eq!(get(addrs[0], "/healthcheck").status, 200);
    assert_eq!(get(addrs[0], "/recon/version").status, 200);
}

/// Every `# key = value` of the samples switched on (the first of each per
/// section; placeholders left out): the import names every one of them,
/// passes --check-config, and its values are what Swift's loader reads.
#[test]
fn every_setting_of_the_samples_is_taken_over_as_swift_reads_it_or_named_with_why() {
    let src = sdist().join("etc");
    let tmp = TempDir::new("import-all");
    let dir = tmp.path().join("swift");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::copy(src.join("swift.conf-sample"), dir.join("swift.conf")).expect("swift.conf");
    for svc in ["object", "container", "account"] {
        let text = std::fs::read_to_string(src.join(format!("{svc}-server.conf-sample"))).expect("sample");
        let mut out = String::new();
        let mut section = String::new();
        let mut seen = std::collections::BTreeSet::new();
        for line in text.lines() {
            if line.starts_with('[') {
                section = line.to_string();
            }
            let setting = line.strip_prefix("# ").or_else(|| line.strip_prefix('#')).and_then(|l| {
                let (k, v) = l.split_once(" = ").or_else(|| l.split_once('='))?;
                let k = k.trim();
                let ok = !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                (ok && !v.contains('<')).then(|| (k.to_string(), v.trim().to_string()))
            });
            match setting {
                Some((k, v)) if !section.is_empty() && seen.insert((section.clone(), k.clone())) => {
                    let v = if k == "swift_dir" { dir.display().to_string() } else { v };
                    out.push_str(&format!("{k} = {v}\n"));
                }
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        std::fs::write(dir.join(format!("{svc}-server.conf")), out).expect("write conf");
    }
    let (text, t) = import(&dir, None);
    check_config(tmp.path(), &text);
    assert_all_named(&dir, &text);
    let unmapped = text.split("Swift settings not taken over").nth(1).expect("a list of settings not taken over");
    for named in ["log_facility", "log_statsd_host", "keep_cache_size", "rsync_module", "backend_ratelimit_conf_path"] {
        assert!(unmapped.contains(named), "{named} not listed as not taken over");
    }

    // The values are those Swift's own loader reads from these files.
    let object = swift_view(&dir.join("object-server.conf"), "object-replicator");
    let updater = swift_view(&dir.join("object-server.conf"), "object-updater");
    let container = swift_view(&dir.join("container-server.conf"), "container-updater");
    let num = |v: &serde_json::Value| v.as_str().expect("a string").parse::<f64>().expect("a number");
    assert_eq!(float(&t, "server", "max_connections"), num(&object["app"]["max_clients"]));
    assert_eq!(float(&t, "server", "body_timeout"), num(&object["app"]["client_timeout"]));
    assert_eq!(float(&t, "server", "bind_timeout"), num(&object["app"]["bind_timeout"]));
    assert_eq!(float(&t, "processors.object", "node_timeout"), num(&object["app"]["node_timeout"]));
    assert_eq!(float(&t, "processors.object", "conn_timeout"), num(&object["app"]["conn_timeout"]));
    assert_eq!(
        float(&t, "processors.object", "container_update_timeout"),
        num(&object["app"]["container_update_timeout"])
    );
    assert_eq!(float(&t, "storage", "reclaim_age"), num(&object["app"]["reclaim_age"]));
    assert_eq!(float(&t, "replication", "interval"), num(&object["daemon"]["interval"]));
    assert_eq!(float(&t, "replication", "concurrency"), num(&object["daemon"]["concurrency"]));
    assert_eq!(float(&t, "replication", "http_timeout"), num(&object["daemon"]["http_timeout"]));
    assert_eq!(float(&t, "storage", "object_updater_interval"), num(&updater["daemon"]["interval"]));
    assert_eq!(float(&t, "storage", "container_updater_interval"), num(&container["daemon"]["interval"]));
    assert_eq!(
        float(&t, "storage", "container_updater_suppression"),
        num(&container["daemon"]["account_suppression_time"])
    );
    assert_eq!(t["log"]["level"].as_str().map(str::to_ascii_uppercase).as_deref(), object["app"]["log_level"].as_str());
    assert_eq!(float(&t, "server", "workers"), std::thread::available_parallelism().map_or(1, |n| n.get()) as f64);
}

/// A SAIO's four nodes (doc/saio/swift of the sdist): one aerie.toml per
/// node, each on its own address, ports and devices; all four run at once.
#[test]
fn a_saios_four_nodes_are_taken_over_one_by_one_and_run_side_by_side() {
    let src = sdist().join("doc/saio/swift");
    let tmp = TempDir::new("import-saio");
    let dir = tmp.path().join("swift");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("swift.conf"), SWIFT_CONF).expect("swift.conf");
    // Fresh ports for the SAIO's 62N0-62N2, the SAIO's devices under tmp.
    let mut ports = std::collections::BTreeMap::new();
    for n in 1..=4 {
        for svc in 0..3 {
            ports.insert(6200 + n * 10 + svc, free_port());
        }
    }
    for (svc, offset) in [("object", 0), ("container", 1), ("account", 2)] {
        std::fs::create_dir_all(dir.join(format!("{svc}-server"))).expect("dir");
        for n in 1..=4 {
            let text = std::fs::read_to_string(src.join(format!("{svc}-server/{n}.conf"))).expect("saio conf");
            let saio_port = 6200 + n * 10 + offset;
            let text = text
                .replace(&format!("bind_port = {saio_port}"), &format!("bind_port = {}", ports[&saio_port]))
                .replace(&format!("devices = /srv/{n}/node"), &format!("devices = {}/{n}/node", tmp.path().display()))
                .replace(
                    "recon_cache_path = /var/cache/swift",
                    &format!("recon_cache_path = {}/recon", tmp.path().display()),
                )
                .replacen("[DEFAULT]\n", &format!("[DEFAULT]\nswift_dir = {}\n", dir.display()), 1);
            std::fs::write(dir.join(format!("{svc}-server/{n}.conf")), text).expect("write");
        }
    }
    // Without --node the command names the nodes it found.
    let r = aerie(&["import-swift-conf", &dir.display().to_string()]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    for n in 1..=4 {
        assert!(r.stderr.contains(&format!("  {n}  (devices {}/{n}/node", tmp.path().display())), "{}", r.stderr);
    }
    let mut servers = Vec::new();
    let mut admins = std::collections::BTreeSet::new();
    for n in 1..=4u16 {
        let (text, t) = import(&dir, Some(&n.to_string()));
        check_config(tmp.path(), &text);
        assert!(text.contains(&format!("object-server/{n}.conf:")), "{text}");
        assert!(admins.insert(t["admin"]["address"].as_str().expect("admin").to_string()), "admin addresses differ");
        assert_eq!(t["storage"]["mount_check"].as_bool(), Some(false));
        assert_eq!(t["server"]["workers"].as_integer(), Some(1));
        // The SAIO's placeholder user is not a user here: left out, said.
        assert!(t["server"].get("user").is_none());
        assert!(text.contains("<your-user-name>"));
        // The SAIO object replicator's rsync module is named: aerie's uses SSYNC.
        assert!(text.contains("{replication_ip}::object{replication_port}"), "{text}");
        let device = format!("sdb{n}");
        let devices = tmp.path().join(format!("{n}/node"));
        std::fs::create_dir_all(devices.join(&device)).expect("device");
        let ip = [127, 0, 0, n as u8];
        let addr = |svc: u16| SocketAddr::from((ip, ports[&(6200 + n * 10 + svc)]));
        let server = Server::start_with(&text, &["--admin", "127.0.0.1:0"]);
        let mut got = server.addrs.clone();
        got.sort();
        assert_eq!(got, vec![addr(0), addr(1), addr(2)], "node {n}");
        servers.push((server, addr(0), addr(1), addr(2), devices, device));
    }
    for (_, o, c, a, devices, device) in &servers {
        serve_devices(*o, *c, *a, devices, device);
    }
}

/// One node split as Swift deployments split it: a public object server
/// (replication_server = false) and a replication one on the same disks, a
/// container server from a conf.d directory, paste-deploy's [DEFAULT]-wins
/// rule; and a servers_per_port node whose ports come from the ring.
#[test]
fn a_split_node_conf_d_and_servers_per_port_are_taken_over_as_swift_runs_them() {
    let tmp = TempDir::new("import-split");
    let dir = tmp.path().join("swift");
    let devices = tmp.path().join("devices");
    std::fs::create_dir_all(dir.join("object-server")).expect("dir");
    std::fs::create_dir_all(dir.join("container-server.conf.d")).expect("dir");
    std::fs::create_dir_all(devices.join("sda")).expect("device");
    std::fs::write(dir.join("swift.conf"), SWIFT_CONF).expect("swift.conf");
    let (public, replication, container) = (free_port(), free_port(), free_port());
    let default = format!(
        "[DEFAULT]\nbind_ip = 127.0.0.1\ndevices = {}\nmount_check = false\nswift_dir = {}\nlog_level = INFO\nnode_timeout = 4\n",
        devices.display(),
        dir.display()
    );
    std::fs::write(
        dir.join("object-server/1.conf"),
        format!(
            "{default}bind_port = {public}\nservers_per_port = 0\n\n[pipeline:main]\npipeline = healthcheck object-server\n\n\
             [app:object-server]\nuse = egg:swift#object\nreplication_server = false\nlog_level = DEBUG\nset conn_timeout = 0.25\n\n\
             [filter:healthcheck]\nuse = egg:swift#healthcheck\n"
        ),
    )
    .expect("write");
    std::fs::write(
        dir.join("object-server/2.conf"),
        format!(
            "{default}bind_port = {replication}\n\n[pipeline:main]\npipeline = object-server\n\n\
             [app:object-server]\nuse = egg:swift#object\nreplication_server = true\n\n[object-replicator]\nconcurrency = 3\n"
        ),
    )
    .expect("write");
    std::fs::write(
        dir.join("container-server.conf.d/00-base.conf"),
        format!("{default}bind_port = 1\n\n[pipeline:main]\npipeline = container-server\n\n[app:container-server]\nuse = egg:swift#container\nallow_versions = true\n"),
    )
    .expect("write");
    std::fs::write(dir.join("container-server.conf.d/10-port.conf"), format!("[DEFAULT]\nbind_port = {container}\n"))
        .expect("write");

    let (text, t) = import(&dir, None);
    check_config(tmp.path(), &text);
    assert_all_named(&dir, &text);
    assert_eq!(
        listeners(&t),
        vec![
            (format!("127.0.0.1:{public}"), vec!["healthcheck".into(), "no-replication".into(), "object".into()]),
            (format!("127.0.0.1:{replication}"), vec!["object".into()]),
            (format!("127.0.0.1:{container}"), vec!["container".into()]),
        ]
    );
    // As Swift's loader reads the public server: [DEFAULT]'s log_level
    // wins over the app's, `set` wins over [DEFAULT].
    let swift = swift_view(&dir.join("object-server/1.conf"), "object-replicator");
    assert_eq!(swift["app"]["log_level"], "INFO");
    assert_eq!(t["log"]["level"].as_str(), Some("info"));
    assert_eq!(swift["app"]["conn_timeout"], "0.25");
    assert_eq!(float(&t, "processors.object", "conn_timeout"), 0.25);
    assert_eq!(float(&t, "processors.object", "node_timeout"), 4.0);
    assert!(flat(&text).contains("log_level = DEBUG Swift ignores this line too"), "{text}");
    // servers_per_port = 0 is Swift's "off", taken over as such (bind_port).
    assert!(
        flat(&text).contains(
            "object-server/1.conf:9 [DEFAULT] servers_per_port = 0 object-server/1.conf:8 [DEFAULT] bind_port"
        ),
        "{text}"
    );
    // A container setting aerie cannot honour is said, not dropped quietly.
    let r = aerie(&["import-swift-conf", &dir.display().to_string()]);
    assert!(r.stderr.contains("allow_versions = true: aerie's container service"), "{}", r.stderr);
    assert_eq!(float(&t, "replication", "concurrency"), 3.0);
    // No container-replicator section: aerie's database replicator stays off.
    assert_eq!(t["replication"]["db_replicator"].as_bool(), Some(false));

    let server = Server::start_with(&text, &["--admin", "127.0.0.1:0"]);
    let at = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    let replicate = |p: u16| {
        request(at(p), "REPLICATE /sda/0 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    };
    assert_eq!(replicate(public).status, 405, "the public server refuses replication");
    assert_eq!(replicate(replication).status, 200, "the replication server serves it");
    assert_eq!(get(at(public), "/healthcheck").status, 200);
    let r = request(at(public), "OPTIONS /sda/0/a/c/o HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let allow = r.header("allow").unwrap_or("").to_string();
    assert!(allow.contains("GET") && !allow.contains("REPLICATE") && !allow.contains("SSYNC"), "{allow}");
    drop(server);

    // servers_per_port: a port per disk of this node in the object ring
    // (the device on another address is not this node's).
    let spp = tmp.path().join("spp");
    std::fs::create_dir_all(&spp).expect("dir");
    std::fs::write(spp.join("swift.conf"), "[swift-hash]\nswift_hash_path_suffix = x\n").expect("swift.conf");
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    write_ring(&spp, "object", &[(at(p1), "sda"), (at(p2), "sdb"), (SocketAddr::from(([127, 0, 0, 9], p3)), "sdc")]);
    std::fs::write(
        spp.join("object-server.conf"),
        format!(
            "[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = 6200\nservers_per_port = 2\nmount_check = false\ndevices = {}\nswift_dir = {}\n\
             [pipeline:main]\npipeline = object-server\n[app:object-server]\nuse = egg:swift#object\n",
            devices.display(),
            spp.display()
        ),
    )
    .expect("write");
    let (text, t) = import(&spp, None);
    check_config(tmp.path(), &text);
    let mut want = vec![
        (format!("127.0.0.1:{p1}"), vec!["object".to_string()]),
        (format!("127.0.0.1:{p2}"), vec!["object".to_string()]),
    ];
    want.sort();
    let mut got = listeners(&t);
    got.sort();
    assert_eq!(got, want, "{text}");
    let server = Server::start_with(&text, &["--admin", "127.0.0.1:0"]);
    assert_eq!(server.addrs.len(), 2);
}

/// What Swift would not run, and what aerie cannot take over, is refused
/// with the file and the reason.
#[test]
fn broken_swift_configs_are_refused_with_the_file_and_why() {
    let tmp = TempDir::new("import-bad");
    let cases: &[(&str, &str)] = &[
        ("[DEFAULT]\nbind_port = 6200\n[app:object-server]\nuse = egg:swift#object\n", "neither [pipeline:main] nor [app:main]"),
        ("[DEFAULT]\n[pipeline:main]\npipeline = object-server\n[app:object-server]\nuse = egg:swift#object\n", "no bind_port"),
        ("[DEFAULT]\nbind_port = 6200\nworkers = many\n[pipeline:main]\npipeline = object-server\n[app:object-server]\nuse = egg:swift#object\n", "workers = many: not a whole number"),
        ("[DEFAULT]\nbind_port = 6200\n[pipeline:main]\npipeline = object-server\n[app:object-server]\nuse = egg:other#thing\n", "not Swift's object-server"),
        ("[DEFAULT]\nbind_port = 6200\nbind_port = 6201\n", "appears twice"),
    ];
    for (i, (conf, why)) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("case{i}"));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("object-server.conf"), conf).expect("write");
        let r = aerie(&["import-swift-conf", &dir.display().to_string()]);
        assert_eq!(r.code, 2, "{conf}: {}", r.stdout);
        assert!(r.stderr.contains(why) && r.stderr.contains("object-server.conf"), "{conf}: {}", r.stderr);
        assert!(r.stdout.is_empty());
    }
    let r = aerie(&["import-swift-conf", &tmp.path().join("nothing").display().to_string()]);
    assert_eq!(r.code, 2);
}
