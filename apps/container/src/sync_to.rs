//! `X-Container-Sync-To` as Swift's container server checks it on PUT and
//! POST (`swift.common.utils.validate_sync_to`): empty (sync off), a realm
//! path `//realm/cluster/account/container` the realms file knows, or an
//! http(s) URL with a path, no params, query or fragment, on an allowed
//! host. The message of a refusal is Swift's.

use std::collections::HashMap;
use std::path::Path;

/// One realm of `container-sync-realms.conf`.
#[derive(Debug, Default)]
struct Realm {
    key: Option<String>,
    /// Cluster name (upper case) → endpoint.
    clusters: HashMap<String, String>,
}

/// The realms of `container-sync-realms.conf`, by upper-case name. A
/// missing or unreadable file is no realm at all.
#[derive(Debug, Default)]
pub struct Realms(HashMap<String, Realm>);

impl Realms {
    /// Read the file (INI: a section per realm, with `key`, `key2` and
    /// `cluster_<name> = <endpoint>`).
    pub fn load(path: &Path) -> Realms {
        match std::fs::read_to_string(path) {
            Ok(text) => Realms::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Realms::default(),
            Err(e) => {
                log::error!("could not load {}: {e}", path.display());
                Realms::default()
            }
        }
    }

    fn parse(text: &str) -> Realms {
        let mut realms: HashMap<String, Realm> = HashMap::new();
        let mut section: Option<String> = None;
        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                let name = name.trim();
                section = (!name.eq_ignore_ascii_case("DEFAULT")).then(|| name.to_uppercase());
                if let Some(s) = &section {
                    realms.entry(s.clone()).or_default();
                }
                continue;
            }
            let (Some(realm), Some((k, v))) = (section.as_ref(), line.split_once('=').or_else(|| line.split_once(':')))
            else {
                continue;
            };
            let (k, v) = (k.trim().to_lowercase(), v.trim().to_string());
            let entry = realms.entry(realm.clone()).or_default();
            if k == "key" {
                entry.key = Some(v);
            } else if let Some(cluster) = k.strip_prefix("cluster_") {
                entry.clusters.insert(cluster.to_uppercase(), v);
            }
        }
        Realms(realms)
    }
}

/// Python's `repr` of a string, as Swift's messages quote values.
fn repr(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// What `urllib.parse.urlparse` makes of the parts Swift checks.
struct Url<'a> {
    scheme: String,
    hostname: Option<String>,
    path: &'a str,
    params: bool,
    query: bool,
    fragment: bool,
}

fn urlparse(value: &str) -> Url<'_> {
    let mut rest = value;
    let mut scheme = String::new();
    if let Some(i) = value.find(':') {
        let s = &value[..i];
        if s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            scheme = s.to_ascii_lowercase();
            rest = &value[i + 1..];
        }
    }
    let (before_fragment, fragment) = match rest.split_once('#') {
        Some((b, f)) => (b, !f.is_empty()),
        None => (rest, false),
    };
    let (before_query, query) = match before_fragment.split_once('?') {
        Some((b, q)) => (b, !q.is_empty()),
        None => (before_fragment, false),
    };
    let (netloc, path) = match before_query.strip_prefix("//") {
        Some(after) => match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        },
        None => ("", before_query),
    };
    // Params: after a ';' in the last path segment.
    let last = path.rfind('/').map_or(path, |i| &path[i..]);
    let (path, params) = match last.find(';') {
        Some(j) => {
            let cut = path.len() - last.len() + j;
            (&path[..cut], !path[cut + 1..].is_empty())
        }
        None => (path, false),
    };
    let host = netloc.rsplit_once('@').map_or(netloc, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or(v6, |(h, _)| h),
        None => host.split_once(':').map_or(host, |(h, _)| h),
    };
    let hostname = (!host.is_empty()).then(|| host.to_lowercase());
    Url { scheme, hostname, path, params, query, fragment }
}

/// Check a value; `Err` carries the 400's message.
pub fn validate(value: &str, allowed_hosts: &[String], realms_file: &Path) -> Result<(), String> {
    let orig = value;
    let value = value.trim_end_matches('/');
    if value.is_empty() {
        return Ok(());
    }
    if let Some(realm_path) = value.strip_prefix("//") {
        let parts: Vec<&str> = realm_path.split('/').collect();
        let [realm, cluster, _account, _container] = parts[..] else {
            return Err(format!("Invalid X-Container-Sync-To format {}", repr(orig)));
        };
        let realms = Realms::load(realms_file);
        let Some(found) =
            realms.0.get(&realm.to_uppercase()).filter(|r| r.key.as_deref().is_some_and(|k| !k.is_empty()))
        else {
            return Err(format!("No realm key for {}", repr(realm)));
        };
        if found.clusters.get(&cluster.to_uppercase()).is_none_or(|e| e.is_empty()) {
            return Err(format!("No cluster endpoint for {} {}", repr(realm), repr(cluster)));
        }
        return Ok(());
    }
    let url = urlparse(value);
    if url.scheme != "http" && url.scheme != "https" {
        return Err(format!(
            "Invalid scheme {} in X-Container-Sync-To, must be \"//\", \"http\", or \"https\".",
            repr(&url.scheme)
        ));
    }
    if url.path.is_empty() {
        return Err("Path required in X-Container-Sync-To".into());
    }
    if url.params || url.query || url.fragment {
        return Err("Params, queries, and fragments not allowed in X-Container-Sync-To".into());
    }
    match url.hostname {
        Some(h) if allowed_hosts.contains(&h) => Ok(()),
        Some(h) => Err(format!("Invalid host {} in X-Container-Sync-To", repr(&h))),
        None => Err("Invalid host None in X-Container-Sync-To".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(v: &str) -> Result<(), String> {
        validate(v, &["127.0.0.1".to_string()], Path::new("/nonexistent/container-sync-realms.conf"))
    }

    #[test]
    fn values_are_checked_as_swift_checks_them() {
        assert_eq!(check(""), Ok(()));
        assert_eq!(check("/"), Ok(()));
        assert_eq!(check("http://127.0.0.1:8080/v1/AUTH_a/c"), Ok(()));
        assert_eq!(check("https://127.0.0.1/v1/AUTH_a/c/"), Ok(()));
        assert_eq!(
            check("ftp://example.com/x"),
            Err("Invalid scheme 'ftp' in X-Container-Sync-To, must be \"//\", \"http\", or \"https\".".into())
        );
        assert_eq!(
            check("127.0.0.1/v1"),
            Err("Invalid scheme '' in X-Container-Sync-To, must be \"//\", \"http\", or \"https\".".into())
        );
        assert_eq!(check("http://127.0.0.1"), Err("Path required in X-Container-Sync-To".into()));
        for v in ["http://127.0.0.1/v1/a/c?x=1", "http://127.0.0.1/v1/a/c#f", "http://127.0.0.1/v1/a/c;p"] {
            assert_eq!(
                check(v),
                Err("Params, queries, and fragments not allowed in X-Container-Sync-To".into()),
                "{v}"
            );
        }
        assert_eq!(check("http://Example.COM/v1/a/c"), Err("Invalid host 'example.com' in X-Container-Sync-To".into()));
        assert_eq!(check("http://u:p@127.0.0.1:9/v1/a/c"), Ok(()));
        assert_eq!(check("//r/c/a"), Err("Invalid X-Container-Sync-To format '//r/c/a'".into()));
        assert_eq!(check("//r/c/a/c"), Err("No realm key for 'r'".into()));
    }

    #[test]
    fn realms_come_from_the_realms_file() {
        let dir = std::env::temp_dir().join(format!("aerie-realms-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("container-sync-realms.conf");
        std::fs::write(&file, "[DEFAULT]\nmtime_check_interval = 300\n[US]\nkey = 9ff3b71c\ncluster_dfw1 = http://dfw1:8080/v1/\n[EU]\nkey =\n")
            .expect("write");
        let hosts = ["127.0.0.1".to_string()];
        assert_eq!(validate("//us/DFW1/AUTH_a/c", &hosts, &file), Ok(()));
        assert_eq!(validate("//US/ord1/AUTH_a/c", &hosts, &file), Err("No cluster endpoint for 'US' 'ord1'".into()));
        assert_eq!(validate("//eu/x/AUTH_a/c", &hosts, &file), Err("No realm key for 'eu'".into()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
