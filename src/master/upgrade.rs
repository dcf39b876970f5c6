//! USR2: replace the running binary without changing the master's pid —
//! and come back to it if the new one cannot take over.
//!
//! 1. Check the new binary first: run `<exe> <same arguments> --check-config`
//!    (bounded in time). If it fails, log why and keep running as before.
//! 2. Make the listening sockets inheritable and describe them in
//!    `AERIE_UPGRADE_FDS` (`fd=key;…`); list the live workers in
//!    `AERIE_UPGRADE_WORKERS` (`pid:generation,…`) and the generation in
//!    `AERIE_UPGRADE_GENERATION`. Keep a descriptor of the running
//!    executable open across the exec (`AERIE_UPGRADE_ROLLBACK_EXE`), with
//!    the running configuration (`AERIE_UPGRADE_ROLLBACK_CONFIG`).
//! 3. `execv` the binary with the original arguments. The process keeps its
//!    pid (systemd sees no change) and its children. The new image adopts
//!    the sockets by key, starts the next generation, and retires the old
//!    workers once the new ones are ready — the same path as a reload.
//! 4. If the new image fails before its first generation is ready (its
//!    configuration or a new listener cannot be set up, its workers cannot
//!    boot, it panics, or it is not ready within `worker_timeout`), it kills
//!    the workers it started and `fexecve`s the previous binary from that
//!    descriptor with the same sockets, workers and generation, and the
//!    previous configuration: the old image serves again, same pid, and the
//!    old workers never stopped serving meanwhile.
//!
//! If `execv` itself fails, the sockets become CLOEXEC again and the old
//! image keeps serving.

use super::Master;
use crate::scoreboard::Phase;
use crate::sys::fd::set_cloexec;
use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Workers handed across an upgrade: `pid:generation,…`.
pub const UPGRADE_WORKERS_ENV: &str = "AERIE_UPGRADE_WORKERS";
/// The generation the previous image was serving.
pub const UPGRADE_GENERATION_ENV: &str = "AERIE_UPGRADE_GENERATION";
/// The descriptor of the previous image's executable.
pub const ROLLBACK_EXE_ENV: &str = "AERIE_UPGRADE_ROLLBACK_EXE";
/// The previous image's configuration (TOML), for a way back.
pub const ROLLBACK_CONFIG_ENV: &str = "AERIE_UPGRADE_ROLLBACK_CONFIG";
/// The path the previous image was started from (its next upgrade reads it).
pub const ROLLBACK_PATH_ENV: &str = "AERIE_UPGRADE_ROLLBACK_PATH";
/// Set when an image was started by a failed upgrade going back.
pub const ROLLED_BACK_ENV: &str = "AERIE_UPGRADE_ROLLED_BACK";
/// How long the new binary may take to check the configuration.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

/// What the previous image handed over.
#[derive(Debug, Default)]
pub struct Inherited {
    /// Its workers, with their generation.
    pub workers: Vec<(nix::unistd::Pid, u64)>,
    /// The generation to start with.
    pub generation: u64,
    /// The way back, until this image's first generation is ready.
    pub rollback: Option<Rollback>,
    /// This image is the previous one, back after a failed upgrade.
    pub rolled_back: bool,
    /// The configuration to run with instead of the file's (after a way
    /// back: the one the image ran before the failed upgrade).
    pub config: Option<String>,
    /// The binary to upgrade from next (after a way back: the path the
    /// image was started from, not the replaced file's).
    pub exe: Option<std::path::PathBuf>,
}

/// Everything needed to start the previous image again.
#[derive(Debug)]
pub struct Rollback {
    exe: OwnedFd,
    path: OsString,
    /// Duplicates of the inherited listening sockets, with their keys.
    listeners: Vec<(OwnedFd, String)>,
    workers: String,
    generation: String,
    config: String,
}

impl Rollback {
    /// Start the previous image in this process (never returns on success;
    /// the reason otherwise).
    pub fn exec(self, args: &[OsString]) -> String {
        for (fd, key) in &self.listeners {
            if let Err(e) = set_cloexec(fd.as_fd(), false) {
                return format!("could not pass listener {key}: {e}");
            }
        }
        let spec: Vec<String> = self.listeners.iter().map(|(fd, key)| format!("{}={key}", fd.as_raw_fd())).collect();
        let mut env: Vec<CString> = std::env::vars_os()
            .filter(|(k, _)| !k.to_string_lossy().starts_with("AERIE_UPGRADE"))
            .filter_map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).ok()
            })
            .collect();
        for (k, v) in [
            (crate::listeners::UPGRADE_FDS_ENV, spec.join(";")),
            (UPGRADE_WORKERS_ENV, self.workers.clone()),
            (UPGRADE_GENERATION_ENV, self.generation.clone()),
            (ROLLBACK_CONFIG_ENV, self.config.clone()),
            (ROLLED_BACK_ENV, "1".to_string()),
            (ROLLBACK_PATH_ENV, self.path.to_string_lossy().into_owned()),
        ] {
            match CString::new(format!("{k}={v}")) {
                Ok(c) => env.push(c),
                Err(_) => return format!("{k} holds a NUL byte"),
            }
        }
        let Ok(arg0) = CString::new(self.path.as_bytes()) else { return "the binary's path holds a NUL byte".into() };
        let mut argv = vec![arg0];
        for a in args {
            match CString::new(a.as_bytes()) {
                Ok(c) => argv.push(c),
                Err(_) => return "an argument contains a NUL byte".to_string(),
            }
        }
        crate::log::flush(Duration::from_millis(100));
        match nix::unistd::fexecve(self.exe.as_raw_fd(), &argv, &env) {
            Ok(never) => match never {},
            Err(e) => format!("fexecve of the previous binary: {e}"),
        }
    }
}

impl Master {
    pub(super) fn handle_usr2(&mut self) {
        if self.reload.is_some() {
            log::warn!("SIGUSR2: a reload is in progress; upgrade later");
            return;
        }
        log::info!("SIGUSR2: upgrading to {}", self.exe.display());
        self.set_phase(Phase::Upgrading);
        if let Err(why) = self.check_new_binary() {
            log::error!("upgrade aborted, still serving with the running binary: {why}");
            self.scoreboard.header().add_failed_upgrades(1);
            self.set_phase(Phase::Running);
            return;
        }
        crate::notify::send(&format!("RELOADING=1\nMONOTONIC_USEC={}", crate::clock::monotonic_ms() * 1000));
        let why = self.exec_new_binary();
        // Only reached when exec failed.
        for l in &self.listeners {
            let _ = set_cloexec(l.socket.as_fd(), true);
        }
        for var in [
            crate::listeners::UPGRADE_FDS_ENV,
            UPGRADE_WORKERS_ENV,
            UPGRADE_GENERATION_ENV,
            ROLLBACK_EXE_ENV,
            ROLLBACK_CONFIG_ENV,
            ROLLBACK_PATH_ENV,
        ] {
            std::env::remove_var(var);
        }
        log::error!("upgrade failed, still serving with the running binary: {why}");
        self.scoreboard.header().add_failed_upgrades(1);
        self.set_phase(Phase::Running);
        crate::notify::send("READY=1");
    }

    fn check_new_binary(&self) -> Result<(), String> {
        let mut child = Command::new(&self.exe)
            .args(&self.args)
            .arg("--check-config")
            .env_remove(ROLLBACK_CONFIG_ENV)
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
        // The running executable, kept open across the exec: the way back.
        let exe = match std::fs::File::open("/proc/self/exe") {
            Ok(f) => OwnedFd::from(f),
            Err(e) => return format!("could not keep the running binary open: {e}"),
        };
        if let Err(e) = set_cloexec(exe.as_fd(), false) {
            return format!("could not keep the running binary open: {e}");
        }
        std::env::set_var(crate::listeners::UPGRADE_FDS_ENV, crate::listeners::upgrade_spec(&self.listeners));
        let workers: Vec<String> = self.workers.iter().map(|w| format!("{}:{}", w.pid, w.generation)).collect();
        std::env::set_var(UPGRADE_WORKERS_ENV, workers.join(","));
        std::env::set_var(UPGRADE_GENERATION_ENV, self.generation.to_string());
        std::env::set_var(ROLLBACK_EXE_ENV, exe.as_raw_fd().to_string());
        std::env::set_var(ROLLBACK_CONFIG_ENV, self.config.to_toml());
        std::env::set_var(ROLLBACK_PATH_ENV, &self.exe);
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

/// Read what the previous image handed over (and clear the variables, so
/// no child or later image sees them). Called first thing at start, before
/// the listeners are adopted: the way back keeps duplicates of them.
pub fn inherited_from_env() -> Inherited {
    let workers_spec = std::env::var(UPGRADE_WORKERS_ENV).unwrap_or_default();
    let generation_spec = std::env::var(UPGRADE_GENERATION_ENV).ok();
    let workers = workers_spec
        .split(',')
        .filter_map(|item| {
            let (pid, generation) = item.split_once(':')?;
            Some((nix::unistd::Pid::from_raw(pid.parse().ok()?), generation.parse().ok()?))
        })
        .collect();
    let generation = generation_spec.as_deref().and_then(|g| g.parse::<u64>().ok()).map_or(1, |g| g + 1);
    let config = std::env::var(ROLLBACK_CONFIG_ENV).ok();
    let rolled_back = std::env::var_os(ROLLED_BACK_ENV).is_some();
    let path = std::env::var_os(ROLLBACK_PATH_ENV);
    let exe = std::env::var(ROLLBACK_EXE_ENV).ok().and_then(|fd| fd.parse().ok()).and_then(crate::sys::fd::adopt_fd);
    let rollback = match (exe, generation_spec, &config, &path) {
        (Some(exe), Some(generation), Some(config), Some(path)) => {
            let _ = set_cloexec(exe.as_fd(), true);
            Some(Rollback {
                exe,
                path: path.clone(),
                listeners: crate::listeners::duplicate_upgrade_fds(),
                workers: workers_spec.clone(),
                generation,
                config: config.clone(),
            })
        }
        _ => None,
    };
    for var in [
        UPGRADE_WORKERS_ENV,
        UPGRADE_GENERATION_ENV,
        ROLLBACK_EXE_ENV,
        ROLLBACK_CONFIG_ENV,
        ROLLED_BACK_ENV,
        ROLLBACK_PATH_ENV,
    ] {
        std::env::remove_var(var);
    }
    // Only a way back carries a configuration to use; a new image reads
    // its own file.
    let config = if rolled_back { config } else { None };
    let exe = if rolled_back { path.map(std::path::PathBuf::from) } else { None };
    Inherited { workers, generation, rollback, rolled_back, config, exe }
}
