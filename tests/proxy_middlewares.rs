//! What the middlewares of a production Swift proxy send, against aerie
//! nodes. S3 (`s3api`, tempauth) with a real S3 client: boto3 from PyPI
//! runs the flows of `tests/py/s3_flows.py` (buckets, metadata names with
//! punctuation, multipart uploads, multi-object delete, copy, ranges,
//! versioning), with SigV4 and with SigV2; then what the flows left for
//! later — the segments of a deleted multipart object, queued through the
//! container `UPDATE` verb — is checked after Swift's object expirer ran;
//! once through an encrypting proxy, where no plaintext may reach a node's
//! disk. And the other middlewares (`tests/py/middleware_flows.py`: slo,
//! dlo, both versioning modes, symlink, copy, tempurl, bulk, container
//! sync, staticweb, quotas), whose results — every listing and every
//! object's headers through the proxy — must be the same as on a cluster
//! of Swift's own servers.

use crate::swift_cluster::Cluster;
use crate::util::{python_with, swift_python};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Run `tests/py/<script>` (with the venv's python, boto3 installed) on
/// the cluster's proxy and these arguments; it must succeed. Its standard
/// output.
fn run_script(c: &Cluster, script: &str, args: &[&str]) -> String {
    swift_python();
    let python = python_with(&["boto3"]);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py").join(script);
    let out = Command::new(python)
        .arg(path)
        .arg(format!("http://{}", c.proxy_addr()))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run tests/py/{script}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} {args:?} failed:\n{stdout}{}\nproxy log tail:\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.proxy_log_tail()
    );
    stdout
}

/// Run the S3 flows with `signature` (`s3v4`, `s3`): the flows reported.
fn run_flows(c: &Cluster, signature: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let args: Vec<&str> = std::iter::once(signature).chain(extra.iter().copied()).collect();
    let stdout = run_script(c, "s3_flows.py", &args);
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn flow_names(report: &[serde_json::Value]) -> Vec<&str> {
    report.iter().filter(|f| f["ok"] == true).filter_map(|f| f["flow"].as_str()).collect()
}

#[test]
fn s3_clients_work_through_the_proxy_with_sigv4_and_sigv2() {
    let c = Cluster::start(3, |_, t| t);
    let all = ["buckets", "metadata", "multipart", "delete_multipart", "multi_delete", "copy", "ranges", "versioning"];
    for (signature, tag) in [("s3v4", "v4"), ("s3", "v2")] {
        let report = run_flows(&c, signature, &[]);
        let names = flow_names(&report);
        for flow in all.iter().chain(&["cleanup"]) {
            assert!(names.contains(flow), "{signature}: flow {flow} did not report: {report:?}");
        }
        // The deleted multipart object's three segments were queued for
        // the expirer, not deleted with it.
        let queued = report.iter().find(|f| f["flow"] == "delete_multipart").expect("delete_multipart");
        assert_eq!(queued["segments_queued"].as_array().map(Vec::len), Some(3), "{queued}");
        let segments = format!("flows-{tag}+segments");
        assert!(c.ok(&["list", &segments]).lines().any(|l| l.starts_with("mpu/")));
        c.expirer_pass();
        let left = c.ok(&["list", &segments]);
        assert!(!left.lines().any(|l| l.starts_with("mpu/")), "segments left after the expirer: {left}");
    }
}

/// Run `tests/py/middleware_flows.py` with these arguments.
fn middleware_flows(c: &Cluster, args: &[&str]) -> String {
    run_script(c, "middleware_flows.py", args)
}

#[test]
fn every_middleware_of_a_production_proxy_gives_what_swifts_own_servers_give() {
    let flows = [
        "slo",
        "dlo",
        "versioned_writes_legacy",
        "object_versioning",
        "symlink",
        "copy",
        "tempurl",
        "bulk",
        "container_sync",
        "staticweb",
        "quotas",
    ];
    // Plain, then through an encrypting proxy (MIME bodies with metadata
    // footers, encrypted metadata and listing etags).
    for encryption in ["0", "1"] {
        let env = [("ENCRYPTION", encryption)];
        let mut snapshots = Vec::new();
        for swift_nodes in [false, true] {
            let c =
                if swift_nodes { Cluster::start_swift_nodes(1, &env) } else { Cluster::start_env(1, &env, |_, t| t) };
            let report = middleware_flows(&c, &[]);
            for flow in flows {
                assert!(report.contains(&format!("\"flow\": \"{flow}\"")), "{flow} did not report:\n{report}");
            }
            snapshots.push(middleware_flows(&c, &["--snapshot"]));
        }
        let (aerie, swift) = (&snapshots[0], &snapshots[1]);
        let differ: Vec<String> = aerie
            .lines()
            .zip(swift.lines())
            .enumerate()
            .filter(|(_, (a, s))| a != s)
            .map(|(i, (a, s))| format!("line {i}: aerie {a:?} / Swift {s:?}"))
            .take(20)
            .collect();
        assert!(
            aerie == swift,
            "ENCRYPTION={encryption}: listings and headers differ from Swift's servers':\n{}\n--- aerie:\n{aerie}",
            differ.join("\n")
        );
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn s3_through_an_encrypting_proxy_leaves_no_plaintext_on_the_nodes() {
    let c = Cluster::start_env(1, &[("ENCRYPTION", "1")], |_, t| t);
    let report = run_flows(&c, "s3v4", &["encrypted"]);
    let names = flow_names(&report);
    for flow in ["metadata", "multipart", "copy", "ranges", "versioning", "encrypted"] {
        assert!(names.contains(&flow), "flow {flow} did not report: {report:?}");
    }
    // The object is on the node, encrypted: its data file has none of the
    // plaintext, its metadata none of the user metadata's value, and the
    // crypto sysmeta is there.
    let data: Vec<PathBuf> = crate::util::files_under(&c.node_root(1))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .collect();
    assert!(!data.is_empty());
    let mut crypto = 0;
    for p in &data {
        let bytes = std::fs::read(p).expect("read data file");
        assert!(!contains(&bytes, b"PLAINTEXT-MARKER"), "plaintext in {}", p.display());
        let meta = aerie_storage::fs::read_metadata(p).expect("metadata");
        for (k, v) in &meta {
            let k = String::from_utf8_lossy(k);
            assert!(!contains(v, b"MARKER-META"), "plaintext metadata {k} in {}", p.display());
        }
        if meta.iter().any(|(k, _)| k.to_ascii_lowercase().starts_with(b"x-object-sysmeta-crypto-body-meta")) {
            crypto += 1;
        }
    }
    assert_eq!(crypto, data.len(), "every data file was encrypted by the proxy");
}
