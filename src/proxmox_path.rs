//! The Proxmox API paths the planner can ask for, in one table.
//!
//! Planners and `discover` build paths through the functions below, and a
//! host that forwards reads on someone else's behalf (the NetBox extension's
//! proxy through `serve`) asks `is_read_path` whether a path is one of them:
//! the same table answers both, so the proxy can never be talked into a path
//! the planner would not read.

use crate::source::GuestKind;

/// Every path shape `discover` can name. `{name}` is a node, zone, VNet or
/// storage id, `{guest}` is `qemu` or `lxc`, `{vmid}` a guest id.
pub const TEMPLATES: &[&str] = &[
    CLUSTER_STATUS,
    CLUSTER_RESOURCES,
    STORAGE,
    REPLICATION,
    SDN_LISTS[0],
    SDN_LISTS[1],
    SDN_LISTS[2],
    SDN_LISTS[3],
    SDN_LISTS[4],
    SDN_LISTS[5],
    "/cluster/sdn/vnets/{name}/subnets",
    "/nodes/{name}/{guest}/{vmid}/config",
    "/nodes/{name}/qemu/{vmid}/agent/network-get-interfaces",
    "/nodes/{name}/network",
    "/nodes/{name}/sdn/zones",
    "/nodes/{name}/sdn/zones/{name}/content",
    "/nodes/{name}/sdn/zones/{name}/bridges",
    "/nodes/{name}/sdn/zones/{name}/ip-vrf",
    "/nodes/{name}/sdn/vnets/{name}/mac-vrf",
];

pub const CLUSTER_STATUS: &str = "/cluster/status";
pub const CLUSTER_RESOURCES: &str = "/cluster/resources";
pub const STORAGE: &str = "/storage";
pub const REPLICATION: &str = "/cluster/replication";

/// The cluster-level SDN lists.
pub const SDN_LISTS: [&str; 6] = [
    "/cluster/sdn/controllers",
    "/cluster/sdn/zones",
    "/cluster/sdn/vnets",
    "/cluster/sdn/fabrics/fabric",
    "/cluster/sdn/route-maps",
    "/cluster/sdn/prefix-lists",
];

pub fn guest_config(node: &str, kind: GuestKind, vmid: u64) -> String {
    format!("/nodes/{node}/{}/{vmid}/config", kind.as_str())
}

pub fn guest_agent_interfaces(node: &str, vmid: u64) -> String {
    format!("/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces")
}

pub fn node_network(node: &str) -> String {
    format!("/nodes/{node}/network")
}

pub fn vnet_subnets(vnet: &str) -> String {
    format!("/cluster/sdn/vnets/{vnet}/subnets")
}

pub fn node_sdn_zones(node: &str) -> String {
    format!("/nodes/{node}/sdn/zones")
}

/// `what`: `content`, `bridges` or `ip-vrf`.
pub fn node_sdn_zone(node: &str, zone: &str, what: &str) -> String {
    format!("/nodes/{node}/sdn/zones/{zone}/{what}")
}

pub fn node_mac_vrf(node: &str, vnet: &str) -> String {
    format!("/nodes/{node}/sdn/vnets/{vnet}/mac-vrf")
}

/// Proxmox ids: letters, digits, `.`, `_`, `-`, not starting with a dot
/// (so never `.` or `..`).
fn is_name(segment: &str) -> bool {
    segment.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn is_vmid(segment: &str) -> bool {
    segment.parse::<u64>().is_ok_and(crate::source::is_valid_vmid) && !segment.starts_with('0')
}

fn matches(template: &str, path: &str) -> bool {
    let (mut want, mut have) = (template.split('/'), path.split('/'));
    loop {
        match (want.next(), have.next()) {
            (None, None) => return true,
            (Some(pattern), Some(segment)) => {
                let fits = match pattern {
                    "{name}" => is_name(segment),
                    "{guest}" => GuestKind::parse(segment).is_some(),
                    "{vmid}" => is_vmid(segment),
                    literal => literal == segment,
                };
                if !fits {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// True for exactly the GET paths `discover` can name (see `TEMPLATES`).
pub fn is_read_path(path: &str) -> bool {
    TEMPLATES.iter().any(|template| matches(template, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_paths_are_read_paths() {
        let built = [
            guest_config("pve1", GuestKind::Lxc, 200),
            guest_agent_interfaces("pve-2.lab", 101),
            node_network("pve1"),
            vnet_subnets("vnet100"),
            node_sdn_zones("pve1"),
            node_sdn_zone("pve1", "evpnz1", "ip-vrf"),
            node_mac_vrf("pve1", "vnet_1"),
        ];
        for path in built.iter().map(String::as_str).chain(SDN_LISTS).chain([
            CLUSTER_STATUS,
            CLUSTER_RESOURCES,
            STORAGE,
            REPLICATION,
        ]) {
            assert!(is_read_path(path), "{path}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for path in [
            "/",
            "",
            "/access/users",
            "/nodes/pve1/qemu/101/status/stop",
            "/nodes/pve1/qemu/101/agent/exec",
            "/nodes/../qemu/101/config",
            "/nodes/pve1/qemu/0/config",
            "/nodes/pve1/qemu/0101/config",
            "/nodes/pve1/qemu/1000000000/config",
            "/nodes/pve1/lxc/200/agent/network-get-interfaces",
            "/nodes/pve1/network/vmbr0",
            "/nodes/pve1/network?type=bridge",
            "/nodes/pve1/openvz/200/config",
            "/cluster/status/",
            "/cluster/status?x=1",
            "/cluster/sdn/vnets//subnets",
            "/nodes/pve 1/sdn/zones",
        ] {
            assert!(!is_read_path(path), "{path}");
        }
    }
}
