//! Listening sockets, keyed by their configured address, bound or adopted by
//! the master before any fork.
//!
//! One table serves three cases (pingora's `Fds`):
//!
//! * a fresh start binds every `[[listen]]` address and the admin address;
//! * systemd socket activation (`LISTEN_FDS`/`LISTEN_PID`) hands sockets in,
//!   matched to the config by their local address;
//! * a USR2 upgrade hands the previous image's sockets in through
//!   [`UPGRADE_FDS_ENV`], matched by key;
//! * a HUP reload keeps every socket whose key is still configured (so
//!   nothing queued on it is lost), binds new ones and drops removed ones.
//!
//! Every socket is non-blocking, CLOEXEC (except while being handed to a new
//! image) and has SO_REUSEADDR. Workers inherit them across fork.

use crate::config::Config;
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// The environment variable that carries listeners across a USR2 re-exec:
/// `fd=key;fd=key…`.
pub const UPGRADE_FDS_ENV: &str = "AERIE_UPGRADE_FDS";

/// Why a listener could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("could not listen on {address}: {source}")]
pub struct ListenError {
    /// The configured address.
    pub address: SocketAddr,
    /// The cause.
    pub source: std::io::Error,
}

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `[[listen]]` number i.
    Data(usize),
    /// The admin (status and metrics) listener.
    Admin,
}

/// A bound, listening socket.
#[derive(Debug)]
pub struct Listener {
    /// The table key: role and configured address.
    pub key: String,
    /// What it serves.
    pub role: Role,
    /// The address from the config (port may be 0).
    pub configured: SocketAddr,
    /// The address actually bound.
    pub local: SocketAddr,
    /// The socket.
    pub socket: TcpListener,
}

fn key_for(role: Role, addr: SocketAddr) -> String {
    match role {
        // Several port-0 listeners share a configured address: the index
        // tells them apart.
        Role::Data(i) if addr.port() == 0 => format!("listen#{i}:{addr}"),
        Role::Data(_) => format!("listen:{addr}"),
        Role::Admin => format!("admin:{addr}"),
    }
}

/// Bind and listen on one address.
pub fn bind(address: SocketAddr, backlog: u32) -> Result<TcpListener, ListenError> {
    let err = |source| ListenError { address, source };
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, Some(Protocol::TCP)).map_err(err)?;
    socket.set_reuse_address(true).map_err(err)?;
    if address.is_ipv6() {
        socket.set_only_v6(true).map_err(err)?;
    }
    socket.bind(&address.into()).map_err(err)?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX)).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    Ok(socket.into())
}

/// [`bind`], trying again every 100 ms for up to `wait` while the address
/// is in use (a stopping server's processes may hold it a moment longer).
fn bind_waiting(address: SocketAddr, backlog: u32, wait: Duration) -> Result<TcpListener, ListenError> {
    let deadline = Instant::now() + wait;
    let mut said = false;
    loop {
        match bind(address, backlog) {
            Err(e) if e.source.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                if !said {
                    log::warn!(
                        "{address} is in use: trying again for up to {:.0} s (server.bind_timeout)",
                        wait.as_secs_f64()
                    );
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// Duplicates of the sockets a previous image handed over (before they are
/// adopted), with their keys: what a failed upgrade hands back.
pub fn duplicate_upgrade_fds() -> Vec<(OwnedFd, String)> {
    let Ok(spec) = std::env::var(UPGRADE_FDS_ENV) else { return Vec::new() };
    spec.split(';')
        .filter_map(|item| {
            let (fd, key) = item.split_once('=')?;
            Some((crate::sys::fd::duplicate(fd.parse().ok()?)?, key.to_string()))
        })
        .collect()
}

/// Sockets handed to this process at start.
#[derive(Debug, Default)]
pub struct Inherited {
    by_key: HashMap<String, OwnedFd>,
    by_addr: Vec<(SocketAddr, OwnedFd)>,
}

impl Inherited {
    /// Collect sockets from the upgrade variable and from systemd, and clear
    /// those variables so no child or later image sees them.
    pub fn from_env() -> Inherited {
        let mut inh = Inherited::default();
        if let Ok(spec) = std::env::var(UPGRADE_FDS_ENV) {
            for item in spec.split(';').filter(|s| !s.is_empty()) {
                let Some((fd, key)) = item.split_once('=') else { continue };
                let Some(owned) = fd.parse().ok().and_then(crate::sys::fd::adopt_socket) else {
                    log::warn!("upgrade: descriptor {fd} for {key} is not an open socket");
                    continue;
                };
                inh.by_key.insert(key.to_string(), owned);
            }
            std::env::remove_var(UPGRADE_FDS_ENV);
        }
        let pid_matches =
            std::env::var("LISTEN_PID").ok().and_then(|p| p.parse::<u32>().ok()) == Some(std::process::id());
        if pid_matches {
            let n: i32 = std::env::var("LISTEN_FDS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
            for raw in 3..3 + n.clamp(0, 1024) {
                let Some(owned) = crate::sys::fd::adopt_socket(raw) else { continue };
                let sock = Socket::from(owned);
                match sock.local_addr().ok().and_then(|a| a.as_socket()) {
                    Some(addr) => inh.by_addr.push((addr, OwnedFd::from(sock))),
                    None => log::warn!("systemd: descriptor {raw} is not an IP socket; ignored"),
                }
            }
        }
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
        inh
    }

    fn take(&mut self, key: &str, addr: SocketAddr) -> Option<TcpListener> {
        if let Some(fd) = self.by_key.remove(key) {
            return Some(TcpListener::from(fd));
        }
        let i = self.by_addr.iter().position(|(a, _)| *a == addr)?;
        let (_, fd) = self.by_addr.swap_remove(i);
        Some(TcpListener::from(fd))
    }

    /// Report what was handed in but not configured (it is closed). After
    /// an upgrade, only once the new image serves: until then the way back
    /// holds duplicates of every inherited socket anyway.
    pub fn report_unused(self) {
        for k in self.by_key.keys() {
            log::warn!("inherited listener {k} is no longer configured: closing it");
        }
        for (a, _) in &self.by_addr {
            log::warn!("systemd socket {a} matches no [[listen]] address: closing it");
        }
    }
}

/// The listeners a config wants, in order: `[[listen]]` then admin.
fn wanted(config: &Config) -> Vec<(Role, SocketAddr, u32)> {
    let mut v: Vec<(Role, SocketAddr, u32)> =
        config.listen.iter().enumerate().map(|(i, l)| (Role::Data(i), l.address, l.backlog)).collect();
    if let Some(a) = config.admin {
        v.push((Role::Admin, a, crate::config::defaults::BACKLOG));
    }
    v
}

/// Build the listener table for `config`, reusing sockets from `existing`
/// (reload) and `inherited` (systemd, upgrade) by key, binding the rest —
/// waiting up to `bind_wait` for an address in use. Returns the new table;
/// sockets of `existing` not reused are dropped.
pub fn reconcile(
    config: &Config,
    existing: &mut Vec<Listener>,
    inherited: &mut Inherited,
    bind_wait: Duration,
) -> Result<Vec<Listener>, ListenError> {
    let mut out = Vec::new();
    for (role, addr, backlog) in wanted(config) {
        let key = key_for(role, addr);
        let reused = existing.iter().position(|l| l.key == key).map(|i| existing.swap_remove(i).socket);
        let socket = match reused.or_else(|| inherited.take(&key, addr)) {
            Some(s) => s,
            None => bind_waiting(addr, backlog, bind_wait)?,
        };
        socket.set_nonblocking(true).map_err(|source| ListenError { address: addr, source })?;
        let local = socket.local_addr().map_err(|source| ListenError { address: addr, source })?;
        out.push(Listener { key, role, configured: addr, local, socket });
    }
    Ok(out)
}

/// The value of [`UPGRADE_FDS_ENV`] for a table (descriptors must be made
/// inheritable by the caller).
pub fn upgrade_spec(listeners: &[Listener]) -> String {
    listeners.iter().map(|l| format!("{}={}", l.socket.as_raw_fd(), l.key)).collect::<Vec<_>>().join(";")
}
