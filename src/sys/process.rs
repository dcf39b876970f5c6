//! Process-level controls: parent-death signal, thread count, process name.

use nix::sys::signal::Signal;

/// The number of threads in this process, from `/proc/self/task`.
pub fn thread_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/task").ok().map(|d| d.count())
}

/// Ask the kernel to send `signal` to this process when its parent dies.
pub fn set_parent_death_signal(signal: Signal) -> nix::Result<()> {
    nix::sys::prctl::set_pdeathsig(signal)
}

/// Set the name shown by `ps -o comm` and `top` (at most 15 bytes are kept).
pub fn set_name(name: &str) {
    if let Ok(c) = std::ffi::CString::new(name) {
        // Naming is cosmetic; failure changes nothing else.
        let _ = nix::sys::prctl::set_name(&c);
    }
}

/// The resident set size of a process in bytes, from `/proc/<pid>/statm`.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Whether a process exists and has not exited (a zombie, which its parent
/// has not reaped yet, has exited).
pub fn is_running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}
