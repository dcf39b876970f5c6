//! Swift's operator tooling against aerie nodes: `swift-recon` over a
//! three-node cluster from the project's script, and every `/recon/<check>`
//! answer of an aerie node against Swift's object server's (its recon
//! middleware, its recon cache filled by Swift's own replicator and
//! updater) on the same cluster layout: the same keys and JSON types.

use crate::swift_cluster::Cluster;
use crate::util::{get, wait_until, TempDir};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn recon(addr: SocketAddr, check: &str) -> Value {
    let r = get(addr, &format!("/recon/{check}"));
    assert_eq!(r.status, 200, "/recon/{check} on {addr}: {}", String::from_utf8_lossy(&r.body));
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("/recon/{check} on {addr} is not JSON: {e}"))
}

fn cache(c: &Cluster, node: usize, file: &str) -> Value {
    let p = c.dir().join(format!("node{node}/recon/{file}"));
    std::fs::read_to_string(p).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null)
}

/// Every role of every node reported a pass.
fn wait_for_reports(c: &Cluster) {
    wait_until("every node's replicators and updaters in the recon cache", Duration::from_secs(90), || {
        (1..=3).all(|n| {
            let o = cache(c, n, "object.recon");
            let ct = cache(c, n, "container.recon");
            let a = cache(c, n, "account.recon");
            o.get("object_replication_last").is_some()
                && o.get("object_updater_last").is_some()
                && ct.get("replication_last").is_some()
                && ct.get("container_updater_sweep").is_some()
                && a.get("replication_last").is_some()
        })
    });
}

fn swift_recon(c: &Cluster, args: &[&str]) -> String {
    let bin = Path::new(&c.env("SWIFT_BIN")).join("swift-recon");
    let swift_dir = c.dir().join("swift");
    let out = Command::new(&bin)
        .args(args)
        .args(["--swiftdir", &swift_dir.to_string_lossy(), "--timeout", "10"])
        .stdin(Stdio::null())
        .output()
        .expect("run swift-recon");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "swift-recon {args:?} failed:\n{text}");
    text
}

/// The lines of a swift-recon report that say something failed. The one
/// expected line: loopback devices are plain directories, which Swift's
/// recon reports as unmounted (`mounted: false`, no sizes) whatever
/// `mount_check` says, so `-d` has no usage to show for them.
fn error_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| {
            let l = l.to_lowercase();
            (l.contains("error")
                && !l.contains("0 error[s]")
                && !l.contains("error. no drive info available")
                && !l.contains("drive-audit errors")
                && !l.contains("[drive_audit_errors]"))
                || l.contains("traceback")
                || l.contains("doesn't match")
                || l.contains("invalid:")
        })
        .collect()
}

#[test]
fn swift_recon_reports_an_aerie_cluster_without_errors() {
    let c = Cluster::start(3, |_, t| t);
    c.write_file("f", b"recon");
    c.ok(&["upload", "c", "f"]);
    wait_for_reports(&c);

    let all = swift_recon(&c, &["object", "--all"]);
    assert!(error_lines(&all).is_empty(), "swift-recon --all reported errors {:?}:\n{all}", error_lines(&all));
    for needle in [
        "[async_pending] low: 0, high: 0",
        "[replication_attempted]",
        "[replication_success]",
        "[updater_last_sweep]",
        "3/3 hosts matched, 0 error[s] while checking hosts.",
        "3/3 hosts ok, 0 error[s] while checking hosts.",
        "Versions matched",
        "[quarantined_objects] low: 0, high: 0",
        "[tcp_in_use]",
    ] {
        assert!(all.contains(needle), "swift-recon --all lacks {needle:?}:\n{all}");
    }
    let some = swift_recon(&c, &["object", "-r", "-u", "--md5", "-d", "--unmounted", "-q", "--time"]);
    assert!(error_lines(&some).is_empty(), "swift-recon reported errors:\n{some}");
    assert!(some.contains("Not mounted: d1 on 127.0.0.1"), "loopback devices show as unmounted:\n{some}");
    for server in ["container", "account"] {
        let out = swift_recon(&c, &[server, "-r", "--md5", "-q", "--time"]);
        assert!(error_lines(&out).is_empty(), "swift-recon {server} reported errors:\n{out}");
        assert!(
            out.contains("[replication_attempted]") && out.contains("Oldest completion was"),
            "{server} replication figures:\n{out}"
        );
    }
    let cu = swift_recon(&c, &["container", "--updater"]);
    assert!(cu.contains("[updater_last_sweep] low:"), "container updater sweeps:\n{cu}");

    // A later pass counts the object's partition.
    wait_until("a replication pass over the object's partition", Duration::from_secs(60), || {
        (1..=3)
            .filter_map(|n| {
                recon(c.node_addr(n, "OBJECT"), "replication/object")["replication_stats"]["attempted"].as_u64()
            })
            .sum::<u64>()
            > 0
    });
    // A check Swift does not have is Swift's 404.
    let r = get(c.node_addr(1, "OBJECT"), "/recon/nonesuch");
    assert_eq!((r.status, r.body.as_slice()), (404, &b"Invalid path: /recon/nonesuch"[..]));
}

/// The shape of a JSON value: object keys (recursively), array element
/// shapes, and each scalar's type.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().take(1).map(shape).collect()),
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(n) if n.is_f64() => "float".into(),
        Value::Number(_) => "int".into(),
        Value::String(_) => "str".into(),
    }
}

#[test]
fn every_recon_check_has_the_keys_and_types_of_swifts() {
    let mut c = Cluster::start(3, |_, t| t);
    c.write_file("f", b"recon");
    c.ok(&["upload", "c", "f"]);
    wait_for_reports(&c);
    // Node 1's object service becomes Swift's, with its recon middleware
    // and a recon cache Swift's replicator and updater fill.
    c.kill_node(1);
    let port = c.node_addr(1, "OBJECT").port();
    let dir = TempDir::new("swift-recon-node");
    let cache_dir = dir.path().join("recon");
    std::fs::create_dir_all(&cache_dir).expect("cache dir");
    let conf = dir.path().join("object-server.conf");
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\nuser = {user}\nswift_dir = {}\ndevices = {}\nmount_check = false\nbind_ip = 127.0.0.1\nbind_port = {port}\nworkers = 0\n\
             log_address = /dev/null\nrecon_cache_path = {}\n\n[pipeline:main]\npipeline = recon object-server\n\n\
             [app:object-server]\nuse = egg:swift#object\n\n[filter:recon]\nuse = egg:swift#recon\nrecon_lock_path = {}\n\n\
             [object-replicator]\nsync_method = ssync\n\n[object-updater]\n\n[object-auditor]\n",
            c.dir().join("swift").display(),
            c.node_root(1).display(),
            cache_dir.display(),
            dir.path().display()
        ),
    )
    .expect("swift conf");
    let bin = Path::new(&c.env("SWIFT_BIN")).to_path_buf();
    let run = c.dir().join("swift-run");
    // swift-recon-cron counts the async pendings for /recon/async.
    for (daemon, once) in
        [("swift-object-replicator", true), ("swift-object-updater", true), ("swift-recon-cron", false)]
    {
        let mut cmd = Command::new(&run);
        cmd.arg(bin.join(daemon)).arg(&conf);
        if once {
            cmd.arg("once");
        }
        let out = cmd.output().expect("daemon");
        assert!(
            out.status.success(),
            "{daemon}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut server = Command::new(&run)
        .arg(bin.join("swift-object-server"))
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("swift-object-server");
    let swift_addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    wait_until("Swift's object server", Duration::from_secs(30), || {
        std::net::TcpStream::connect(swift_addr).is_ok() && get(swift_addr, "/recon/time").status == 200
    });
    let aerie = c.node_addr(2, "OBJECT");
    let mut differ = Vec::new();
    for check in [
        "mem",
        "load",
        "async",
        "replication",
        "replication/object",
        "updater/object",
        "auditor/object",
        "auditor/container",
        "auditor/account",
        "expirer/object",
        "reconstruction/object",
        "unmounted",
        "diskusage",
        "swiftconfmd5",
        "quarantined",
        "sockstat",
        "version",
        "time",
        "driveaudit",
        "sharding",
        "relinker",
        "devices",
        "ringmd5",
    ] {
        let (a, s) = (recon(aerie, check), recon(swift_addr, check));
        let (a, s) = match check {
            // Keyed by paths that differ between the two nodes.
            // Keyed by a path: Swift's server names swift.conf under its
            // swift_dir (here the cluster's), aerie always as
            // /etc/swift/swift.conf — the key swift-recon looks up
            // whatever --swiftdir says (it raises KeyError on Swift's when
            // swift_dir is elsewhere).
            "devices" | "swiftconfmd5" => {
                let values = |v: &Value| Value::from(v.as_object().map(|m| m.values().map(shape).collect::<Vec<_>>()));
                (values(&a), values(&s))
            }
            "ringmd5" => {
                let names = |v: &Value| {
                    let mut n: Vec<String> = v
                        .as_object()
                        .map(|m| m.keys().filter_map(|k| k.rsplit('/').next().map(String::from)).collect())
                        .unwrap_or_default();
                    n.sort();
                    Value::from(n)
                };
                (names(&a), names(&s))
            }
            _ => (shape(&a), shape(&s)),
        };
        if a != s {
            differ.push(format!("/recon/{check}:\n  aerie {a}\n  swift {s}"));
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    assert!(differ.is_empty(), "recon answers differ from Swift's:\n{}", differ.join("\n"));
}
