//! The integration-test harness: start the real `aerie` binary on ephemeral
//! ports, learn its addresses from its systemd readiness message, talk HTTP
//! to it, and kill its whole process group when the test ends (pass or
//! fail).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub mod slowfs;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("aerie-test-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Raise the open-file limit of the test process (inherited by servers).
pub fn raise_nofile() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard.min(65536), hard);
    }
}

/// A running server.
pub struct Server {
    child: Option<Child>,
    pub dir: TempDir,
    pub addrs: Vec<SocketAddr>,
    pub admin: Option<SocketAddr>,
    pub config: PathBuf,
    notify: UnixDatagram,
}

impl Server {
    /// Start with this config text (its listeners should bind port 0).
    pub fn start(config: &str) -> Server {
        Server::start_with(config, &[])
    }

    pub fn start_with(config: &str, args: &[&str]) -> Server {
        Server::spawn(Some(config), args)
    }

    /// Start on the embedded default configuration (no `-c`).
    pub fn start_embedded(args: &[&str]) -> Server {
        Server::spawn(None, args)
    }

    /// Start a copy of the binary at `bin` (for upgrade tests).
    pub fn start_binary(bin: &Path, config: &str) -> Server {
        Server::spawn_with(bin, Some(config), &[], &[])
    }

    /// Start with extra environment variables.
    pub fn start_env(config: &str, env: &[(&str, &str)]) -> Server {
        Server::spawn_with(Path::new(env!("CARGO_BIN_EXE_aerie")), Some(config), &[], env)
    }

    fn spawn(config: Option<&str>, args: &[&str]) -> Server {
        Server::spawn_with(Path::new(env!("CARGO_BIN_EXE_aerie")), config, args, &[])
    }

    fn spawn_with(bin: &Path, config: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = TempDir::new("srv");
        let cfg = dir.path().join("aerie.toml");
        if let Some(text) = config {
            std::fs::write(&cfg, text).expect("write config");
        }
        let sock_path = dir.path().join("notify.sock");
        let notify = UnixDatagram::bind(&sock_path).expect("bind notify socket");
        notify.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        let log = std::fs::File::create(dir.path().join("aerie.log")).expect("log file");
        let mut cmd = Command::new(bin);
        if config.is_some() {
            cmd.arg("-c").arg(&cfg);
        }
        cmd.envs(env.iter().copied())
            .args(args)
            .env("NOTIFY_SOCKET", &sock_path)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .process_group(0);
        let child = cmd.spawn().expect("spawn aerie");
        let mut s = Server { child: Some(child), dir, addrs: Vec::new(), admin: None, config: cfg, notify };
        let (addrs, admin) = s.wait_ready();
        s.addrs = addrs;
        s.admin = admin;
        s
    }

    fn wait_ready(&mut self) -> (Vec<SocketAddr>, Option<SocketAddr>) {
        let mut buf = [0u8; 4096];
        loop {
            let n = match self.notify.recv(&mut buf) {
                Ok(n) => n,
                Err(e) => panic!("no readiness from aerie ({e}); log:\n{}", self.log()),
            };
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.lines().any(|l| l == "READY=1") {
                if let Some(status) = msg.lines().find_map(|l| l.strip_prefix("STATUS=listening on ")) {
                    return parse_status(status);
                }
            }
        }
    }

    /// Wait for a notification containing `needle` (e.g. "READY=1").
    pub fn wait_notification(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(m) = self.next_notification(deadline.saturating_duration_since(Instant::now())) {
                if m.contains(needle) {
                    return Some(m);
                }
            }
        }
        None
    }

    /// GET a path on the admin listener.
    pub fn admin_get(&self, path: &str) -> Response {
        get(self.admin.expect("admin listener"), path)
    }

    /// The status document.
    pub fn status(&self) -> serde_json::Value {
        self.admin_get("/status").json()
    }

    /// Wait until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The next notification message (e.g. STOPPING=1), if any arrives in time.
    pub fn next_notification(&self, timeout: Duration) -> Option<String> {
        self.notify.set_read_timeout(Some(timeout)).ok()?;
        let mut buf = [0u8; 4096];
        let n = self.notify.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).expect("running")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("aerie.log")).unwrap_or_default()
    }

    /// The master's live children.
    pub fn workers(&self) -> Vec<u32> {
        children(self.pid())
    }

    /// Wait until the master has `n` children.
    pub fn wait_workers(&self, n: usize) -> Vec<u32> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let w = self.workers();
            if w.len() == n {
                return w;
            }
            assert!(Instant::now() < deadline, "expected {n} workers, have {w:?}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), sig);
    }

    /// Wait for the master to exit; its exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            // The workers die a moment after the master and hold the
            // listening sockets until then: wait for the whole group, so a
            // server started next on the same ports can bind them.
            // (Zombies hold nothing, and nobody may reap them soon.)
            let deadline = Instant::now() + Duration::from_secs(5);
            while group_running(pgid.as_raw()) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

fn parse_status(status: &str) -> (Vec<SocketAddr>, Option<SocketAddr>) {
    let (data, admin) = match status.split_once("; admin ") {
        Some((d, a)) => (d, Some(a.trim().parse().expect("admin address"))),
        None => (status, None),
    };
    (data.split(' ').filter(|a| !a.is_empty()).map(|a| a.parse().expect("address")).collect(), admin)
}

/// Whether any process of process group `pgid` is still running (not a
/// zombie).
fn group_running(pgid: i32) -> bool {
    std::fs::read_dir("/proc").into_iter().flatten().flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { return false };
        // After the ")" closing the command name: state, ppid, pgrp.
        let mut f = stat.rsplit(')').next().unwrap_or("").split_whitespace();
        let state = f.next();
        let pgrp = f.nth(1).and_then(|v| v.parse::<i32>().ok());
        pgrp == Some(pgid) && state != Some("Z")
    })
}

/// Live children of a process.
pub fn children(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .filter(|p| is_alive(*p))
        .collect()
}

/// Whether a pid exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

/// Resident set size of a process in bytes.
pub fn rss(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
    s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * 4096
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// A client connection with its own read buffer.
pub struct Client {
    pub reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        s.set_nodelay(true).expect("nodelay");
        Client { reader: BufReader::new(s) }
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        self.reader.get_mut()
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream().write_all(bytes).expect("send");
    }

    pub fn set_timeout(&mut self, d: Duration) {
        self.stream().set_read_timeout(Some(d)).expect("timeout");
    }

    /// Read one response (not for HEAD requests: use `read_head_response`).
    pub fn read_response(&mut self) -> Response {
        self.try_read_response(false).expect("a response")
    }

    pub fn read_head_response(&mut self) -> Response {
        self.try_read_response(true).expect("a response")
    }

    /// Read a response; `None` if the connection closed first.
    pub fn try_read_response(&mut self, head: bool) -> Option<Response> {
        loop {
            let (status, headers) = self.read_head()?;
            if status == 100 {
                continue;
            }
            let body = if head || status == 204 || status == 304 { Vec::new() } else { self.read_body(&headers) };
            return Some(Response { status, headers, body });
        }
    }

    /// Read a status line and headers (also interim ones).
    pub fn read_head(&mut self) -> Option<(u16, Vec<(String, String)>)> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let status: u16 = line.split(' ').nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let mut l = String::new();
            self.reader.read_line(&mut l).ok()?;
            let l = l.trim_end_matches(['\r', '\n']);
            if l.is_empty() {
                break;
            }
            let (n, v) = l.split_once(':')?;
            headers.push((n.to_string(), v.trim().to_string()));
        }
        Some((status, headers))
    }

    fn read_body(&mut self, headers: &[(String, String)]) -> Vec<u8> {
        let get = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
        if let Some(len) = get("content-length") {
            let mut body = vec![0u8; len.parse().expect("length")];
            self.reader.read_exact(&mut body).expect("body");
            body
        } else if get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
            let mut body = Vec::new();
            loop {
                let mut l = String::new();
                self.reader.read_line(&mut l).expect("chunk size");
                let n = usize::from_str_radix(l.trim(), 16).expect("hex size");
                if n == 0 {
                    let mut end = String::new();
                    self.reader.read_line(&mut end).expect("final CRLF");
                    return body;
                }
                let mut chunk = vec![0u8; n + 2];
                self.reader.read_exact(&mut chunk).expect("chunk");
                body.extend_from_slice(&chunk[..n]);
            }
        } else {
            let mut body = Vec::new();
            let _ = self.reader.read_to_end(&mut body);
            body
        }
    }

    /// Whether the server has closed the connection (reads EOF or reset).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0) | Err(_))
    }
}

/// One request on a fresh connection.
pub fn request(addr: SocketAddr, raw: &str) -> Response {
    let mut c = Client::connect(addr);
    c.send(raw.as_bytes());
    c.read_response()
}

/// GET a path on a fresh connection.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"))
}

/// A config with one listener on port 0 (hello at /, echo under /echo),
/// with extra `[server]` keys, extra `[[listen]]` keys and extra sections.
pub fn config(server: &str, listen: &str, extra: &str) -> String {
    format!(
        "[server]\n{server}\n\n[admin]\naddress = \"127.0.0.1:0\"\n\n[[listen]]\naddress = \"127.0.0.1:0\"\npipeline = [\"healthcheck\", \"hello\"]\n{listen}\n\n[[listen.route]]\nprefix = \"/echo\"\npipeline = [\"echo\"]\n\n{extra}\n"
    )
}

/// MD5 of bytes, hex.
pub fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// What a load thread saw.
#[derive(Debug, Default, Clone)]
pub struct LoadStats {
    pub ok: u64,
    pub failed: u64,
    /// Keep-alive connections the server closed between requests.
    pub clean_closes: u64,
    /// Connections that broke after part of a response had arrived.
    pub mid_response: u64,
    pub errors: Vec<String>,
}

impl LoadStats {
    fn add(&mut self, o: &LoadStats) {
        self.ok += o.ok;
        self.failed += o.failed;
        self.clean_closes += o.clean_closes;
        self.mid_response += o.mid_response;
        self.errors.extend(o.errors.iter().take(5).cloned());
    }
}

/// A background load: fresh-connection clients and keep-alive clients.
pub struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    fresh: Vec<std::thread::JoinHandle<LoadStats>>,
    keepalive: Vec<std::thread::JoinHandle<LoadStats>>,
}

/// Outcome of reading one response on a keep-alive connection.
enum ReadOutcome {
    Done(u16),
    /// EOF before any byte of a response.
    Closed,
    /// Broke after part of a response.
    Broken(String),
}

fn read_one(c: &mut Client) -> ReadOutcome {
    let mut line = String::new();
    match c.reader.read_line(&mut line) {
        Ok(0) => return ReadOutcome::Closed,
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && line.is_empty() => return ReadOutcome::Closed,
        Err(e) => return ReadOutcome::Broken(format!("reading the status line: {e}")),
    }
    let Some(status) = line.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()) else {
        return ReadOutcome::Broken(format!("bad status line {line:?}"));
    };
    let mut len = 0usize;
    loop {
        let mut l = String::new();
        match c.reader.read_line(&mut l) {
            Ok(0) => return ReadOutcome::Broken("EOF in the response head".into()),
            Ok(_) => {}
            Err(e) => return ReadOutcome::Broken(format!("reading headers: {e}")),
        }
        let t = l.trim_end();
        if t.is_empty() {
            break;
        }
        if let Some((n, v)) = t.split_once(':') {
            if n.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; len];
    if let Err(e) = c.reader.read_exact(&mut body) {
        return ReadOutcome::Broken(format!("reading the body: {e}"));
    }
    ReadOutcome::Done(status)
}

impl Load {
    pub fn start(addr: SocketAddr, fresh: usize, keepalive: usize) -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let fresh = (0..fresh)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut st = LoadStats::default();
                    while !stop.load(Ordering::Relaxed) {
                        let r = (|| -> Result<u16, String> {
                            let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
                            s.set_read_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
                            s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                                .map_err(|e| format!("send: {e}"))?;
                            let mut c = Client { reader: BufReader::new(s) };
                            match read_one(&mut c) {
                                ReadOutcome::Done(s) => Ok(s),
                                ReadOutcome::Closed => Err("closed without a response".into()),
                                ReadOutcome::Broken(e) => Err(e),
                            }
                        })();
                        match r {
                            Ok(200) => st.ok += 1,
                            Ok(s) => {
                                st.failed += 1;
                                st.errors.push(format!("status {s}"));
                            }
                            Err(e) => {
                                st.failed += 1;
                                st.errors.push(e);
                            }
                        }
                    }
                    st
                })
            })
            .collect();
        let keepalive = (0..keepalive)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut st = LoadStats::default();
                    let mut conn: Option<Client> = None;
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let c = match conn.as_mut() {
                            Some(c) => c,
                            None => match TcpStream::connect(addr) {
                                Ok(s) => {
                                    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
                                    conn.insert(Client { reader: BufReader::new(s) })
                                }
                                Err(e) => {
                                    st.failed += 1;
                                    st.errors.push(format!("connect: {e}"));
                                    continue;
                                }
                            },
                        };
                        n += 1;
                        let req: &[u8] = if n % 2 == 0 {
                            b"POST /echo/ka HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                        } else {
                            b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
                        };
                        if c.stream().write_all(req).is_err() {
                            // The server closed the connection between requests.
                            st.clean_closes += 1;
                            conn = None;
                            continue;
                        }
                        match read_one(c) {
                            ReadOutcome::Done(200) => st.ok += 1,
                            ReadOutcome::Done(s) => {
                                st.failed += 1;
                                st.errors.push(format!("status {s}"));
                            }
                            ReadOutcome::Closed => {
                                st.clean_closes += 1;
                                conn = None;
                            }
                            ReadOutcome::Broken(e) => {
                                st.mid_response += 1;
                                st.errors.push(e);
                                conn = None;
                            }
                        }
                    }
                    st
                })
            })
            .collect();
        Load { stop, fresh, keepalive }
    }

    /// Stop and collect (fresh, keep-alive).
    pub fn finish(self) -> (LoadStats, LoadStats) {
        self.stop.store(true, Ordering::Relaxed);
        let mut f = LoadStats::default();
        let mut k = LoadStats::default();
        for h in self.fresh {
            f.add(&h.join().expect("load thread"));
        }
        for h in self.keepalive {
            k.add(&h.join().expect("load thread"));
        }
        (f, k)
    }
}

/// A request on a fresh connection whose answer may never come (the
/// connection closed or timed out, e.g. on a killed worker or a slow
/// disk): None then.
pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<Response> {
    let mut c = Client::connect(addr);
    c.set_timeout(Duration::from_secs(120));
    let mut raw =
        format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body);
    c.stream().write_all(&bytes).ok()?;
    c.try_read_response(method == "HEAD")
}

/// Every file below `dir` (not following symlinked directories), sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Wait until `cond` holds (polling), or panic with `what`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

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
    let python = swift_python();
    let bin = python.parent().expect("venv bin").join(format!("swift-{kind}-server"));
    let dir = TempDir::new("swiftsrv");
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let conf = dir.path().join(format!("{kind}-server.conf"));
    std::fs::write(
        &conf,
        format!("[DEFAULT]\ndevices = {}\nmount_check = false\nbind_ip = 127.0.0.1\nbind_port = {port}\nworkers = 0\nlog_address = /dev/null\n\n[pipeline:main]\npipeline = {kind}-server\n\n[app:{kind}-server]\nuse = egg:swift#{kind}\n", devices.display()),
    )
    .expect("conf");
    let child = Command::new(&bin)
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

/// A bodiless 201 answer for [`stub_server`].
pub const CREATED: &[u8] = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
/// A bodiless 404 answer for [`stub_server`].
pub const NOT_FOUND: &[u8] = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";

/// A stand-in for another storage server (a container or account replica):
/// answers each connection's request with `answer(head lines)` and sends
/// the head lines (trimmed, request line first) to the receiver.
pub fn stub_server(
    answer: impl Fn(&[String]) -> &'static [u8] + Send + 'static,
) -> (SocketAddr, std::sync::mpsc::Receiver<Vec<String>>) {
    let stub = std::net::TcpListener::bind("127.0.0.1:0").expect("stub");
    let addr = stub.local_addr().expect("addr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in stub.incoming().flatten() {
            let Ok(read) = conn.try_clone() else { continue };
            let mut r = BufReader::new(read);
            let mut lines = Vec::new();
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
                    break;
                }
                lines.push(l.trim_end().to_string());
            }
            let _ = (&conn).write_all(answer(&lines));
            if tx.send(lines).is_err() {
                return;
            }
        }
    });
    (addr, rx)
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
