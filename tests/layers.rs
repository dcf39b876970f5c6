//! `src/` is layered: imports point one way, from the leaves up
//! (`DESIGN.md`, "Layers inside `src/`"). This test reads every module of
//! `src/`, collects the modules each one names (`crate::…` and `super::…`
//! paths), and fails on an import cycle between modules that are not one
//! another's ancestors (a parent and its own submodules may refer to each
//! other: that is one room), and on a module importing from a layer above
//! its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first; a module may import only from its own layer
/// or lower ones. Every top-level module of `src/` must be listed.
const LAYERS: &[&[&str]] = &[
    &["sys", "exit", "clock", "role", "notify"],
    &["config", "scoreboard", "http"],
    &["listeners", "log", "catalog", "child"],
    &["pipeline", "admin", "worker", "background"],
    &["master", "cli", "control", "import"],
];

fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs").to_string();
    if stem != "mod" && stem != "lib" && stem != "main" {
        parts.push(stem);
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text with comments and string literals blanked out (so a path in a
/// doc comment or a message is not an import).
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            // A char literal such as '"' or '/'.
            out.push_str("' '");
            i += 3;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len());
    &s[..end]
}

/// Module paths named after `prefix::` (one level of `{a, b::c}` groups).
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        out.extend(path_items(rest));
    }
    out
}

fn path_items(s: &str) -> Vec<Vec<String>> {
    if let Some(group) = s.strip_prefix('{') {
        let mut depth = 1;
        let mut end = 0;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let inner = &group[..end];
        let mut items = Vec::new();
        let mut d = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => d += 1,
                '}' => d -= 1,
                ',' if d == 0 => {
                    items.extend(path_items(inner[start..i].trim()));
                    start = i + 1;
                }
                _ => {}
            }
        }
        items.extend(path_items(inner[start..].trim()));
        return items;
    }
    let mut segs = Vec::new();
    let mut cur = s;
    loop {
        let id = ident_at(cur);
        if id.is_empty() {
            break;
        }
        segs.push(id.to_string());
        cur = &cur[id.len()..];
        match cur.strip_prefix("::") {
            Some(r) if r.starts_with('{') => {
                return path_items(r).into_iter().map(|tail| segs.iter().cloned().chain(tail).collect()).collect();
            }
            Some(r) => cur = r,
            None => break,
        }
    }
    if segs.is_empty() {
        Vec::new()
    } else {
        vec![segs]
    }
}

/// The longest module named by `path` (a path may go on into an item).
fn resolve(path: &[String], modules: &BTreeSet<String>) -> Option<String> {
    (1..=path.len()).rev().map(|n| path[..n].join("::")).find(|m| modules.contains(m))
}

fn related(a: &str, b: &str) -> bool {
    let under = |x: &str, y: &str| x == y || x.starts_with(&format!("{y}::"));
    under(a, b) || under(b, a)
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let m = module_of(&src, f);
        if m.is_empty() {
            continue; // lib.rs and main.rs sit above everything
        }
        let code = code_only(&std::fs::read_to_string(f).expect("read module"));
        let parent: Vec<String> = {
            let mut p: Vec<String> = m.split("::").map(str::to_string).collect();
            // In a mod.rs, `super` is the module's parent; in foo/bar.rs, foo.
            if !f.ends_with("mod.rs") || m.contains("::") {
                p.pop();
            }
            p
        };
        let mut named: Vec<Vec<String>> = paths_after(&code, "crate::");
        named.extend(paths_after(&code, "super::").into_iter().map(|p| parent.iter().cloned().chain(p).collect()));
        for p in named {
            if let Some(target) = resolve(&p, &modules) {
                if !related(&m, &target) {
                    edges.entry(m.clone()).or_default().insert(target);
                }
            }
        }
        edges.entry(m).or_default();
    }
    edges
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        t.index.insert(v, t.next);
        t.low.insert(v, t.next);
        t.next += 1;
        t.stack.push(v);
        t.on.insert(v);
        let g = t.g;
        for w in g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn src_has_no_import_cycle() {
    let g = graph();
    let found = cycles(&g);
    assert!(found.is_empty(), "import cycles in src/ (each line is one cycle's modules):\n{}", {
        found.iter().map(|c| c.join(" ")).collect::<Vec<_>>().join("\n")
    });
}

#[test]
fn imports_point_down_the_layers() {
    let layer_of = |m: &str| {
        let top = m.split("::").next().unwrap_or(m);
        LAYERS.iter().position(|l| l.contains(&top))
    };
    let g = graph();
    let mut wrong = Vec::new();
    for (from, tos) in &g {
        let Some(lf) = layer_of(from) else {
            wrong.push(format!("{from} is in no layer of tests/layers.rs"));
            continue;
        };
        for to in tos {
            match layer_of(to) {
                Some(lt) if lt <= lf => {}
                Some(lt) => wrong.push(format!("{from} (layer {lf}) imports {to} (layer {lt})")),
                None => wrong.push(format!("{to} is in no layer of tests/layers.rs")),
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_imports_and_cycles() {
    let code = code_only("use crate::{a::b, c};\n// crate::nope\nlet s = \"crate::nope2\"; crate::d::e();");
    let mut got: Vec<String> = paths_after(&code, "crate::").into_iter().map(|p| p.join("::")).collect();
    got.sort();
    assert_eq!(got, ["a::b", "c", "d::e"]);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("x".into()).or_default().insert("y".into());
    g.entry("y".into()).or_default().insert("x".into());
    g.entry("z".into()).or_default().insert("x".into());
    assert_eq!(cycles(&g), vec![vec!["x".to_string(), "y".to_string()]]);
}
