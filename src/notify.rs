//! systemd's readiness protocol (sd_notify) over `NOTIFY_SOCKET`.
//!
//! The master sends `READY=1` once its workers are forked, with `MAINPID`
//! and a `STATUS` line naming the addresses it listens on (the integration
//! tests read that line to find ports bound as port 0), and `STOPPING=1` when
//! it shuts down. Without `NOTIFY_SOCKET` every call is a no-op.

use std::os::unix::net::UnixDatagram;

/// Send one notification; errors are logged at debug and otherwise ignored
/// (systemd may have gone away; serving matters more).
pub fn send(message: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let result = (|| -> std::io::Result<()> {
        let sock = UnixDatagram::unbound()?;
        let bytes = path.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(message.as_bytes(), &addr)?;
        } else {
            sock.send_to(message.as_bytes(), &path)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        log::debug!("could not notify {}: {e}", path.to_string_lossy());
    }
}
