//! `/etc/swift/swift.conf`, read the way Swift reads it (§0.2, §0.3):
//! `[swift-hash]` prefix and suffix (raw bytes), `[storage-policy:N]`
//! sections, and `[swift-constraints]` overrides.

use crate::HashSalt;

/// A storage policy's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Replicated objects.
    Replication,
    /// Erasure coded: the proxy encodes, each node stores fragment
    /// archives.
    ErasureCoding,
}

/// The erasure codes liberasurecode offers (PyECLib's `VALID_EC_TYPES`).
pub const EC_TYPES: &[&str] = &[
    "jerasure_rs_vand",
    "jerasure_rs_cauchy",
    "flat_xor_hd_3",
    "flat_xor_hd_4",
    "isa_l_rs_vand",
    "isa_l_rs_cauchy",
    "liberasurecode_rs_vand",
    "shss",
    "libphazr",
];

/// An erasure-coded policy's settings (what the proxy encodes with; the
/// node needs the fragment count to check fragment indexes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcParams {
    /// `ec_type`.
    pub ec_type: String,
    /// `ec_num_data_fragments`.
    pub ndata: u32,
    /// `ec_num_parity_fragments`.
    pub nparity: u32,
    /// `ec_object_segment_size`.
    pub segment_size: u64,
    /// `ec_duplication_factor`.
    pub duplication: u32,
}

impl EcParams {
    /// Fragment indexes run below this (`ec_ndata + ec_nparity`).
    pub fn fragments(&self) -> u32 {
        self.ndata + self.nparity
    }
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
    /// An erasure-coded policy's settings.
    pub ec: Option<EcParams>,
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
    ec: None,
};

/// Swift's `config_true_value`: true, 1, yes, on, t or y, in any case.
pub fn truthy(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on" | "t" | "y")
}

/// Parse swift.conf text.
pub fn parse(text: &str) -> Result<SwiftConf, String> {
    let mut section = String::new();
    let mut prefix: Option<Vec<u8>> = None;
    let mut suffix: Option<Vec<u8>> = None;
    let mut policies: Vec<Policy> = Vec::new();
    let mut constraints = Constraints::default();
    // (policy, line, key, value) of every ec_* setting.
    let mut ec_settings: Vec<(u32, usize, String, String)> = Vec::new();
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
                    ec: None,
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
                    k if k.starts_with("ec_") => {
                        ec_settings.push((p.index, n + 1, k.to_string(), v.to_string()));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    for p in &mut policies {
        if p.kind == PolicyKind::ErasureCoding {
            let mine: Vec<&(u32, usize, String, String)> = ec_settings.iter().filter(|e| e.0 == p.index).collect();
            p.ec = Some(ec_params(p.index, &mine)?);
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

/// An EC policy's settings, checked as Swift's `ECStoragePolicy` checks
/// them; an error names the section and the key.
fn ec_params(index: u32, settings: &[&(u32, usize, String, String)]) -> Result<EcParams, String> {
    let get = |key: &str| settings.iter().rev().find(|s| s.2 == key).map(|s| (s.1, s.3.as_str()));
    let section = format!("[storage-policy:{index}]");
    let positive = |key: &str, default: Option<u64>| -> Result<u64, String> {
        match get(key) {
            None => default.ok_or_else(|| format!("{section}: {key} is required for an erasure_coding policy")),
            Some((line, v)) => match v.parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("line {line}: {section} {key} must be a positive integer, not {v:?}")),
            },
        }
    };
    let ec_type = match get("ec_type") {
        None => return Err(format!("{section}: ec_type is required for an erasure_coding policy")),
        Some((line, v)) if !EC_TYPES.contains(&v) => {
            return Err(format!("line {line}: {section} ec_type {v:?} is not one of {}", EC_TYPES.join(", ")))
        }
        Some((_, v)) => v.to_string(),
    };
    let small = |key: &str, v: u64| u32::try_from(v).map_err(|_| format!("{section}: {key} {v} is too large"));
    let ndata = small("ec_num_data_fragments", positive("ec_num_data_fragments", None)?)?;
    let nparity = small("ec_num_parity_fragments", positive("ec_num_parity_fragments", None)?)?;
    let segment_size = positive("ec_object_segment_size", Some(1_048_576))?;
    let duplication = small("ec_duplication_factor", positive("ec_duplication_factor", Some(1))?)?;
    Ok(EcParams { ec_type, ndata, nparity, segment_size, duplication })
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
    fn erasure_coded_policies_are_read_and_checked() {
        let head = "[swift-hash]\nswift_hash_path_suffix = x\n[storage-policy:0]\nname = gold\ndefault = yes\n";
        let c = parse(&format!(
            "{head}[storage-policy:1]\nname = ec42\npolicy_type = erasure_coding\nec_type = liberasurecode_rs_vand\n\
             ec_num_data_fragments = 4\nec_num_parity_fragments = 2\nec_object_segment_size = 65536\n"
        ))
        .expect("valid");
        let ec = c.policy(1).and_then(|p| p.ec.clone()).expect("ec settings");
        assert_eq!((ec.ndata, ec.nparity, ec.segment_size, ec.duplication, ec.fragments()), (4, 2, 65536, 1, 6));
        let bad =
            |body: &str| parse(&format!("{head}[storage-policy:1]\nname = e\npolicy_type = erasure_coding\n{body}"));
        let e = bad("ec_num_data_fragments = 4\nec_num_parity_fragments = 2\n").expect_err("no type");
        assert!(e.contains("ec_type is required"), "{e}");
        let e = bad("ec_type = nope\nec_num_data_fragments = 4\nec_num_parity_fragments = 2\n").expect_err("bad type");
        assert!(e.contains("ec_type \"nope\" is not one of"), "{e}");
        let e =
            bad("ec_type = jerasure_rs_vand\nec_num_data_fragments = 0\nec_num_parity_fragments = 2\n").expect_err("0");
        assert!(e.contains("ec_num_data_fragments must be a positive integer"), "{e}");
        let e = bad("ec_type = jerasure_rs_vand\nec_num_data_fragments = 4\n").expect_err("no parity");
        assert!(e.contains("[storage-policy:1]: ec_num_parity_fragments is required"), "{e}");
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
