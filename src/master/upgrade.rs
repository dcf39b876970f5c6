//! USR2: replace the running binary without changing the master's pid.
//!
//! 1. Check the new binary first: run `<exe> <same arguments> --check-config`
//!    (bounded in time). If it fails, log why and keep running as before.
//! 2. Make the listening sockets inheritable and describe them in
//!    `AERIE_UPGRADE_FDS` (`fd=key;…`); list the live workers in
//!    `AERIE_UPGRADE_WORKERS` (`pid:generation,…`) and the generation in
//!    `AERIE_UPGRADE_GENERATION`.
//! 3. `execv` the binary with the original arguments. The process keeps its
//!    pid (systemd sees no change) and its children. The new image adopts
//!    the sockets by key, starts the next generation, and retires the old
//!    workers once the new ones are ready — the same path as a reload.
//!
//! If `execv` itself fails, the sockets become CLOEXEC again and the old
//! image keeps serving.

use super::Master;
use crate::sys::fd::set_cloexec;
use std::ffi::CString;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Workers handed across an upgrade: `pid:generation,…`.
pub const UPGRADE_WORKERS_ENV: &str = "AERIE_UPGRADE_WORKERS";
/// The generation the previous image was serving.
pub const UPGRADE_GENERATION_ENV: &str = "AERIE_UPGRADE_GENERATION";
/// How long the new binary may take to check the configuration.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

impl Master {
    pub(super) fn handle_usr2(&mut self) {
        if self.reload.is_some() {
            log::warn!("SIGUSR2: a reload is in progress; upgrade later");
            return;
        }
        log::info!("SIGUSR2: upgrading to {}", self.exe.display());
        if let Err(why) = self.check_new_binary() {
            log::error!("upgrade aborted, still serving with the running binary: {why}");
            return;
        }
        crate::notify::send(&format!("RELOADING=1\nMONOTONIC_USEC={}", crate::scoreboard::monotonic_ms() * 1000));
        let why = self.exec_new_binary();
        // Only reached when exec failed.
        for l in &self.listeners {
            let _ = set_cloexec(l.socket.as_fd(), true);
        }
        for var in [crate::listeners::UPGRADE_FDS_ENV, UPGRADE_WORKERS_ENV, UPGRADE_GENERATION_ENV] {
            std::env::remove_var(var);
        }
        log::error!("upgrade failed, still serving with the running binary: {why}");
        crate::notify::send("READY=1");
    }

    fn check_new_binary(&self) -> Result<(), String> {
        let mut child = Command::new(&self.exe)
            .args(&self.args)
            .arg("--check-config")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not run {}: {e}", self.exe.display()))?;
        let deadline = Instant::now() + CHECK_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("{} --check-config did not finish in {CHECK_TIMEOUT:?}", self.exe.display()));
                }
                Err(e) => return Err(format!("could not wait for {}: {e}", self.exe.display())),
            }
        };
        if status.success() {
            return Ok(());
        }
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        Err(format!("{} --check-config failed ({status}): {}", self.exe.display(), err.trim()))
    }

    fn exec_new_binary(&mut self) -> String {
        for l in &self.listeners {
            if let Err(e) = set_cloexec(l.socket.as_fd(), false) {
                return format!("could not pass listener {}: {e}", l.local);
            }
        }
        std::env::set_var(crate::listeners::UPGRADE_FDS_ENV, crate::listeners::upgrade_spec(&self.listeners));
        let workers: Vec<String> = self.workers.iter().map(|w| format!("{}:{}", w.pid, w.generation)).collect();
        std::env::set_var(UPGRADE_WORKERS_ENV, workers.join(","));
        std::env::set_var(UPGRADE_GENERATION_ENV, self.generation.to_string());
        let Ok(path) = CString::new(self.exe.as_os_str().as_bytes()) else {
            return "the binary's path contains a NUL byte".to_string();
        };
        let mut argv = vec![path.clone()];
        for a in &self.args {
            match CString::new(a.as_bytes()) {
                Ok(c) => argv.push(c),
                Err(_) => return "an argument contains a NUL byte".to_string(),
            }
        }
        log::info!("exec {}", self.exe.display());
        match nix::unistd::execv(&path, &argv) {
            Ok(never) => match never {},
            Err(e) => format!("execv {}: {e}", self.exe.display()),
        }
    }
}

/// Parse `AERIE_UPGRADE_WORKERS` and `AERIE_UPGRADE_GENERATION` (and clear
/// them): the workers left running by the previous image, and the
/// generation to start with.
pub fn inherited_from_env() -> (Vec<(nix::unistd::Pid, u64)>, u64) {
    let workers = std::env::var(UPGRADE_WORKERS_ENV)
        .unwrap_or_default()
        .split(',')
        .filter_map(|item| {
            let (pid, generation) = item.split_once(':')?;
            Some((nix::unistd::Pid::from_raw(pid.parse().ok()?), generation.parse().ok()?))
        })
        .collect();
    let generation =
        std::env::var(UPGRADE_GENERATION_ENV).ok().and_then(|g| g.parse::<u64>().ok()).map_or(1, |g| g + 1);
    std::env::remove_var(UPGRADE_WORKERS_ENV);
    std::env::remove_var(UPGRADE_GENERATION_ENV);
    (workers, generation)
}
