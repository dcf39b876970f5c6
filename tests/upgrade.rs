//! USR2: the binary replaced in place under load (same pid, same
//! sockets), a broken binary refused before anything changes, and a new
//! binary that fails after the exec sending the master back to the one that
//! ran before.

use crate::util::{config, get, is_alive, wait_until, Load, Server, TempDir};
use nix::sys::signal::Signal;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

fn generation(s: &Server) -> u64 {
    s.status()["master"]["generation"].as_u64().unwrap_or(0)
}

fn exe_inode(pid: u32) -> u64 {
    std::fs::metadata(format!("/proc/{pid}/exe")).map(|m| m.ino()).unwrap_or(0)
}

#[test]
fn usr2_upgrades_in_place_under_load_and_a_broken_binary_changes_nothing() {
    let dir = TempDir::new("upgrade");
    let bin = dir.path().join("aerie");
    std::fs::copy(env!("CARGO_BIN_EXE_aerie"), &bin).expect("copy binary");
    let s = Server::start_binary(&bin, &config("workers = 2", "", "[log]\naccess = false"));
    let pid = s.pid();
    let old_workers = s.wait_workers(2);
    let load = Load::start(s.addr(), 3, 2);
    std::thread::sleep(Duration::from_millis(300));
    // Install a new binary (a new inode at the same path) and upgrade.
    let staged = dir.path().join("aerie.new");
    std::fs::copy(env!("CARGO_BIN_EXE_aerie"), &staged).expect("stage");
    std::fs::rename(&staged, &bin).expect("install");
    let new_inode = std::fs::metadata(&bin).expect("stat").ino();
    s.signal(Signal::SIGUSR2);
    wait_until("the upgraded master to serve with new workers", Duration::from_secs(30), || {
        let now = s.workers();
        exe_inode(pid) == new_inode && now.len() == 2 && now.iter().all(|w| !old_workers.contains(w))
    });
    std::thread::sleep(Duration::from_millis(300));
    let (fresh, ka) = load.finish();
    eprintln!("fresh {fresh:?}\nkeep-alive {ka:?}");
    assert_eq!(s.pid(), pid);
    assert!(is_alive(pid));
    assert_eq!(fresh.failed, 0, "{:?}", fresh.errors);
    assert_eq!(ka.mid_response, 0, "{:?}", ka.errors);
    assert!(fresh.ok > 1000, "{fresh:?}");
    assert_eq!(generation(&s), 2);
    assert_eq!(s.status()["master"]["upgrades"], 1);
    assert_eq!(s.status()["master"]["phase"], "running");

    // A broken binary: the check fails and nothing changes.
    let broken = dir.path().join("broken");
    std::fs::write(&broken, "#!/bin/sh\necho 'cannot start' >&2\nexit 1\n").expect("write");
    std::fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    std::fs::rename(&broken, &bin).expect("install broken");
    let workers = s.workers();
    s.signal(Signal::SIGUSR2);
    assert!(s.wait_log("upgrade aborted", Duration::from_secs(20)), "{}", s.log());
    assert!(s.log().contains("cannot start"));
    assert_eq!(s.workers(), workers);
    assert_eq!(get(s.addr(), "/").text(), "test");
    assert_eq!(generation(&s), 2);
}

#[test]
fn an_upgrade_whose_new_binary_fails_after_the_exec_goes_back_to_the_running_one() {
    let dir = TempDir::new("rollback");
    let bin = dir.path().join("aerie");
    std::fs::copy(env!("CARGO_BIN_EXE_aerie"), &bin).expect("copy binary");
    let s = Server::start_binary(&bin, &config("workers = 2", "", "[log]\naccess = false"));
    let pid = s.pid();
    let old_inode = exe_inode(pid);
    let old_workers = s.wait_workers(2);
    assert_eq!(s.status()["master"]["phase"], "running");
    let load = Load::start(s.addr(), 3, 2);
    std::thread::sleep(Duration::from_millis(300));
    // A new binary at the same path, and a configuration only it reads (the
    // running master never reloads it): a new listener on a port that is
    // taken. --check-config passes (it binds nothing); the new image, once
    // exec'd, cannot bind and must go back.
    let staged = dir.path().join("aerie.new");
    std::fs::copy(env!("CARGO_BIN_EXE_aerie"), &staged).expect("stage");
    std::fs::rename(&staged, &bin).expect("install");
    assert_ne!(std::fs::metadata(&bin).expect("stat").ino(), old_inode);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("hold a port");
    let port = taken.local_addr().expect("addr").port();
    let text = std::fs::read_to_string(&s.config).expect("config");
    std::fs::write(&s.config, format!("{text}\n[[listen]]\naddress = \"127.0.0.1:{port}\"\npipeline = [\"hello\"]\n"))
        .expect("write config");
    s.signal(Signal::SIGUSR2);
    wait_until("the master to be back on its old binary with a new generation", Duration::from_secs(60), || {
        let st = s.status();
        let now = s.workers();
        st["master"]["phase"] == "running"
            && st["master"]["failed_upgrades"] == 1
            && now.len() == 2
            && now.iter().all(|w| !old_workers.contains(w))
    });
    std::thread::sleep(Duration::from_millis(300));
    let (fresh, ka) = load.finish();
    eprintln!("fresh {fresh:?}\nkeep-alive {ka:?}");
    assert_eq!(s.pid(), pid, "the same master process");
    assert!(is_alive(pid));
    assert_eq!(exe_inode(pid), old_inode, "the binary that ran before runs again");
    assert_eq!(fresh.failed, 0, "{:?}", fresh.errors);
    assert_eq!(ka.mid_response, 0, "{:?}", ka.errors);
    assert!(fresh.ok > 500, "{fresh:?}");
    assert_eq!(get(s.addr(), "/").text(), "test");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(), "the port is still the other holder's");
    drop(taken);
    let log = s.log();
    assert!(log.contains("going back to the previous one"), "{log}");
    assert!(log.contains("back on this binary"), "{log}");
}
