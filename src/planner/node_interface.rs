//! The nodes' own interfaces (`/nodes/{node}/network`) as `dcim.interface`
//! on the node devices (identity: device + name), linked as Proxmox links
//! them: bridge ports to their bridge, bond members to their bond (a LAG),
//! VLANs to their raw device (their parent); and their `cidr`/`cidr6` as IP
//! addresses on them. Governed by `sync_mode_node`, like the devices.
//!
//! NetBox's rules shape the links: an interface, its parent, bridge and LAG
//! are on one device; only a virtual interface has a parent; a virtual one is
//! no LAG member; and an interface stays while a child names it as parent.

use super::address::{self, Assignment, Group, Target};
use super::context::{by_parent, Context, NodeInterfaceSlot, NodeNetwork};
use super::diff::{Field, Kind};
use super::reconcile::{Desired, Found, Gone, Item, Lifecycle, Outcome, Reconciler};
use super::{nothing, Ask, Planner};
use crate::error::Result;
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::plan::MatchedBy;
use crate::proxmox_path;
use crate::source::{node_interface, NodeInterface};
use crate::vec_map::{VecMap, VecSet};
use serde_json::Value;

pub const PLANNER: Planner = Planner {
    name: "node-interface",
    stage: Stage::NetworkInterfaces,
    governed_by: &[ResourceType::Node],
    reads: &[netbox::DEVICE_INTERFACE, netbox::IP_ADDRESS, netbox::MAC_ADDRESS],
    links: &[],
    prerequisites: &[],
    needs: &["node"],
    proxmox: ask,
    run: plan,
};

/// The addresses on them.
pub const ADDRESSES: Planner = Planner {
    name: "node-ip",
    stage: Stage::NetworkInterfaces,
    governed_by: &[ResourceType::Node],
    reads: &[netbox::IP_ADDRESS, netbox::DEVICE_INTERFACE, netbox::DEVICE],
    links: &[],
    prerequisites: &[],
    needs: &["node-interface"],
    proxmox: nothing,
    run: plan_addresses,
};

const STAGE: &str = "network-interfaces";

const INTERFACE: Lifecycle = Lifecycle {
    tags_flag: Some("overwrite_node_interface_tags"),
    restricted_by: &["parent"],
    lookup: &[("device_id", "device"), ("name", "name")],
    ..Lifecycle::synced(
        STAGE,
        ResourceType::Node,
        netbox::DEVICE_INTERFACE,
        Gone::Delete {
            cascades: &[netbox::IP_ADDRESS, netbox::MAC_ADDRESS],
        },
    )
};

const ADDRESS: Lifecycle = Lifecycle {
    tags_flag: Some("overwrite_ip_tags"),
    lookup: &[("address", "address"), ("interface_id", "assigned_object_id")],
    ..Lifecycle::synced(
        STAGE,
        ResourceType::Node,
        netbox::IP_ADDRESS,
        Gone::Delete { cascades: &[] },
    )
};

const NODE_ADDRESSES: Assignment = Assignment {
    spec: &ADDRESS,
    interface: netbox::DEVICE_INTERFACE,
    parent: (netbox::DEVICE, "device"),
};

/// NetBox's interface type for Proxmox's; anything else (`eth`, `OVSPort`,
/// `alias`, ...) is `other`.
const TYPES: [(&str, &str); 6] = [
    ("bridge", "bridge"),
    ("OVSBridge", "bridge"),
    ("bond", "lag"),
    ("OVSBond", "lag"),
    ("vlan", "virtual"),
    ("OVSIntPort", "virtual"),
];

fn netbox_type(kind: &str) -> &'static str {
    TYPES
        .iter()
        .find(|(proxmox, _)| *proxmox == kind)
        .map_or("other", |(_, netbox)| netbox)
}

/// NetBox's limit for a description.
const DESCRIPTION_CHARS: usize = 200;

fn ask(ask: &mut Ask) {
    if !ask.writes {
        return;
    }
    let paths: Vec<String> = ask
        .inventory
        .into_iter()
        .flat_map(|i| i.nodes.iter())
        .map(|node| proxmox_path::node_network(&node.name))
        .collect();
    paths.iter().for_each(|path| ask.want(path));
}

fn plan(ctx: &mut Context, writes: bool) -> Result<()> {
    let mut by_device = by_parent(ctx.objects(netbox::DEVICE_INTERFACE), "device");
    let devices: Vec<(String, Value)> = ctx.refs.devices.iter().map(|(n, d)| (n.clone(), d.clone())).collect();
    for (node, device) in devices {
        let existing = device.as_u64().and_then(|id| by_device.take(&id)).unwrap_or_default();
        let network = plan_node(ctx, writes, &node, &device, &existing)?;
        ctx.refs.node_networks.insert(node, network);
    }
    Ok(())
}

fn slot(label: String, reference: Value, existing_id: Option<u64>, iface: Option<&NodeInterface>) -> NodeInterfaceSlot {
    NodeInterfaceSlot {
        reference,
        existing_id,
        label,
        addresses: iface.map(|i| i.addresses.clone()).unwrap_or_default(),
    }
}

/// One node's interfaces against its device's. Without its network (the
/// stage does not write, or the read failed) the device's interfaces are
/// what there is, by name, and none is gone.
fn plan_node<'a>(
    ctx: &mut Context<'a>,
    writes: bool,
    node: &str,
    device: &Value,
    existing: &[&'a Object<'a>],
) -> Result<NodeNetwork> {
    let mut network = NodeNetwork {
        device_id: device.as_u64(),
        ..NodeNetwork::default()
    };
    let mut reconciler = Reconciler::for_run(ctx, &INTERFACE, writes, existing.iter().copied());
    let path = proxmox_path::node_network(node);
    let rows = match reconciler.planning() {
        true => ctx.required_list(&path, &format!("the interfaces of node {node} are"))?,
        false => None,
    };
    let Some(rows) = rows else {
        for iface in existing {
            let name = iface.str("name").unwrap_or_default().trim().to_owned();
            let label = format!("{node}/{name}");
            let entry = slot(label, Value::from(iface.id), Some(iface.id), None);
            network.interfaces.entry(name).or_insert(entry);
        }
        return Ok(network);
    };
    let interfaces: VecMap<String, NodeInterface> =
        VecMap::from_iter(ctx.rows_by_key(&path, rows, "iface").into_iter().map(|(name, row)| {
            let iface = node_interface(&name, row);
            (name, iface)
        }));
    let links = Links::of(&interfaces);
    for name in links.order(&interfaces) {
        let Some(iface) = interfaces.get(&name) else {
            continue;
        };
        let label = format!("{node}/{name}");
        let candidates = existing
            .iter()
            .copied()
            .filter(|i| i.str("name").is_some_and(|n| n.trim() == name))
            .collect();
        let found = Found::among(candidates, MatchedBy::NaturalKey, "interfaces of the device");
        let kind = match &found {
            Found::One(object, _) => object.choice("type").unwrap_or("other"),
            _ => netbox_type(&iface.kind),
        };
        let linked = links.of_interface(&name, kind, &network);
        let item = Item {
            identity: label.clone(),
            key: label.clone(),
            proxmox_path: Some(path.clone()),
        };
        let outcome = reconciler.item(ctx, &item, found, |_, _| desired(iface, device, linked));
        let (reference, existing_id) = match outcome {
            Outcome::Existing(object) => (Some(Value::from(object.id)), Some(object.id)),
            Outcome::Created => (reconciler.reference_of(&label), None),
            Outcome::Skipped => (None, None),
        };
        if let Some(reference) = reference {
            network
                .interfaces
                .insert(name.clone(), slot(label, reference, existing_id, Some(iface)));
        }
    }
    reconciler.retire(ctx, true, |iface| {
        format!("{node}/{}#{}", iface.str("name").unwrap_or_default(), iface.id)
    });
    network.complete = true;
    Ok(network)
}

/// The bridge, LAG and parent of each interface, by name, as Proxmox links
/// them (the first claim wins, in name order: a port in two bridges is a
/// misconfiguration Proxmox itself refuses to bring up).
struct Links {
    bridge: VecMap<String, String>,
    lag: VecMap<String, String>,
    parent: VecMap<String, String>,
}

/// Where an interface's links point (references of this node's interfaces).
struct Linked {
    bridge: Option<Value>,
    lag: Option<Value>,
    parent: Option<Value>,
}

impl Links {
    fn of(interfaces: &VecMap<String, NodeInterface>) -> Links {
        let mut links = Links {
            bridge: VecMap::new(),
            lag: VecMap::new(),
            parent: VecMap::new(),
        };
        for (name, iface) in interfaces {
            let claim = |map: &mut VecMap<String, String>, member: &str| {
                if member != name && interfaces.contains_key(member) {
                    map.entry(member.to_owned()).or_insert_with(|| name.clone());
                }
            };
            match netbox_type(&iface.kind) {
                "bridge" => iface.ports.iter().for_each(|p| claim(&mut links.bridge, p)),
                "lag" => iface.slaves.iter().for_each(|s| claim(&mut links.lag, s)),
                _ => {}
            }
            let known = |target: &&String| *target != name && interfaces.contains_key(target.as_str());
            if let Some(bridge) = iface.ovs_bridge.as_ref().filter(known) {
                links.bridge.entry(name.clone()).or_insert_with(|| bridge.clone());
            }
            if let Some(raw) = iface.vlan_raw_device.as_ref().filter(known) {
                links.parent.insert(name.clone(), raw.clone());
            }
        }
        links
    }

    fn targets(&self, name: &str) -> Vec<&String> {
        [&self.bridge, &self.lag, &self.parent]
            .into_iter()
            .filter_map(|map| map.get(name))
            .collect()
    }

    /// Names in an order where every link target comes before what links to
    /// it (its `$ref` exists when the linking create is planned). A link in
    /// a cycle, which Proxmox does not allow, is dropped by `of_interface`.
    fn order(&self, interfaces: &VecMap<String, NodeInterface>) -> Vec<String> {
        let mut depth: VecMap<String, usize> = VecMap::new();
        for name in interfaces.keys() {
            self.depth(name, &mut depth, &mut VecSet::new());
        }
        let mut names: Vec<String> = interfaces.keys().cloned().collect();
        crate::sort::sort_by_key(&mut names, |name| depth.get(name).copied().unwrap_or_default());
        names
    }

    /// 0 for an interface that links to nothing, else one more than its
    /// deepest target (a link back into the chain counts as nothing).
    fn depth(&self, name: &str, known: &mut VecMap<String, usize>, chain: &mut VecSet<String>) -> usize {
        if let Some(depth) = known.get(name) {
            return *depth;
        }
        if !chain.insert(name.to_owned()) {
            return 0;
        }
        let targets: Vec<String> = self.targets(name).into_iter().cloned().collect();
        let depth = targets
            .iter()
            .map(|target| 1 + self.depth(target, known, chain))
            .max()
            .unwrap_or(0);
        chain.remove(name);
        known.insert(name.to_owned(), depth);
        depth
    }

    /// The links of one interface of NetBox type `kind`, to interfaces
    /// already planned, within NetBox's rules.
    fn of_interface(&self, name: &str, kind: &str, planned: &NodeNetwork) -> Linked {
        let reference = |map: &VecMap<String, String>| {
            map.get(name)
                .and_then(|target| planned.interfaces.get(target))
                .map(|slot| slot.reference.clone())
        };
        let is_virtual = kind == "virtual";
        Linked {
            bridge: reference(&self.bridge),
            lag: reference(&self.lag).filter(|_| !is_virtual),
            parent: reference(&self.parent).filter(|_| is_virtual),
        }
    }
}

fn desired(iface: &NodeInterface, device: &Value, linked: Linked) -> Desired {
    let mut fields = vec![
        Field::new("device", Kind::ForeignKey, device.clone()).create_only(),
        Field::new("name", Kind::Scalar, iface.name.as_str()).create_only(),
        // An operator's own interface of that name keeps its type (a NIC's
        // real one, say): Proxmox's is coarser.
        Field::new("type", Kind::Choice, netbox_type(&iface.kind)).create_only(),
        Field::new("enabled", Kind::Scalar, iface.active),
        Field::new("bridge", Kind::ForeignKey, linked.bridge),
        Field::new("lag", Kind::ForeignKey, linked.lag),
        Field::new("parent", Kind::ForeignKey, linked.parent),
    ];
    if let Some(mtu) = iface.mtu {
        fields.push(Field::new("mtu", Kind::Scalar, mtu));
    }
    if let Some(comments) = &iface.comments {
        let first: String = comments
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .chars()
            .take(DESCRIPTION_CHARS)
            .collect();
        fields.push(Field::new("description", Kind::Scalar, first));
    }
    Desired::fields(fields)
}

/// The nodes' addresses, on the interfaces `plan` found or planned.
fn plan_addresses(ctx: &mut Context, writes: bool) -> Result<()> {
    let groups: Vec<Group> = ctx
        .refs
        .node_networks
        .iter()
        .map(|(node, network)| Group {
            key: node.clone(),
            owner: network.device_id,
            complete: network.complete,
            targets: network
                .interfaces
                .values()
                .map(|slot| Target {
                    label: slot.label.clone(),
                    reference: slot.reference.clone(),
                    existing_id: slot.existing_id,
                    wanted: address::worth_recording(ctx, slot.addresses.clone()),
                })
                .collect(),
        })
        .collect();
    address::plan_groups(ctx, writes, &NODE_ADDRESSES, &groups);
    Ok(())
}
