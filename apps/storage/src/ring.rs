//! Swift's rings (`<swift_dir>/<kind>.ring.gz`), read-only: which devices
//! hold a partition, and which partition a name is in.
//!
//! The file is gzip-compressed. Format 1 (what `swift-ring-builder` writes
//! by default): the magic `R1NG`, a big-endian u16 version (1), a
//! big-endian u32 length and that much JSON (`devs`, `part_shift`,
//! `replica_count`, `byteorder`, …), then per replica one array of u16
//! device ids, one per partition, in the JSON's `byteorder`. Format 2 (an
//! indexed container of sections) is refused with a clear error.
//!
//! Reading blocks on the file system: call it from pool threads or
//! background processes.

use crate::hash::HashSalt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One device of a ring.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub id: u16,
    pub region: u32,
    pub zone: u32,
    pub ip: String,
    pub port: u16,
    /// Where replication traffic (and, since Swift 2.38, the updaters'
    /// requests) goes; the ring gives `ip`/`port` when it names none.
    pub replication_ip: String,
    pub replication_port: u16,
    pub device: String,
    pub weight: f64,
    pub meta: String,
}

fn host_port(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

impl Device {
    /// `ip:port`, with IPv6 addresses bracketed.
    pub fn host(&self) -> String {
        host_port(&self.ip, self.port)
    }

    /// `replication_ip:replication_port`, with IPv6 addresses bracketed.
    pub fn replication_host(&self) -> String {
        host_port(&self.replication_ip, self.replication_port)
    }

    fn from_json(d: &serde_json::Value) -> Option<Device> {
        let ip = d["ip"].as_str()?.to_string();
        let port = u16::try_from(d["port"].as_u64()?).ok()?;
        Some(Device {
            id: u16::try_from(d["id"].as_u64()?).ok()?,
            region: d["region"].as_u64().and_then(|r| u32::try_from(r).ok()).unwrap_or(1),
            zone: d["zone"].as_u64().and_then(|z| u32::try_from(z).ok()).unwrap_or(0),
            replication_ip: d["replication_ip"].as_str().map_or_else(|| ip.clone(), str::to_string),
            replication_port: d["replication_port"].as_u64().and_then(|p| u16::try_from(p).ok()).unwrap_or(port),
            ip,
            port,
            device: d["device"].as_str()?.to_string(),
            weight: d["weight"].as_f64().unwrap_or(0.0),
            meta: d["meta"].as_str().unwrap_or("").to_string(),
        })
    }
}

/// A loaded ring.
#[derive(Debug, Clone)]
pub struct Ring {
    devs: Vec<Option<Device>>,
    part_shift: u32,
    replica2part2dev: Vec<Vec<u16>>,
    /// Set while the ring's partition power is being increased (the
    /// replicators pause then: every object is linked twice).
    next_part_power: Option<u64>,
    /// Regions, zones and ips of the devices that hold partitions (the
    /// handoff search stops once each tier is used up).
    tiers: (usize, usize, usize, usize),
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl Ring {
    /// Load a `.ring.gz` file.
    pub fn load(path: &Path) -> io::Result<Ring> {
        let mut data = Vec::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(path)?).read_to_end(&mut data)?;
        Ring::parse(&data).map_err(|e| bad(format!("{}: {e}", path.display())))
    }

    /// Parse the decompressed bytes of a ring file.
    pub fn parse(data: &[u8]) -> io::Result<Ring> {
        if data.get(..4) != Some(b"R1NG".as_slice()) {
            return Err(bad("not a Swift ring (no R1NG magic)"));
        }
        let version = u16::from_be_bytes([data.get(4).copied().unwrap_or(0), data.get(5).copied().unwrap_or(0)]);
        if version != 1 {
            return Err(bad(format!(
                "ring format {version} is not supported (write it with format 1, swift-ring-builder's default)"
            )));
        }
        let len_bytes: [u8; 4] = data.get(6..10).and_then(|b| b.try_into().ok()).ok_or_else(|| bad("truncated"))?;
        let json_len = u32::from_be_bytes(len_bytes) as usize;
        let json = data.get(10..10 + json_len).ok_or_else(|| bad("truncated metadata"))?;
        let meta: serde_json::Value = serde_json::from_slice(json).map_err(|e| bad(format!("metadata: {e}")))?;
        let part_shift = meta["part_shift"].as_u64().filter(|s| *s <= 32).ok_or_else(|| bad("no part_shift"))? as u32;
        let replicas = meta["replica_count"].as_u64().ok_or_else(|| bad("no replica_count"))? as usize;
        let little = meta["byteorder"].as_str().unwrap_or("little") == "little";
        let devs = meta["devs"].as_array().ok_or_else(|| bad("no devs"))?.iter().map(Device::from_json).collect();
        let parts = 1usize << (32 - part_shift);
        let mut rest = &data[10 + json_len..];
        let mut replica2part2dev = Vec::with_capacity(replicas);
        for _ in 0..replicas {
            // A fractional last replica has a shorter table.
            let n = (rest.len() / 2).min(parts);
            let table = rest[..n * 2]
                .chunks_exact(2)
                .map(|b| if little { u16::from_le_bytes([b[0], b[1]]) } else { u16::from_be_bytes([b[0], b[1]]) })
                .collect();
            rest = &rest[n * 2..];
            replica2part2dev.push(table);
        }
        let next_part_power = meta["next_part_power"].as_u64();
        let mut ring = Ring { devs, part_shift, replica2part2dev, next_part_power, tiers: (0, 0, 0, 0) };
        ring.tiers = ring.count_tiers();
        Ok(ring)
    }

    fn count_tiers(&self) -> (usize, usize, usize, usize) {
        use std::collections::BTreeSet;
        let assigned: BTreeSet<u16> = self.replica2part2dev.iter().flatten().copied().collect();
        let (mut regions, mut zones, mut ips, mut devs) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new(), 0);
        for d in self.devs.iter().flatten().filter(|d| assigned.contains(&d.id)) {
            regions.insert(d.region);
            zones.insert((d.region, d.zone));
            ips.insert((d.region, d.zone, d.ip.clone()));
            devs += 1;
        }
        (regions.len(), zones.len(), ips.len(), devs)
    }

    /// Every device of the ring (removed ones are not listed).
    pub fn devices(&self) -> impl Iterator<Item = &Device> {
        self.devs.iter().flatten()
    }

    /// How many partitions the ring has.
    pub fn partition_count(&self) -> u32 {
        self.replica2part2dev.first().map_or(0, |t| t.len() as u32)
    }

    /// Whether a partition power increase is under way.
    pub fn next_part_power(&self) -> Option<u64> {
        self.next_part_power
    }

    /// The handoff devices of a partition, best first, as Swift's
    /// `Ring.get_more_nodes` orders them (the same sequence, so a
    /// replicator here looks where Swift's proxy wrote): devices in unused
    /// regions first, then unused zones, then unused ips, then any other
    /// device, each tier walked from a start point the partition's MD5
    /// picks.
    pub fn more_nodes(&self, partition: u32) -> Vec<&Device> {
        use std::collections::BTreeSet;
        let primaries = self.nodes(partition);
        let mut used: BTreeSet<u16> = primaries.iter().map(|d| d.id).collect();
        let mut regions: BTreeSet<u32> = primaries.iter().map(|d| d.region).collect();
        let mut zones: BTreeSet<(u32, u32)> = primaries.iter().map(|d| (d.region, d.zone)).collect();
        let mut ips: BTreeSet<(u32, u32, &str)> = primaries.iter().map(|d| (d.region, d.zone, d.ip.as_str())).collect();
        let parts = self.partition_count() as usize;
        if parts == 0 {
            return Vec::new();
        }
        let digest = crate::hash::md5(partition.to_string().as_bytes());
        let start = (u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]).checked_shr(self.part_shift))
            .unwrap_or(0) as usize;
        let inc = (parts / 65536).max(1);
        let order: Vec<usize> =
            (start..parts).step_by(inc).chain((inc - ((parts - start) % inc)..start).step_by(inc)).collect();
        let (n_regions, n_zones, n_ips, n_devs) = self.tiers;
        let mut out: Vec<&Device> = Vec::new();
        // Tier 0: a new region; 1: a new zone; 2: a new ip; 3: any.
        for tier in 0..4 {
            let done =
                |r: &BTreeSet<u32>, z: &BTreeSet<(u32, u32)>, i: &BTreeSet<(u32, u32, &str)>, u: &BTreeSet<u16>| {
                    match tier {
                        0 => r.len() >= n_regions,
                        1 => z.len() >= n_zones,
                        2 => i.len() >= n_ips,
                        _ => u.len() >= n_devs,
                    }
                };
            'walk: for &hp in &order {
                if done(&regions, &zones, &ips, &used) {
                    break;
                }
                for table in &self.replica2part2dev {
                    let Some(&id) = table.get(hp) else { continue };
                    let Some(Some(d)) = self.devs.get(id as usize) else { continue };
                    let fresh = !used.contains(&id)
                        && match tier {
                            0 => !regions.contains(&d.region),
                            1 => !zones.contains(&(d.region, d.zone)),
                            2 => !ips.contains(&(d.region, d.zone, d.ip.as_str())),
                            _ => true,
                        };
                    if !fresh {
                        continue;
                    }
                    out.push(d);
                    used.insert(id);
                    regions.insert(d.region);
                    zones.insert((d.region, d.zone));
                    ips.insert((d.region, d.zone, d.ip.as_str()));
                    if done(&regions, &zones, &ips, &used) {
                        break 'walk;
                    }
                }
            }
        }
        out
    }

    /// The partition of `account[/container[/object]]`.
    pub fn partition(&self, salt: &HashSalt, account: &str, container: Option<&str>, object: Option<&str>) -> u32 {
        let d = salt.digest(account, container, object);
        let top = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
        top.checked_shr(self.part_shift).unwrap_or(0)
    }

    /// The primary devices of a partition, each once, in replica order.
    pub fn nodes(&self, partition: u32) -> Vec<&Device> {
        let mut out: Vec<&Device> = Vec::new();
        for table in &self.replica2part2dev {
            let Some(&id) = table.get(partition as usize) else { continue };
            if let Some(Some(d)) = self.devs.get(id as usize) {
                if !out.iter().any(|o| o.id == d.id) {
                    out.push(d);
                }
            }
        }
        out
    }
}

/// A ring file, reloaded when it changes on disk.
#[derive(Debug)]
pub struct RingFile {
    path: PathBuf,
    loaded: Option<(SystemTime, Ring)>,
    complained: bool,
}

impl RingFile {
    pub fn new(path: PathBuf) -> RingFile {
        RingFile { path, loaded: None, complained: false }
    }

    /// The ring as it is on disk now (reloaded if its mtime changed); None
    /// when there is no ring file or it cannot be read (logged once).
    pub fn get(&mut self) -> Option<&Ring> {
        let mtime = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        let Some(mtime) = mtime else {
            self.loaded = None;
            return None;
        };
        if self.loaded.as_ref().map(|(t, _)| *t) != Some(mtime) {
            match Ring::load(&self.path) {
                Ok(r) => {
                    self.loaded = Some((mtime, r));
                    self.complained = false;
                }
                Err(e) => {
                    if !self.complained {
                        log::error!("cannot read ring {}: {e}", self.path.display());
                        self.complained = true;
                    }
                    self.loaded = None;
                    return None;
                }
            }
        }
        self.loaded.as_ref().map(|(_, r)| r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring_bytes(meta: &str, tables: &[&[u16]]) -> Vec<u8> {
        let mut v = b"R1NG".to_vec();
        v.extend_from_slice(&1u16.to_be_bytes());
        v.extend_from_slice(&(meta.len() as u32).to_be_bytes());
        v.extend_from_slice(meta.as_bytes());
        for t in tables {
            for id in *t {
                v.extend_from_slice(&id.to_le_bytes());
            }
        }
        v
    }

    #[test]
    fn parses_format_1_and_finds_nodes() {
        // part_shift 30: 4 partitions; 2 replicas; device 1 removed (null).
        let meta = r#"{"devs": [{"id": 0, "ip": "10.0.0.1", "port": 6202, "device": "sda",
            "replication_ip": "10.1.0.1", "replication_port": 6302, "region": 2, "zone": 3}, null,
            {"id": 2, "ip": "::1", "port": 6202, "device": "sdb"}],
            "part_shift": 30, "replica_count": 2, "byteorder": "little"}"#;
        let r = Ring::parse(&ring_bytes(meta, &[&[0, 2, 0, 2], &[2, 0, 2, 2]])).expect("parse");
        let hosts = |p| r.nodes(p).iter().map(|d| format!("{}/{}", d.host(), d.device)).collect::<Vec<_>>();
        assert_eq!(hosts(0), ["10.0.0.1:6202/sda", "[::1]:6202/sdb"]);
        assert_eq!(hosts(3), ["[::1]:6202/sdb"], "a device is listed once");
        let first = r.nodes(0)[0];
        assert_eq!((first.replication_host(), first.region, first.zone), ("10.1.0.1:6302".to_string(), 2, 3));
        assert_eq!(r.nodes(3)[0].replication_host(), "[::1]:6202", "no replication address: the ring's own");
        let salt = HashSalt { prefix: b"changeme".to_vec(), suffix: b"changeme".to_vec() };
        // md5("changeme/AUTH_t/c/ochangeme") starts 0x12ff...: top 2 bits 00.
        assert_eq!(r.partition(&salt, "AUTH_t", Some("c"), Some("o")), 0);
        assert!(Ring::parse(b"R1NG\x00\x02....").is_err_and(|e| e.to_string().contains("format 2")));
        assert!(Ring::parse(b"nope").is_err());
    }
}
