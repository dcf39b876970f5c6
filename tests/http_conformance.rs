//! HTTP/1.1 behaviour of the worker loop, against the real binary.

use crate::util::{config, get, md5_hex, raise_nofile, request, rss, Client, Server};
use std::io::Write;
use std::time::{Duration, Instant};

fn one_worker() -> Server {
    Server::start(&config("workers = 1", "", ""))
}

#[test]
fn hello_answers_test_with_date_and_server() {
    let s = one_worker();
    let r = get(s.addr(), "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "test");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert!(r.header("date").is_some_and(|d| d.ends_with(" GMT")));
    assert!(r.header("server").is_some_and(|v| v.starts_with("aerie/")));
    assert_eq!(r.header("connection"), Some("close"));
}

#[test]
fn keep_alive_connection_is_reused() {
    let s = one_worker();
    let mut c = Client::connect(s.addr());
    for i in 0..5 {
        c.send(format!("GET /echo/{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let r = c.read_response();
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["path"], format!("/echo/{i}"));
        assert_eq!(r.header("connection"), None, "HTTP/1.1 keep-alive is implicit");
    }
    let peers: Vec<String> = (0..2)
        .map(|_| {
            c.send(b"GET /echo HTTP/1.1\r\n\r\n");
            c.read_response().json()["peer"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    assert_eq!(peers[0], peers[1], "the same TCP connection served both");
}

#[test]
fn a_request_that_arrives_with_the_clients_close_is_answered_and_the_close_seen() {
    let s = one_worker();
    // Whether the FIN lands in the same readiness event as the request is
    // up to the scheduler; twenty connections make it all but certain.
    for i in 0..20 {
        let mut c = Client::connect(s.addr());
        c.send(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(c.read_response().status, 200);
        // The next request and the FIN at once, on a connection the loop
        // has seen readable before: the read that takes the request is
        // short, and only the close reported with it (RDHUP) tells the
        // loop to read on.
        c.send(b"GET / HTTP/1.1\r\n\r\n");
        c.stream().shutdown(std::net::Shutdown::Write).expect("half close");
        assert_eq!(c.read_response().status, 200);
        assert!(
            c.closed_within(Duration::from_secs(10)),
            "connection {i}: the server saw the close at once, not after keepalive_timeout (60 s)"
        );
    }
}

#[test]
fn three_pipelined_requests_are_answered_in_order() {
    let s = Server::start(&config("workers = 1", "", "[processors.echo]\nthreads_per_device = 4"));
    let mut c = Client::connect(s.addr());
    let mut batch = Vec::new();
    for i in 1..=3 {
        batch.extend_from_slice(
            format!("POST /echo/{i} HTTP/1.1\r\nContent-Length: {i}\r\n\r\n{}", "x".repeat(i)).as_bytes(),
        );
    }
    c.send(&batch);
    for i in 1..=3 {
        let r = c.read_response();
        assert_eq!(r.status, 200);
        let v = r.json();
        assert_eq!(v["path"], format!("/echo/{i}"));
        assert_eq!(v["body"]["bytes"], i);
    }
    // Inline and pooled requests mixed in one write keep their order too.
    c.send(b"GET / HTTP/1.1\r\n\r\nGET /echo/a HTTP/1.1\r\n\r\nHEAD / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    assert_eq!(c.read_response().text(), "test");
    assert_eq!(c.read_response().json()["path"], "/echo/a");
    let h = c.read_head_response();
    assert_eq!(h.header("content-length"), Some("4"));
    assert_eq!(c.read_response().text(), "test");
}

#[test]
fn http10_closes_unless_keep_alive_is_asked() {
    let s = one_worker();
    let mut c = Client::connect(s.addr());
    c.send(b"GET / HTTP/1.0\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.text(), "test");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed());
    let mut c = Client::connect(s.addr());
    c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(c.read_response().header("connection"), Some("keep-alive"));
    c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(c.read_response().text(), "test");
}

#[test]
fn connection_close_from_the_client_is_honoured() {
    let s = one_worker();
    let mut c = Client::connect(s.addr());
    c.send(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed(), "nothing after a Connection: close request is served");
}

#[test]
fn head_has_headers_but_no_body() {
    let s = one_worker();
    let mut c = Client::connect(s.addr());
    c.send(b"HEAD / HTTP/1.1\r\n\r\n");
    let r = c.read_head_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("4"));
    // If a body had been sent, it would be read as the next status line.
    c.send(b"GET /healthcheck HTTP/1.1\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "OK");
}

#[test]
fn chunked_upload_of_100_mib_streams_through_echo_with_bounded_memory() {
    let s = Server::start(&config("workers = 1", "", ""));
    let worker = s.wait_workers(1)[0];
    // Warm up: create the echo pool so its threads are counted in the baseline.
    assert_eq!(get(s.addr(), "/echo").status, 200);
    let before = rss(worker);
    let mut c = Client::connect(s.addr());
    c.send(b"PUT /echo/big HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    let mut hasher_input = vec![0u8; 256 * 1024];
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut md5 = md5_ctx();
    let mut peak = before;
    let total = 100 * 1024 * 1024;
    let mut sent = 0;
    while sent < total {
        for b in hasher_input.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
        md5_update(&mut md5, &hasher_input);
        c.send(format!("{:x}\r\n", hasher_input.len()).as_bytes());
        c.send(&hasher_input);
        c.send(b"\r\n");
        sent += hasher_input.len();
        peak = peak.max(rss(worker));
    }
    c.send(b"0\r\n\r\n");
    let r = c.read_response();
    peak = peak.max(rss(worker));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["body"]["bytes"], total as u64);
    assert_eq!(v["body"]["md5"], md5_finish(md5));
    let growth = peak.saturating_sub(before);
    assert!(growth < 16 * 1024 * 1024, "worker RSS grew by {growth} bytes (from {before})");
}

fn md5_ctx() -> md5::Md5 {
    use md5::Digest;
    md5::Md5::new()
}

fn md5_update(c: &mut md5::Md5, d: &[u8]) {
    use md5::Digest;
    c.update(d);
}

fn md5_finish(c: md5::Md5) -> String {
    use md5::Digest;
    c.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn content_length_upload_md5_matches() {
    let s = one_worker();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut c = Client::connect(s.addr());
    c.send(format!("POST /echo HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes());
    c.send(&body);
    let v = c.read_response().json();
    assert_eq!(v["body"]["md5"], md5_hex(&body));
    assert_eq!(v["body"]["bytes"], body.len());
}

#[test]
fn continue_is_sent_when_the_processor_reads_the_body() {
    let s = one_worker();
    let mut c = Client::connect(s.addr());
    c.send(b"PUT /echo/x HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let (status, _) = c.read_head().expect("interim response");
    assert_eq!(status, 100, "100 Continue before the body is sent");
    c.send(b"hello");
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["body"]["md5"], md5_hex(b"hello"));
}

#[test]
fn continue_is_not_sent_when_the_processor_answers_first() {
    let s = one_worker();
    let mut c = Client::connect(s.addr());
    // hello never reads the body: the final answer comes at once, no 100,
    // and since the body was never asked for the connection is closed.
    c.send(b"PUT / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let (status, headers) = c.read_head().expect("final response");
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("connection") && v == "close"));
}

#[test]
fn an_unread_small_body_is_discarded_and_the_connection_kept() {
    let s = one_worker();
    let mut c = Client::connect(s.addr());
    c.send(b"PUT / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /echo/after HTTP/1.1\r\n\r\n");
    assert_eq!(c.read_response().text(), "test");
    assert_eq!(c.read_response().json()["path"], "/echo/after");
}

#[test]
fn limits_answer_with_their_status() {
    let s = Server::start(&config(
        "workers = 1\nmax_request_line = 100\nmax_header_bytes = 1024\nmax_headers = 10",
        "max_body_size = 1000",
        "",
    ));
    let a = s.addr();
    let cases: Vec<(String, u16)> = vec![
        (format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(200)), 414),
        (format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "v".repeat(2000)), 431),
        (format!("GET / HTTP/1.1\r\n{}\r\n", (0..11).map(|i| format!("X-{i}: v\r\n")).collect::<String>()), 431),
        ("POST /echo HTTP/1.1\r\nContent-Length: 1001\r\n\r\n".to_string(), 413),
        ("POST /echo HTTP/1.1\r\nHost: t\r\n\r\n".to_string(), 411),
        ("PUT /echo HTTP/1.1\r\nHost: t\r\n\r\n".to_string(), 411),
        ("GET / HTTP/1.1\r\nExpect: something\r\n\r\n".to_string(), 417),
    ];
    for (raw, want) in cases {
        let mut c = Client::connect(a);
        c.send(raw.as_bytes());
        let r = c.read_response();
        assert_eq!(r.status, want, "{:?}", &raw[..raw.len().min(60)]);
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.is_closed(), "connection closed after {want}");
    }
    // A chunked body that grows past the limit is cut off with 413.
    let mut c = Client::connect(a);
    c.send(b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    for _ in 0..3 {
        c.send(format!("{:x}\r\n{}\r\n", 500, "z".repeat(500)).as_bytes());
    }
    let r = c.read_response();
    assert_eq!(r.status, 413);
    // GET without a body needs no length.
    assert_eq!(get(a, "/").status, 200);
}

#[test]
fn smuggling_patterns_get_400_and_a_closed_connection() {
    let s = one_worker();
    let cases = [
        "POST /echo HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        "GET / HTTP/1.1\r\nX-A: a\r\n  folded: yes\r\n\r\n",
        "GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n",
        "POST /echo HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    ];
    for raw in cases {
        let mut c = Client::connect(s.addr());
        c.send(raw.as_bytes());
        let r = c.read_response();
        assert_eq!(r.status, 400, "{raw:?}: {}", r.text());
        assert!(c.is_closed(), "{raw:?} leaves the connection open");
    }
    // A fresh connection is served normally afterwards.
    assert_eq!(get(s.addr(), "/").text(), "test");
}

#[test]
fn a_half_sent_head_is_closed_after_the_header_timeout_while_others_are_served() {
    let s = Server::start(&config("workers = 1\nheader_timeout = 1.0", "", ""));
    let mut slow = Client::connect(s.addr());
    slow.send(b"GET / HTTP/1.1\r\nHost: ");
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(get(s.addr(), "/").status, 200);
    }
    slow.set_timeout(Duration::from_secs(10));
    let r = slow.try_read_response(false).expect("a 408 before closing");
    assert_eq!(r.status, 408);
    assert!(slow.is_closed());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(8), "closed after {waited:?}");
}

#[test]
fn idle_keep_alive_connections_are_closed_after_the_keepalive_timeout() {
    let s = Server::start(&config("workers = 1\nkeepalive_timeout = 1.0", "", ""));
    let mut c = Client::connect(s.addr());
    c.send(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(c.read_response().status, 200);
    let t = Instant::now();
    c.set_timeout(Duration::from_secs(10));
    assert!(c.is_closed());
    assert!(t.elapsed() >= Duration::from_millis(800), "closed too early: {:?}", t.elapsed());
}

#[test]
fn a_stalled_body_gets_408_after_the_body_timeout() {
    let s = Server::start(&config("workers = 1\nbody_timeout = 1.0", "", ""));
    let mut c = Client::connect(s.addr());
    c.send(b"PUT /echo/slow HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly some");
    c.set_timeout(Duration::from_secs(10));
    let r = c.read_response();
    assert_eq!(r.status, 408);
    assert!(c.is_closed());
    assert!(s.log().contains("request body stalled"), "the stall is logged");
}

#[test]
fn max_connections_stops_accepting_until_a_slot_frees() {
    let s = Server::start(&config("workers = 1\nmax_connections = 2", "", ""));
    let mut a = Client::connect(s.addr());
    let mut b = Client::connect(s.addr());
    a.send(b"GET / HTTP/1.1\r\n\r\n");
    b.send(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(a.read_response().status, 200);
    assert_eq!(b.read_response().status, 200);
    // The third connection sits in the backlog, unserved.
    let mut c = Client::connect(s.addr());
    c.send(b"GET / HTTP/1.1\r\n\r\n");
    c.set_timeout(Duration::from_millis(500));
    assert!(c.try_read_response(false).is_none(), "served beyond max_connections");
    c.set_timeout(Duration::from_secs(10));
    drop(a);
    let r = c.read_response();
    assert_eq!(r.status, 200, "served once a slot freed");
    assert!(s.log().contains("max_connections (2) reached"));
}

#[test]
fn a_thousand_idle_keep_alive_connections_do_not_stop_hello() {
    raise_nofile();
    let s = one_worker();
    let mut idle = Vec::new();
    for _ in 0..1000 {
        let mut c = Client::connect(s.addr());
        c.send(b"GET / HTTP/1.1\r\n\r\n");
        idle.push(c);
    }
    for c in idle.iter_mut() {
        assert_eq!(c.read_response().status, 200);
    }
    let t = Instant::now();
    for _ in 0..20 {
        assert_eq!(get(s.addr(), "/").text(), "test");
    }
    assert!(t.elapsed() < Duration::from_secs(5));
    // And they are all still open and usable.
    for c in idle.iter_mut().step_by(97) {
        c.send(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(c.read_response().status, 200);
    }
}

#[test]
fn a_full_pooled_queue_answers_503_with_retry_after_at_once() {
    let s =
        Server::start(&config("workers = 1", "", "[processors.echo]\nthreads_per_device = 1\nqueue_per_device = 1"));
    // A occupies the only thread (echo waits for a body that is not sent
    // yet); B waits in the only queue slot.
    let mut a = Client::connect(s.addr());
    a.send(b"PUT /echo/a HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(a.read_head().expect("100").0, 100);
    let mut b = Client::connect(s.addr());
    b.send(b"PUT /echo/b HTTP/1.1\r\nContent-Length: 3\r\n\r\n");
    // B sits in the queue; wait until C is refused, which also proves B queued.
    let t = Instant::now();
    let r = request(s.addr(), "GET /echo/c HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(t.elapsed() < Duration::from_secs(2), "503 took {:?}", t.elapsed());
    a.send(b"abc");
    assert_eq!(a.read_response().status, 200);
    b.send(b"xyz");
    assert_eq!(b.read_response().json()["body"]["md5"], md5_hex(b"xyz"));
    // Hello is inline and never queued.
    assert_eq!(get(s.addr(), "/").status, 200);
}

#[test]
fn echo_reports_request_details() {
    let s = one_worker();
    let mut c = Client::connect(s.addr());
    c.send(b"POST /echo/p%20q?x=1&y HTTP/1.1\r\nHost: h\r\nX-One: 1\r\nX-One: 2\r\nContent-Length: 2\r\n\r\nhi");
    let v = c.read_response().json();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/echo/p%20q");
    assert_eq!(v["query"], "x=1&y");
    assert_eq!(v["headers"][1], serde_json::json!(["X-One", "1"]));
    assert_eq!(v["headers"][2], serde_json::json!(["X-One", "2"]));
    assert!(v["worker"]["pid"].as_u64().is_some());
    assert!(v["peer"].as_str().is_some_and(|p| p.starts_with("127.0.0.1:")));
}

#[test]
fn chunked_responses_are_not_used_for_known_lengths() {
    let s = one_worker();
    let mut c = Client::connect(s.addr());
    c.stream().write_all(b"GET /echo HTTP/1.1\r\n\r\n").expect("send");
    let r = c.read_response();
    assert!(r.header("content-length").is_some());
    assert!(r.header("transfer-encoding").is_none());
}
