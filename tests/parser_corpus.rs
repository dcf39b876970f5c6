//! The request-parser corpus: `tests/requests/{valid,invalid}/NAME.http`
//! (escapes `\r \n \t \0 \\ \xNN`; real newlines ignored) with the expected
//! outcome in `NAME.expect`. Every case is parsed whole, split at every byte
//! offset, and in pseudo-random chunk sizes; all must give the same outcome.

use aerie::http::{parse_head, BodyDecoder, ChunkedDecoder, HeadLimits};
use aerie_api::{BodyFraming, Version};
use std::path::Path;

const LIMITS: HeadLimits = HeadLimits { max_request_line: 8192, max_header_bytes: 65536, max_headers: 100 };

fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\n' => i += 1,
            b'\\' if i + 1 < b.len() => {
                match b[i + 1] {
                    b'r' => out.push(b'\r'),
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'0' => out.push(0),
                    b'\\' => out.push(b'\\'),
                    b'x' => {
                        let hex = std::str::from_utf8(&b[i + 2..i + 4]).expect("hex escape");
                        out.push(u8::from_str_radix(hex, 16).expect("hex escape"));
                        i += 2;
                    }
                    other => panic!("unknown escape \\{}", other as char),
                }
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Request {
        method: String,
        target: Vec<u8>,
        version: &'static str,
        headers: Vec<(Vec<u8>, Vec<u8>)>,
        keep_alive: bool,
        expect_continue: bool,
        body: Vec<u8>,
    },
    Error(u16),
    Incomplete,
}

/// Feed the bytes in the given pieces, as a connection would receive them.
fn feed(pieces: &[&[u8]]) -> Outcome {
    let mut buf: Vec<u8> = Vec::new();
    let mut head = None;
    let mut decoder: Option<BodyDecoder> = None;
    let mut body = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        if head.is_none() {
            match parse_head(&buf, &LIMITS) {
                Ok(Some(h)) => {
                    decoder = match h.framing {
                        BodyFraming::None => None,
                        BodyFraming::Length(n) => Some(BodyDecoder::Length(n)),
                        BodyFraming::Chunked => Some(BodyDecoder::Chunked(ChunkedDecoder::new(4096))),
                    };
                    let len = h.len;
                    head = Some((h, buf[..len].to_vec()));
                    buf.drain(..len);
                }
                Ok(None) => continue,
                Err(e) => return Outcome::Error(e.status().0),
            }
        }
        if let Some(d) = decoder.as_mut() {
            match d.decode(&buf, &mut body, usize::MAX) {
                Ok(n) => {
                    buf.drain(..n);
                }
                Err(e) => return Outcome::Error(e.status().0),
            }
        }
    }
    let Some((h, raw)) = head else { return Outcome::Incomplete };
    if decoder.as_ref().is_some_and(|d| !d.is_done()) {
        return Outcome::Incomplete;
    }
    Outcome::Request {
        method: h.method.as_str().to_string(),
        target: raw[h.target.clone()].to_vec(),
        version: if h.version == Version::Http10 { "1.0" } else { "1.1" },
        headers: h.headers.iter().map(|(n, v)| (raw[n.clone()].to_vec(), raw[v.clone()].to_vec())).collect(),
        keep_alive: h.keep_alive,
        expect_continue: h.expect_continue,
        body,
    }
}

fn expected(text: &str) -> Outcome {
    let mut method = String::new();
    let mut target = Vec::new();
    let mut version = "1.1";
    let mut headers = Vec::new();
    let mut keep_alive = true;
    let mut expect_continue = false;
    let mut body = Vec::new();
    for line in text.lines() {
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        match k {
            "status" => return Outcome::Error(v.trim().parse().expect("status")),
            "method" => method = v.to_string(),
            "target" => target = unescape(v),
            "version" => version = if v == "1.0" { "1.0" } else { "1.1" },
            "header" => {
                let (n, val) = v.split_once(": ").expect("header line");
                headers.push((unescape(n), unescape(val)));
            }
            "keep_alive" => keep_alive = v == "true",
            "expect_continue" => expect_continue = v == "true",
            "body" => body = unescape(v),
            "" => {}
            other => panic!("unknown key {other}"),
        }
    }
    Outcome::Request { method, target, version, headers, keep_alive, expect_continue, body }
}

fn cases(dir: &str) -> Vec<(String, Vec<u8>, Outcome)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/requests").join(dir);
    let mut names: Vec<_> = std::fs::read_dir(&root)
        .expect("corpus dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "http"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "empty corpus in {}", root.display());
    names
        .into_iter()
        .map(|p| {
            let raw = unescape(&std::fs::read_to_string(&p).expect("read case"));
            let exp = std::fs::read_to_string(p.with_extension("expect")).expect("every case has an .expect file");
            (p.file_name().expect("name").to_string_lossy().into_owned(), raw, expected(&exp))
        })
        .collect()
}

fn check_all(dir: &str) {
    for (name, raw, want) in cases(dir) {
        assert_eq!(feed(&[&raw]), want, "{name} whole");
        for split in 0..=raw.len() {
            let (a, b) = raw.split_at(split);
            assert_eq!(feed(&[a, b]), want, "{name} split at {split}");
        }
        let mut seed = name.len() as u64 * 2_654_435_761;
        for _ in 0..20 {
            let mut pieces = Vec::new();
            let mut rest: &[u8] = &raw;
            while !rest.is_empty() {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let n = ((seed >> 33) as usize % 7 + 1).min(rest.len());
                let (a, b) = rest.split_at(n);
                pieces.push(a);
                rest = b;
            }
            assert_eq!(feed(&pieces), want, "{name} random chunks");
        }
    }
}

#[test]
fn valid_requests_parse_the_same_however_they_arrive() {
    check_all("valid");
}

#[test]
fn invalid_requests_fail_with_their_status_however_they_arrive() {
    check_all("invalid");
}

#[test]
fn invalid_requests_sent_to_a_server_get_their_status_a_close_and_no_harm() {
    let s = crate::util::Server::start(&crate::util::config("workers = 1", "", ""));
    for (name, raw, want) in cases("invalid") {
        let Outcome::Error(status) = want else { panic!("{name}: an invalid case expects a status") };
        // Bodies go to echo, which reads them (hello would not look).
        let mut raw = raw;
        if raw.starts_with(b"POST / ") || raw.starts_with(b"PUT / ") {
            let at = raw.iter().position(|&b| b == b'/').expect("target");
            raw.splice(at + 1..at + 1, b"echo".iter().copied());
        }
        let mut c = crate::util::Client::connect(s.addr());
        c.send(&raw);
        let r = c.try_read_response(false);
        let got = r.as_ref().map(|r| r.status);
        assert_eq!(got, Some(status), "{name}");
        assert!(c.is_closed(), "{name} leaves the connection open");
        assert_eq!(crate::util::get(s.addr(), "/").text(), "test", "{name}: a fresh connection is served");
    }
}
