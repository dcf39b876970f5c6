//! The manual pages render without a warning (`groff -ww`).

use std::path::Path;
use std::process::Command;

fn groff() -> &'static str {
    let have = Command::new("sh").args(["-c", "command -v groff"]).output().is_ok_and(|o| o.status.success());
    if !have {
        // Debian's groff-base has groff and the man macros.
        let ok = Command::new("sh")
            .args(["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq groff-base"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "could not install groff-base");
    }
    "groff"
}

#[test]
fn the_man_pages_render_without_warnings() {
    for page in ["man/aerie.8", "man/aerie.toml.5"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(page);
        let out = Command::new(groff())
            .args(["-ww", "-man", "-Tutf8", "-P-c", "-P-b", "-P-o", "-P-u"])
            .arg(&path)
            .output()
            .expect("run groff");
        assert!(out.status.success(), "{page}: groff failed");
        assert!(out.stderr.is_empty(), "{page}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("NAME") && text.contains("SEE ALSO"), "{page} rendered: {text}");
    }
}

#[test]
fn the_systemd_units_fit_the_swift_node_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).expect(p);
    let service = read("etc/aerie.service");
    assert!(service.contains("Type=notify"));
    assert!(service.lines().any(|l| l.starts_with("ExecReload=") && l.contains(" reload -c /etc/aerie/aerie.toml")));
    assert!(service.lines().any(|l| l.starts_with("ExecStart=") && l.contains("-c /etc/aerie/aerie.toml")));
    let node: toml::Table = toml::from_str(&read("etc/swift-node.toml")).expect("swift-node.toml");
    let listens: Vec<String> = node["listen"]
        .as_array()
        .expect("listeners")
        .iter()
        .map(|l| l["address"].as_str().expect("address").to_string())
        .collect();
    let sockets: Vec<String> =
        read("etc/aerie.socket").lines().filter_map(|l| l.strip_prefix("ListenStream=")).map(str::to_string).collect();
    assert_eq!(sockets, listens, "socket activation hands over exactly the node's listeners");
    // logrotate signals the pid file the node config writes.
    let pid_file = node["server"]["pid_file"].as_str().expect("pid_file");
    assert!(read("etc/aerie.logrotate").contains(&format!("cat {pid_file}")));
    assert!(read("etc/aerie.logrotate").contains("kill -USR1"));
}
