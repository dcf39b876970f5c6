//! The fuzz targets' checks, shared by the libFuzzer targets in
//! fuzz_targets/ (cargo fuzz, nightly) and by the stable test
//! tests/fuzz_smoke.rs, which replays seeds and pseudo-random mutations
//! of them through the same checks in CI.
#![allow(dead_code)]

use aerie::http::framing::ChunkedDecoder;
use aerie::http::request::{parse_head, HeadLimits};
use aerie_api::{BodyFraming, Method, RequestHead, RequestHeadParts, Version};
use aerie_object::conditional::{etag_list, parse_http_date};
use aerie_object::range::{resolve, Ranges};
use aerie_storage::db::http::{listing_limit, negotiate, query_pairs};
use aerie_storage::path::{
    decode_path, form_decode, is_safe_device_name, percent_decode, quote, split_path, validate_device_partition,
};
use aerie_storage::pickle::{dumps, loads, loads_metadata};

fn chunked_run(pieces: &[&[u8]]) -> (Vec<u8>, Result<bool, String>) {
    let mut d = ChunkedDecoder::new(4096);
    let mut out = Vec::new();
    for piece in pieces {
        let mut rest = *piece;
        while !rest.is_empty() && !d.is_done() {
            let before = out.len();
            match d.decode(rest, &mut out, 1 << 16) {
                Ok(used) => {
                    assert!(used <= rest.len());
                    assert!(out.len() - before <= 1 << 16);
                    if used == 0 {
                        break;
                    }
                    rest = &rest[used..];
                }
                Err(e) => return (out, Err(format!("{e:?}"))),
            }
        }
    }
    (out, Ok(d.is_done()))
}

/// The request-head parser: never panics; an accepted head's ranges are in
/// bounds of what was parsed, and feeding the same bytes in two pieces
/// gives the same answer as feeding them whole.
pub fn http_head(data: &[u8]) {
    let limits = HeadLimits { max_request_line: 8192, max_header_bytes: 65536, max_headers: 256 };
    let whole = parse_head(data, &limits);
    if let Ok(Some(head)) = &whole {
        assert!(head.len <= data.len());
        assert!(head.target.end <= head.len && head.target.start <= head.target.end);
        for (n, v) in &head.headers {
            assert!(n.end <= head.len && v.end <= head.len);
        }
    }
    // A head complete within a prefix is the same head in the whole.
    if let Some(cut) = data.first().map(|&b| b as usize % (data.len() + 1)) {
        if let Ok(Some(h)) = parse_head(&data[..cut], &limits) {
            match &whole {
                Ok(Some(w)) => assert_eq!(&h, w),
                other => panic!("a prefix parsed as {h:?}, the whole as {other:?}"),
            }
        }
    }
}

/// The chunked body decoder: never panics, never emits more than it was
/// given room for, and decodes the same bytes the same way whether they
/// arrive whole or split at an arbitrary point.
pub fn chunked(data: &[u8]) {
    let whole = chunked_run(&[data]);
    if let Some(&b) = data.first() {
        let cut = b as usize % (data.len() + 1);
        let split = chunked_run(&[&data[..cut], &data[cut..]]);
        // Errors may be found at different points, but a body decoded
        // without error is the same.
        if whole.1.is_ok() && split.1.is_ok() && whole.1 == split.1 {
            assert_eq!(whole.0, split.0);
        }
    }
}

/// Swift path handling: percent-decoding, UTF-8 checks, splitting, device
/// names. Never panics; a device name accepted as safe cannot leave the
/// devices root (no `/`, NUL, `.` or `..`); quoting round-trips through
/// decoding. (NUL may appear in names: it marks Swift's reserved
/// namespace, checked separately.)
pub fn swift_path(data: &[u8]) {
    let _ = form_decode(data);
    let decoded = percent_decode(data);
    if let Ok(path) = decode_path(data) {
        assert_eq!(percent_decode(quote(&path).as_bytes()), path.as_bytes(), "quote round-trips");
        for (min, max, rest) in [(2, 2, false), (3, 5, true), (4, 5, true)] {
            if let Ok(parts) = split_path(&path, min, max, rest) {
                if let Some(Some(device)) = parts.first() {
                    // What the server checks before it joins a device to the root.
                    if validate_device_partition(device, "0").is_ok() && is_safe_device_name(device) {
                        assert!(
                            !device.contains('/')
                                && !device.contains('\0')
                                && device != ".."
                                && device != "."
                                && !device.is_empty(),
                            "unsafe device name accepted: {device:?}"
                        );
                    }
                }
            }
        }
    }
    let _ = decoded;
}

/// Range and conditional headers: never panic, and every satisfiable
/// range lies inside the object.
pub fn range_conditional(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let len = s.len() as u64 * 7919 % 100_000;
    if let Ranges::Spans(spans) = resolve(Some(s), len) {
        assert!(!spans.is_empty());
        for (start, end) in spans {
            // [start, end) inside the object, never empty.
            assert!(start < end && end <= len, "[{start}, {end}) outside 0..{len}");
        }
    }
    let _ = etag_list(s);
    let _ = parse_http_date(s);
}

/// Listing query strings: parameter splitting and decoding, format
/// negotiation and limits. Never panics.
pub fn listing_query(data: &[u8]) {
    let mut raw = b"GET /sda1/0/a/c?".to_vec();
    raw.extend_from_slice(data);
    let target = 4..raw.len();
    raw.extend_from_slice(b" HTTP/1.1\r\n\r\n");
    let head = RequestHead::new(RequestHeadParts {
        raw,
        method: Method::Get,
        target,
        version: Version::Http11,
        headers: Vec::new(),
        peer: "127.0.0.1:1".parse().expect("addr"),
        local: "127.0.0.1:2".parse().expect("addr"),
        framing: BodyFraming::None,
        expect_continue: false,
    });
    if let Ok(q) = query_pairs(&head) {
        let _ = negotiate(&head, &q);
        let limit = q.iter().find(|(k, _)| k == "limit").map(|(_, v)| v.as_str());
        if let Ok(n) = listing_limit(limit, 10_000) {
            assert!(n <= 10_000);
        }
    }
}

/// The pickle reader fed arbitrary xattr bytes (Swift's object metadata):
/// never panics, never loops, and what it accepts as metadata survives a
/// dump and load.
pub fn pickle(data: &[u8]) {
    if let Ok(v) = loads(data) {
        let again = loads(&dumps(&v)).expect("a dumped value loads");
        assert_eq!(dumps(&again), dumps(&v));
    }
    let _ = loads_metadata(data);
    // A suffix-hash dict read in place (hashes.pkl, a REPLICATE answer)
    // is what the full reader makes of the same bytes.
    if let Some(view) = aerie_object::hashes::View::parse(data) {
        let Ok(aerie_storage::pickle::Value::Dict(items)) = loads(data) else {
            panic!("a view of what the full reader refuses")
        };
        let full = aerie_object::hashes::hashes_from_items(items, |_, _| true).expect("hashes");
        assert_eq!(view.len(), full.len());
        let answer = aerie_object::hashes::pickle_hashes(&full);
        let again = aerie_object::hashes::View::parse(&answer).expect("an answer is a view");
        if full.values().all(Option::is_some) {
            assert!(!view.differs_from(&again) && !again.differs_from(&view));
        }
    }
}

/// SSYNC's lines: an offer never panics the parser, and one it accepts,
/// once written (Swift's encoding, which drops a content-type time when
/// the metadata time is the data's), reads back as what was written; a
/// whole session of arbitrary bytes
/// against a receiver on a scratch device never panics, always ends, and
/// writes nothing outside the device.
pub fn ssync(data: &[u8]) {
    use aerie_object::ssync::wire::{decode_missing, encode_missing};
    for line in data.split(|&b| b == b'\n') {
        if let Ok((hash, offer)) = decode_missing(line) {
            let written = encode_missing(&hash, &offer);
            let (h2, o2) = decode_missing(written.as_bytes()).expect("a written offer reads");
            assert_eq!(encode_missing(&h2, &o2), written);
        }
    }
    ssync_session(data);
}

struct Fed(std::io::Cursor<Vec<u8>>);

impl aerie_api::BodySource for Fed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::io::Read::read(&mut self.0, buf)
    }

    fn send_continue(&mut self, _headers: Vec<aerie_api::Header>) -> std::io::Result<()> {
        Ok(())
    }
}

/// A receiver over a scratch devices root (one per process).
fn receiver() -> &'static (aerie_object::ObjectServer, std::path::PathBuf) {
    static R: std::sync::OnceLock<(aerie_object::ObjectServer, std::path::PathBuf)> = std::sync::OnceLock::new();
    R.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("aerie-fuzz-ssync-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("devices/d1")).expect("scratch device");
        let swift = aerie_storage::swift_conf::parse(
            "[swift-hash]\nswift_hash_path_suffix = x\n[storage-policy:0]\nname = gold\ndefault = yes\n",
        )
        .expect("swift.conf");
        let cfg = aerie_object::ObjectConfig {
            devices: aerie_storage::fs::Devices { root: base.join("devices"), mount_check: false },
            swift,
            reserve: aerie_storage::fs::Reserve::parse("0").expect("reserve"),
            container_update_timeout: std::time::Duration::from_millis(10),
            conn_timeout: std::time::Duration::from_millis(10),
            node_timeout: std::time::Duration::from_millis(10),
            etag_validate_pct: 0.0,
            reclaim_age: 604800.0,
            ssync: aerie_object::ssync::ReceiverSettings {
                lock_timeout: std::time::Duration::from_millis(50),
                ..Default::default()
            },
        };
        (aerie_object::ObjectServer::new(cfg).expect("object server"), base)
    })
}

fn ssync_session(data: &[u8]) {
    use aerie_api::{Body, Processor, Request, RequestBody};
    let (server, base) = receiver();
    let addr: std::net::SocketAddr = "127.0.0.1:1".parse().expect("address");
    let head = RequestHead::synthetic(
        Method::Other("SSYNC".into()),
        b"/d1/7",
        &[("Transfer-Encoding", b"chunked")],
        BodyFraming::Chunked,
        addr,
        addr,
    );
    let body = RequestBody::from_source(Box::new(Fed(std::io::Cursor::new(data.to_vec()))));
    let r = server.call(Request { head, body });
    assert_eq!(r.status.0, 200);
    let Body::Duplex(mut stream) = r.body else { panic!("SSYNC answers a conversation") };
    let mut answered = 0usize;
    while let Ok(Some(chunk)) = stream.next_chunk() {
        answered += chunk.len();
        assert!(answered < 1 << 24, "the answer is bounded by what was sent");
    }
    // Nothing outside the device: the scratch root holds only it.
    let top: Vec<_> = std::fs::read_dir(base.join("devices")).expect("root").flatten().map(|e| e.file_name()).collect();
    assert_eq!(top, [std::ffi::OsString::from("d1")]);
}

/// A container database on a scratch device (one per process).
fn rpc_target() -> &'static (aerie_storage::db::rpc::Target, std::path::PathBuf) {
    static T: std::sync::OnceLock<(aerie_storage::db::rpc::Target, std::path::PathBuf)> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("aerie-fuzz-dbrpc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let device_dir = base.join("devices/d1");
        let hash = "0123456789abcdef0123456789abcdef";
        let db_file = aerie_storage::db::http::db_file_in(&device_dir, "7", "containers", hash);
        let ts = aerie_storage::Timestamp::parse("1700000000.00000").expect("timestamp");
        let (db, _) = aerie_container::db::ContainerDb::create(&db_file, "a", "c", ts, 0, "d1").expect("database");
        db.release();
        (aerie_storage::db::rpc::Target { device_dir, db_file }, base)
    })
}

/// `REPLICATE` bodies: any bytes get a status Swift's replicator knows
/// (never a panic), the database stays readable, and nothing is written
/// outside the device (a `complete_rsync` or `rsync_then_merge` name that
/// climbs is refused).
pub fn db_rpc(data: &[u8]) {
    use aerie_storage::db::rpc::dispatch;
    let (target, base) = rpc_target();
    let r = dispatch::<aerie_container::replicate::Container>(target, data);
    assert!(matches!(r.status.0, 200 | 202 | 204 | 400 | 404 | 500 | 503), "status {}", r.status.0);
    // Still a database Swift's servers would read.
    let db = aerie_container::db::ContainerDb::open(&target.db_file).expect("the database still opens");
    db.info().expect("and reads");
    db.release();
    let top: Vec<_> = std::fs::read_dir(base.join("devices")).expect("root").flatten().map(|e| e.file_name()).collect();
    assert_eq!(top, [std::ffi::OsString::from("d1")]);
}
