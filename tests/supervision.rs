//! The master's full lifecycle: reload and upgrade under load, supervision
//! of crashed, hung and crash-looping workers, TTIN/TTOU, status and
//! metrics, graceful and fast stops, control commands.

use crate::util::{config, free_port, get, is_alive, wait_until, Client, Load, Server, TempDir};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

fn with_fault(server: &str) -> String {
    config(
        server,
        "",
        "[[listen.route]]\nprefix = \"/fault\"\npipeline = [\"fault\"]\n\n[processors.fault]\nthreads_per_device = 8\n",
    )
}

fn generation(s: &Server) -> u64 {
    s.status()["master"]["generation"].as_u64().unwrap_or(0)
}

fn ready_workers(s: &Server, generation: u64) -> usize {
    let st = s.status();
    st["workers"]
        .as_array()
        .map(|w| w.iter().filter(|w| w["generation"].as_u64() == Some(generation) && w["state"] == "ready").count())
        .unwrap_or(0)
}

fn set_workers(s: &Server, n: usize) {
    let text = std::fs::read_to_string(&s.config).expect("config");
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("workers = ") {
            out.push_str(&format!("workers = {n}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    std::fs::write(&s.config, out).expect("write config");
}

/// HUP, then wait until the reload completes and only the new generation
/// is left.
fn reload_and_wait(s: &Server, workers: usize) {
    let before = generation(s);
    s.signal(Signal::SIGHUP);
    wait_until("the reload to finish", Duration::from_secs(30), || {
        let st = s.status();
        st["master"]["generation"].as_u64() == Some(before + 1)
            && st["workers"]
                .as_array()
                .is_some_and(|w| w.len() == workers && w.iter().all(|w| w["generation"].as_u64() == Some(before + 1)))
            && s.workers().len() == workers
    });
}

#[test]
fn reload_under_load_changes_the_worker_count_without_failing_a_request() {
    let s = Server::start(&config("workers = 2\ngraceful_timeout = 10", "", "[log]\naccess = false"));
    let load = Load::start(s.addr(), 3, 3);
    std::thread::sleep(Duration::from_millis(300));
    set_workers(&s, 4);
    reload_and_wait(&s, 4);
    std::thread::sleep(Duration::from_millis(300));
    set_workers(&s, 2);
    reload_and_wait(&s, 2);
    std::thread::sleep(Duration::from_millis(300));
    let (fresh, ka) = load.finish();
    eprintln!("fresh: {fresh:?}\nkeep-alive: {ka:?}");
    assert!(fresh.ok > 1000 && ka.ok > 1000, "too little load: {fresh:?} {ka:?}");
    assert_eq!(fresh.failed, 0, "fresh-connection requests failed: {:?}", fresh.errors);
    assert_eq!(ka.mid_response, 0, "keep-alive responses broke: {:?}", ka.errors);
    assert_eq!(ka.failed, 0, "keep-alive requests failed: {:?}", ka.errors);
    assert!(s.log().contains("reload complete: generation 3"), "{}", s.log());
    assert_eq!(s.status()["master"]["reloads"], 2);
}

#[test]
fn a_config_error_on_hup_keeps_the_old_workers_serving() {
    let s = Server::start(&config("workers = 2", "", ""));
    let workers = s.wait_workers(2);
    std::fs::write(&s.config, "[server]\nworkers = 2\nbogus = 1\n").expect("write");
    s.signal(Signal::SIGHUP);
    assert!(s.wait_log("reload refused", Duration::from_secs(10)), "{}", s.log());
    assert!(s.log().contains("bogus"), "the log names the bad key: {}", s.log());
    assert_eq!(get(s.addr(), "/").text(), "test");
    assert_eq!(s.workers(), workers, "the same workers keep serving");
    assert_eq!(s.status()["master"]["failed_reloads"], 1);
    assert_eq!(generation(&s), 1);
}

#[test]
fn a_reload_whose_workers_cannot_boot_is_undone() {
    // The variable makes the fault processor panic when a worker builds it;
    // the first config does not use it, the reloaded one does.
    let s = Server::start_env(&config("workers = 2", "", ""), &[("AERIE_FAULT_PANIC_AT_BUILD", "1")]);
    let old = s.wait_workers(2);
    let text = std::fs::read_to_string(&s.config).expect("read");
    std::fs::write(&s.config, format!("{text}\n[[listen.route]]\nprefix = \"/fault\"\npipeline = [\"fault\"]\n"))
        .expect("write");
    s.signal(Signal::SIGHUP);
    assert!(s.wait_log("reload to generation 2 failed", Duration::from_secs(20)), "{}", s.log());
    assert!(s.log().contains("fault panicked while starting"));
    wait_until("the failed generation to be gone", Duration::from_secs(20), || s.workers() == old);
    assert_eq!(get(s.addr(), "/").text(), "test");
    assert_eq!(generation(&s), 1);
    assert!(is_alive(s.pid()), "the master keeps running");
}

#[test]
fn a_processor_that_panics_at_start_stops_the_master_with_the_boot_failure_message() {
    let dir = TempDir::new("boot");
    let cfg = dir.path().join("a.toml");
    // Four workers fail at once: the master must not wait for workers it
    // already reaped (it once did, forever).
    std::fs::write(&cfg, with_fault("workers = 4")).expect("write");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_aerie"))
        .arg("-c")
        .arg(&cfg)
        .env("AERIE_FAULT_PANIC_AT_BUILD", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the master did not stop after its workers failed to boot");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("fault panicked while starting"), "{err}");
    assert!(err.contains("workers cannot start"), "{err}");
    assert!(err.matches("started worker").count() <= 4, "no restart loop: {err}");
}

#[test]
fn a_worker_that_keeps_crashing_is_restarted_with_backoff() {
    let s = Server::start(&with_fault("workers = 1"));
    for _ in 0..7 {
        let mut c = Client::connect(s.addr());
        c.send(b"GET /fault/abort HTTP/1.1\r\n\r\n");
        let _ = c.try_read_response(false);
        if s.log().contains("crash loop") {
            break;
        }
        wait_until("a replacement", Duration::from_secs(40), || s.workers().len() == 1);
    }
    assert!(s.wait_log("crash loop: 5 workers died within 10s", Duration::from_secs(10)), "{}", s.log());
    assert!(s.log().contains("killed by SIGABRT"), "the reason is logged");
    // It comes back after the delay and serves.
    wait_until("a replacement after the backoff", Duration::from_secs(40), || s.workers().len() == 1);
    wait_until("serving again", Duration::from_secs(10), || get(s.addr(), "/").status == 200);
}

#[test]
fn a_panicking_request_is_a_500_and_the_worker_lives_on() {
    let s = Server::start(&with_fault("workers = 1"));
    let w = s.wait_workers(1);
    let r = get(s.addr(), "/fault/panic");
    assert_eq!(r.status, 500);
    assert_eq!(get(s.addr(), "/").text(), "test");
    assert_eq!(s.workers(), w);
    assert!(s.log().contains("processor panicked"));
}

#[test]
fn sigkill_of_a_worker_under_load_is_replaced_within_a_second() {
    let s = Server::start(&config("workers = 2", "", "[log]\naccess = false"));
    let before = s.wait_workers(2);
    let load = Load::start(s.addr(), 2, 2);
    std::thread::sleep(Duration::from_millis(200));
    let victim = before[0];
    let t = Instant::now();
    kill(Pid::from_raw(victim as i32), Signal::SIGKILL).expect("kill");
    wait_until("a replacement", Duration::from_secs(5), || {
        let now = s.workers();
        now.len() == 2 && !now.contains(&victim)
    });
    let took = t.elapsed();
    // Ready as well as forked.
    wait_until("the replacement to be ready", Duration::from_secs(5), || ready_workers(&s, 1) == 2);
    std::thread::sleep(Duration::from_millis(200));
    let (fresh, ka) = load.finish();
    eprintln!("replaced in {took:?}; fresh {fresh:?}; keep-alive {ka:?}");
    assert!(took < Duration::from_secs(1), "replacement took {took:?}");
    // Only requests in flight on the killed worker may fail: a handful.
    assert!(fresh.failed <= 4, "{fresh:?}");
    assert!(ka.mid_response + ka.failed <= 4, "{ka:?}");
}

#[test]
fn a_stopped_worker_is_killed_and_replaced_after_worker_timeout() {
    // The loop beats once a second, so at SIGSTOP its heartbeat may be up
    // to a second old: the kill comes 2-3 s later, never before 1.5 s.
    let s = Server::start(&config("workers = 1\nworker_timeout = 3", "", ""));
    let w = s.wait_workers(1)[0];
    kill(Pid::from_raw(w as i32), Signal::SIGSTOP).expect("stop");
    let t = Instant::now();
    wait_until("the hung worker to be replaced", Duration::from_secs(15), || {
        let now = s.workers();
        now.len() == 1 && now[0] != w
    });
    assert!(t.elapsed() >= Duration::from_millis(1500), "killed before worker_timeout: {:?}", t.elapsed());
    assert!(s.log().contains("stopped responding"), "{}", s.log());
    wait_until("serving", Duration::from_secs(5), || get(s.addr(), "/").status == 200);
    assert_eq!(s.status()["master"]["worker_timeouts"], 1);
}

#[test]
fn ttin_and_ttou_change_the_worker_count_shown_by_status() {
    let s = Server::start(&config("workers = 2", "", ""));
    s.wait_workers(2);
    s.signal(Signal::SIGTTIN);
    wait_until("3 workers", Duration::from_secs(10), || {
        s.status()["workers"].as_array().map_or(0, |w| w.len()) == 3 && s.workers().len() == 3
    });
    assert_eq!(s.status()["master"]["target_workers"], 3);
    // Signals of one kind do not queue: send the second after the first acted.
    s.signal(Signal::SIGTTOU);
    wait_until("2 workers", Duration::from_secs(40), || {
        s.status()["master"]["target_workers"] == 2 && s.workers().len() == 2
    });
    s.signal(Signal::SIGTTOU);
    wait_until("1 worker", Duration::from_secs(40), || {
        s.status()["workers"].as_array().map_or(0, |w| w.len()) == 1 && s.workers().len() == 1
    });
    assert_eq!(s.status()["master"]["target_workers"], 1);
    assert_eq!(get(s.addr(), "/").status, 200);
}

#[test]
fn status_reports_workers_and_queues() {
    let s = Server::start(&config("workers = 2", "", ""));
    for _ in 0..10 {
        assert_eq!(get(s.addr(), "/echo").status, 200);
    }
    // Figures reach the scoreboard on each worker's next tick.
    wait_until("the requests to be counted", Duration::from_secs(5), || {
        let st = s.status();
        let total: u64 = st["workers"].as_array().map_or(0, |w| w.iter().filter_map(|w| w["requests"].as_u64()).sum());
        total >= 10
            && st["workers"].as_array().is_some_and(|w| {
                w.iter().any(|w| w["queues"].as_array().is_some_and(|q| q.iter().any(|q| q["name"] == "echo:echo")))
            })
    });
    let st = s.status();
    assert_eq!(st["master"]["pid"], s.pid());
    assert_eq!(st["master"]["generation"], 1);
    let w = &st["workers"][0];
    assert_eq!(w["state"], "ready");
    assert!(w["heartbeat_age_s"].as_f64().is_some_and(|a| a < 3.0), "{w}");
    let q = st["workers"]
        .as_array()
        .and_then(|ws| {
            ws.iter()
                .flat_map(|w| w["queues"].as_array().cloned().unwrap_or_default())
                .find(|q| q["name"] == "echo:echo")
        })
        .expect("echo queue");
    assert_eq!(q["capacity"], 64);
    assert_eq!(q["threads"], 4);
    assert_eq!(s.admin_get("/nope").status, 404);
}

#[test]
fn metrics_are_valid_prometheus_text() {
    let s = Server::start(&config("workers = 2", "", ""));
    assert_eq!(get(s.addr(), "/echo").status, 200);
    wait_until("queue figures", Duration::from_secs(5), || {
        s.admin_get("/metrics").text().contains("aerie_queue_depth{")
    });
    let m = s.admin_get("/metrics");
    assert!(m.header("content-type").is_some_and(|c| c.starts_with("text/plain; version=0.0.4")));
    let text = m.text();
    assert!(text.contains("# TYPE aerie_worker_requests_total counter"));
    assert!(text.contains("aerie_queue_shed_total{"));
    // A real parser: Python's prometheus_client, in the project's test venv.
    let python = crate::util::python_with(&["prometheus_client"]);
    let dir = TempDir::new("prom");
    let f = dir.path().join("m.txt");
    std::fs::write(&f, &text).expect("write");
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(
            "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\n\
             fams = list(p(open(sys.argv[1]).read()))\nnames = {f.name for f in fams}\n\
             assert 'aerie_worker_requests' in names, names\nassert 'aerie_queue_depth' in names, names\n\
             print(len(fams), sum(len(f.samples) for f in fams))",
        )
        .arg(&f)
        .output()
        .expect("run python");
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), text);
}

#[test]
fn term_lets_a_slow_request_finish_then_exits_and_int_exits_at_once() {
    let mut s = Server::start(&with_fault("workers = 1\ngraceful_timeout = 20"));
    let mut slow = Client::connect(s.addr());
    slow.send(b"GET /fault/sleep?ms=1500 HTTP/1.1\r\n\r\n");
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    s.signal(Signal::SIGTERM);
    let r = slow.read_response();
    assert_eq!(r.status, 200, "the in-flight request completes");
    assert_eq!(r.header("connection"), Some("close"));
    let st = s.wait_exit(Duration::from_secs(15)).expect("exits");
    assert!(st.success());
    assert!(t.elapsed() >= Duration::from_millis(900), "did not wait for the request: {:?}", t.elapsed());

    let mut s = Server::start(&with_fault("workers = 1\ngraceful_timeout = 20"));
    let mut slow = Client::connect(s.addr());
    slow.send(b"GET /fault/sleep?ms=10000 HTTP/1.1\r\n\r\n");
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    s.signal(Signal::SIGINT);
    let st = s.wait_exit(Duration::from_secs(5)).expect("exits");
    assert!(st.success());
    assert!(t.elapsed() < Duration::from_secs(3), "INT took {:?}", t.elapsed());
    assert!(slow.try_read_response(false).is_none(), "the slow request was cut off");
}

#[test]
fn max_requests_recycles_workers_one_at_a_time() {
    let s =
        Server::start(&config("workers = 2\nmax_requests = 50\nmax_requests_jitter = 10", "", "[log]\naccess = false"));
    let first = s.wait_workers(2);
    let mut seen = std::collections::HashSet::new();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        for _ in 0..20 {
            assert_eq!(get(s.addr(), "/").status, 200);
        }
        let now = s.workers();
        // Never fewer than the wanted number serving.
        assert!(now.len() >= 2, "{now:?}");
        seen.extend(now);
        if first.iter().all(|p| !is_alive(*p)) && seen.len() >= 4 {
            break;
        }
    }
    assert!(first.iter().all(|p| !is_alive(*p)), "original workers were not recycled: {}", s.log());
    assert!(s.log().contains("reached max_requests"), "{}", s.log());
}

#[test]
fn usr1_reopens_log_files() {
    let dir = TempDir::new("logs");
    let err = dir.path().join("error.log");
    let acc = dir.path().join("access.log");
    let s = Server::start(&config(
        "workers = 1",
        "",
        &format!("[log]\nerror_log = {:?}\naccess_log = {:?}", err.display().to_string(), acc.display().to_string()),
    ));
    assert_eq!(get(s.addr(), "/").status, 200);
    wait_until("an access line", Duration::from_secs(5), || {
        std::fs::read_to_string(&acc).is_ok_and(|t| t.contains("status=200"))
    });
    assert!(std::fs::read_to_string(&err).expect("error log").contains("worker started"));
    std::fs::rename(&acc, dir.path().join("access.log.1")).expect("rotate");
    std::fs::rename(&err, dir.path().join("error.log.1")).expect("rotate");
    s.signal(Signal::SIGUSR1);
    wait_until("the files to be reopened", Duration::from_secs(5), || {
        std::fs::read_to_string(&err).is_ok_and(|t| t.contains("log files reopened"))
    });
    wait_until("requests to land in the new access log", Duration::from_secs(5), || {
        let _ = get(s.addr(), "/?after");
        std::fs::read_to_string(&acc).is_ok_and(|t| t.contains("path=/?after"))
    });
}

#[test]
fn control_commands_reload_status_and_stop_the_running_server() {
    let dir = TempDir::new("ctl");
    let pid_file = dir.path().join("aerie.pid");
    let port = free_port();
    let text = config("workers = 1", "", "")
        .replace("[admin]\naddress = \"127.0.0.1:0\"", &format!("[admin]\naddress = \"127.0.0.1:{port}\""));
    let text = text.replacen("[server]\n", &format!("[server]\npid_file = {:?}\n", pid_file.display().to_string()), 1);
    let mut s = Server::start(&text);
    assert_eq!(std::fs::read_to_string(&pid_file).expect("pid file").trim(), s.pid().to_string());
    let run = |cmd: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_aerie")).args([cmd, "-c"]).arg(&s.config).output().expect("run")
    };
    let out = run("status");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["master"]["pid"], s.pid());
    let out = run("reload");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("generation 2"));
    std::fs::write(&s.config, "[server]\nnope = 1\n").expect("break config");
    let out = run("reload");
    assert_eq!(out.status.code(), Some(2), "a bad config is refused before signalling");
    std::fs::write(&s.config, &text).expect("restore");
    let out = run("stop");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(s.wait_exit(Duration::from_secs(5)).is_some());
    assert!(!pid_file.exists(), "pid file removed on exit");
}

#[test]
fn listeners_added_on_reload_are_bound_and_removed_ones_closed() {
    let s = Server::start(&config("workers = 1", "", ""));
    let text = std::fs::read_to_string(&s.config).expect("read");
    let port = free_port();
    std::fs::write(&s.config, format!("{text}\n[[listen]]\naddress = \"127.0.0.1:{port}\"\npipeline = [\"hello\"]\n"))
        .expect("write");
    reload_and_wait(&s, 1);
    let added: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    assert_eq!(get(added, "/").text(), "test");
    assert_eq!(get(s.addr(), "/").text(), "test", "the kept listener still serves");
    std::fs::write(&s.config, &text).expect("write");
    reload_and_wait(&s, 1);
    wait_until("the removed listener to close", Duration::from_secs(10), || {
        std::net::TcpStream::connect(added).is_err()
    });
}

#[test]
fn systemd_socket_activation_adopts_the_socket_and_notifications_follow_the_lifecycle() {
    let dir = TempDir::new("sd");
    let port = free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let cfg = dir.path().join("a.toml");
    std::fs::write(
        &cfg,
        format!("[server]\nworkers = 1\n[admin]\naddress = \"\"\n[[listen]]\naddress = \"{addr}\"\npipeline = [\"hello\"]\n"),
    )
    .expect("write");
    let sock = dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&sock).expect("notify socket");
    notify.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    // Do what systemd does: bind the socket, hand it down as fd 3 with
    // LISTEN_FDS=1 and LISTEN_PID naming the process that execs aerie.
    let launcher = "import os, socket, sys\n\
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
        s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(128)\n\
        os.dup2(s.fileno(), 3)\n\
        os.environ['LISTEN_PID'] = str(os.getpid()); os.environ['LISTEN_FDS'] = '1'\n\
        os.execv(sys.argv[2], [sys.argv[2], '-c', sys.argv[3]])\n";
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(launcher)
        .arg(port.to_string())
        .arg(env!("CARGO_BIN_EXE_aerie"))
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &sock)
        .stderr(std::fs::File::create(dir.path().join("log")).expect("log"))
        .spawn()
        .expect("spawn");
    let log = || std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
    let recv = || {
        let mut buf = [0u8; 4096];
        let n = notify.recv(&mut buf).unwrap_or_else(|e| panic!("no notification ({e}): {}", log()));
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let ready = recv();
    assert!(ready.contains("READY=1") && ready.contains(&format!("MAINPID={}", child.id())), "{ready}");
    assert_eq!(get(addr, "/").text(), "test", "served on the adopted socket");
    assert!(!log().contains("inherited"), "{}", log());
    kill(Pid::from_raw(child.id() as i32), Signal::SIGHUP).expect("hup");
    assert!(recv().contains("RELOADING=1"));
    assert!(recv().contains("READY=1"));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("term");
    assert!(recv().contains("STOPPING=1"));
    assert!(child.wait().expect("wait").success());
}

#[test]
fn worker_sockets_are_close_on_exec() {
    let s = Server::start(&config("workers = 1", "", ""));
    let w = s.wait_workers(1)[0];
    let mut c = Client::connect(s.addr());
    c.send(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(c.read_response().status, 200);
    let mut sockets = 0;
    for e in std::fs::read_dir(format!("/proc/{w}/fd")).expect("fds").flatten() {
        let target = std::fs::read_link(e.path()).unwrap_or_default();
        if !target.to_string_lossy().starts_with("socket:") {
            continue;
        }
        sockets += 1;
        let info =
            std::fs::read_to_string(format!("/proc/{w}/fdinfo/{}", e.file_name().to_string_lossy())).expect("fdinfo");
        let flags = info.lines().find_map(|l| l.strip_prefix("flags:")).expect("flags").trim();
        let flags = u32::from_str_radix(flags, 8).expect("octal");
        assert!(flags & 0o2000000 != 0, "socket fd {:?} is not CLOEXEC ({flags:o})", e.file_name());
    }
    assert!(sockets >= 3, "listener, admin listener and the client connection");
}

#[test]
fn workers_drop_to_the_configured_user_and_the_master_keeps_its_own() {
    if !nix::unistd::geteuid().is_root() {
        panic!("this test needs root (CI runs as root): it checks that workers leave root");
    }
    let s = Server::start(&config("workers = 1\nuser = \"nobody\"", "", ""));
    let nobody = nix::unistd::User::from_name("nobody").expect("lookup").expect("a nobody user");
    let v = get(s.addr(), "/echo").json();
    assert_eq!(v["worker"]["uid"], nobody.uid.as_raw());
    assert_eq!(v["worker"]["gid"], nobody.gid.as_raw());
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.pid())).expect("status");
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).expect("uid");
    assert!(uid_line.split_whitespace().nth(1) == Some("0"), "{uid_line}");
    // A reload still works (the master can bind as root) and workers stay unprivileged.
    let port = free_port();
    let text = std::fs::read_to_string(&s.config).expect("read");
    std::fs::write(&s.config, format!("{text}\n[[listen]]\naddress = \"127.0.0.1:{port}\"\npipeline = [\"echo\"]\n"))
        .expect("write");
    reload_and_wait(&s, 1);
    let added: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    assert_eq!(get(added, "/").json()["worker"]["uid"], nobody.uid.as_raw());
}

/// A start while another process still holds a configured address (a
/// server that is stopping) keeps trying for `bind_timeout`, then serves;
/// with `bind_timeout = 0` it fails at once, naming the address.
#[test]
fn a_start_waits_for_an_address_still_held_and_bind_timeout_zero_fails_at_once() {
    let port = free_port();
    let held = std::net::TcpListener::bind(("127.0.0.1", port)).expect("hold the port");
    let text = |timeout: &str| {
        config(&format!("workers = 1\nbind_timeout = {timeout}"), "", "").replacen(
            "address = \"127.0.0.1:0\"\npipeline",
            &format!("address = \"127.0.0.1:{port}\"\npipeline"),
            1,
        )
    };
    let dir = TempDir::new("bind");
    let cfg = dir.path().join("a.toml");
    std::fs::write(&cfg, text("0")).expect("write");
    let started = std::time::Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aerie")).arg("-c").arg(&cfg).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("could not listen on 127.0.0.1:{port}")), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "bind_timeout = 0 does not wait");
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(held);
    });
    let s = Server::start(&text("30"));
    release.join().expect("release");
    assert_eq!(s.addr().port(), port);
    assert_eq!(get(s.addr(), "/").text(), "test");
    assert!(s.log().contains("is in use: trying again"), "{}", s.log());
}
