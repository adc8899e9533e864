//! The Proxmox side: what the snapshot says exists, in plain Rust types.
//!
//! A snapshot maps API paths to the `data` of each answer, or to
//! `{"error": {...}}` when the host could not fetch it. Whether a path was
//! fetched, failed or is missing matters: a stage plans no deletes from an
//! incomplete snapshot.

use crate::error::{ErrorCode, PlanError, Result};
use crate::fingerprint::Fnv1a;
use crate::json::{as_array, as_object, loose_flag, loose_string, loose_u64, Path};
use crate::parse::{self, Cidr};
use crate::plan::{Warning, WarningCode};
use crate::proxmox_path;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

#[derive(Clone, Copy, Debug)]
pub enum Fetched<'a> {
    Data(&'a Value),
    Failed(&'a Value),
    Missing,
}

impl<'a> Fetched<'a> {
    pub fn data(self) -> Option<&'a Value> {
        match self {
            Fetched::Data(value) => Some(value),
            _ => None,
        }
    }

    /// A short description for warnings, e.g. `HTTP 500: VM 104 is not running`.
    pub fn failure(self) -> String {
        match self {
            Fetched::Failed(error) => {
                let status = error.get("status").and_then(loose_u64);
                let message = error.get("message").and_then(Value::as_str).unwrap_or("fetch failed");
                match status {
                    Some(status) => format!("HTTP {status}: {message}"),
                    None => message.to_owned(),
                }
            }
            Fetched::Missing => "not in the snapshot".to_owned(),
            Fetched::Data(_) => String::new(),
        }
    }
}

/// The `$.proxmox` object: API path → answer. Hashed once: planners look
/// answers up tens of thousands of times, and paths share long prefixes
/// (`/nodes/pve1/qemu/...`) that make ordered comparisons slow.
pub struct ProxmoxSnapshot<'a> {
    paths: Option<HashMap<&'a str, &'a Value, BuildHasherDefault<Fnv1a>>>,
}

impl<'a> ProxmoxSnapshot<'a> {
    pub fn read(value: Option<&'a Value>) -> Result<Self> {
        let path = Path::ROOT.key("proxmox");
        let paths = match value {
            None | Some(Value::Null) => None,
            Some(value) => Some(as_object(value, &path)?.iter().map(|(k, v)| (k.as_str(), v)).collect()),
        };
        Ok(ProxmoxSnapshot { paths })
    }

    pub fn get(&self, api_path: &str) -> Fetched<'a> {
        match self.paths.as_ref().and_then(|paths| paths.get(api_path)) {
            None => Fetched::Missing,
            Some(value) => match value.as_object().and_then(|obj| obj.get("error")) {
                Some(error) if value.as_object().is_some_and(|obj| obj.len() == 1) => Fetched::Failed(error),
                _ => Fetched::Data(value),
            },
        }
    }

    pub fn has(&self, api_path: &str) -> bool {
        self.paths.as_ref().is_some_and(|paths| paths.contains_key(api_path))
    }

    /// A path every plan needs: missing is an input error, failed is reported
    /// by the caller as a warning.
    pub fn required(&self, api_path: &str) -> Result<Fetched<'a>> {
        match self.get(api_path) {
            Fetched::Missing => Err(PlanError::new(
                ErrorCode::MissingField,
                Path::ROOT.key("proxmox").key(api_path),
                format!("the Proxmox answer for {api_path} is missing; fetch the paths discover() lists first"),
            )),
            fetched => Ok(fetched),
        }
    }
}

/// Proxmox accepts guest ids from 1 to 999,999,999.
pub fn is_valid_vmid(vmid: u64) -> bool {
    (1..=999_999_999).contains(&vmid)
}

/// A guest id: an integer (or its decimal text) in Proxmox's range. Anything
/// else is refused rather than coerced, since a coerced id would be another
/// guest's identity.
pub fn vmid(value: &Value, path: &Path) -> Result<u64> {
    let parsed = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        _ => None,
    };
    parsed.filter(|v| is_valid_vmid(*v)).ok_or_else(|| {
        PlanError::new(
            ErrorCode::InvalidValue,
            path,
            format!("a vmid must be an integer from 1 to 999999999, found {value}"),
        )
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GuestKind {
    Qemu,
    Lxc,
}

impl GuestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GuestKind::Qemu => "qemu",
            GuestKind::Lxc => "lxc",
        }
    }

    pub fn parse(text: &str) -> Option<GuestKind> {
        match text {
            "qemu" => Some(GuestKind::Qemu),
            "lxc" => Some(GuestKind::Lxc),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub online: bool,
    /// From `/cluster/status` (absent for a node only `/cluster/resources` lists).
    pub ip: Option<String>,
    pub node_id: Option<u64>,
    pub local: bool,
    /// From `/cluster/resources`.
    pub max_cpu: Option<u64>,
    pub max_memory: Option<u64>,
}

impl Node {
    fn named(name: &str) -> Node {
        Node {
            name: name.to_owned(),
            online: false,
            ip: None,
            node_id: None,
            local: false,
            max_cpu: None,
            max_memory: None,
        }
    }
}

/// The `cluster` row of `/cluster/status`, or the lone node of a standalone host.
#[derive(Clone, Debug, Default)]
pub struct ClusterInfo {
    pub id: Option<String>,
    pub nodes: u64,
    pub quorate: bool,
    pub version: Option<u64>,
    pub standalone: bool,
}

#[derive(Clone, Debug)]
pub struct Guest<'a> {
    pub kind: GuestKind,
    pub vmid: u64,
    pub node: String,
    pub name: String,
    pub status: String,
    pub template: bool,
    pub maxcpu: Option<u64>,
    pub maxmem: Option<u64>,
    pub tags: Vec<String>,
    /// The resource pool it is in (backup jobs can select a pool).
    pub pool: Option<String>,
    pub config_path: String,
    pub config: Fetched<'a>,
}

impl Guest<'_> {
    /// The row's content, to order two rows of one guest.
    fn row_order(&self) -> String {
        format!(
            "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{:?}\u{0}{:?}\u{0}{}",
            self.node,
            self.name,
            self.status,
            self.template,
            self.maxcpu,
            self.maxmem,
            self.tags.join(";")
        )
    }

    /// `qemu/101`: the identity used in keys and operation ids.
    pub fn key(&self) -> String {
        format!("{}/{}", self.kind.as_str(), self.vmid)
    }

    pub fn config(&self) -> Option<&Map<String, Value>> {
        self.config.data().and_then(Value::as_object)
    }

    pub fn agent_path(&self) -> String {
        proxmox_path::guest_agent_interfaces(&self.node, self.vmid)
    }

    /// A QEMU guest with the agent enabled in its config: its addresses come
    /// from the agent, which only answers while the guest runs.
    pub fn agent_enabled(&self) -> bool {
        self.kind == GuestKind::Qemu && self.config().and_then(|c| c.get("agent")).is_some_and(agent_enabled)
    }

    /// The guest agent can only answer for a running QEMU guest that has it enabled.
    pub fn agent_expected(&self) -> bool {
        self.agent_enabled() && self.status == "running"
    }
}

/// `agent: 1`, `"1"`, `"enabled=1,fstrim_cloned_disks=1"`.
fn agent_enabled(value: &Value) -> bool {
    match value {
        Value::String(text) => {
            let pairs = parse::property_string(text);
            let flag = parse::property(&pairs, "enabled").or_else(|| parse::property(&pairs, ""));
            flag.is_some_and(|f| f == "1" || f.eq_ignore_ascii_case("true"))
        }
        other => loose_flag(Some(other)),
    }
}

/// What `/cluster/status` and `/cluster/resources` say.
pub struct Inventory<'a> {
    pub cluster_name: String,
    pub cluster: ClusterInfo,
    pub nodes: Vec<Node>,
    /// Sorted by (kind, vmid), one per guest.
    pub guests: Vec<Guest<'a>>,
    /// Guests listed twice and the like: for the plan's warnings.
    pub warnings: Vec<Warning>,
}

/// `qemu/101` (any case, surrounding space) in its canonical form.
pub fn parse_guest_key(text: &str) -> Option<String> {
    let (kind, vmid) = text.trim().split_once('/')?;
    let kind = GuestKind::parse(&kind.to_ascii_lowercase())?;
    let vmid: u64 = vmid.parse().ok().filter(|v| is_valid_vmid(*v))?;
    Some(format!("{}/{vmid}", kind.as_str()))
}

/// A Proxmox answer every plan needs could not be read.
#[derive(Clone, Debug)]
pub struct Unreadable {
    pub path: &'static str,
    pub why: String,
}

pub fn inventory<'a>(snapshot: &ProxmoxSnapshot<'a>) -> Result<std::result::Result<Inventory<'a>, Unreadable>> {
    let status = snapshot.required("/cluster/status")?;
    let resources = snapshot.required("/cluster/resources")?;
    let (Some(status), Some(resources)) = (status.data(), resources.data()) else {
        let failed = if status.data().is_none() {
            "/cluster/status"
        } else {
            "/cluster/resources"
        };
        let why = if status.data().is_none() {
            status.failure()
        } else {
            resources.failure()
        };
        return Ok(Err(Unreadable {
            path: failed,
            why: format!("{failed} could not be read ({why})"),
        }));
    };
    let proxmox = Path::ROOT.key("proxmox");
    let status_path = proxmox.key("/cluster/status");
    let resources_path = proxmox.key("/cluster/resources");
    let status_rows = as_array(status, &status_path)?;
    let resource_rows = as_array(resources, &resources_path)?;

    let mut nodes = Vec::new();
    let mut guests = Vec::new();
    for (index, row) in resource_rows.iter().enumerate() {
        let row_path = resources_path.index(index);
        let row = as_object(row, &row_path)?;
        match row.get("type").and_then(Value::as_str) {
            Some("node") => {
                if let Some(name) = row.get("node").and_then(Value::as_str) {
                    nodes.push(Node {
                        online: row.get("status").and_then(Value::as_str) == Some("online"),
                        max_cpu: row.get("maxcpu").and_then(loose_u64),
                        max_memory: row.get("maxmem").and_then(loose_u64),
                        ..Node::named(name)
                    });
                }
            }
            Some(kind @ ("qemu" | "lxc")) => {
                if let Some(guest) = guest_row(snapshot, row, kind, &row_path)? {
                    guests.push(guest);
                }
            }
            _ => {}
        }
    }
    // /cluster/status knows nodes that /cluster/resources may omit while they are down.
    let mut cluster_name = None;
    let mut cluster = ClusterInfo::default();
    for (index, row) in status_rows.iter().enumerate() {
        let row = as_object(row, &status_path.index(index))?;
        let name = row.get("name").and_then(Value::as_str);
        match (row.get("type").and_then(Value::as_str), name) {
            (Some("cluster"), Some(name)) => {
                cluster_name = Some(name.to_owned());
                cluster = ClusterInfo {
                    id: loose_string(row.get("id")),
                    nodes: row.get("nodes").and_then(loose_u64).unwrap_or_default(),
                    quorate: loose_flag(row.get("quorate")),
                    version: row.get("version").and_then(loose_u64),
                    standalone: false,
                };
            }
            (Some("node"), Some(name)) => {
                let at = match nodes.iter().position(|n| n.name == name) {
                    Some(at) => at,
                    None => {
                        nodes.push(Node::named(name));
                        nodes.len() - 1
                    }
                };
                if let Some(node) = nodes.get_mut(at) {
                    node.online |= loose_flag(row.get("online"));
                    node.ip = loose_string(row.get("ip")).filter(|ip| !ip.is_empty());
                    node.node_id = row.get("nodeid").and_then(loose_u64);
                    node.local = loose_flag(row.get("local"));
                }
            }
            _ => {}
        }
    }
    crate::sort::sort_by(&mut nodes, |a, b| a.name.cmp(&b.name));
    nodes.dedup_by(|a, b| a.name == b.name);
    // A guest listed twice (a node that just joined) is one guest: which row
    // wins is decided by content, never by list order.
    crate::sort::sort_by_cached_key(&mut guests, |g| (g.kind, g.vmid, g.row_order()));
    let listed = guests.len();
    guests.dedup_by_key(|g| (g.kind, g.vmid));
    let mut warnings = Vec::new();
    if guests.len() < listed {
        let message = format!(
            "/cluster/resources lists {} guest(s) more than once; one row each is used",
            listed - guests.len()
        );
        warnings.push(Warning::new(WarningCode::DuplicateIdentity, message).at_path(proxmox_path::CLUSTER_RESOURCES));
    }
    // A standalone host has no cluster entry: it is its own cluster.
    let cluster_name = match (cluster_name, nodes.first()) {
        (Some(name), _) => name,
        (None, Some(node)) => {
            cluster = ClusterInfo {
                nodes: 1,
                quorate: true,
                standalone: true,
                ..ClusterInfo::default()
            };
            node.name.clone()
        }
        (None, None) => {
            return Ok(Err(Unreadable {
                path: "/cluster/status",
                why: "/cluster/status names neither a cluster nor a node".to_owned(),
            }))
        }
    };
    Ok(Ok(Inventory {
        cluster_name,
        cluster,
        nodes,
        guests,
        warnings,
    }))
}

fn guest_row<'a>(
    snapshot: &ProxmoxSnapshot<'a>,
    row: &Map<String, Value>,
    kind: &str,
    path: &Path,
) -> Result<Option<Guest<'a>>> {
    let kind = GuestKind::parse(kind).unwrap_or(GuestKind::Qemu);
    let vmid = match row.get("vmid") {
        Some(value) => vmid(value, &path.key("vmid"))?,
        None => {
            // `id` is `qemu/101`; older answers lack `vmid`.
            let from_id = row
                .get("id")
                .and_then(Value::as_str)
                .and_then(|id| id.rsplit('/').next());
            match from_id {
                Some(text) => vmid(&Value::from(text), &path.key("id"))?,
                None => {
                    return Err(PlanError::new(
                        ErrorCode::MissingField,
                        path.key("vmid"),
                        "a guest row without a vmid",
                    ))
                }
            }
        }
    };
    let Some(node) = row.get("node").and_then(Value::as_str) else {
        return Err(PlanError::new(
            ErrorCode::MissingField,
            path.key("node"),
            "a guest row without a node",
        ));
    };
    let config_path = proxmox_path::guest_config(node, kind, vmid);
    let config = snapshot.get(&config_path);
    let config_obj = config.data().and_then(Value::as_object);
    let name = loose_string(row.get("name"))
        .or_else(|| config_obj.and_then(|c| loose_string(c.get("name").or_else(|| c.get("hostname")))))
        .filter(|n| !n.trim().is_empty());
    let template = loose_flag(row.get("template")) || loose_flag(config_obj.and_then(|c| c.get("template")));
    let name = name.unwrap_or_else(|| match template {
        true => format!("template-{vmid}"),
        false => format!("{}-{vmid}", kind.as_str()),
    });
    let tags = row
        .get("tags")
        .or_else(|| config_obj.and_then(|c| c.get("tags")))
        .and_then(Value::as_str)
        .map(parse::tags)
        .unwrap_or_default();
    Ok(Some(Guest {
        kind,
        vmid,
        node: node.to_owned(),
        name,
        status: row
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned(),
        template,
        maxcpu: row.get("maxcpu").and_then(loose_u64),
        maxmem: row.get("maxmem").and_then(loose_u64),
        tags,
        pool: row.get("pool").and_then(Value::as_str).map(str::to_owned),
        config_path,
        config,
    }))
}

/// One `netN` of a guest config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nic {
    pub index: u32,
    pub name: String,
    pub mac: Option<String>,
    pub vlan: Option<u16>,
    pub enabled: bool,
    pub mtu: Option<u64>,
    /// The node bridge it is plugged into (`bridge=`).
    pub bridge: Option<String>,
    /// Static addresses from `ipconfigN` (QEMU) or `ip=`/`ip6=` (LXC).
    pub static_ips: Vec<Cidr>,
}

const QEMU_NIC_MODELS: [&str; 14] = [
    "virtio",
    "e1000",
    "e1000e",
    "vmxnet3",
    "rtl8139",
    "ne2k_pci",
    "ne2k_isa",
    "i82551",
    "i82557b",
    "i82559er",
    "pcnet",
    "e1000-82540em",
    "e1000-82544gc",
    "e1000-82545em",
];

/// The NICs of a config, ordered by index (`netN` keys may be sparse).
pub fn nics(kind: GuestKind, config: &Map<String, Value>) -> Vec<Nic> {
    let mut nics: Vec<Nic> = config
        .iter()
        .filter_map(|(key, value)| {
            let index: u32 = key.strip_prefix("net")?.parse().ok()?;
            let text = value.as_str()?;
            Some(nic(kind, index, text, config))
        })
        .collect();
    crate::sort::sort_by_key(&mut nics, |nic| nic.index);
    nics
}

fn nic(kind: GuestKind, index: u32, text: &str, config: &Map<String, Value>) -> Nic {
    let pairs = parse::property_string(text);
    let mac = match kind {
        GuestKind::Lxc => parse::property(&pairs, "hwaddr").and_then(parse::mac),
        GuestKind::Qemu => parse::property(&pairs, "macaddr")
            .or_else(|| pairs.iter().find(|(k, _)| QEMU_NIC_MODELS.contains(k)).map(|(_, v)| *v))
            .and_then(parse::mac),
    };
    let name = match kind {
        GuestKind::Lxc => parse::property(&pairs, "name").map(str::to_owned),
        GuestKind::Qemu => None,
    }
    .unwrap_or_else(|| format!("net{index}"));
    let static_ips = match kind {
        GuestKind::Lxc => static_addresses(&pairs),
        GuestKind::Qemu => config
            .get(&format!("ipconfig{index}"))
            .and_then(Value::as_str)
            .map(|text| static_addresses(&parse::property_string(text)))
            .unwrap_or_default(),
    };
    Nic {
        index,
        name,
        mac,
        vlan: parse::property(&pairs, "tag")
            .and_then(|t| t.parse().ok())
            .filter(|v| (1..=4094).contains(v)),
        enabled: parse::property(&pairs, "link_down") != Some("1"),
        mtu: parse::property(&pairs, "mtu")
            .and_then(|m| m.parse().ok())
            .filter(|m| *m > 1),
        bridge: parse::property(&pairs, "bridge")
            .filter(|b| !b.is_empty())
            .map(str::to_owned),
        static_ips,
    }
}

/// `ip=` and `ip6=`; `dhcp`, `auto` and `manual` carry no address.
fn static_addresses(pairs: &[(&str, &str)]) -> Vec<Cidr> {
    ["ip", "ip6"]
        .iter()
        .filter_map(|key| parse::property(pairs, key))
        .filter_map(Cidr::parse)
        .collect()
}

/// The disk keys that count towards a guest's size (SPEC §3.2).
pub fn is_disk_key(key: &str) -> bool {
    disk_key_order(key).is_some()
}

const DISK_PREFIXES: [&str; 7] = ["scsi", "virtio", "sata", "ide", "efidisk", "tpmstate", "mp"];

/// Where a disk key sorts (`scsi2` before `scsi10`), if it is one.
fn disk_key_order(key: &str) -> Option<(usize, u32)> {
    if key == "rootfs" {
        return Some((0, 0));
    }
    DISK_PREFIXES.iter().enumerate().find_map(|(at, prefix)| {
        let rest = key.strip_prefix(prefix)?;
        let index = rest.parse().ok().filter(|_| rest.chars().all(|c| c.is_ascii_digit()))?;
        Some((at + 1, index))
    })
}

/// One disk key of a guest config (`unusedN` are not disks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestDisk {
    pub key: String,
    pub spec: parse::DiskSpec,
}

impl GuestDisk {
    /// Its size as NetBox keeps disk sizes (MiB, rounded up); `None` for a
    /// CD-ROM or a disk without `size=` (a passthrough device, a bind mount).
    pub fn size_mib(&self) -> Option<u64> {
        let bytes = self.spec.size_bytes.filter(|_| !self.spec.cdrom)?;
        Some(parse::mib_rounded_up(bytes))
    }
}

/// The disks of a config, in key order (`rootfs`, `scsi0`, `scsi2`, `scsi10`, ...).
pub fn disks(config: &Map<String, Value>) -> Vec<GuestDisk> {
    let mut disks: Vec<(usize, u32, GuestDisk)> = config
        .iter()
        .filter_map(|(key, value)| {
            let (kind, index) = disk_key_order(key)?;
            let spec = parse::disk_spec(value.as_str()?);
            Some((kind, index, GuestDisk { key: key.clone(), spec }))
        })
        .collect();
    crate::sort::sort_by_key(&mut disks, |(kind, index, _)| (*kind, *index));
    disks.into_iter().map(|(_, _, disk)| disk).collect()
}

/// The guest's disk size in MiB: the sum of its disks' sizes, each as NetBox
/// keeps it (so a VM's `disk` is what NetBox sums from its virtual disks).
pub fn disk_mib(config: &Map<String, Value>) -> u64 {
    disks(config)
        .iter()
        .filter_map(GuestDisk::size_mib)
        .fold(0u64, u64::saturating_add)
}

/// One row of `/nodes/{node}/network`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInterface {
    pub name: String,
    /// Proxmox's `type`: `bridge`, `bond`, `eth`, `vlan`, `OVSBridge`, ...
    pub kind: String,
    pub active: bool,
    pub mtu: Option<u64>,
    pub comments: Option<String>,
    /// What a bridge bridges (`bridge_ports`, `ovs_ports`).
    pub ports: Vec<String>,
    /// A bond's members (`slaves`; `ovs_bonds` for OVS).
    pub slaves: Vec<String>,
    /// The OVS bridge a port or internal port belongs to.
    pub ovs_bridge: Option<String>,
    /// A VLAN's raw device (`vlan-raw-device`, else the `name.vid` form).
    pub vlan_raw_device: Option<String>,
    /// `cidr` and `cidr6`.
    pub addresses: Vec<Cidr>,
}

/// Names in a member list; Proxmox writes `none` for a bridge without ports.
fn members(row: &Map<String, Value>, keys: &[&str]) -> Vec<String> {
    keys.iter()
        .flat_map(|key| parse::list(row.get(*key)))
        .filter(|name| name != "none")
        .collect()
}

pub fn node_interface(name: &str, row: &Map<String, Value>) -> NodeInterface {
    let text = |key: &str| {
        loose_string(row.get(key))
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
    };
    let kind = text("type").unwrap_or_default();
    let vlan_raw_device = text("vlan-raw-device").or_else(|| {
        let (raw, vid) = name.rsplit_once('.')?;
        (kind.eq_ignore_ascii_case("vlan") && !raw.is_empty() && vid.parse::<u16>().is_ok()).then(|| raw.to_owned())
    });
    NodeInterface {
        name: name.to_owned(),
        active: row.get("active").is_none_or(|v| loose_flag(Some(v))),
        mtu: row.get("mtu").and_then(loose_u64).filter(|m| (1..=65536).contains(m)),
        comments: text("comments"),
        ports: members(row, &["bridge_ports", "ovs_ports"]),
        slaves: members(row, &["slaves", "ovs_bonds"]),
        ovs_bridge: text("ovs_bridge"),
        vlan_raw_device,
        addresses: ["cidr", "cidr6"]
            .iter()
            .filter_map(|key| Cidr::parse(&text(key)?))
            .collect(),
        kind,
    }
}

/// (MAC, addresses) for each interface the guest agent reports.
pub type AgentAddresses = Vec<(String, Vec<Cidr>)>;

/// The guest agent's addresses per MAC (upper-case).
pub fn agent_addresses(answer: &Value) -> AgentAddresses {
    let interfaces = answer.get("result").unwrap_or(answer).as_array();
    interfaces
        .into_iter()
        .flatten()
        .filter_map(|iface| {
            let mac = iface
                .get("hardware-address")
                .and_then(Value::as_str)
                .and_then(parse::mac)?;
            let addresses = iface
                .get("ip-addresses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|addr| {
                    let ip = addr.get("ip-address").and_then(Value::as_str)?;
                    let prefix = addr.get("prefix").and_then(loose_u64)?;
                    Cidr::new(parse::parse_ip(ip)?, u8::try_from(prefix).ok()?)
                })
                .collect();
            Some((mac, addresses))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn qemu_nics_read_every_model_and_sparse_keys() {
        let config = json!({
            "net0": "virtio=bc:24:11:aa:01:01,bridge=vmbr0,tag=20",
            "net2": "e1000=BC:24:11:AA:01:03,bridge=vmbr0,link_down=1,mtu=9000",
            "net3": "vmxnet3=BC:24:11:AA:01:04,bridge=vmbr0,tag=9999",
            "ipconfig0": "ip=10.0.0.5/24,gw=10.0.0.1,ip6=auto",
            "ipconfig2": "ip=dhcp",
        });
        let nics = nics(GuestKind::Qemu, config.as_object().unwrap());
        assert_eq!(
            nics.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
            ["net0", "net2", "net3"]
        );
        assert_eq!(nics[0].mac.as_deref(), Some("BC:24:11:AA:01:01"));
        assert_eq!(nics[0].vlan, Some(20));
        assert_eq!(nics[0].static_ips, [Cidr::parse("10.0.0.5/24").unwrap()]);
        assert!(!nics[1].enabled);
        assert_eq!(nics[1].mtu, Some(9000));
        assert!(nics[1].static_ips.is_empty(), "dhcp carries no address");
        assert_eq!(nics[2].vlan, None, "out-of-range tags are ignored");
    }

    #[test]
    fn lxc_nics_use_name_hwaddr_ip_and_ip6() {
        let config = json!({"net0": "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:CC:02:00,ip=10.0.20.50/24,ip6=2001:db8::5/64,type=veth"});
        let nics = nics(GuestKind::Lxc, config.as_object().unwrap());
        assert_eq!(nics[0].name, "eth0");
        assert_eq!(nics[0].mac.as_deref(), Some("BC:24:11:CC:02:00"));
        assert_eq!(nics[0].static_ips.len(), 2);
    }

    #[test]
    fn disk_sizes_skip_cdroms_and_unused() {
        let config = json!({
            "scsi0": "local-lvm:vm-1-disk-0,size=32G", "efidisk0": "local-lvm:vm-1-disk-1,size=528K",
            "ide2": "local:iso/x.iso,media=cdrom,size=600M", "unused0": "local-lvm:vm-1-disk-9",
            "rootfs": "local:8,size=8G", "mp0": "local:vm-1-disk-2,mp=/srv,size=1024M", "scsihw": "virtio-scsi-pci",
        });
        // 528K is one MiB as NetBox keeps it: the VM's disk is the sum of its virtual disks.
        assert_eq!(disk_mib(config.as_object().unwrap()), 32 * 1024 + 1 + 8 * 1024 + 1024);
        let keys: Vec<String> = disks(config.as_object().unwrap()).into_iter().map(|d| d.key).collect();
        assert_eq!(keys, ["rootfs", "scsi0", "ide2", "efidisk0", "mp0"]);
    }

    #[test]
    fn node_interfaces_read_members_raw_devices_and_addresses() {
        let row = |v: Value| v.as_object().unwrap().clone();
        let bond = node_interface(
            "bond0",
            &row(json!({"type": "bond", "slaves": "eno1 eno2", "active": 1, "mtu": "9000"})),
        );
        assert_eq!(
            (bond.slaves.as_slice(), bond.mtu),
            (["eno1".to_owned(), "eno2".to_owned()].as_slice(), Some(9000))
        );
        let bridge = node_interface(
            "vmbr1",
            &row(json!({"type": "bridge", "bridge_ports": "none", "active": 0})),
        );
        assert!(bridge.ports.is_empty() && !bridge.active);
        let vlan = node_interface(
            "vmbr0.20",
            &row(json!({"type": "vlan", "cidr": "10.0.20.2/24", "cidr6": "2001:db8::2/64"})),
        );
        assert_eq!(vlan.vlan_raw_device.as_deref(), Some("vmbr0"));
        assert_eq!(vlan.addresses.len(), 2);
        let named = node_interface(
            "vlan30",
            &row(json!({"type": "vlan", "vlan-raw-device": "bond0", "vlan-id": 30})),
        );
        assert_eq!(named.vlan_raw_device.as_deref(), Some("bond0"));
        let port = node_interface("eno3", &row(json!({"type": "OVSPort", "ovs_bridge": "vmbr2"})));
        assert_eq!(port.ovs_bridge.as_deref(), Some("vmbr2"));
        assert_eq!(
            node_interface("eno1.5", &row(json!({"type": "eth"}))).vlan_raw_device,
            None
        );
    }

    #[test]
    fn agent_flag_forms() {
        assert!(agent_enabled(&json!("1")));
        assert!(agent_enabled(&json!(1)));
        assert!(agent_enabled(&json!("enabled=1,fstrim_cloned_disks=1")));
        assert!(!agent_enabled(&json!("0")));
        assert!(!agent_enabled(&json!("enabled=0")));
    }
}
