//! Swift's hash paths (§5.1): `md5(PREFIX + "/a/c/o" + SUFFIX)` in hex.

use md5::{Digest, Md5};

/// The swift.conf `[swift-hash]` values, as raw bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HashSalt {
    /// `swift_hash_path_prefix`
    pub prefix: Vec<u8>,
    /// `swift_hash_path_suffix`
    pub suffix: Vec<u8>,
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// MD5 of bytes, lower-case hex.
pub fn md5_hex(data: &[u8]) -> String {
    hex(&md5(data))
}

/// MD5 of bytes.
pub fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

impl HashSalt {
    /// `hash_path(account[, container[, object]])`.
    pub fn hash_path(&self, account: &str, container: Option<&str>, object: Option<&str>) -> String {
        hex(&self.digest(account, container, object))
    }

    /// The raw MD5 behind [`HashSalt::hash_path`] (rings take partitions
    /// from its first four bytes).
    pub fn digest(&self, account: &str, container: Option<&str>, object: Option<&str>) -> [u8; 16] {
        let mut h = Md5::new();
        h.update(&self.prefix);
        h.update(b"/");
        h.update(account.as_bytes());
        if let Some(c) = container {
            h.update(b"/");
            h.update(c.as_bytes());
            if let Some(o) = object {
                h.update(b"/");
                h.update(o.as_bytes());
            }
        }
        h.update(&self.suffix);
        h.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_spec_example() {
        let salt = HashSalt { prefix: b"changeme".to_vec(), suffix: b"changeme".to_vec() };
        assert_eq!(salt.hash_path("AUTH_t", Some("c"), Some("o")), "12ff799997ba082a30012665b4e4fef2");
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
