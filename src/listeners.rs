//! Listening sockets, bound by the master before any fork and keyed by the
//! configured address.
//!
//! Every socket is non-blocking, CLOEXEC (socket2's default) and has
//! SO_REUSEADDR so a restarted server can bind while old connections are in
//! TIME_WAIT. Workers inherit the sockets across fork and all accept on them.

use crate::config::ListenConfig;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{SocketAddr, TcpListener};

/// Why a listener could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("could not listen on {address}: {source}")]
pub struct ListenError {
    /// The configured address.
    pub address: SocketAddr,
    /// The cause.
    pub source: std::io::Error,
}

/// A bound, listening socket.
#[derive(Debug)]
pub struct Listener {
    /// The address from the config (port may be 0).
    pub configured: SocketAddr,
    /// The address actually bound.
    pub local: SocketAddr,
    /// The socket.
    pub socket: TcpListener,
}

/// Bind and listen on one configured address.
pub fn bind(cfg: &ListenConfig) -> Result<Listener, ListenError> {
    let address = cfg.address;
    let err = |source| ListenError { address, source };
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, Some(Protocol::TCP)).map_err(err)?;
    socket.set_reuse_address(true).map_err(err)?;
    if address.is_ipv6() {
        socket.set_only_v6(true).map_err(err)?;
    }
    socket.bind(&address.into()).map_err(err)?;
    socket.listen(i32::try_from(cfg.backlog).unwrap_or(i32::MAX)).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    let socket: TcpListener = socket.into();
    let local = socket.local_addr().map_err(err)?;
    Ok(Listener { configured: address, local, socket })
}

/// Bind every configured listener, in config order.
pub fn bind_all(cfgs: &[ListenConfig]) -> Result<Vec<Listener>, ListenError> {
    cfgs.iter().map(bind).collect()
}
