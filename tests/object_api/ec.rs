//! Erasure-coded objects: which files of a hash directory an EC read sees,
//! what is obsolete or reclaimable, and the EC suffix hashes — decided by
//! aerie exactly as by Swift's own `ECDiskFileManager` (run from the venv
//! on the same names), over many generated directories.

use aerie_object::hashes::{hash_suffix, SuffixHash};
use aerie_object::ondisk::{Choice, FileInfo, FragPref, Layout, OnDiskFiles};
use aerie_storage::Timestamp;
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

/// Deterministic choices.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const EC42: Layout = Layout::Ec { fragments: 6 };

/// A hash directory's names: fragments (durable or not), tombstones,
/// metadata (with and without a content type), legacy `.durable`s.
fn case(rng: &mut Rng, base: i64) -> (Vec<String>, Choice) {
    let ts = |k: u64| Timestamp::parse(&format!("{}.00000", base + 10 * k as i64)).expect("ts");
    let mut names = Vec::new();
    for _ in 0..1 + rng.below(6) {
        let t = ts(rng.below(5));
        let name = match rng.below(10) {
            0..=4 => format!("{}#{}{}.data", t.internal(), rng.below(6), if rng.below(2) == 0 { "#d" } else { "" }),
            5 => format!("{}.ts", t.internal()),
            6 => format!("{}.meta", t.internal()),
            7 => format!("{}-{:x}.meta", t.internal(), 100_000 * (1 + rng.below(3))),
            8 => format!("{}.durable", t.internal()),
            _ => format!("{}#9.data", t.internal()), // no such fragment: unexpected
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let frag_index = (rng.below(4) == 0).then(|| rng.below(6) as u32);
    let frag_prefs = match rng.below(3) {
        0 => None,
        1 => Some(Vec::new()),
        _ => {
            // Distinct times, as the proxy sends them (Swift's server fails
            // on a list naming one time twice).
            let mut prefs: Vec<FragPref> = Vec::new();
            for _ in 0..1 + rng.below(2) {
                let timestamp = ts(rng.below(5));
                let exclude = (0..rng.below(3)).map(|_| rng.below(6) as u32).collect();
                if prefs.iter().all(|p| p.timestamp != timestamp) {
                    prefs.push(FragPref { timestamp, exclude });
                }
            }
            Some(prefs)
        }
    };
    (names, Choice { frag_index, frag_prefs })
}

fn name(f: &Option<FileInfo>) -> Value {
    f.as_ref().map_or(Value::Null, |f| json!(f.name))
}

fn sorted(v: &[FileInfo]) -> Vec<String> {
    let mut n: Vec<String> = v.iter().map(|f| f.name.clone()).collect();
    n.sort();
    n
}

fn ours(names: &[String], choice: &Choice) -> Value {
    let s = OnDiskFiles::choosing(names.iter().map(String::as_str), EC42, choice);
    json!({
        "data": name(&s.data_info),
        "meta": name(&s.meta_info),
        "ctype": name(&s.ctype_info),
        "ts": name(&s.ts_info),
        "obsolete": sorted(&s.obsolete),
        "possible_reclaim": sorted(&s.possible_reclaim),
        "durable": s.durable_frag_set.as_ref().and_then(|d| d.first()).map(|f| f.timestamp.internal()),
        "frag_sets": s.frag_sets.iter().map(|set| json!([
            set[0].timestamp.internal(),
            set.iter().filter_map(|f| f.frag_index).collect::<Vec<u32>>(),
        ])).collect::<Vec<Value>>(),
    })
}

#[test]
fn ec_hash_directories_are_read_and_hashed_as_swifts_ecdiskfilemanager_does() {
    let python = crate::util::swift_python();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/ec_ondisk.py");
    // Recent times: nothing is old enough to reclaim, on either side.
    let base = Timestamp::now().units() as i64 / 100_000 - 1000;
    let mut rng = Rng(0x5EED_EC42);
    let cases: Vec<(Vec<String>, Choice)> = (0..600).map(|_| case(&mut rng, base)).collect();
    let input: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(i, (names, c))| {
            json!({
                "names": names,
                "frag_index": c.frag_index,
                "frag_prefs": c.frag_prefs.as_ref().map(|p| p.iter().map(|f| json!({
                    "timestamp": f.timestamp.internal(), "exclude": f.exclude,
                })).collect::<Vec<Value>>()),
                "hash": i % 3 == 0 && c.frag_index.is_none() && c.frag_prefs.is_none(),
            })
        })
        .collect();
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tests/py/ec_ondisk.py");
    child.stdin.take().expect("stdin").write_all(Value::Array(input.clone()).to_string().as_bytes()).expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let swift: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    let scratch = crate::util::TempDir::new("ecsfx");
    let mut hashed = 0;
    for (i, ((names, choice), mut want)) in cases.iter().zip(swift).enumerate() {
        let want_hash = want.as_object_mut().and_then(|o| o.remove("hash"));
        assert_eq!(ours(names, choice), want, "case {i}: {names:?} {choice:?}");
        if let Some(want_hash) = want_hash {
            let suffix = scratch.path().join(format!("s{i}")).join("abc");
            let dir = suffix.join(format!("{}abc", "0".repeat(29)));
            std::fs::create_dir_all(&dir).expect("dir");
            for n in names {
                std::fs::write(dir.join(n), b"").expect("file");
            }
            let got = hash_suffix(&suffix, EC42, 604_800.0, Timestamp::now()).expect("hash");
            let got = match got {
                Some(SuffixHash::Frags(m)) => Value::Object(
                    m.into_iter().map(|(k, v)| (k.map_or("None".to_string(), |i| i.to_string()), json!(v))).collect(),
                ),
                None => Value::Null,
                other => panic!("case {i}: {other:?}"),
            };
            assert_eq!(got, want_hash, "case {i}: hash of {names:?}");
            hashed += 1;
        }
    }
    assert!(hashed > 40, "{hashed} suffixes hashed");
}
