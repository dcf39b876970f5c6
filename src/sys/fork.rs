//! The fork wrapper.

use nix::unistd::Pid;

/// Which side of a fork this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// The caller (the master), with the child's pid.
    Parent {
        /// The new process.
        pid: Pid,
    },
    /// The new process.
    Child,
}

/// Fork the current process.
///
/// The caller must be single-threaded: fork copies only the calling thread,
/// so a lock held by any other thread would stay locked forever in the child.
/// Debug builds check this and panic before forking.
pub fn fork() -> nix::Result<Forked> {
    debug_assert_eq!(super::process::thread_count(), Some(1), "the master must have exactly one thread when it forks");
    // SAFETY: the master never starts a thread (checked above in debug
    // builds), so no other thread can hold a lock or be mid-update of shared
    // state at this point; the child continues with a consistent copy and,
    // by the module invariant, only ever runs worker code and exits.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent { pid: child }),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}
