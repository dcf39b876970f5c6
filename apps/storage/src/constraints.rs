//! Swift's metadata limits (`swift/common/constraints.py` `check_metadata`),
//! one check for objects, containers and accounts, with the limits
//! swift.conf sets (`[swift-constraints]`).

use crate::header::title;
use crate::swift_conf::Constraints;
use aerie_api::{RequestHead, Response, Status};

/// Whose metadata a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaTarget {
    /// `X-Object-Meta-*`
    Object,
    /// `X-Container-Meta-*`
    Container,
    /// `X-Account-Meta-*`
    Account,
}

impl MetaTarget {
    /// The user-metadata header prefix, lower case.
    pub fn prefix(self) -> &'static str {
        match self {
            MetaTarget::Object => "x-object-meta-",
            MetaTarget::Container => "x-container-meta-",
            MetaTarget::Account => "x-account-meta-",
        }
    }
}

fn bad(msg: String) -> Response {
    Response::text(Status::BAD_REQUEST, msg)
}

/// Per-request limits, in Swift's order and with its messages: any header
/// value too long; per metadata item, an empty or over-long name, (for
/// containers and accounts) bytes that are not UTF-8, an over-long value;
/// then the running count and total size.
pub fn check_metadata(head: &RequestHead, target: MetaTarget, c: &Constraints) -> Result<(), Response> {
    let prefix = target.prefix();
    let (mut count, mut size) = (0usize, 0usize);
    for (name, value) in head.headers() {
        let key = title(name);
        if value.len() > c.max_header_size {
            let short: String = key.chars().take(c.max_meta_name_length).collect();
            return Err(bad(format!("Header value too long: {short}")));
        }
        if !(name.len() >= prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix)) {
            continue;
        }
        let rest = &key[prefix.len()..];
        if rest.is_empty() {
            return Err(bad("Metadata name cannot be empty".into()));
        }
        if target != MetaTarget::Object && std::str::from_utf8(value).is_err() {
            return Err(bad("Metadata must be valid UTF-8".into()));
        }
        count += 1;
        size += rest.len() + value.len();
        if rest.len() > c.max_meta_name_length {
            return Err(bad(format!("Metadata name too long: {prefix}{rest}")));
        }
        if value.len() > c.max_meta_value_length {
            return Err(bad(format!("Metadata value longer than {}: {prefix}{rest}", c.max_meta_value_length)));
        }
        check_totals(count, size, c)?;
    }
    Ok(())
}

/// The count and total-size limits, for a request or for the metadata a
/// database holds once a request's items are merged in (Swift's
/// `DatabaseBroker.validate_metadata`).
pub fn check_totals(count: usize, size: usize, c: &Constraints) -> Result<(), Response> {
    if count > c.max_meta_count {
        return Err(bad(format!("Too many metadata items; max {}", c.max_meta_count)));
    }
    if size > c.max_meta_overall_size {
        return Err(bad(format!("Total metadata too large; max {}", c.max_meta_overall_size)));
    }
    Ok(())
}
