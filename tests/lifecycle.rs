//! The master's process lifecycle as far as the server core goes: start on
//! the embedded config, validate configs, replace dead workers, stop.

use crate::util::{config, get, is_alive, Client, Server, TempDir};
use nix::sys::signal::Signal;
use std::process::Command;
use std::time::{Duration, Instant};

fn aerie(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_aerie")).args(args).output().expect("run aerie")
}

#[test]
fn embedded_default_config_serves_hello_and_echo_with_two_workers() {
    let s = Server::start_embedded(&["--bind", "127.0.0.1:0", "--admin", "127.0.0.1:0"]);
    s.wait_workers(2);
    assert_eq!(get(s.addr(), "/").text(), "test");
    assert_eq!(get(s.addr(), "/healthcheck").text(), "OK");
    let r = crate::util::request(s.addr(), "PUT /echo/e HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
    assert_eq!(r.json()["body"]["bytes"], 3);
}

#[test]
fn workers_flag_overrides_the_file() {
    let s = Server::start_with(&config("workers = 1", "", ""), &["--workers", "3"]);
    s.wait_workers(3);
}

#[test]
fn check_config_prints_the_effective_config_or_names_the_bad_key() {
    let out = aerie(&["--check-config"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("workers = 2"), "{text}");
    assert!(text.contains("127.0.0.1:8080"), "{text}");
    assert!(text.contains("keepalive_timeout = 60.0"), "defaults are shown: {text}");

    let dir = TempDir::new("cfg");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nworkers = 0\n[[listen]]\naddress = \"127.0.0.1:0\"\npipeline = [\"hello\"]\n")
        .expect("write");
    let out = aerie(&["--check-config", "-c", bad.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.workers: 0 is not between 1 and 128"), "{err}");

    std::fs::write(&bad, "[server]\nworkres = 2\n").expect("write");
    let out = aerie(&["--check-config", "-c", bad.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("workres"));

    let out = aerie(&["--check-config", "--workers", "7", "--bind", "127.0.0.1:9", "--admin", "127.0.0.1:0"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("workers = 7") && text.contains("127.0.0.1:9\""), "{text}");
}

#[test]
fn a_worker_killed_with_sigkill_is_replaced_and_serving_continues() {
    let s = Server::start(&config("workers = 2", "", ""));
    let before = s.wait_workers(2);
    let victim = before[0];
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(victim as i32), Signal::SIGKILL).expect("kill");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = s.workers();
        if now.len() == 2 && !now.contains(&victim) {
            break;
        }
        assert!(Instant::now() < deadline, "not replaced: {now:?}\n{}", s.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..20 {
        assert_eq!(get(s.addr(), "/").status, 200);
    }
    assert!(s.log().contains("killed by SIGKILL"), "{}", s.log());
}

#[test]
fn sigterm_stops_master_and_workers_cleanly() {
    let mut s = Server::start(&config("workers = 2", "", ""));
    let workers = s.wait_workers(2);
    let mut idle = Client::connect(s.addr());
    idle.send(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(idle.read_response().status, 200);
    s.signal(Signal::SIGTERM);
    let status = s.wait_exit(Duration::from_secs(15)).expect("master exits");
    assert!(status.success(), "{status:?}\n{}", s.log());
    assert!(workers.iter().all(|w| !is_alive(*w)), "workers left behind");
    assert!(idle.is_closed(), "idle keep-alive connection closed on stop");
}

#[test]
fn sigint_stops_at_once() {
    let mut s = Server::start(&config("workers = 2", "", ""));
    let workers = s.wait_workers(2);
    s.signal(Signal::SIGINT);
    let status = s.wait_exit(Duration::from_secs(5)).expect("master exits");
    assert!(status.success(), "{status:?}");
    assert!(workers.iter().all(|w| !is_alive(*w)));
}

#[test]
fn a_worker_whose_master_died_exits_on_its_own() {
    let s = Server::start(&config("workers = 1", "", ""));
    let worker = s.wait_workers(1)[0];
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(s.pid() as i32), Signal::SIGKILL).expect("kill master");
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_alive(worker) {
        assert!(Instant::now() < deadline, "orphaned worker kept running");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigint_during_a_graceful_stop_hurries_it() {
    let mut s = Server::start(&config(
        "workers = 1\ngraceful_timeout = 60",
        "",
        "[[listen.route]]\nprefix = \"/fault\"\npipeline = [\"fault\"]\n",
    ));
    s.wait_workers(1);
    // A request in flight that would hold a graceful stop for 30 s.
    let mut busy = Client::connect(s.addr());
    busy.send(b"GET /fault/sleep?ms=30000 HTTP/1.1\r\nHost: t\r\n\r\n");
    std::thread::sleep(Duration::from_millis(300));
    s.signal(Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(500));
    assert!(is_alive(s.pid()), "a graceful stop waits for the request");
    let asked = Instant::now();
    s.signal(Signal::SIGINT);
    let status = s.wait_exit(Duration::from_secs(10)).expect("the master exits soon after SIGINT");
    assert!(status.success(), "{status:?}");
    assert!(asked.elapsed() < Duration::from_secs(5), "hurried: {:?}", asked.elapsed());
    assert!(s.log().contains("fast stop asked during the graceful stop"), "{}", s.log());
}

#[test]
fn a_runtime_failure_exits_1_and_a_bad_config_2() {
    let dir = TempDir::new("exitcodes");
    let cfg = dir.path().join("a.toml");
    std::fs::write(
        &cfg,
        "[admin]\naddress = \"\"\n[log]\nerror_log = \"/nonexistent/aerie/error.log\"\n[[listen]]\naddress = \"127.0.0.1:0\"\npipeline = [\"hello\"]\n",
    )
    .expect("write");
    let out = aerie(&["-c", &cfg.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not open the log files"));
    std::fs::write(&cfg, "[server]\nworkers = 0\n[[listen]]\naddress = \"127.0.0.1:0\"\npipeline = [\"hello\"]\n")
        .expect("write");
    assert_eq!(aerie(&["-c", &cfg.to_string_lossy()]).status.code(), Some(2));
}
