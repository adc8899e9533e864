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

/// Proxmox tags are `;`-separated (older releases also used spaces or commas).
pub fn tags(text: &str) -> Vec<String> {
    let mut tags: Vec<String> = text
        .split([';', ',', ' '])
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .map(str::to_owned)
        .collect();
    tags.sort();
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
