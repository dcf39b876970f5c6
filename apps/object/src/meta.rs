//! Object metadata as stored and as sent: ordered (name, value) pairs with
//! case-insensitive lookup, Swift's header classes (§3.1) and title-casing.

/// Stored metadata: names as Swift stores them (title case), values as bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta(pub Vec<(String, Vec<u8>)>);

impl Meta {
    /// The value of a key (case-insensitive).
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_slice())
    }

    /// The value as text.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Set a key, replacing any existing one with the same name in any case.
    pub fn set(&mut self, key: &str, value: impl Into<Vec<u8>>) {
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key.to_string(), value)),
        }
    }

    /// Remove a key.
    pub fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
    }

    /// From decoded pickle pairs (names that are not UTF-8 are kept lossily).
    pub fn from_pairs(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Meta {
        Meta(pairs.into_iter().map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v)).collect())
    }

    /// As pickle pairs.
    pub fn to_pairs(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.0.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.clone())).collect()
    }
}

fn has_prefix(name: &str, prefix: &str) -> bool {
    name.len() > prefix.len() && name.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// `X-Object-Meta-*`
pub fn is_user_meta(name: &str) -> bool {
    has_prefix(name, "x-object-meta-")
}

/// `X-Object-Sysmeta-*`
pub fn is_sysmeta(name: &str) -> bool {
    has_prefix(name, "x-object-sysmeta-")
}

/// `X-Object-Transient-Sysmeta-*`
pub fn is_transient_sysmeta(name: &str) -> bool {
    has_prefix(name, "x-object-transient-sysmeta-")
}

pub use aerie_storage::header::title;

/// The object server's default `allowed_headers`.
pub const ALLOWED_HEADERS: &[&str] = &[
    "content-disposition",
    "content-encoding",
    "x-delete-at",
    "x-object-manifest",
    "x-static-large-object",
    "cache-control",
    "content-language",
    "expires",
    "x-robots-tag",
];

/// Whether a stored key is sent back on GET/HEAD.
pub fn is_returned(name: &str) -> bool {
    is_user_meta(name)
        || is_sysmeta(name)
        || is_transient_sysmeta(name)
        || ALLOWED_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_need_something_after_the_prefix() {
        assert!(is_user_meta("X-Object-Meta-Color"));
        assert!(!is_user_meta("X-Object-Meta-"));
        assert!(is_sysmeta("x-object-sysmeta-slo-etag"));
        assert!(is_transient_sysmeta("X-Object-Transient-Sysmeta-Crypto-Meta"));
        assert!(!is_sysmeta("X-Object-Transient-Sysmeta-X"));
        assert!(is_returned("Content-Disposition") && !is_returned("Content-Length"));
    }

    #[test]
    fn set_replaces_case_insensitively() {
        let mut m = Meta::default();
        m.set("Content-Type", "a");
        m.set("content-type", "b");
        assert_eq!(m.0.len(), 1);
        assert_eq!(m.get("CONTENT-TYPE"), Some(&b"b"[..]));
    }
}
