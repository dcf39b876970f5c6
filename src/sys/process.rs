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

/// Drop to the configured group and user (only ever downwards: the master
/// keeps its identity so it can bind new listeners on reload). `user` is
/// (name, uid, the user's gid); `group` is (name, gid).
pub fn drop_privileges(user: Option<&(String, u32, u32)>, group: Option<&(String, u32)>) -> Result<(), String> {
    use nix::unistd::{setgid, setgroups, setuid, Gid, Uid};
    let gid = group.map(|g| g.1).or(user.map(|u| u.2));
    if let Some(gid) = gid {
        setgroups(&[]).map_err(|e| format!("could not drop supplementary groups: {e}"))?;
        setgid(Gid::from_raw(gid)).map_err(|e| format!("could not switch to group {gid}: {e}"))?;
    }
    if let Some((name, uid, _)) = user {
        setuid(Uid::from_raw(*uid)).map_err(|e| format!("could not switch to user {name}: {e}"))?;
        if nix::unistd::geteuid().is_root() && *uid != 0 {
            return Err(format!("still root after switching to {name}"));
        }
    }
    Ok(())
}

/// Set the calling thread's CPU priority (`nice`, -20..19): on Linux
/// `setpriority(PRIO_PROCESS, tid)` changes that thread alone, and threads
/// it starts later inherit it.
pub fn set_thread_nice(nice: i32) -> std::io::Result<()> {
    set_task_nice(nix::unistd::gettid().as_raw(), nice)
}

/// Set every thread of this process to `nice` (threads started later by
/// the calling thread inherit it).
pub fn set_process_nice(nice: i32) -> std::io::Result<()> {
    for task in std::fs::read_dir("/proc/self/task")? {
        if let Some(tid) = task?.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) {
            set_task_nice(tid, nice)?;
        }
    }
    Ok(())
}

fn set_task_nice(tid: i32, nice: i32) -> std::io::Result<()> {
    // SAFETY: setpriority reads only its three integer arguments and
    // touches no memory of ours.
    let r = unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, tid as nix::libc::id_t, nice) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
