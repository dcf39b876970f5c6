//! `aerie status|reload|stop`: talk to a running server so operators and a
//! systemd `ExecReload=` need no `kill`.
//!
//! The server is found through the configuration: the master's pid from
//! `server.pid_file`, or from the admin listener's `/status`. `reload` and
//! `stop` wait for the outcome and say it; `reload` exits 1 when the server
//! refused the new configuration.

use crate::config::{Config, ConfigError, Overrides, Source};
use crate::exit::ExitCode;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Why a control command failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The configuration that says where the server is could not be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The server could not be found, reached, or did not do what was asked.
    #[error("{0}")]
    Failed(String),
}

impl ControlError {
    /// A bad configuration is exit 2; anything else 1.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            ControlError::Config(e) => e.exit_code(),
            ControlError::Failed(_) => ExitCode::Failure,
        }
    }
}

type Error = ControlError;

fn fail(msg: impl Into<String>) -> Error {
    ControlError::Failed(msg.into())
}

fn load(source: &Source, overrides: &Overrides) -> Result<Config, Error> {
    Ok(Config::load(source, overrides, &crate::catalog::CATALOG)?)
}

/// GET a path from the admin listener; the body.
fn admin_get(addr: SocketAddr, path: &str) -> Result<String, Error> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| fail(format!("cannot reach the admin listener at {addr}: {e}")))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: aerie\r\n\r\n").as_bytes())
        .map_err(|e| fail(format!("admin request failed: {e}")))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| fail(format!("admin request failed: {e}")))?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| fail("malformed admin response"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(fail(format!("admin listener answered: {}", head.lines().next().unwrap_or(""))));
    }
    Ok(body.to_string())
}

fn admin_addr(config: &Config) -> Option<SocketAddr> {
    config.admin.filter(|a| a.port() != 0)
}

fn status_json(config: &Config) -> Option<serde_json::Value> {
    let body = admin_get(admin_addr(config)?, "/status").ok()?;
    serde_json::from_str(&body).ok()
}

fn master_pid(config: &Config) -> Result<Pid, Error> {
    if let Some(path) = &config.server.pid_file {
        let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
        let pid: i32 = text.trim().parse().map_err(|_| fail(format!("{} does not hold a pid", path.display())))?;
        return Ok(Pid::from_raw(pid));
    }
    let v = status_json(config)
        .ok_or_else(|| fail("cannot find the server: set server.pid_file, or an admin.address with a fixed port"))?;
    v["master"]["pid"].as_i64().map(|p| Pid::from_raw(p as i32)).ok_or_else(|| fail("status has no master pid"))
}

/// `aerie status`
pub fn status(source: &Source, overrides: &Overrides) -> Result<(), Error> {
    let config = load(source, overrides)?;
    let addr = admin_addr(&config).ok_or_else(|| fail("admin.address is off or has port 0: no status to ask"))?;
    print!("{}", admin_get(addr, "/status")?);
    Ok(())
}

/// `aerie reload`
pub fn reload(source: &Source, overrides: &Overrides) -> Result<(), Error> {
    let config = load(source, overrides)?;
    let pid = master_pid(&config)?;
    let before = status_json(&config);
    kill(pid, Signal::SIGHUP).map_err(|e| fail(format!("cannot signal the master (pid {pid}): {e}")))?;
    let Some(before) = before else {
        println!("sent SIGHUP to {pid}");
        return Ok(());
    };
    let count = |v: &serde_json::Value, k: &str| v["master"][k].as_u64().unwrap_or(0);
    let deadline = Instant::now() + config.server.graceful_timeout + Duration::from_secs(60);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let Some(now) = status_json(&config) else { continue };
        if count(&now, "failed_reloads") > count(&before, "failed_reloads") {
            return Err(fail(format!(
                "the server refused the reload and keeps generation {} (see its log)",
                count(&now, "generation")
            )));
        }
        if count(&now, "reloads") > count(&before, "reloads") {
            println!("reloaded: generation {} serving", count(&now, "generation"));
            return Ok(());
        }
    }
    Err(fail("the reload did not finish in time (see the server's log)"))
}

/// `aerie stop`
pub fn stop(source: &Source, overrides: &Overrides) -> Result<(), Error> {
    let config = load(source, overrides)?;
    let pid = master_pid(&config)?;
    kill(pid, Signal::SIGTERM).map_err(|e| fail(format!("cannot signal the master (pid {pid}): {e}")))?;
    let deadline = Instant::now() + config.server.graceful_timeout + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !crate::sys::process::is_running(pid.as_raw()) {
            println!("stopped");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(fail(format!("the master (pid {pid}) is still running")))
}
