//! The Proxmox API paths the planner can ask for, in one table.
//!
//! Planners and `discover` build paths through the functions below, and a
//! host that forwards reads on someone else's behalf (the NetBox extension's
//! proxy through `serve`) asks `is_read_path` whether a path is one of them:
//! the same table answers both, so the proxy can never be talked into a path
//! the planner would not read.

use crate::source::GuestKind;

/// Every path shape `discover` can name. `{name}` is a node, zone, VNet or
/// storage id, `{guest}` is `qemu` or `lxc`, `{vmid}` a guest id, `{count}`
/// a non-negative integer. A query string is part of the shape: its
/// parameters, in this order, and no others.
pub const TEMPLATES: &[&str] = &[
    CLUSTER_STATUS,
    CLUSTER_RESOURCES,
    STORAGE,
    REPLICATION,
    CLUSTER_BACKUP,
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
    "/nodes/{name}/storage/{name}/content?content=backup",
    "/nodes/{name}/{guest}/{vmid}/snapshot",
    "/nodes/{name}/tasks?source=archive&start={count}&limit={count}",
];

/// The cluster's name, its nodes and whether they are online.
pub const CLUSTER_STATUS: &str = "/cluster/status";
/// Every guest, node and storage of the cluster, with its state.
pub const CLUSTER_RESOURCES: &str = "/cluster/resources";
/// The cluster's storage definitions.
pub const STORAGE: &str = "/storage";
/// The cluster's replication jobs.
pub const REPLICATION: &str = "/cluster/replication";
/// The cluster's backup jobs (vzdump schedules).
pub const CLUSTER_BACKUP: &str = "/cluster/backup";

/// The cluster-level SDN lists.
pub const SDN_LISTS: [&str; 6] = [
    "/cluster/sdn/controllers",
    "/cluster/sdn/zones",
    "/cluster/sdn/vnets",
    "/cluster/sdn/fabrics/fabric",
    "/cluster/sdn/route-maps",
    "/cluster/sdn/prefix-lists",
];

/// A guest's configuration (disks, NICs, addresses).
pub(crate) fn guest_config(node: &str, kind: GuestKind, vmid: u64) -> String {
    format!("/nodes/{node}/{}/{vmid}/config", kind.as_str())
}

/// What a QEMU guest's agent reports of its interfaces and addresses.
pub fn guest_agent_interfaces(node: &str, vmid: u64) -> String {
    format!("/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces")
}

/// A node's network interfaces (bridges, bonds, VLANs, physical NICs).
pub fn node_network(node: &str) -> String {
    format!("/nodes/{node}/network")
}

/// An SDN VNet's subnets.
pub fn vnet_subnets(vnet: &str) -> String {
    format!("/cluster/sdn/vnets/{vnet}/subnets")
}

/// The SDN zones a node runs, with their state.
pub fn node_sdn_zones(node: &str) -> String {
    format!("/nodes/{node}/sdn/zones")
}

/// One view of a zone on a node; `what`: `content`, `bridges` or `ip-vrf`.
pub fn node_sdn_zone(node: &str, zone: &str, what: &str) -> String {
    format!("/nodes/{node}/sdn/zones/{zone}/{what}")
}

/// The MACs an EVPN VNet has learnt on a node.
pub fn node_mac_vrf(node: &str, vnet: &str) -> String {
    format!("/nodes/{node}/sdn/vnets/{vnet}/mac-vrf")
}

/// The backup volumes a node sees on a storage.
pub fn backup_content(node: &str, storage: &str) -> String {
    format!("/nodes/{node}/storage/{storage}/content?content=backup")
}

/// A guest's snapshots.
pub(crate) fn guest_snapshots(node: &str, kind: GuestKind, vmid: u64) -> String {
    format!("/nodes/{node}/{}/{vmid}/snapshot", kind.as_str())
}

/// One page of a node's archived tasks (newest first), from `start`.
pub fn node_tasks(node: &str, start: u64, limit: u64) -> String {
    format!("/nodes/{node}/tasks?source=archive&start={start}&limit={limit}")
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

fn is_count(segment: &str) -> bool {
    segment.parse::<u64>().is_ok() && (segment == "0" || !segment.starts_with('0'))
}

fn fits(pattern: &str, segment: &str) -> bool {
    match pattern {
        "{name}" => is_name(segment),
        "{guest}" => GuestKind::parse(segment).is_some(),
        "{vmid}" => is_vmid(segment),
        "{count}" => is_count(segment),
        literal => literal == segment,
    }
}

/// Part by part (`/` in the path, `&` in the query, then `=`), each fitting its pattern.
fn all_fit(template: &str, text: &str, separator: char) -> bool {
    let (mut want, mut have) = (template.split(separator), text.split(separator));
    loop {
        match (want.next(), have.next()) {
            (None, None) => return true,
            (Some(pattern), Some(part)) => {
                let fit = match (pattern.split_once('='), part.split_once('=')) {
                    (Some((key, value)), Some((given_key, given))) => key == given_key && fits(value, given),
                    (None, None) => fits(pattern, part),
                    _ => false,
                };
                if !fit {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

fn matches(template: &str, path: &str) -> bool {
    let (template_path, template_query) = template.split_once('?').map_or((template, None), |(p, q)| (p, Some(q)));
    let (path, query) = path.split_once('?').map_or((path, None), |(p, q)| (p, Some(q)));
    let query_fits = match (template_query, query) {
        (None, None) => true,
        (Some(want), Some(have)) => all_fit(want, have, '&'),
        _ => false,
    };
    query_fits && all_fit(template_path, path, '/')
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
            backup_content("pve1", "nas-nfs"),
            guest_snapshots("pve1", GuestKind::Lxc, 200),
            node_tasks("pve2", 0, 100),
            node_tasks("pve2", 1100, 250),
        ];
        for path in built.iter().map(String::as_str).chain(SDN_LISTS).chain([
            CLUSTER_STATUS,
            CLUSTER_RESOURCES,
            STORAGE,
            REPLICATION,
            CLUSTER_BACKUP,
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
            "/nodes/pve1/storage/local/content",
            "/nodes/pve1/storage/local/content?content=images",
            "/nodes/pve1/storage/local/content?content=backup&vmid=101",
            "/nodes/pve1/qemu/101/snapshot/pre-upgrade/rollback",
            "/nodes/pve1/tasks",
            "/nodes/pve1/tasks?source=active&start=0&limit=50",
            "/nodes/pve1/tasks?source=archive&limit=50&start=0",
            "/nodes/pve1/tasks?source=archive&start=00&limit=50",
            "/nodes/pve1/tasks?source=archive&start=0&limit=-5",
            "/nodes/pve1/tasks?source=archive&start=0&limit=50&since=1",
            "/nodes/pve1/tasks?source=archive&start=0&limit=50&userfilter=root",
            "/cluster/backup?x=1",
        ] {
            assert!(!is_read_path(path), "{path}");
        }
    }
}
