//! Proxmox's string formats: property strings (`virtio=AA:..,bridge=vmbr0,tag=20`),
//! sizes (`32G`), tag lists (`prod;web`), MAC and IP addresses.
//!
//! Every parser returns `None` (or skips an item) on malformed text rather than
//! failing the plan: one odd config line must not stop a whole cluster's sync.

use std::net::IpAddr;

/// `key=value` pairs of a Proxmox property string; a leading bare value (a disk
/// volume such as `local-lvm:vm-101-disk-0`) is returned under the empty key.
pub fn property_string(text: &str) -> Vec<(&str, &str)> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| match part.split_once('=') {
            Some((key, value)) => (key.trim(), value.trim()),
            None => ("", part),
        })
        .collect()
}

pub fn property<'t>(pairs: &[(&'t str, &'t str)], key: &str) -> Option<&'t str> {
    pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// `32G` → bytes. `K`, `M`, `G`, `T` are binary multiples; a bare number is bytes.
pub fn size_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit() && *c != '.') {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return None,
    };
    let number: f64 = digits.parse().ok()?;
    if !number.is_finite() || number < 0.0 {
        return None;
    }
    Some((number * (1u64 << shift) as f64) as u64)
}

/// A size in MiB, rounded up: NetBox keeps disk sizes as whole units, and a
/// disk of 528 KiB (an EFI vars disk) is still a disk.
pub fn mib_rounded_up(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}

/// One guest disk's property string: `local-lvm:vm-101-disk-0,iothread=1,size=32G`,
/// `none,media=cdrom`, `/dev/disk/by-id/ata-X` (a passthrough device).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskSpec {
    /// The volume as Proxmox names it (`file=` and `volume=` are the same place).
    pub volume: String,
    /// The storage of a `storage:volume`; a device path or `none` has none.
    pub storage: Option<String>,
    pub format: Option<String>,
    pub size_bytes: Option<u64>,
    pub cdrom: bool,
}

pub fn disk_spec(text: &str) -> DiskSpec {
    let pairs = property_string(text);
    let volume = ["", "file", "volume"]
        .iter()
        .find_map(|key| property(&pairs, key))
        .unwrap_or_default();
    let storage = volume
        .split_once(':')
        .map(|(storage, _)| storage.trim())
        .filter(|storage| !storage.is_empty() && !storage.starts_with('/'));
    DiskSpec {
        volume: volume.to_owned(),
        storage: storage.map(str::to_owned),
        format: property(&pairs, "format").filter(|f| !f.is_empty()).map(str::to_owned),
        size_bytes: property(&pairs, "size").and_then(size_bytes),
        cdrom: property(&pairs, "media") == Some("cdrom"),
    }
}

/// Proxmox tags are `;`-separated (older releases also used spaces or commas).
pub fn tags(text: &str) -> Vec<String> {
    let mut tags: Vec<String> = text
        .split([';', ',', ' '])
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .map(str::to_owned)
        .collect();
    crate::sort::sort(&mut tags);
    tags.dedup();
    tags
}

/// A NetBox-style slug of a Proxmox tag: lower case, runs of anything else than
/// letters, digits and `_` become one `-`.
pub fn slugify(text: &str) -> String {
    slug_keeping(text, |c| c.is_ascii_alphanumeric() || c == '_')
}

/// The slug Proxbox gives a cluster name (its default site is
/// `proxmox-default-site-{slug}`): as `slugify`, but `_` is a separator too,
/// and an empty result is `cluster`.
pub fn proxbox_slug(text: &str) -> String {
    let slug = slug_keeping(text, |c| c.is_ascii_alphanumeric());
    if slug.is_empty() {
        "cluster".to_owned()
    } else {
        slug
    }
}

fn slug_keeping(text: &str, keep: fn(char) -> bool) -> String {
    let mut slug = String::with_capacity(text.len());
    for c in text.trim().chars() {
        if keep(c) {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_matches('-').to_owned()
}

/// Upper-case colon form, or `None` when the text is not a 48-bit MAC.
pub fn mac(text: &str) -> Option<String> {
    let hex: String = text.chars().filter(|c| !matches!(c, ':' | '-' | '.')).collect();
    if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let upper = hex.to_ascii_uppercase();
    let bytes: Vec<&str> = (0..6).filter_map(|i| upper.get(i * 2..i * 2 + 2)).collect();
    Some(bytes.join(":"))
}

/// An interface address with its prefix length, normalised the way NetBox
/// prints it (`2001:db8::1/64`, never `2001:DB8:0::1/64`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub ip: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn new(ip: IpAddr, prefix: u8) -> Option<Cidr> {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Cidr { ip, prefix })
    }

    /// `10.0.0.5/24`, `fe80::1%eth0/64`; a bare address gets a host prefix.
    pub fn parse(text: &str) -> Option<Cidr> {
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix.trim().parse::<u8>().ok()?)),
            None => (text.trim(), None),
        };
        let ip = parse_ip(address)?;
        let prefix = prefix.unwrap_or(if ip.is_ipv4() { 32 } else { 128 });
        Cidr::new(ip, prefix)
    }

    pub fn is_ipv4(&self) -> bool {
        self.ip.is_ipv4()
    }

    pub fn is_loopback(&self) -> bool {
        self.ip.is_loopback()
    }

    pub fn is_link_local(&self) -> bool {
        match self.ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => (v6.segments().first().copied().unwrap_or(0) & 0xffc0) == 0xfe80,
        }
    }

    pub fn is_unspecified(&self) -> bool {
        self.ip.is_unspecified()
    }

    /// NetBox assigns no network ID (nor an IPv4 broadcast address) to an
    /// interface, but for the host-sized prefixes (/31, /32, /127, /128).
    pub fn is_assignable_to_interface(&self) -> bool {
        let host_sized = match self.ip {
            IpAddr::V4(_) => self.prefix >= 31,
            IpAddr::V6(_) => self.prefix >= 127,
        };
        let broadcast = match self.ip {
            IpAddr::V4(v4) => {
                let host_bits = u32::MAX.checked_shr(u32::from(self.prefix)).unwrap_or(0);
                u32::from(v4) & host_bits == host_bits
            }
            IpAddr::V6(_) => false,
        };
        host_sized || (self.network().ip != self.ip && !broadcast)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.ip, self.prefix)
    }
}

/// An IP address without its `%zone` suffix.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let bare = text.trim().split('%').next().unwrap_or_default();
    bare.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_strings_keep_a_leading_volume() {
        let pairs = property_string("local-lvm:vm-101-disk-0,iothread=1,size=32G");
        assert_eq!(
            pairs,
            [("", "local-lvm:vm-101-disk-0"), ("iothread", "1"), ("size", "32G")]
        );
        assert_eq!(property(&pairs, "size"), Some("32G"));
    }

    #[test]
    fn sizes_use_binary_units_and_bare_bytes() {
        assert_eq!(size_bytes("32G"), Some(32 << 30));
        assert_eq!(size_bytes("528K"), Some(528 << 10));
        assert_eq!(size_bytes("4M"), Some(4 << 20));
        assert_eq!(size_bytes("1.5T"), Some(1_649_267_441_664));
        assert_eq!(size_bytes("1048576"), Some(1 << 20));
        assert_eq!(size_bytes("12Q"), None);
        assert_eq!(size_bytes(""), None);
    }

    #[test]
    fn disk_specs_name_their_storage_format_size_and_media() {
        let disk = disk_spec("local-lvm:vm-101-disk-0,format=raw,iothread=1,size=32G");
        assert_eq!(disk.storage.as_deref(), Some("local-lvm"));
        assert_eq!(disk.format.as_deref(), Some("raw"));
        assert_eq!(disk.size_bytes, Some(32 << 30));
        assert!(!disk.cdrom);
        let cdrom = disk_spec("none,media=cdrom");
        assert!(cdrom.cdrom);
        assert_eq!((cdrom.storage, cdrom.size_bytes), (None, None));
        let passthrough = disk_spec("/dev/disk/by-id/ata-ST4000DM004-2CV104_ZFN0ABCD,backup=0");
        assert_eq!(passthrough.volume, "/dev/disk/by-id/ata-ST4000DM004-2CV104_ZFN0ABCD");
        assert_eq!((passthrough.storage, passthrough.size_bytes), (None, None));
        assert_eq!(
            disk_spec("file=ceph:vm-1-disk-0,size=1T").storage.as_deref(),
            Some("ceph")
        );
        assert_eq!(mib_rounded_up(528 << 10), 1);
        assert_eq!(mib_rounded_up(4 << 20), 4);
        assert_eq!(mib_rounded_up(0), 0);
    }

    #[test]
    fn tags_split_on_semicolons_and_sort() {
        assert_eq!(tags("web;prod;;web"), ["prod", "web"]);
        assert_eq!(tags("a b,c"), ["a", "b", "c"]);
        assert_eq!(slugify("Prod Web!"), "prod-web");
    }

    #[test]
    fn macs_are_upper_case_with_colons() {
        assert_eq!(mac("bc:24:11:aa:01:01").as_deref(), Some("BC:24:11:AA:01:01"));
        assert_eq!(mac("BC-24-11-AA-01-01").as_deref(), Some("BC:24:11:AA:01:01"));
        assert_eq!(mac("vmbr0"), None);
        assert_eq!(mac("bc:24:11:aa:01"), None);
    }

    #[test]
    fn cidrs_are_normalised_and_zones_stripped() {
        assert_eq!(Cidr::parse("2001:DB8:0::11/64").unwrap().to_string(), "2001:db8::11/64");
        let zoned = Cidr::parse("fe80::1%ens18/64").unwrap();
        assert!(zoned.is_link_local());
        assert_eq!(zoned.to_string(), "fe80::1/64");
        assert_eq!(Cidr::parse("10.0.0.5").unwrap().to_string(), "10.0.0.5/32");
        assert_eq!(Cidr::parse("10.0.0.5/33"), None);
        assert_eq!(Cidr::parse("dhcp"), None);
        assert!(Cidr::parse("127.0.0.1/8").unwrap().is_loopback());
        let assignable = |text: &str| Cidr::parse(text).unwrap().is_assignable_to_interface();
        assert!(assignable("10.0.0.5/24") && assignable("10.0.0.0/31") && assignable("10.0.0.7/32"));
        assert!(!assignable("10.0.0.0/24") && !assignable("10.0.0.255/24") && !assignable("2001:db8::/64"));
        assert!(assignable("2001:db8::ffff/64") && assignable("2001:db8::/128"));
    }
}

impl Cidr {
    /// The network of a prefix: host bits zeroed (`10.1.2.3/24` → `10.1.2.0/24`).
    pub fn network(&self) -> Cidr {
        let ip = match self.ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        };
        Cidr {
            ip,
            prefix: self.prefix,
        }
    }
}

/// A Proxmox list value: `"a,b c;d"` or a JSON list, as strings.
pub fn list(value: Option<&serde_json::Value>) -> Vec<String> {
    match value {
        Some(serde_json::Value::String(text)) => text
            .split([',', ' ', ';'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod network_tests {
    use super::*;

    #[test]
    fn networks_zero_host_bits() {
        assert_eq!(Cidr::parse("10.1.2.3/24").unwrap().network().to_string(), "10.1.2.0/24");
        assert_eq!(
            Cidr::parse("2001:db8::77/64").unwrap().network().to_string(),
            "2001:db8::/64"
        );
        assert_eq!(Cidr::parse("10.1.2.3/0").unwrap().network().to_string(), "0.0.0.0/0");
        assert_eq!(
            list(Some(&serde_json::json!("65000:1, 65000:2"))),
            ["65000:1", "65000:2"]
        );
    }
}
