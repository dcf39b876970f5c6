//! Swift from the project's venv: its Python, its servers on our devices,
//! its tools on our files, its ring builder.

use super::{wait_until, TempDir};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The project's test venv's python, with these packages installed
/// (created on first use by `scripts/python-venv.sh`).
pub fn python_with(packages: &[&str]) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/python-venv.sh");
    let out = Command::new(script).args(packages).output().expect("run scripts/python-venv.sh");
    assert!(out.status.success(), "could not prepare the Python venv: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The venv python with Swift 2.38.3 installed (`scripts/swift-venv.sh`).
pub fn swift_python() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/swift-venv.sh");
    let out = Command::new(script).output().expect("run scripts/swift-venv.sh");
    assert!(out.status.success(), "could not install Swift into the venv: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The test cluster's swift.conf: two policies, `gold` (default) and `silver`.
pub const SWIFT_CONF: &str = "[swift-hash]\nswift_hash_path_prefix = changeme\nswift_hash_path_suffix = changeme\n\n[storage-policy:0]\nname = gold\ndefault = yes\n\n[storage-policy:1]\nname = silver\n";

/// Swift's servers read /etc/swift/swift.conf and nothing else; write the
/// test cluster's one if the machine has none (CI machines do not).
pub fn system_swift_conf() -> PathBuf {
    let p = PathBuf::from("/etc/swift/swift.conf");
    if !p.exists() {
        std::fs::create_dir_all("/etc/swift").expect("create /etc/swift (tests run as root)");
        std::fs::write(&p, format!("# written by aerie's tests\n{SWIFT_CONF}")).expect("write swift.conf");
    }
    p
}

/// One of Swift's own servers from PyPI (`object`, `container` or
/// `account`) on the given devices, killed when dropped.
pub struct SwiftServer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    _dir: TempDir,
}

impl Drop for SwiftServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start Swift's `kind` server on `devices`, in the foreground (workers = 0).
pub fn start_swift_server(kind: &str, devices: &Path) -> SwiftServer {
    let port = super::free_port();
    start_swift_server_at(kind, devices, port)
}

/// Start Swift's `kind` server on `devices` and a given port (a ring's).
pub fn start_swift_server_at(kind: &str, devices: &Path, port: u16) -> SwiftServer {
    start_swift_server_via(kind, devices, port, None)
}

/// The same, run through a cluster's `swift-run` (which gives Swift the
/// cluster's swift.conf).
pub fn start_swift_server_via(kind: &str, devices: &Path, port: u16, run: Option<&Path>) -> SwiftServer {
    let python = swift_python();
    let bin = python.parent().expect("venv bin").join(format!("swift-{kind}-server"));
    let dir = TempDir::new("swiftsrv");
    let conf = dir.path().join(format!("{kind}-server.conf"));
    std::fs::write(
        &conf,
        format!("[DEFAULT]\ndevices = {}\nmount_check = false\nbind_ip = 127.0.0.1\nbind_port = {port}\nworkers = 0\nlog_address = /dev/null\n\n[pipeline:main]\npipeline = {kind}-server\n\n[app:{kind}-server]\nuse = egg:swift#{kind}\n", devices.display()),
    )
    .expect("conf");
    let mut cmd = match run {
        Some(run) => {
            let mut c = Command::new(run);
            c.arg(&bin);
            c
        }
        None => Command::new(&bin),
    };
    let child = cmd
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("log")).expect("log"))
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    wait_until(&format!("Swift's {kind} server"), Duration::from_secs(30), || TcpStream::connect(addr).is_ok());
    SwiftServer { child, addr, _dir: dir }
}

/// The output of Swift's `swift-<kind>-info` on a database file, asserting
/// it succeeded.
pub fn swift_db_info(kind: &str, db: &Path) -> String {
    let bin = swift_python().parent().expect("venv bin").join(format!("swift-{kind}-info"));
    let out = Command::new(&bin).arg(db).output().unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "swift-{kind}-info failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

/// The one database file of `kind` (`containers`, `accounts`) whose path
/// contains `hash`, under a devices root.
pub fn find_db(root: &Path, kind: &str, hash: &str) -> PathBuf {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut all = Vec::new();
    walk(root, &mut all);
    all.into_iter()
        .find(|p| {
            let s = p.to_string_lossy();
            s.contains(&format!("/{kind}/")) && s.ends_with(&format!("{hash}.db"))
        })
        .unwrap_or_else(|| panic!("no {kind} database {hash} under {}", root.display()))
}

/// Write `<dir>/<kind>.ring.gz` with Swift's own `swift-ring-builder`
/// (format 1): one replica per device, 2^2 partitions, every device
/// `(ip:port, device)` in its own zone.
pub fn write_ring(dir: &Path, kind: &str, devices: &[(SocketAddr, &str)]) -> PathBuf {
    let bin = swift_python().parent().expect("venv bin").join("swift-ring-builder");
    let builder = dir.join(format!("{kind}.builder"));
    let _ = std::fs::remove_file(&builder);
    let run = |args: &[&str]| {
        let out = Command::new(&bin).arg(&builder).args(args).output().expect("run swift-ring-builder");
        // Exit status 1 is a warning (e.g. balance with few devices).
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "swift-ring-builder {args:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    };
    run(&["create", "2", &devices.len().to_string(), "0"]);
    for (i, (addr, dev)) in devices.iter().enumerate() {
        let zone = (i + 1).to_string();
        let (ip, port) = (addr.ip().to_string(), addr.port().to_string());
        run(&[
            "add", "--region", "1", "--zone", &zone, "--ip", &ip, "--port", &port, "--device", dev, "--weight", "100",
        ]);
    }
    run(&["rebalance"]);
    dir.join(format!("{kind}.ring.gz"))
}
