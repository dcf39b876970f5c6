//! Object replication against the real binary: REPLICATE's suffix hashes
//! against Swift 2.38.3's own code on the same directories (`hashes.rs`),
//! the SSYNC receiver against Swift's own sender and against hostile
//! senders (`ssync.rs`), and whole clusters healing through aerie's
//! replicator (`flows.rs`).

mod db;
mod flows;
mod hashes;
mod interop;
mod ssync;

use crate::util::swift_python;
use std::path::Path;
use std::process::Command;

/// Run `tests/py/<script>` with the venv's Swift; its standard output.
pub fn swift_py(script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py").join(script);
    let out = Command::new(swift_python()).arg(&path).args(args).output().expect("run python");
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file under `dir`, as paths relative to it, sorted.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = crate::util::files_under(dir)
        .into_iter()
        .map(|p| p.strip_prefix(dir).unwrap_or(&p).display().to_string())
        .collect();
    out.sort();
    out
}

/// The object files (`.data`, `.ts`, `.meta`) of a device, relative to it:
/// no caches, no locks.
pub fn objects(device: &Path) -> Vec<String> {
    tree(device)
        .into_iter()
        .filter(|f| f.starts_with("objects/") || f.starts_with("objects-"))
        .filter(|f| f.ends_with(".data") || f.ends_with(".ts") || f.ends_with(".meta"))
        .collect()
}

/// Node `i`'s one device in a cluster from `scripts/swift-cluster.sh`.
pub fn device(c: &crate::swift_cluster::Cluster, i: usize) -> std::path::PathBuf {
    c.node_root(i).join(format!("d{i}"))
}
