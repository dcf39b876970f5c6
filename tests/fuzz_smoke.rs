//! The fuzz targets' checks (fuzz/checks.rs) on stable, in CI: seeds for
//! each parser and 20,000 pseudo-random mutations of them per target
//! (bit flips, inserted and deleted bytes, splices, truncations), from a
//! fixed seed so a failure reproduces. The open-ended search is
//! `scripts/fuzz.sh` (cargo fuzz, nightly).

#[path = "../fuzz/checks.rs"]
mod checks;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Interesting bytes for text protocols.
const DICT: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b"\0",
    b" ",
    b":",
    b";",
    b",",
    b"/",
    b"%",
    b"%2f",
    b"%2e%2e",
    b"..",
    b"=",
    b"&",
    b"-",
    b"*",
    b"0",
    b"ffffffffffffffff",
    b"99999999999999999999",
    b"chunked",
    b"Transfer-Encoding",
    b"Content-Length",
    b"bytes=",
    b"W/\"",
    b"\"",
    b"\xff",
    b"\xc3\xa9",
    b"(",
    b"}",
    b"\x80",
    b"\x02",
];

fn mutate(rng: &mut Rng, seeds: &[&[u8]]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].to_vec();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, rng.next() as u8),
            2 if !v.is_empty() => {
                let end = (at + 1 + rng.below(8)).min(v.len());
                v.drain(at.min(end)..end);
            }
            3 => {
                let d = DICT[rng.below(DICT.len())];
                v.splice(at..at, d.iter().copied());
            }
            4 => v.truncate(at),
            _ => {
                let other = seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                v.splice(at..at, other[from..].iter().copied());
            }
        }
    }
    v
}

fn run(name: &str, seeds: &[&[u8]], check: fn(&[u8])) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
    for s in seeds {
        check(s);
    }
    for i in 0..20_000 {
        let input = mutate(&mut rng, seeds);
        let r = std::panic::catch_unwind(|| check(&input));
        assert!(r.is_ok(), "{name}: input #{i} failed: {:?}", String::from_utf8_lossy(&input));
    }
}

#[test]
fn http_heads() {
    run(
        "http_head",
        &[
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"PUT /sda1/0/a/c/o HTTP/1.1\r\nContent-Length: 5\r\nX-Timestamp: 1.0\r\n\r\nhello",
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        ],
        checks::http_head,
    );
}

#[test]
fn chunked_bodies() {
    run(
        "chunked",
        &[b"5\r\nhello\r\n0\r\n\r\n", b"1;ext=1\r\na\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\n", b"0\r\n\r\n"],
        checks::chunked,
    );
}

#[test]
fn swift_paths() {
    run(
        "swift_path",
        &[
            b"/sda1/0/AUTH_t/c/o",
            b"/sda1/0/AUTH_t/c/a%2Fb%20c",
            b"/sda1/123/a",
            b"/d/p/a/c/%00reserved",
            b"/sda1/0/a/c/../..",
        ],
        checks::swift_path,
    );
}

#[test]
fn ranges_and_conditionals() {
    run(
        "range_conditional",
        &[
            b"bytes=0-99",
            b"bytes=-5,10-,1-2",
            b"bytes=100-50",
            b"\"abc\", W/\"def\", *",
            b"Sun, 06 Nov 1994 08:49:37 GMT",
        ],
        checks::range_conditional,
    );
}

#[test]
fn listing_queries() {
    run(
        "listing_query",
        &[b"format=json&limit=10&marker=a&prefix=b%2F&delimiter=/", b"limit=99999&reverse=on", b"path=&end_marker=%FF"],
        checks::listing_query,
    );
}

#[test]
fn pickles() {
    // Swift's metadata pickles as Python writes them (protocol 2 and 0).
    run(
        "pickle",
        &[
            b"\x80\x02}q\x00(X\x04\x00\x00\x00nameq\x01X\x05\x00\x00\x00/a/c/oq\x02X\x0e\x00\x00\x00Content-Lengthq\x03X\x01\x00\x00\x005q\x04u.",
            b"(dp0\nS'name'\np1\nS'/a/c/o'\np2\ns.",
            b"\x80\x02]q\x00(K\x01J\xff\xff\xff\xff\x88N\x8a\x08\x01\x02\x03\x04\x05\x06\x07\x08e.",
            // A hashes.pkl as Swift writes it: suffix hashes, None, valid, updated.
            b"\x80\x02}q\x00(X\x03\x00\x00\x00abcq\x01X\x02\x00\x00\x00h1q\x02X\x03\x00\x00\x00defq\x03NX\x05\x00\x00\x00validq\x04\x88X\x07\x00\x00\x00updatedq\x05G?\xf8\x00\x00\x00\x00\x00\x00u.",
        ],
        checks::pickle,
    );
}

#[test]
fn ssync_sessions() {
    let h = "0123456789abcdef0123456789abc000";
    let offer = format!(":MISSING_CHECK: START\r\n{h} 1700000000.00000 m:989680,t:1__2\r\n:MISSING_CHECK: END\r\n");
    let put = format!(
        "{offer}:UPDATES: START\r\nPUT /a/c/o\r\nContent-Length: 3\r\nContent-Type: a\r\nX-Timestamp: 1700000000.00000\r\n\r\nabc\
         POST /a/c/o\r\nX-Timestamp: 1700000001.00000\r\n\r\nDELETE /a/c/o\r\nX-Timestamp: 1700000002.00000\r\n\r\n:UPDATES: END\r\n"
    );
    run("ssync", &[offer.as_bytes(), put.as_bytes(), b":MISSING_CHECK: START\r\n"], checks::ssync);
}

#[test]
fn db_rpc_bodies() {
    run(
        "db_rpc",
        &[
            br#"["sync", 5, "00000000000000000000000000000000", "r-d2", "1", "2", "0", "{\"X-Container-Meta-A\": [\"b\", \"3\"]}"]"#,
            br#"["merge_items", [{"ROWID": 3, "name": "o", "created_at": "1700000001.00000", "size": 1, "content_type": "a", "etag": "e", "deleted": 0}], "r-d2"]"#,
            br#"["merge_syncs", [{"remote_id": "r-d3", "sync_point": 9}]]"#,
            br#"["complete_rsync", "x", "y.db"]"#,
            br#"["rsync_then_merge", "../x", "y.db"]"#,
            br#"["get_shard_ranges"]"#,
        ],
        checks::db_rpc,
    );
}
