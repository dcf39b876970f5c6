//! The unmodified Swift proxy-server (from PyPI) in front of aerie nodes,
//! driven with the `swift` command-line client as a user would: the
//! cluster is laid out by `scripts/swift-cluster.sh setup` (rings, proxy
//! config, one aerie config per node) and its processes are started here,
//! so each is killed when its test ends.

use crate::util::{self, get, md5_hex, wait_until, Server, TempDir};
use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// A loopback Swift cluster: the proxy and `n` aerie nodes.
pub struct Cluster {
    dir: TempDir,
    env: HashMap<String, String>,
    nodes: Vec<Option<Server>>,
    configs: Vec<String>,
    proxy: Child,
    swift: PathBuf,
    /// Swift's own servers, where they are the nodes instead of aerie.
    _swift_nodes: Vec<util::SwiftServer>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(self.proxy.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.proxy.wait();
    }
}

impl Cluster {
    /// Lay out and start a cluster of `n` nodes; `tweak` may edit each
    /// node's config text (node number from 1) before it starts.
    pub fn start(n: usize, tweak: impl Fn(usize, String) -> String) -> Cluster {
        Cluster::start_env(n, &[], tweak)
    }

    /// The same, with `scripts/swift-cluster.sh setup` run with these
    /// environment variables (`ENCRYPTION=1`, …).
    pub fn start_env(n: usize, env: &[(&str, &str)], tweak: impl Fn(usize, String) -> String) -> Cluster {
        Cluster::start_on(n, env, false, tweak)
    }

    /// The same layout with Swift's own object, container and account
    /// servers as the nodes (on the same ports and devices): the cluster
    /// aerie's must behave like.
    pub fn start_swift_nodes(n: usize, env: &[(&str, &str)]) -> Cluster {
        Cluster::start_on(n, env, true, |_, t| t)
    }

    fn start_on(n: usize, env: &[(&str, &str)], swift_nodes: bool, tweak: impl Fn(usize, String) -> String) -> Cluster {
        util::system_swift_conf();
        let dir = TempDir::new("cluster");
        // The ports are picked here, outside the kernel's ephemeral range,
        // so no connection of another test takes one before its node binds
        // it (or while a test has the node down); the script keeps them.
        let mut ports = format!("PROXY_PORT={} RSYNC_PORT={}\n", util::free_port(), util::free_port());
        for i in 1..=n {
            let [o, c, a, m] = [(); 4].map(|()| util::free_port());
            ports
                .push_str(&format!("NODE{i}_OBJECT={o} NODE{i}_CONTAINER={c} NODE{i}_ACCOUNT={a} NODE{i}_ADMIN={m}\n"));
        }
        std::fs::write(dir.path().join("ports"), ports).expect("write the cluster's ports");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/swift-cluster.sh");
        let out = Command::new(&script)
            .args(["setup", &dir.path().to_string_lossy(), &n.to_string()])
            .envs(env.iter().copied())
            .output()
            .expect("run scripts/swift-cluster.sh");
        assert!(out.status.success(), "cluster setup failed: {}", String::from_utf8_lossy(&out.stderr));
        let env = read_env(&dir.path().join("cluster.env"));
        let configs: Vec<String> = (1..=n)
            .map(|i| {
                let text =
                    std::fs::read_to_string(dir.path().join(format!("node{i}/aerie.toml"))).expect("node config");
                tweak(i, text)
            })
            .collect();
        let (nodes, swift_servers) = if swift_nodes {
            let mut servers = Vec::new();
            for i in 1..=n {
                for kind in ["object", "container", "account"] {
                    let port = env[&format!("NODE{i}_{}", kind.to_uppercase())].parse().expect("port");
                    let run = dir.path().join("swift-run");
                    servers.push(util::start_swift_server_via(
                        kind,
                        &dir.path().join(format!("node{i}/srv")),
                        port,
                        Some(&run),
                    ));
                }
            }
            ((1..=n).map(|_| None).collect(), servers)
        } else {
            (configs.iter().map(|c| Some(Server::start(c))).collect(), Vec::new())
        };
        let bin = PathBuf::from(&env["SWIFT_BIN"]);
        let log = std::fs::File::create(dir.path().join("proxy.log")).expect("proxy log");
        // Through swift-run: the cluster's swift.conf is Swift's.
        let proxy = Command::new(dir.path().join("swift-run"))
            .arg(bin.join("swift-proxy-server"))
            .arg(dir.path().join("swift/proxy-server.conf"))
            .arg("-v")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start swift-proxy-server");
        let c = Cluster { dir, env, nodes, configs, proxy, swift: bin.join("swift"), _swift_nodes: swift_servers };
        let addr = c.proxy_addr();
        wait_until("the proxy", Duration::from_secs(60), || {
            TcpStream::connect(addr).is_ok() && get(addr, "/healthcheck").status == 200
        });
        c
    }

    /// A value of the cluster's `cluster.env` (ports, paths).
    pub fn env(&self, key: &str) -> String {
        self.env.get(key).cloned().unwrap_or_else(|| panic!("no {key} in cluster.env"))
    }

    pub fn proxy_addr(&self) -> SocketAddr {
        format!("127.0.0.1:{}", self.env["PROXY_PORT"]).parse().expect("proxy address")
    }

    /// Node `i`'s address for `service` (`OBJECT`, `CONTAINER`, `ACCOUNT`,
    /// `ADMIN`).
    pub fn node_addr(&self, i: usize, service: &str) -> SocketAddr {
        format!("127.0.0.1:{}", self.env[&format!("NODE{i}_{service}")]).parse().expect("node address")
    }

    /// The cluster's directory (rings and configs in `swift/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn node_root(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node{i}/srv"))
    }

    /// The partition of `account[/container]` in the `ring` (`account`,
    /// `container`) and its primary nodes (numbers from 1), in replica
    /// order.
    pub fn primaries(&self, ring: &str, account: &str, container: Option<&str>) -> (u32, Vec<usize>) {
        let path = self.dir.path().join(format!("swift/{ring}.ring.gz"));
        let ring = aerie_storage::ring::Ring::load(&path).expect("ring");
        let text = std::fs::read_to_string(self.dir.path().join("swift/swift.conf")).expect("swift.conf");
        let conf = aerie_storage::swift_conf::parse(&text).expect("swift.conf");
        let part = ring.partition(&conf.salt, account, container, None);
        let nodes = ring.nodes(part).iter().map(|d| d.device[1..].parse::<usize>().expect("device dN")).collect();
        (part, nodes)
    }

    /// Node `i`'s log (empty while it is down).
    pub fn node_log(&self, i: usize) -> String {
        self.nodes[i - 1].as_ref().map(Server::log).unwrap_or_default()
    }

    /// SIGKILL node `i`'s master and workers.
    pub fn kill_node(&mut self, i: usize) {
        self.nodes[i - 1] = None;
    }

    pub fn restart_node(&mut self, i: usize) {
        self.nodes[i - 1] = Some(Server::start(&self.configs[i - 1]));
    }

    /// Run the swift client (as test:tester) in the cluster's directory.
    pub fn swift(&self, args: &[&str]) -> Output {
        Command::new(&self.swift)
            .args(["-A", &format!("http://{}/auth/v1.0", self.proxy_addr()), "-U", "test:tester", "-K", "testing"])
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run swift")
    }

    /// Run the swift client and return its standard output; the command
    /// must succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.swift(args);
        assert!(
            out.status.success(),
            "swift {args:?} failed: {}{}\nproxy log tail:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.proxy_log_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// One pass of Swift's object expirer over the cluster.
    pub fn expirer_pass(&self) {
        let out = Command::new(self.dir.path().join("swift-run"))
            .arg(self.swift.with_file_name("swift-object-expirer"))
            .arg(self.dir.path().join("swift/object-expirer.conf"))
            .arg("--once")
            .output()
            .expect("run swift-object-expirer");
        assert!(out.status.success(), "expirer: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `swift stat ...` as a map of its `Key: value` lines.
    pub fn stat(&self, args: &[&str]) -> HashMap<String, String> {
        let mut all = vec!["stat"];
        all.extend_from_slice(args);
        self.ok(&all)
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    }

    /// An object's bytes, downloaded with the client.
    pub fn download(&self, container: &str, object: &str) -> Vec<u8> {
        let out = self.swift(&["download", container, object, "-o", "-"]);
        assert!(out.status.success(), "download {container}/{object}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    pub fn write_file(&self, name: &str, data: &[u8]) {
        let p = self.dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("dirs");
        }
        std::fs::write(p, data).expect("write upload file");
    }

    pub fn proxy_log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The sum of a counter in node `i`'s /metrics.
    pub fn metric(&self, i: usize, name: &str) -> f64 {
        let text = get(self.node_addr(i, "ADMIN"), "/metrics").text();
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

fn read_env(path: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path).expect("cluster.env");
    text.split_whitespace().filter_map(|w| w.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Deterministic pseudo-random bytes (so a failure can be reproduced).
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().filter(|l| !l.is_empty()).collect()
}

fn num(m: &HashMap<String, String>, key: &str) -> u64 {
    m.get(key).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no numeric {key} in {m:?}"))
}

#[test]
fn swift_client_flows_through_the_proxy_on_one_node() {
    let c = Cluster::start(1, |_, t| t);
    const MIB: usize = 1 << 20;
    let files = [("one", data(1, 1)), ("five", data(5 * MIB, 2)), ("forty", data(40 * MIB, 3))];
    for (name, bytes) in &files {
        c.write_file(name, bytes);
    }

    // Containers, and plain uploads of 1 B, 5 MiB and 40 MiB.
    c.ok(&["post", "plain"]);
    c.ok(&["upload", "plain", "one", "five", "forty"]);
    for (name, bytes) in &files {
        assert_eq!(md5_hex(&c.download("plain", name)), md5_hex(bytes), "{name} comes back intact");
    }
    // The 40 MiB one again as a static large object of 8 MiB segments.
    c.ok(&["upload", "--use-slo", "-S", "8M", "--object-name", "big/forty", "slo", "forty"]);
    assert_eq!(md5_hex(&c.download("slo", "big/forty")), md5_hex(&files[2].1), "the SLO reassembles");
    let slo = c.stat(&["slo", "big/forty"]);
    assert_eq!(num(&slo, "Content Length"), 40 * MIB as u64, "{slo:?}");
    assert_eq!(lines(&c.ok(&["list", "slo_segments"])).len(), 5, "five 8 MiB segments");

    // Listings with prefix and delimiter.
    c.write_file("dir/a", b"a");
    c.write_file("dir/b", b"b");
    c.ok(&["upload", "plain", "dir/a", "dir/b"]);
    assert_eq!(lines(&c.ok(&["list", "plain"])), ["dir/a", "dir/b", "five", "forty", "one"]);
    assert_eq!(lines(&c.ok(&["list", "plain", "--prefix", "f"])), ["five", "forty"]);
    assert_eq!(lines(&c.ok(&["list", "plain", "--delimiter", "/"])), ["dir/", "five", "forty", "one"]);
    assert_eq!(lines(&c.ok(&["list", "plain", "--prefix", "dir/", "--delimiter", "/"])), ["dir/a", "dir/b"]);
    assert_eq!(lines(&c.ok(&["list"])), ["plain", "slo", "slo_segments"]);

    // Stat: the container's counts are exact at once; the account's follow
    // through the container updater.
    let plain = c.stat(&["plain"]);
    assert_eq!(num(&plain, "Objects"), 5, "{plain:?}");
    assert_eq!(num(&plain, "Bytes"), (1 + 5 * MIB + 40 * MIB + 2) as u64, "{plain:?}");
    let segs = c.stat(&["slo_segments"]);
    assert_eq!((num(&segs, "Objects"), num(&segs, "Bytes")), (5, 40 * MIB as u64));
    let manifest = num(&c.stat(&["slo"]), "Bytes");
    let want = (5 + 5 + 1, (1 + 5 * MIB + 40 * MIB + 2 + 40 * MIB) as u64 + manifest);
    wait_until("the account's statistics to follow the containers", Duration::from_secs(30), || {
        let a = c.stat(&[]);
        num(&a, "Containers") == 3 && (num(&a, "Objects"), num(&a, "Bytes")) == want
    });
    let obj = c.stat(&["plain", "five"]);
    assert_eq!(num(&obj, "Content Length"), 5 * MIB as u64);
    assert_eq!(obj["ETag"], md5_hex(&files[1].1));

    // Metadata with post -m, read back.
    c.ok(&["post", "plain", "one", "-m", "Color:blue"]);
    assert_eq!(c.stat(&["plain", "one"]).get("Meta Color").map(String::as_str), Some("blue"));
    c.ok(&["post", "plain", "-m", "Owner:ops"]);
    assert_eq!(c.stat(&["plain"]).get("Meta Owner").map(String::as_str), Some("ops"));

    // Server-side copy.
    c.ok(&["copy", "plain", "five", "-d", "/copies/five"]);
    assert_eq!(md5_hex(&c.download("copies", "five")), md5_hex(&files[1].1));

    // An expiring object disappears.
    c.ok(&["upload", "plain", "one", "--object-name", "brief", "-H", "X-Delete-After:2"]);
    assert!(c.swift(&["stat", "plain", "brief"]).status.success());
    wait_until("the expiring object to go", Duration::from_secs(20), || {
        !c.swift(&["stat", "plain", "brief"]).status.success()
    });
    assert!(!c.swift(&["download", "plain", "brief", "-o", "-"]).status.success());
    // Swift's object expirer finds it in the `.expiring_objects` queue (the
    // object service queued it; the container updater told the queue's
    // account through the ring) and removes its listing entry.
    assert!(lines(&c.ok(&["list", "plain"])).contains(&"brief"), "listed until the expirer runs");
    wait_until("the expirer to remove the listing entry", Duration::from_secs(60), || {
        c.expirer_pass();
        !lines(&c.ok(&["list", "plain"])).contains(&"brief")
    });

    // Deletes: objects, then whole containers (the SLO with its segments).
    c.ok(&["delete", "plain", "one", "dir/a"]);
    assert_eq!(lines(&c.ok(&["list", "plain", "--prefix", "dir/"])), ["dir/b"]);
    c.ok(&["delete", "slo"]);
    c.ok(&["delete", "copies"]);
    wait_until("deleted containers to leave the account", Duration::from_secs(30), || {
        lines(&c.ok(&["list"])) == ["plain", "slo_segments"] || lines(&c.ok(&["list"])) == ["plain"]
    });
    assert!(!c.swift(&["stat", "slo", "big/forty"]).status.success());

    // An async pending left by Swift's own object server names no container
    // replicas: the object updater finds them in the container ring.
    c.ok(&["post", "pend"]);
    let pending = c.node_root(1).join("d1/async_pending/abc/0123456789abcdef0123456789abcabc-1795000000.00000");
    std::fs::create_dir_all(pending.parent().expect("dir")).expect("async dir");
    let py = util::swift_python();
    let status = Command::new(&py)
        .arg("-c")
        .arg(
            "import pickle, sys; open(sys.argv[1], 'wb').write(pickle.dumps({'op': 'PUT', 'account': 'AUTH_test', \
             'container': 'pend', 'obj': 'from-swift', 'headers': {'X-Timestamp': '1795000000.00000', 'X-Size': '7', \
             'X-Content-Type': 'text/plain', 'X-Etag': 'd41d8cd98f00b204e9800998ecf8427e', \
             'X-Backend-Storage-Policy-Index': '0'}}, protocol=2))",
        )
        .arg(&pending)
        .status()
        .expect("write async pending");
    assert!(status.success());
    wait_until("the object updater to deliver Swift's async pending", Duration::from_secs(30), || !pending.exists());
    assert_eq!(lines(&c.ok(&["list", "pend"])), ["from-swift"]);
}

/// A PUT to node `addr`'s device `dev` that sends its head and then no body,
/// holding a pool thread (or a queue place) of that device until dropped.
fn hold_device(addr: SocketAddr, dev: &str, name: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "PUT /{dev}/0/AUTH_hold/c/{name} HTTP/1.1\r\nHost: x\r\nX-Timestamp: 1700000000.00000\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\nsome"
    )
    .expect("send");
    s
}

#[test]
fn three_node_cluster_keeps_serving_with_a_node_down_and_a_node_shedding() {
    // Node 1's device takes one request at a time with one waiting, so it
    // can be made to shed.
    let mut c = Cluster::start(3, |i, t| {
        if i == 1 {
            t.replace(
                "[processors.object]\nthreads_per_device = 4\nqueue_per_device = 64",
                "[processors.object]\nthreads_per_device = 1\nqueue_per_device = 1",
            )
        } else {
            t
        }
    });
    for i in 0..6 {
        c.write_file(&format!("f{i}"), &data(4096 + i, 10 + i as u64));
    }
    c.ok(&["upload", "box", "f0", "f1"]);

    // Node 2 dies: writes, reads and listings still succeed on the others.
    c.kill_node(2);
    c.ok(&["upload", "box", "f2", "f3"]);
    for i in 0..4 {
        assert_eq!(md5_hex(&c.download("box", &format!("f{i}"))), md5_hex(&data(4096 + i, 10 + i as u64)));
    }
    // A listing is served; the rows of writes made while a container
    // replica's object-server partner was down reach that replica only by
    // replication (as in Swift), so it may lack some of them.
    assert_listing(&c, &["f0", "f1"], &["f2", "f3"]);
    assert!(num(&c.stat(&["box"]), "Objects") >= 2);

    // Back: it serves again and takes its replica of new writes.
    c.restart_node(2);
    // Each file has its own size: which replicas node 2 holds. (Node 1's
    // and 3's object replicators may bring f2 and f3 back meanwhile.)
    let holds = |i: u64| {
        util::files_under(&c.node_root(2).join("d2/objects"))
            .iter()
            .filter(|p| p.extension().is_some_and(|x| x == "data"))
            .any(|p| std::fs::metadata(p).is_ok_and(|m| m.len() == 4096 + i))
    };
    assert!(holds(0) && holds(1), "node 2 holds the replicas written before it died");
    assert!(!holds(4));
    c.ok(&["upload", "box", "f4"]);
    assert!(holds(4), "node 2 took its replica of a new write");
    assert_eq!(get(c.node_addr(2, "CONTAINER"), "/d2/0/x/y").status, 404, "node 2 answers");

    // Node 1's device is busy (one PUT running, one queued): it answers 503
    // at once, and the proxy completes reads and writes on the others.
    let node1 = c.node_addr(1, "OBJECT");
    let _running = hold_device(node1, "d1", "a");
    std::thread::sleep(Duration::from_millis(200));
    let _queued = hold_device(node1, "d1", "b");
    wait_until("node 1 to shed", Duration::from_secs(10), || get(node1, "/d1/0/AUTH_x/c/o").status == 503);
    let shed_before = c.metric(1, "aerie_queue_shed_total");
    c.ok(&["upload", "box", "f5"]);
    for _ in 0..30 {
        assert_eq!(md5_hex(&c.download("box", "f5")), md5_hex(&data(4101, 15)));
    }
    assert!(c.metric(1, "aerie_queue_shed_total") > shed_before, "the proxy met node 1's 503s and went elsewhere");
    assert_listing(&c, &["f0", "f1", "f4"], &["f2", "f3", "f5"]);
}

/// The container `box` lists every name in `must`, and otherwise only
/// names in `may`.
fn assert_listing(c: &Cluster, must: &[&str], may: &[&str]) {
    let out = c.ok(&["list", "box"]);
    let listed = lines(&out);
    for m in must {
        assert!(listed.contains(m), "{m} missing from {listed:?}");
    }
    for l in &listed {
        assert!(must.contains(l) || may.contains(l), "unexpected {l} in {listed:?}");
    }
}

#[test]
fn an_unmounted_device_answers_507_and_the_proxy_stops_using_it() {
    // Node 3 checks mounts; its device is a plain directory, not a mount.
    let c = Cluster::start(3, |i, t| if i == 3 { t.replace("mount_check = false", "mount_check = true") } else { t });
    let node3 = c.node_addr(3, "OBJECT");
    assert_eq!(get(node3, "/d3/0/AUTH_test/box/f").status, 507);
    c.write_file("f", b"hello");
    c.ok(&["upload", "box", "f"]);
    // Reads answered 507 by node 3 (its updaters' own retries are PUTs).
    let reads_507 = |c: &Cluster| -> Vec<String> {
        let log = c.nodes[2].as_ref().map(|s| s.log()).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains(" status=507 ") && (l.contains(" method=GET ") || l.contains(" method=HEAD ")))
            .map(str::to_string)
            .collect()
    };
    let after_upload = reads_507(&c).len();
    for _ in 0..20 {
        assert_eq!(c.download("box", "f"), b"hello");
        // Served by a replica that is up (the one whose object-server
        // partner was node 3 has no row until replication, as in Swift).
        assert_listing(&c, &[], &["f"]);
    }
    // Swift error-limits a node after a 507 right away: the 40 reads do
    // not go to it (one more per service at most, for a request already
    // on its way).
    let after_reads = reads_507(&c);
    assert!(
        after_reads.len() <= after_upload + 2,
        "the proxy kept trying the unmounted device ({after_upload} → {}):\n{}",
        after_reads.len(),
        after_reads.join("\n")
    );
}

/// The primary devices (node numbers, from 1) of an account in the
/// cluster's account ring, in replica order.
fn account_primaries(c: &Cluster, account: &str) -> (u32, Vec<usize>) {
    c.primaries("account", account, None)
}

/// Node `i` without its account listener (its account server is down;
/// its object and container servers serve on).
fn without_account_listener(config: &str) -> String {
    let mut out = String::new();
    for section in config.split("\n[[listen]]") {
        if section.contains("\"account\"]") {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\n[[listen]]");
        }
        out.push_str(section);
    }
    out
}

/// Issue #20: with two of four account servers down, a container DELETE
/// through the proxy must reach every account replica still up — the
/// container servers tell the account host the proxy named for each, and
/// the container updater tells every replica of the ring — before any
/// replication runs.
#[test]
fn a_container_delete_reaches_every_account_replica_still_up() {
    let mut c = Cluster::start(4, |_, t| t);
    c.ok(&["post", "gone"]);
    c.ok(&["post", "kept"]);
    let (part, primaries) = account_primaries(&c, "AUTH_test");
    assert_eq!(primaries.len(), 3);
    let other = (1..=4).find(|n| !primaries.contains(n)).expect("a node that is no account primary");
    let listing = |c: &Cluster, node: usize| -> Vec<String> {
        let r = get(c.node_addr(node, "ACCOUNT"), &format!("/d{node}/{part}/AUTH_test?format=json"));
        assert_eq!(r.status, 200, "account listing on node {node}: {}", r.text());
        r.json().as_array().expect("listing").iter().map(|e| e["name"].as_str().unwrap_or("").to_string()).collect()
    };
    for &n in &primaries {
        wait_until("every account replica to list both containers", Duration::from_secs(30), || {
            listing(&c, n) == ["gone", "kept"]
        });
    }
    // The account servers of the first primary and of the other node go
    // down; every container server stays up.
    for n in [primaries[0], other] {
        let cfg = without_account_listener(&c.configs[n - 1]);
        c.nodes[n - 1] = None;
        c.nodes[n - 1] = Some(Server::start(&cfg));
        assert!(TcpStream::connect(c.node_addr(n, "ACCOUNT")).is_err(), "node {n}'s account server is down");
    }
    c.ok(&["delete", "gone"]);
    c.write_file("o", b"12345");
    c.ok(&["upload", "kept", "o"]);
    for &n in &primaries[1..] {
        wait_until(
            &format!("node {n}'s account replica to drop the deleted container"),
            Duration::from_secs(30),
            || listing(&c, n) == ["kept"],
        );
        let r =
            crate::util::try_request(c.node_addr(n, "ACCOUNT"), "HEAD", &format!("/d{n}/{part}/AUTH_test"), &[], b"")
                .expect("HEAD the account replica");
        assert_eq!(r.header("x-account-container-count"), Some("1"), "node {n}");
        wait_until(&format!("node {n}'s account replica to count the new object"), Duration::from_secs(30), || {
            crate::util::try_request(c.node_addr(n, "ACCOUNT"), "HEAD", &format!("/d{n}/{part}/AUTH_test"), &[], b"")
                .is_some_and(|r| r.header("x-account-object-count") == Some("1"))
        });
    }
    let stat = c.stat(&[]);
    assert_eq!((num(&stat, "Containers"), num(&stat, "Objects")), (1, 1), "{stat:?}");
}
