//! File-descriptor flags and adoption of inherited sockets.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Set or clear FD_CLOEXEC on a descriptor.
pub fn set_cloexec(fd: BorrowedFd<'_>, on: bool) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    let flags = FdFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFD)?);
    let flags = if on { flags | FdFlag::FD_CLOEXEC } else { flags - FdFlag::FD_CLOEXEC };
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(flags))?;
    Ok(())
}

/// Whether FD_CLOEXEC is set.
pub fn is_cloexec(fd: BorrowedFd<'_>) -> nix::Result<bool> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    Ok(FdFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFD)?).contains(FdFlag::FD_CLOEXEC))
}

/// Take ownership of an inherited descriptor number, if it is open and a
/// socket. Each number must be adopted at most once: callers take numbers
/// only from `LISTEN_FDS` or aerie's own upgrade variable, which name each
/// descriptor once, and remove those variables from the environment.
pub fn adopt_socket(raw: RawFd) -> Option<OwnedFd> {
    if raw < 3 {
        return None;
    }
    let stat = nix::sys::stat::fstat(raw).ok()?;
    if stat.st_mode & libc_s_ifmt() != libc_s_ifsock() {
        return None;
    }
    // SAFETY: the descriptor is open (fstat succeeded), is a socket, and was
    // handed to this process by its parent (systemd or the previous image
    // of this master) for it to own; nothing else in the process refers to
    // it, and it is adopted once (see above).
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let _ = set_cloexec(std::os::fd::AsFd::as_fd(&fd), true);
    Some(fd)
}

/// Take ownership of an inherited descriptor number of any kind (the
/// previous image's executable, handed across an upgrade), if it is open.
/// The same once-only rule as [`adopt_socket`] holds: the number comes from
/// aerie's own upgrade variable, which is removed once read.
pub fn adopt_fd(raw: RawFd) -> Option<OwnedFd> {
    if raw < 3 {
        return None;
    }
    nix::sys::stat::fstat(raw).ok()?;
    // SAFETY: the descriptor is open (fstat succeeded) and was handed to
    // this process by the previous image of this master for it to own;
    // nothing else refers to it, and it is adopted once (see above).
    Some(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// A close-on-exec duplicate of an open descriptor number this process
/// does not own (an inherited socket, before it is adopted), if it is open.
pub fn duplicate(raw: RawFd) -> Option<OwnedFd> {
    if raw < 3 {
        return None;
    }
    let new = nix::fcntl::fcntl(raw, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3)).ok()?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else in
    // the process knows of: this is its only owner.
    Some(unsafe { OwnedFd::from_raw_fd(new) })
}

fn libc_s_ifmt() -> u32 {
    nix::sys::stat::SFlag::S_IFMT.bits()
}

fn libc_s_ifsock() -> u32 {
    nix::sys::stat::SFlag::S_IFSOCK.bits()
}
