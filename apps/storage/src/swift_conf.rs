//! `/etc/swift/swift.conf`, read the way Swift reads it (§0.2, §0.3):
//! `[swift-hash]` prefix and suffix (raw bytes), `[storage-policy:N]`
//! sections, and `[swift-constraints]` overrides.

use crate::HashSalt;

/// A storage policy's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Replicated objects.
    Replication,
    /// Erasure coded (refused by this node for now).
    ErasureCoding,
}

/// One storage policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The index (`X-Backend-Storage-Policy-Index`).
    pub index: u32,
    /// The name.
    pub name: String,
    /// Other names.
    pub aliases: Vec<String>,
    /// Whether it is the default.
    pub default: bool,
    /// Replication or EC.
    pub kind: PolicyKind,
    /// Deprecated policies still serve existing data.
    pub deprecated: bool,
}

/// The cluster constraints the storage node enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraints {
    pub max_file_size: u64,
    pub max_meta_name_length: usize,
    pub max_meta_value_length: usize,
    pub max_meta_count: usize,
    pub max_meta_overall_size: usize,
    pub max_header_size: usize,
    pub max_object_name_length: usize,
    pub container_listing_limit: usize,
    pub account_listing_limit: usize,
    pub auto_create_account_prefix: String,
}

impl Default for Constraints {
    fn default() -> Self {
        Constraints {
            max_file_size: 5_368_709_122,
            max_meta_name_length: 128,
            max_meta_value_length: 256,
            max_meta_count: 90,
            max_meta_overall_size: 4096,
            max_header_size: 8192,
            max_object_name_length: 1024,
            container_listing_limit: 10000,
            account_listing_limit: 10000,
            auto_create_account_prefix: ".".into(),
        }
    }
}

/// What swift.conf says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwiftConf {
    /// Hash prefix and suffix.
    pub salt: HashSalt,
    /// Policies by index (policy 0 always exists).
    pub policies: Vec<Policy>,
    /// Constraints.
    pub constraints: Constraints,
}

impl SwiftConf {
    /// The policy with this index.
    pub fn policy(&self, index: u32) -> Option<&Policy> {
        self.policies.iter().find(|p| p.index == index)
    }

    /// The default policy.
    pub fn default_policy(&self) -> &Policy {
        self.policies.iter().find(|p| p.default).or_else(|| self.policies.first()).unwrap_or(&POLICY0)
    }
}

static POLICY0: Policy = Policy {
    index: 0,
    name: String::new(),
    aliases: Vec::new(),
    default: true,
    kind: PolicyKind::Replication,
    deprecated: false,
};

fn truthy(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on" | "t" | "y")
}

/// Parse swift.conf text.
pub fn parse(text: &str) -> Result<SwiftConf, String> {
    let mut section = String::new();
    let mut prefix: Option<Vec<u8>> = None;
    let mut suffix: Option<Vec<u8>> = None;
    let mut policies: Vec<Policy> = Vec::new();
    let mut constraints = Constraints::default();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            if let Some(idx) = section.strip_prefix("storage-policy:") {
                let index: u32 = idx.parse().map_err(|_| format!("line {}: bad policy index {idx:?}", n + 1))?;
                if policies.iter().any(|p| p.index == index) {
                    return Err(format!("line {}: policy {index} defined twice", n + 1));
                }
                policies.push(Policy {
                    index,
                    name: String::new(),
                    aliases: Vec::new(),
                    default: false,
                    kind: PolicyKind::Replication,
                    deprecated: false,
                });
            }
            continue;
        }
        let Some((k, v)) = line.split_once('=').or_else(|| line.split_once(':')) else {
            return Err(format!("line {}: expected key = value", n + 1));
        };
        let (k, v) = (k.trim(), v.trim());
        match section.as_str() {
            "swift-hash" => match k {
                "swift_hash_path_prefix" => prefix = Some(latin1(v)),
                "swift_hash_path_suffix" => suffix = Some(latin1(v)),
                _ => {}
            },
            "swift-constraints" => {
                let num = || v.parse::<u64>().map_err(|_| format!("line {}: {k} must be a number", n + 1));
                match k {
                    "max_file_size" => constraints.max_file_size = num()?,
                    "max_meta_name_length" => constraints.max_meta_name_length = num()? as usize,
                    "max_meta_value_length" => constraints.max_meta_value_length = num()? as usize,
                    "max_meta_count" => constraints.max_meta_count = num()? as usize,
                    "max_meta_overall_size" => constraints.max_meta_overall_size = num()? as usize,
                    "max_header_size" => constraints.max_header_size = num()? as usize,
                    "max_object_name_length" => constraints.max_object_name_length = num()? as usize,
                    "container_listing_limit" => constraints.container_listing_limit = num()? as usize,
                    "account_listing_limit" => constraints.account_listing_limit = num()? as usize,
                    "auto_create_account_prefix" => constraints.auto_create_account_prefix = v.to_string(),
                    _ => {}
                }
            }
            s if s.starts_with("storage-policy:") => {
                let Some(p) = policies.last_mut() else { continue };
                match k {
                    "name" => p.name = v.to_string(),
                    "aliases" => {
                        p.aliases = v.split(',').map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect()
                    }
                    "default" => p.default = truthy(v),
                    "deprecated" => p.deprecated = truthy(v),
                    "policy_type" => {
                        p.kind = match v {
                            "replication" => PolicyKind::Replication,
                            "erasure_coding" => PolicyKind::ErasureCoding,
                            other => return Err(format!("line {}: unknown policy_type {other:?}", n + 1)),
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if prefix.is_none() && suffix.is_none() {
        return Err("[swift-hash] needs swift_hash_path_prefix or swift_hash_path_suffix".into());
    }
    if policies.is_empty() {
        policies.push(Policy { name: "Policy-0".into(), ..POLICY0.clone() });
    }
    if !policies.iter().any(|p| p.index == 0) {
        policies.push(Policy { name: "Policy-0".into(), default: false, ..POLICY0.clone() });
    }
    for p in &mut policies {
        if p.name.is_empty() {
            p.name = format!("Policy-{}", p.index);
        }
    }
    match policies.iter().filter(|p| p.default).count() {
        0 if policies.len() == 1 => {
            if let Some(p) = policies.first_mut() {
                p.default = true;
            }
        }
        0 => return Err("more than one storage policy and none is `default = yes`".into()),
        1 => {}
        _ => return Err("more than one storage policy has `default = yes`".into()),
    }
    policies.sort_by_key(|p| p.index);
    Ok(SwiftConf {
        salt: HashSalt { prefix: prefix.unwrap_or_default(), suffix: suffix.unwrap_or_default() },
        policies,
        constraints,
    })
}

fn latin1(s: &str) -> Vec<u8> {
    // Swift reads the values as text and uses them as latin-1 bytes; a
    // value written in UTF-8 is kept as its bytes.
    s.as_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hash_policies_and_constraints() {
        let c = parse(
            "[swift-hash]\nswift_hash_path_prefix = changeme\nswift_hash_path_suffix = changeme\n\n\
             [storage-policy:0]\nname = gold\ndefault = yes\n[storage-policy:1]\nname = silver\naliases = s, ag\n\
             [swift-constraints]\nmax_file_size = 100\n",
        )
        .expect("valid");
        assert_eq!(c.salt.prefix, b"changeme");
        assert_eq!(c.policies.len(), 2);
        assert_eq!(c.default_policy().name, "gold");
        assert_eq!(c.policy(1).map(|p| p.aliases.clone()), Some(vec!["s".to_string(), "ag".to_string()]));
        assert_eq!(c.constraints.max_file_size, 100);
        assert_eq!(c.constraints.max_meta_count, 90);
    }

    #[test]
    fn defaults_and_errors() {
        let c = parse("[swift-hash]\nswift_hash_path_suffix = x\n").expect("valid");
        assert_eq!(c.policies[0].name, "Policy-0");
        assert!(c.policies[0].default);
        assert!(parse("[swift-hash]\n").is_err());
        assert!(parse(
            "[swift-hash]\nswift_hash_path_suffix = x\n[storage-policy:1]\nname=a\n[storage-policy:2]\nname=b\n"
        )
        .is_err());
    }
}
