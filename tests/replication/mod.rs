//! Object replication against the real binary: REPLICATE's suffix hashes
//! against Swift 2.38.3's own code on the same directories (`hashes.rs`),
//! the SSYNC receiver against Swift's own sender and against hostile
//! senders (`ssync.rs`), and whole clusters healing through aerie's
//! replicator (`flows.rs`).

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
