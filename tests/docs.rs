//! The manual pages render without a warning (`groff -ww`), and they and
//! the example configurations say what the parser and the catalog do.

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

// The configuration's documentation and examples against the parser and
// the server's catalog.
use aerie::catalog::CATALOG;
use aerie::config::{defaults, Config, Overrides, RawConfig, Setting, Source};

#[test]
fn the_annotated_example_is_the_embedded_default() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/aerie.toml");
    let example = Config::load(&Source::File(path), &Overrides::default(), &CATALOG).expect("etc/aerie.toml is valid");
    let embedded = Config::load(&Source::Embedded, &Overrides::default(), &CATALOG).expect("embedded config is valid");
    assert_eq!(example, embedded);
}

#[test]
fn the_swift_node_example_is_valid_and_serves_the_three_rings_ports() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/swift-node.toml");
    let conf = std::env::temp_dir().join(format!("aerie-swift-node-test-{}.conf", std::process::id()));
    std::fs::write(&conf, "[swift-hash]\nswift_hash_path_suffix = x\n[storage-policy:0]\nname = gold\ndefault = yes\n")
        .expect("write swift.conf");
    // The example runs as `swift`, which this machine may not have.
    let text = std::fs::read_to_string(&path)
        .expect("read example")
        .replace("user = \"swift\"", "user = \"\"")
        .replace("group = \"swift\"", "group = \"\"")
        .replace("/etc/swift/swift.conf", &conf.to_string_lossy());
    let cfg = RawConfig::parse(&text, &Source::File(path)).and_then(|r| r.validate(&CATALOG));
    let _ = std::fs::remove_file(&conf);
    let cfg = cfg.expect("etc/swift-node.toml is valid");
    let ports: Vec<(u16, &str)> =
        cfg.listen.iter().map(|l| (l.address.port(), l.pipeline.last().map(String::as_str).unwrap_or(""))).collect();
    assert_eq!(ports, [(6200, "object"), (6201, "container"), (6202, "account")]);
    assert!(cfg.listen.iter().all(|l| l.length_required.is_empty()), "the proxy sends bodiless PUTs and POSTs");
    assert!(cfg.storage.devices.mount_check);
}

/// `(section, key, default)` of every key documented in aerie.toml(5).
fn man_page_keys() -> Vec<(String, String, toml::Value)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("man/aerie.toml.5");
    let text = std::fs::read_to_string(path).expect("read man/aerie.toml.5");
    let mut out = Vec::new();
    let (mut section, mut key) = (String::new(), None::<String>);
    for line in text.lines() {
        if let Some(s) = line.strip_prefix(".SS ") {
            section = s.trim().to_string();
        } else if let Some(k) = line.strip_prefix(".B ").filter(|_| section.starts_with('[')) {
            key = Some(k.trim().to_string());
        } else if let (Some(d), Some(k)) = (line.strip_prefix("Default: "), key.take()) {
            let lit = d.trim().strip_suffix('.').unwrap_or(d).replace("\\-", "-").replace("\\e", "\\");
            let v: toml::Value = toml::from_str::<toml::Table>(&format!("v = {lit}"))
                .unwrap_or_else(|e| panic!("{section} {k}: default {lit:?} is not TOML: {e}"))["v"]
                .clone();
            out.push((section.clone(), k, v));
        }
    }
    out
}

#[test]
fn the_config_man_page_documents_every_key_with_its_real_default() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/aerie.toml");
    let example: toml::Table = toml::from_str(&std::fs::read_to_string(path).expect("read")).expect("parses");
    // etc/aerie.toml spells out every key of the effective default
    // (tested above); the processor keys only some processors take are
    // added from the defaults.
    let mut want: Vec<(String, String, toml::Value)> = Vec::new();
    for (name, v) in &example {
        match (name.as_str(), v) {
            ("listen", toml::Value::Array(ls)) => {
                for (k, v) in ls[0].as_table().expect("listen table") {
                    if k == "route" {
                        for (rk, rv) in v.as_array().expect("routes")[0].as_table().expect("route") {
                            want.push(("[[listen.route]]".into(), rk.clone(), rv.clone()));
                        }
                    } else {
                        want.push(("[[listen]]".into(), k.clone(), v.clone()));
                    }
                }
            }
            ("processors", toml::Value::Table(ps)) => {
                for (k, v) in ps["echo"].as_table().expect("echo pool") {
                    want.push(("[processors.NAME]".into(), k.clone(), v.clone()));
                }
            }
            (section, toml::Value::Table(t)) => {
                for (k, v) in t {
                    want.push((format!("[{section}]"), k.clone(), v.clone()));
                }
            }
            other => panic!("unexpected top-level {other:?}"),
        }
    }
    // The settings only some processors take (the catalog says which).
    for s in Setting::ALL {
        want.push(("[processors.NAME]".into(), s.key().into(), toml::Value::Float(s.default_value())));
    }
    let documented = man_page_keys();
    for w in &want {
        assert!(documented.contains(w), "aerie.toml(5) lacks {} {} = {} (or gives another default)", w.0, w.1, w.2);
    }
    for d in &documented {
        assert!(want.contains(d), "aerie.toml(5) documents {} {} = {}, which the parser does not have", d.0, d.1, d.2);
    }
}

#[test]
fn the_example_spells_out_every_key_with_its_default() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/aerie.toml");
    let text = std::fs::read_to_string(path).expect("read example");
    let written: toml::Value = toml::from_str(&text).expect("parses");
    let effective = RawConfig::parse(defaults::EMBEDDED_CONFIG, &Source::Embedded)
        .and_then(|r| r.validate(&CATALOG))
        .expect("valid")
        .to_raw();
    let effective = toml::Value::try_from(&effective).expect("renders");
    assert_eq!(written, effective, "etc/aerie.toml must spell out every key of the effective default config");
}
