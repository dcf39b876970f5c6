//! The replicas of another server a write names in its headers, as Swift's
//! proxy sends them: `X-<Kind>-Host` and `X-<Kind>-Device` (comma-separated,
//! paired in order) and `X-<Kind>-Partition` — `Container` on object writes
//! (the container rows to update), `Account` on container writes, `Delete-At`
//! on object writes with an expiry (the expirer queue). One parser for all.

use aerie_api::RequestHead;

/// Where the replicas are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replicas {
    /// The partition on them.
    pub partition: String,
    /// `(host:port, device)` of each.
    pub nodes: Vec<(String, String)>,
}

/// The hosts and devices lists do not pair up (a proxy bug Swift refuses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// `X-<Kind>-Host` as sent.
    pub hosts: String,
    /// `X-<Kind>-Device` as sent.
    pub devices: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "The number of hosts and devices should match: {} vs {}", self.hosts, self.devices)
    }
}

impl Replicas {
    /// The replicas of `kind` a request names: `Ok(None)` when it names no
    /// partition or no complete host/device pair; `Err` when the lists have
    /// different lengths (Swift's container and object servers refuse that).
    pub fn from_headers(head: &RequestHead, kind: &str) -> Result<Option<Replicas>, Mismatch> {
        let get = |what: &str| head.header_str(&format!("x-{kind}-{what}")).unwrap_or("");
        let (hosts, devices) = (get("host"), get("device"));
        if hosts.split(',').count() != devices.split(',').count() {
            return Err(Mismatch { hosts: hosts.to_string(), devices: devices.to_string() });
        }
        Ok(Replicas::pair(hosts, devices, get("partition")))
    }

    /// The same without the length check: Swift's `delete_at_update` zips
    /// the lists and uses the pairs it gets.
    pub fn from_headers_lenient(head: &RequestHead, kind: &str) -> Option<Replicas> {
        let get = |what: &str| head.header_str(&format!("x-{kind}-{what}")).unwrap_or("");
        Replicas::pair(get("host"), get("device"), get("partition"))
    }

    fn pair(hosts: &str, devices: &str, partition: &str) -> Option<Replicas> {
        let partition = partition.trim();
        if partition.is_empty() {
            return None;
        }
        let nodes: Vec<(String, String)> = hosts
            .split(',')
            .map(str::trim)
            .zip(devices.split(',').map(str::trim))
            .filter(|(h, d)| !h.is_empty() && !d.is_empty())
            .map(|(h, d)| (h.to_string(), d.to_string()))
            .collect();
        (!nodes.is_empty()).then(|| Replicas { partition: partition.to_string(), nodes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &str)]) -> RequestHead {
        let mut raw = b"PUT /d/p/a/c HTTP/1.1\r\n".to_vec();
        let mut ranges = Vec::new();
        for (k, v) in headers {
            let ks = raw.len();
            raw.extend_from_slice(k.as_bytes());
            let ke = raw.len();
            raw.extend_from_slice(b": ");
            let vs = raw.len();
            raw.extend_from_slice(v.as_bytes());
            let ve = raw.len();
            raw.extend_from_slice(b"\r\n");
            ranges.push((ks..ke, vs..ve));
        }
        RequestHead::new(aerie_api::RequestHeadParts {
            raw,
            method: aerie_api::Method::Put,
            target: 4..12,
            version: aerie_api::Version::Http11,
            headers: ranges,
            peer: "127.0.0.1:1".parse().expect("addr"),
            local: "127.0.0.1:2".parse().expect("addr"),
            framing: aerie_api::BodyFraming::None,
            expect_continue: false,
        })
    }

    #[test]
    fn pairs_hosts_and_devices_under_a_partition() {
        let h = head(&[
            ("X-Account-Host", "10.0.0.1:6202, 10.0.0.2:6202"),
            ("X-Account-Device", "sda,sdb"),
            ("X-Account-Partition", " 7 "),
        ]);
        let r = Replicas::from_headers(&h, "account").expect("pairs").expect("named");
        assert_eq!(r.partition, "7");
        assert_eq!(r.nodes, [("10.0.0.1:6202".into(), "sda".into()), ("10.0.0.2:6202".into(), "sdb".into())]);
        assert_eq!(Replicas::from_headers(&head(&[]), "account"), Ok(None), "none named");
        let bad =
            head(&[("X-Container-Host", "a:1,b:2"), ("X-Container-Device", "sda"), ("X-Container-Partition", "1")]);
        let e = Replicas::from_headers(&bad, "container").expect_err("mismatch");
        assert_eq!(e.to_string(), "The number of hosts and devices should match: a:1,b:2 vs sda");
        assert_eq!(Replicas::from_headers_lenient(&bad, "container").map(|r| r.nodes.len()), Some(1));
    }
}
