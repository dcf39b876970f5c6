//! The real `aerie` binary under test: started on ephemeral ports, its
//! addresses learnt from its systemd readiness message, its whole process
//! group killed when the test ends (pass or fail).

use super::{get, Response, TempDir};
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// A config with one listener on port 0 (hello at /, echo under /echo),
/// with extra `[server]` keys, extra `[[listen]]` keys and extra sections.
pub fn config(server: &str, listen: &str, extra: &str) -> String {
    format!(
        "[server]\n{server}\n\n[admin]\naddress = \"127.0.0.1:0\"\n\n[[listen]]\naddress = \"127.0.0.1:0\"\npipeline = [\"healthcheck\", \"hello\"]\n{listen}\n\n[[listen.route]]\nprefix = \"/echo\"\npipeline = [\"echo\"]\n\n{extra}\n"
    )
}
