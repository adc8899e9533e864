//! The planner end to end, through the apply simulator.

mod support;

use serde_json::{json, Value};
use support::{op, op_ids, ops, plan, sample, sync, vm_of, warnings, writes};

#[test]
fn initial_sync_of_the_sample_converges() {
    let (first, synced) = sync(&sample());
    assert!(
        ops(&first, "create").len() > 50,
        "the sample creates a cluster's worth of objects"
    );
    let again = plan(&synced);
    assert_eq!(
        writes(&again),
        Vec::<String>::new(),
        "re-plan after apply must be empty"
    );
    assert!(again["summary"]["unchanged"].as_u64().unwrap() > 30);
}

#[test]
fn same_input_same_bytes_whatever_the_list_order() {
    let input = sample();
    let a = proxbox_planner::plan_json(&input.to_string()).unwrap();
    let b = proxbox_planner::plan_json(&input.to_string()).unwrap();
    assert_eq!(a, b);
    let mut shuffled = input.clone();
    shuffled["proxmox"]["/cluster/resources"]
        .as_array_mut()
        .unwrap()
        .reverse();
    shuffled["proxmox"]["/cluster/status"].as_array_mut().unwrap().reverse();
    assert_eq!(proxbox_planner::plan_json(&shuffled.to_string()).unwrap(), a);

    let (_, mut synced) = sync(&input);
    let baseline = proxbox_planner::plan_json(&synced.to_string()).unwrap();
    for list in synced["netbox"].as_object_mut().unwrap().values_mut() {
        list.as_array_mut().unwrap().reverse();
    }
    assert_eq!(proxbox_planner::plan_json(&synced.to_string()).unwrap(), baseline);
}

#[test]
fn templates_are_never_planned_as_vms() {
    let first = plan(&sample());
    let text = first.to_string();
    assert!(
        !text.contains("virtualmachine:qemu/9000"),
        "template 9000 must not become a VM"
    );
}

#[test]
fn field_mapping_of_a_qemu_guest() {
    let first = plan(&sample());
    let fields = &op(&first, "virtual-machines:virtualization.virtualmachine:qemu/101")["fields"];
    assert_eq!(fields["name"], "web01");
    assert_eq!(fields["status"], "active");
    assert_eq!(fields["vcpus"], 4);
    assert_eq!(fields["memory"], 8192);
    assert_eq!(fields["disk"], 32 * 1024, "ide2 cdrom excluded");
    assert_eq!(fields["description"], "Public web frontend");
    assert_eq!(
        fields["comments"],
        "Public web frontend\nOwner: team-web\nRunbook: https://wiki.example.net/web"
    );
    assert!(fields.get("custom_fields").is_none(), "the plugin keeps the identity");
    let state = &op(
        &first,
        "virtual-machines:netbox_proxbox.proxboxvirtualmachinesyncstate:qemu/101/sync-state",
    )["fields"];
    assert_eq!(
        state["virtual_machine"],
        json!({"$ref": "virtual-machines:virtualization.virtualmachine:qemu/101"})
    );
    assert_eq!(
        (
            &state["endpoint"],
            &state["proxmox_vm_id"],
            &state["proxmox_vm_type"],
            &state["proxmox_vm_name"]
        ),
        (&json!(1), &json!(101), &json!("qemu"), &json!("web01"))
    );
    assert_eq!(
        state["proxmox_node"],
        json!({"$ref": "devices:netbox_proxbox.proxmoxnode:pve1/tracking"})
    );
    assert_eq!(
        fields["tags"],
        json!([{"slug": "prod"}, {"slug": "proxbox"}, {"slug": "web"}])
    );
    assert_eq!(fields["cluster"], json!({"$ref": "devices:virtualization.cluster:lab"}));
    assert_eq!(fields["device"], json!({"$ref": "devices:dcim.device:pve1"}));
    let db = &op(&first, "virtual-machines:virtualization.virtualmachine:qemu/103")["fields"];
    assert_eq!(
        db["disk"],
        4 + 4 + 100 * 1024 + 500 * 1024,
        "efidisk and tpmstate count, cloud-init cdrom does not"
    );
    assert_eq!(
        op(&first, "virtual-machines:virtualization.virtualmachine:qemu/104")["fields"]["status"],
        "offline"
    );
}

#[test]
fn duplicate_names_get_a_suffix_in_vmid_order() {
    let first = plan(&sample());
    assert_eq!(
        op(&first, "virtual-machines:virtualization.virtualmachine:qemu/101")["fields"]["name"],
        "web01"
    );
    assert_eq!(
        op(&first, "virtual-machines:virtualization.virtualmachine:qemu/106")["fields"]["name"],
        "web01 (2)"
    );
}

#[test]
fn interfaces_macs_vlans_and_ips_from_agent_and_static_config() {
    let first = plan(&sample());
    let net0 = &op(&first, "vm-interfaces:virtualization.vminterface:qemu/101/net0")["fields"];
    assert_eq!(net0["mode"], "access");
    assert_eq!(net0["untagged_vlan"], json!({"$ref": "vm-interfaces:ipam.vlan:vid/20"}));
    assert_eq!(
        op(&first, "vm-interfaces:virtualization.vminterface:qemu/104/net2")["fields"]["enabled"],
        false
    );
    assert_eq!(
        op(&first, "vm-interfaces:virtualization.vminterface:lxc/200/eth0")["fields"]["name"],
        "eth0"
    );
    let ids: Vec<&str> = ops(&first, "create")
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    // Guest agent: global v4 + v6 kept, link-local, loopback and foreign NICs dropped.
    assert!(ids.contains(&"ip-addresses:ipam.ipaddress:qemu/101/net0/10.0.20.11/24"));
    assert!(ids.contains(&"ip-addresses:ipam.ipaddress:qemu/101/net0/2001:db8:20::11/64"));
    assert!(!ids
        .iter()
        .any(|id| id.contains("fe80") || id.contains("127.0.0.1") || id.contains("172.17.")));
    // Static ipconfig0 (no agent), dhcp on ipconfig1 skipped; LXC ip= and ip6=.
    assert!(ids.contains(&"ip-addresses:ipam.ipaddress:qemu/103/net0/10.0.30.15/24"));
    assert!(!ids
        .iter()
        .any(|id| id.starts_with("ip-addresses:ipam.ipaddress:qemu/103/net1")));
    assert!(ids.contains(&"ip-addresses:ipam.ipaddress:lxc/201/eth1/2001:db8:40::10/64"));
    assert!(
        ids.contains(&"ip-addresses:dcim.macaddress:qemu/102/net0/BC:24:11:AA:02:01"),
        "e1000 MAC"
    );
    assert!(
        ids.contains(&"ip-addresses:dcim.macaddress:qemu/103/net0/BC:24:11:AA:03:01"),
        "vmxnet3 MAC"
    );
    let primary = op(&first, "ip-addresses:virtualization.virtualmachine:qemu/101/primary-ip");
    assert_eq!(
        primary["changes"]["primary_ip4"]["after"],
        json!({"$ref": "ip-addresses:ipam.ipaddress:qemu/101/net0/10.0.20.11/24"})
    );
}

fn guest_config<'a>(input: &'a mut Value, path: &str) -> &'a mut serde_json::Map<String, Value> {
    input["proxmox"][path].as_object_mut().unwrap()
}

#[test]
fn proxmox_changes_become_exactly_the_expected_updates() {
    let (_, mut synced) = sync(&sample());
    // Rename web02, add a NIC to db01, drop build01's second NIC.
    for row in synced["proxmox"]["/cluster/resources"].as_array_mut().unwrap() {
        if row["id"] == "qemu/102" {
            row["name"] = json!("web02-new");
        }
    }
    guest_config(&mut synced, "/nodes/pve2/qemu/103/config")
        .insert("net2".into(), json!("virtio=BC:24:11:AA:03:03,bridge=vmbr0"));
    guest_config(&mut synced, "/nodes/pve3/qemu/104/config").remove("net2");
    let next = plan(&synced);
    let rename = op(&next, "virtual-machines:virtualization.virtualmachine:qemu/102");
    assert_eq!(rename["action"], "update");
    assert_eq!(
        rename["changes"]["name"],
        json!({"before": "web02", "after": "web02-new"})
    );
    assert!(
        rename["target"]["last_updated"].is_string(),
        "updates carry their precondition"
    );
    assert_eq!(
        op(&next, "vm-interfaces:virtualization.vminterface:qemu/103/net2")["action"],
        "create"
    );
    let gone: Vec<&Value> = ops(&next, "delete");
    assert!(gone.iter().any(|o| o["id"]
        .as_str()
        .unwrap()
        .starts_with("vm-interfaces:virtualization.vminterface:qemu/104/net2#")));
    let (_, after) = sync(&synced);
    assert_eq!(writes(&plan(&after)), Vec::<String>::new());
}

#[test]
fn operator_rename_in_netbox_is_kept() {
    let (_, mut synced) = sync(&sample());
    vm_of(&mut synced, 101)["name"] = json!("web01.example.net");
    assert_eq!(writes(&plan(&synced)), Vec::<String>::new());
}

#[test]
fn manual_objects_are_never_touched() {
    let (_, mut synced) = sync(&sample());
    let netbox = synced["netbox"].as_object_mut().unwrap();
    let vm_id = netbox["/api/virtualization/virtual-machines/"].as_array().unwrap()[0]["id"].clone();
    // An operator adds an interface and an IP on a synced VM, and a VM of their own.
    netbox.get_mut("/api/virtualization/interfaces/").unwrap().as_array_mut().unwrap().push(json!({
        "id": 900, "name": "mgmt", "virtual_machine": {"id": vm_id}, "tags": [], "custom_fields": {}, "last_updated": "x"}));
    netbox
        .get_mut("/api/ipam/ip-addresses/")
        .unwrap()
        .as_array_mut()
        .unwrap()
        .push(json!({
        "id": 901, "address": "192.0.2.9/24", "assigned_object_type": "virtualization.vminterface",
        "assigned_object_id": 900, "tags": [], "custom_fields": {}, "last_updated": "x"}));
    netbox
        .get_mut("/api/virtualization/virtual-machines/")
        .unwrap()
        .as_array_mut()
        .unwrap()
        .push(json!({
        "id": 902, "name": "hand-made", "cluster": {"id": 1}, "tags": [], "custom_fields": {}, "last_updated": "x"}));
    let next = plan(&synced);
    assert_eq!(writes(&next), Vec::<String>::new());
    assert!(!next.to_string().contains("\"id\":900"), "{next}");
}

#[test]
fn bootstrap_only_objects_are_created_tagged_then_left_alone() {
    let mut input = sample();
    input["settings"]["sync_mode_vm"] = json!("bootstrap_only");
    let (first, mut synced) = sync(&input);
    let tags = &op(&first, "virtual-machines:virtualization.virtualmachine:qemu/101")["fields"]["tags"];
    assert!(tags.as_array().unwrap().contains(&json!({"slug": "bootstrap-only"})));
    for row in synced["proxmox"]["/cluster/resources"].as_array_mut().unwrap() {
        if row["id"] == "qemu/101" {
            row["name"] = json!("renamed");
            row["status"] = json!("stopped");
        }
    }
    let next = plan(&synced);
    let vm = op(&next, "virtual-machines:virtualization.virtualmachine:qemu/101");
    assert_eq!(
        (vm["action"].as_str(), vm["reason"].as_str()),
        (Some("skip"), Some("bootstrap-only-tag"))
    );
    // Removing the tag by hand resumes syncing.
    vm_of(&mut synced, 101)["tags"]
        .as_array_mut()
        .unwrap()
        .retain(|t| t["slug"] != "bootstrap-only");
    assert_eq!(
        op(
            &plan(&synced),
            "virtual-machines:virtualization.virtualmachine:qemu/101"
        )["action"],
        "update"
    );
}

#[test]
fn disabled_resources_plan_one_skip_and_nothing_else() {
    let mut input = sample();
    input["settings"]["sync_mode_ip_address"] = json!("disabled");
    let first = plan(&input);
    let ip_ops: Vec<&Value> = first["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["resource"] == "ip_address")
        .collect();
    assert_eq!(ip_ops.len(), 1);
    assert_eq!(ip_ops[0]["action"], "skip");
    assert_eq!(ip_ops[0]["reason"], "mode-disabled");
    assert_eq!(ip_ops[0]["stage_wide"], true);
    let one_disk = op(&first, "vm-disks:virtualization.virtualdisk:qemu/104/scsi1");
    assert_eq!(
        (one_disk["action"].as_str(), one_disk.get("stage_wide")),
        (Some("skip"), None)
    );
    // The nodes' own addresses are node data: they follow sync_mode_node, as in Proxbox.
    let vm_ip = |o: &&Value| o["model"] == "ipam.ipaddress" && o["stage"] == "ip-addresses";
    assert!(!ops(&first, "create").iter().any(vm_ip));
    assert!(
        ops(&first, "create").iter().any(|o| o["model"] == "dcim.macaddress"),
        "MACs keep running"
    );
}

#[test]
fn failed_agent_fetch_keeps_existing_ips() {
    let (_, mut synced) = sync(&sample());
    synced["proxmox"]["/nodes/pve1/qemu/101/agent/network-get-interfaces"] =
        json!({"error": {"status": 500, "message": "timeout"}});
    let next = plan(&synced);
    assert!(
        ops(&next, "delete").is_empty(),
        "no deletes from an incomplete snapshot"
    );
    assert!(next["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["code"] == "incomplete-snapshot"));
}

#[test]
fn gone_vm_is_kept_or_retired_but_never_deleted() {
    let (_, mut synced) = sync(&sample());
    synced["proxmox"]["/cluster/resources"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["id"] != "lxc/200");
    let kept = plan(&synced);
    assert_eq!(
        op(&kept, "virtual-machines:virtualization.virtualmachine:lxc/200")["reason"],
        "orphan-kept"
    );
    assert!(ops(&kept, "delete").is_empty());
    synced["settings"]["delete_orphans"] = json!(true);
    let retired = plan(&synced);
    let vm = op(&retired, "virtual-machines:virtualization.virtualmachine:lxc/200");
    assert_eq!(vm["action"], "update");
    assert_eq!(vm["changes"]["status"]["after"], "decommissioning");
    let (_, after) = sync(&synced);
    assert_eq!(writes(&plan(&after)), Vec::<String>::new());
}

#[test]
fn max_deletes_turns_deletes_into_skips() {
    let (_, mut synced) = sync(&sample());
    synced["settings"]["max_deletes"] = json!(1);
    for path in ["/nodes/pve1/qemu/101/config", "/nodes/pve2/qemu/103/config"] {
        let config = guest_config(&mut synced, path);
        config.retain(|k, _| !k.starts_with("net"));
    }
    let next = plan(&synced);
    assert!(ops(&next, "delete").is_empty());
    assert!(next["operations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["reason"] == "max-deletes-exceeded"));
    assert!(next["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["code"] == "max-deletes-exceeded"));
}

#[test]
fn missing_paths_and_ids_are_clear_errors() {
    let mut input = sample();
    input["proxmox"].as_object_mut().unwrap().remove("/cluster/resources");
    let error = proxbox_planner::plan(&input).unwrap_err();
    assert_eq!(error.path, r#"$.proxmox["/cluster/resources"]"#);
    let mut input = sample();
    input["netbox"]["/api/extras/tags/"] = json!([{"name": "x"}]);
    let error = proxbox_planner::plan(&input).unwrap_err();
    assert_eq!(error.path, r#"$.netbox["/api/extras/tags/"][0].id"#);
    let mut input = sample();
    input["endpoint"]["id"] = Value::Null;
    assert_eq!(proxbox_planner::plan(&input).unwrap_err().path, "$.endpoint.id");
}

#[test]
fn discover_asks_in_rounds_and_skips_disabled_work() {
    let full = sample();
    let mut input = json!({"settings": full["settings"], "endpoint": full["endpoint"], "proxmox": {}, "netbox": {}});
    let round1 = proxbox_planner::discover(&input).unwrap();
    assert_eq!(
        round1.proxmox,
        [
            "/cluster/backup",
            "/cluster/replication",
            "/cluster/resources",
            "/cluster/status",
            "/storage"
        ]
    );
    assert!(round1
        .netbox
        .contains(&"/api/virtualization/virtual-machines/".to_owned()));
    for path in &round1.proxmox {
        input["proxmox"][path] = full["proxmox"][path].clone();
    }
    let round2 = proxbox_planner::discover(&input).unwrap();
    assert!(round2.proxmox.contains(&"/nodes/pve1/qemu/101/config".to_owned()));
    assert!(
        round2.proxmox.contains(&"/nodes/pve1/qemu/9000/config".to_owned()),
        "the template's config"
    );
    let mut no_templates = input.clone();
    no_templates["settings"]["sync_mode_vm_template"] = json!("disabled");
    let without = proxbox_planner::discover(&no_templates).unwrap();
    assert!(
        !without.proxmox.iter().any(|p| p.contains("9000")),
        "disabled templates cause no fetch"
    );
    for path in &round2.proxmox {
        input["proxmox"][path] = full["proxmox"][path].clone();
    }
    let round3 = proxbox_planner::discover(&input).unwrap();
    assert!(round3
        .proxmox
        .contains(&"/nodes/pve1/qemu/101/agent/network-get-interfaces".to_owned()));
    assert!(
        !round3.proxmox.iter().any(|p| p.contains("/103/agent")),
        "agent disabled in config"
    );
    assert!(
        !round3.proxmox.iter().any(|p| p.contains("/104/agent")),
        "stopped guest"
    );
    let mut disabled = input.clone();
    disabled["settings"]["sync_mode_vm"] = json!("disabled");
    disabled["settings"]["sync_mode_vm_template"] = json!("disabled");
    disabled["settings"]["sync_mode_cluster"] = json!("disabled");
    disabled["settings"]["sync_mode_storage"] = json!("disabled");
    let nothing = proxbox_planner::discover(&json!({"settings": disabled["settings"], "endpoint": {"id": 1}})).unwrap();
    assert_eq!(
        (nothing.proxmox.len(), nothing.netbox.len(), nothing.complete),
        (0, 0, true)
    );
}

#[test]
fn overwrite_flags_keep_fields_out_of_updates_but_not_out_of_creates() {
    let (_, mut synced) = sync(&sample());
    for row in synced["proxmox"]["/cluster/resources"].as_array_mut().unwrap() {
        if row["id"] == "qemu/101" {
            row["tags"] = json!("prod;web;new-tag");
        }
    }
    synced["proxmox"]["/nodes/pve1/qemu/101/config"]["description"] = json!("Rewritten note");
    for device in synced["netbox"]["/api/dcim/devices/"].as_array_mut().unwrap() {
        device["status"] = json!({"value": "planned", "label": "Planned"});
    }
    let always = plan(&synced);
    let vm = op(&always, "virtual-machines:virtualization.virtualmachine:qemu/101");
    assert!(vm["changes"]["tags"]["after"]
        .as_array()
        .unwrap()
        .contains(&json!({"slug": "new-tag"})));
    assert_eq!(vm["changes"]["description"]["after"], "Rewritten note");
    assert_eq!(
        op(&always, "devices:dcim.device:pve1")["changes"]["status"]["after"],
        "active"
    );

    synced["settings"]["overwrite_vm_proxmox_tags"] = json!(false);
    synced["settings"]["overwrite_vm_description"] = json!(false);
    synced["endpoint"]["overwrite_device_status"] = json!(false);
    let restrained = plan(&synced);
    let ids = op_ids(&restrained);
    assert!(
        !ids.contains(&"virtual-machines:virtualization.virtualmachine:qemu/101"),
        "{ids:?}"
    );
    assert!(!ids.contains(&"devices:dcim.device:pve1"));
    assert!(!ids.contains(&"virtual-machines:extras.tag:new-tag"));
    // A new VM still gets everything.
    let mut fresh = sample();
    fresh["settings"]["overwrite_vm_description"] = json!(false);
    fresh["settings"]["overwrite_vm_tags"] = json!(false);
    let created = plan(&fresh);
    let fields = &op(&created, "virtual-machines:virtualization.virtualmachine:qemu/101")["fields"];
    assert_eq!(fields["description"], "Public web frontend");
    assert!(fields["tags"].as_array().unwrap().contains(&json!({"slug": "prod"})));
}

#[test]
fn a_stopped_guest_keeps_the_addresses_its_agent_reported() {
    let (_, mut synced) = sync(&sample());
    for row in synced["proxmox"]["/cluster/resources"].as_array_mut().unwrap() {
        if row["id"] == "qemu/101" {
            row["status"] = json!("stopped");
        }
    }
    synced["proxmox"]
        .as_object_mut()
        .unwrap()
        .remove("/nodes/pve1/qemu/101/agent/network-get-interfaces");
    let next = plan(&synced);
    assert!(ops(&next, "delete").is_empty(), "{:?}", ops(&next, "delete"));
    assert_eq!(
        op(&next, "virtual-machines:virtualization.virtualmachine:qemu/101")["changes"]["status"]["after"],
        "offline"
    );
}

#[test]
fn operations_of_one_collection_and_action_stand_together_within_a_stage() {
    // Also when the first guests carry no Proxmox tags and a later one does: its
    // new tag must not split the VM creates in two.
    let mut late_tags = sample();
    let configs: Vec<String> = late_tags["proxmox"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|path| path.ends_with("/config"))
        .cloned()
        .collect();
    for path in &configs {
        guest_config(&mut late_tags, path).remove("tags");
    }
    for row in late_tags["proxmox"]["/cluster/resources"].as_array_mut().unwrap() {
        row.as_object_mut().unwrap().remove("tags");
    }
    // The guest with the highest vmid (planned last).
    guest_config(&mut late_tags, "/nodes/pve3/qemu/106/config").insert("tags".into(), json!("late-tag"));
    for input in [sample(), late_tags] {
        let first = plan(&input);
        let planned: Vec<&Value> = first["operations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["action"] != "skip")
            .collect();
        let mut runs = Vec::new();
        for op in &planned {
            let run = (
                op["stage"].as_str().unwrap(),
                op["collection"].as_str().unwrap(),
                op["action"].as_str().unwrap(),
            );
            if runs.last() != Some(&run) {
                runs.push(run);
            }
        }
        // Each run is one bulk request. Without grouping the sample took 60.
        let mut distinct = runs.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            runs.len(),
            distinct.len(),
            "a (stage, collection, action) appears as one run: {runs:?}"
        );
        // Grouping never breaks dependencies: the apply simulator checks them.
        let (_, synced) = sync(&input);
        assert_eq!(writes(&plan(&synced)), Vec::<String>::new());
    }
}

fn warnings_with_code<'p>(plan: &'p Value, code: &str) -> Vec<&'p str> {
    warnings(plan, code)
        .into_iter()
        .map(|w| w["message"].as_str().unwrap())
        .collect()
}

/// NetBox refuses a second copy of a host address in its global table: the
/// planner creates the first and skips the others, run after run.
#[test]
fn a_host_address_reported_twice_is_created_once() {
    let mut input = sample();
    // qemu/103's static address becomes qemu/101's agent address, with another prefix length.
    guest_config(&mut input, "/nodes/pve2/qemu/103/config")["ipconfig0"] = json!("ip=10.0.20.11/16,gw=10.0.0.1");
    let first = plan(&input);
    assert_eq!(
        op(&first, "ip-addresses:ipam.ipaddress:qemu/101/net0/10.0.20.11/24")["action"],
        "create"
    );
    let second = op(&first, "ip-addresses:ipam.ipaddress:qemu/103/net0/10.0.20.11/16");
    assert_eq!(
        (second["action"].as_str(), second["reason"].as_str()),
        (Some("skip"), Some("ambiguous-identity"))
    );
    assert_eq!(
        warnings_with_code(&first, "duplicate-ip"),
        [
            "qemu/103/net0/10.0.20.11/16: 10.0.20.11 is also reported for qemu/101/net0/10.0.20.11/24; \
          NetBox keeps host addresses unique, so it is not created"
        ]
    );
    let primary = "ip-addresses:virtualization.virtualmachine:qemu/103/primary-ip";
    assert!(
        first["operations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["id"] != primary),
        "no primary IP from a skipped address"
    );

    let (_, synced) = sync(&input);
    let again = plan(&synced);
    assert_eq!(writes(&again), Vec::<String>::new());
    let skipped = op(&again, "ip-addresses:ipam.ipaddress:qemu/103/net0/10.0.20.11/16");
    assert_eq!(skipped["reason"], "not-owned");
    assert_eq!(warnings_with_code(&again, "duplicate-ip").len(), 1);
}

/// Addresses in a VRF, or with a role meant to be shared, do not block one in
/// the global table.
#[test]
fn vrf_and_anycast_addresses_do_not_block_a_global_one() {
    let mut input = sample();
    let ips = input["netbox"]["/api/ipam/ip-addresses/"].as_array_mut().unwrap();
    ips.push(json!({"id": 801, "address": "10.0.30.15/24", "vrf": {"id": 4, "name": "tenant-a"}, "tags": []}));
    ips.push(
        json!({"id": 802, "address": "10.0.20.11/32", "role": {"value": "anycast", "label": "Anycast"}, "tags": []}),
    );
    let first = plan(&input);
    for id in [
        "ip-addresses:ipam.ipaddress:qemu/103/net0/10.0.30.15/24",
        "ip-addresses:ipam.ipaddress:qemu/101/net0/10.0.20.11/24",
    ] {
        assert_eq!(op(&first, id)["action"], "create", "{id}");
    }
    assert_eq!(warnings_with_code(&first, "duplicate-ip"), Vec::<&str>::new());
}

#[test]
fn a_plan_says_where_it_was_made_and_what_it_saw() {
    let mut input = sample();
    input["origin"] = json!({"netbox_url": "https://netbox.example.org", "netbox_version": "4.7.3", "instance": 1});
    let first = plan(&input);
    assert_eq!(first["origin"]["netbox_url"], "https://netbox.example.org");
    assert_eq!(first["origin"]["netbox_version"], "4.7.3");
    assert_eq!(first["origin"]["instance"], "1");
    let fingerprint = first["origin"]["input_fingerprint"].as_str().unwrap().to_owned();
    assert!(fingerprint.starts_with("fnv1a64:"), "{fingerprint}");
    assert_eq!(first["complete"], true);

    let mut reordered = input.clone();
    reordered["proxmox"]["/cluster/resources"]
        .as_array_mut()
        .unwrap()
        .reverse();
    assert_eq!(plan(&reordered)["origin"]["input_fingerprint"], fingerprint.as_str());
    let mut changed = input.clone();
    changed["proxmox"]["/cluster/resources"][0]["maxmem"] = json!(1);
    assert_ne!(plan(&changed)["origin"]["input_fingerprint"], fingerprint.as_str());
    let mut other_origin = input.clone();
    other_origin["origin"]["netbox_url"] = json!("https://elsewhere.example.org");
    assert_eq!(
        plan(&other_origin)["origin"]["input_fingerprint"],
        fingerprint.as_str(),
        "the origin is where, not what"
    );
    let mut bad = input.clone();
    bad["origin"]["netbox_url"] = json!(3);
    let error = proxbox_planner::plan(&bad).unwrap_err();
    assert_eq!(error.path, "$.origin.netbox_url");
}

#[test]
fn an_unreadable_input_makes_an_incomplete_plan_not_an_empty_one() {
    let mut input = sample();
    input["proxmox"]["/cluster/resources"] = json!({"error": {"status": 401, "message": "authentication failure"}});
    let first = plan(&input);
    assert_eq!(first["complete"], false);
    let unreadable = warnings(&first, "proxmox-unreadable");
    assert_eq!(unreadable.len(), 1);
    assert_eq!(unreadable[0]["proxmox_path"], "/cluster/resources");

    let mut input = sample();
    input["netbox"]["/api/virtualization/virtual-machines/"] =
        json!({"error": {"status": 403, "message": "forbidden"}});
    let first = plan(&input);
    assert_eq!(first["complete"], false);
    let unreadable = warnings(&first, "netbox-unreadable");
    assert_eq!(
        unreadable[0]["netbox_collection"],
        "/api/virtualization/virtual-machines/"
    );
    assert!(!unreadable[0]["stage"].is_null());
}

#[test]
fn a_renamed_guest_converges_in_one_run() {
    let (_, mut synced) = sync(&sample());
    for row in synced["proxmox"]["/cluster/resources"].as_array_mut().unwrap() {
        if row["id"] == "qemu/102" {
            row["name"] = json!("web02-new");
        }
    }
    let (_, after) = sync(&synced);
    assert_eq!(writes(&plan(&after)), Vec::<String>::new());
}
