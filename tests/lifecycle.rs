//! The one reconcile lifecycle: each rule the planners used to break in their
//! own copies of it, as a regression test named after the rule.

mod support;

use serde_json::{json, Value};
use support::{
    op, ops, plan, records, records_of, sample, sync, vm_of, warnings, without_plugin, writes, SYNCED_RESOURCES,
};

const VMS: &str = "/api/virtualization/virtual-machines/";
const IPS: &str = "/api/ipam/ip-addresses/";
const TAGS: &str = "/api/extras/tags/";
const LXC_201: &str = "/nodes/pve3/lxc/201/config";

fn set_all_modes(input: &mut Value, mode: &str) {
    for resource in SYNCED_RESOURCES {
        input["settings"][format!("sync_mode_{resource}")] = json!(mode);
    }
}

#[test]
fn switching_a_type_to_bootstrap_only_does_not_freeze_existing_objects() {
    let (_, mut synced) = sync(&sample());
    set_all_modes(&mut synced, "bootstrap_only");
    let unchanged = plan(&synced);
    assert_eq!(
        writes(&unchanged),
        Vec::<String>::new(),
        "the switch itself changes nothing: no bootstrap-only tag is added to existing objects"
    );
    synced["proxmox"]["/cluster/resources"][3]["maxmem"] = json!(16u64 << 30);
    let next = plan(&synced);
    let vm = op(&next, "virtual-machines:virtualization.virtualmachine:qemu/101");
    assert_eq!(vm["action"], "update", "created before the switch: still synced");
    assert_eq!(vm["changes"]["memory"]["after"], 16384);
    assert!(vm["changes"].get("tags").is_none(), "{vm}");
    // The tag is only ever added on create: a new guest gets it.
    let mut grown = synced.clone();
    let mut row = grown["proxmox"]["/cluster/resources"][3].clone();
    row["vmid"] = json!(150);
    row["id"] = json!("qemu/150");
    row["name"] = json!("new01");
    grown["proxmox"]["/cluster/resources"].as_array_mut().unwrap().push(row);
    let config = grown["proxmox"]["/nodes/pve1/qemu/101/config"].clone();
    grown["proxmox"]["/nodes/pve1/qemu/150/config"] = config;
    grown["proxmox"]["/nodes/pve1/qemu/150/snapshot"] = json!([{"name": "current"}]);
    let created = plan(&grown);
    let new = op(&created, "virtual-machines:virtualization.virtualmachine:qemu/150");
    assert!(new["fields"]["tags"]
        .as_array()
        .unwrap()
        .contains(&json!({"slug": "bootstrap-only"})));
}

#[test]
fn removing_the_bootstrap_only_tag_by_hand_resumes_syncing() {
    let mut input = sample();
    set_all_modes(&mut input, "bootstrap_only");
    let (_, mut synced) = sync(&input);
    vm_of(&mut synced, 101)["tags"]
        .as_array_mut()
        .unwrap()
        .retain(|t| t["slug"] != "bootstrap-only");
    synced["proxmox"]["/cluster/resources"][3]["maxmem"] = json!(16u64 << 30);
    let next = plan(&synced);
    let vm = op(&next, "virtual-machines:virtualization.virtualmachine:qemu/101");
    assert_eq!(vm["action"], "update");
    assert!(vm["changes"].get("tags").is_none(), "the tag is not put back: {vm}");
    let (_, after) = sync(&synced);
    assert_eq!(writes(&plan(&after)), Vec::<String>::new());
}

#[test]
fn sync_mode_vm_disabled_means_no_write_to_any_vm_row_primary_ips_included() {
    let (_, mut synced) = sync(&sample());
    for vm in records(&mut synced, VMS) {
        vm["primary_ip4"] = Value::Null;
        vm["primary_ip6"] = Value::Null;
    }
    synced["settings"]["sync_mode_vm"] = json!("disabled");
    let next = plan(&synced);
    let on_vms: Vec<&Value> = next["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["model"] == "virtualization.virtualmachine" && o["action"] != "skip")
        .collect();
    assert!(on_vms.is_empty(), "{on_vms:?}");
    assert!(ops(&next, "create").is_empty() && ops(&next, "delete").is_empty());
}

/// The sample with guest `gone` removed from Proxmox and a new guest 300 on
/// pve1 whose name is `name`.
fn with_replacement(synced: &Value, gone: &str, name: &str) -> Value {
    let mut next = synced.clone();
    next["proxmox"]["/cluster/resources"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["id"] != gone);
    let row = json!({"id": "lxc/300", "type": "lxc", "vmid": 300, "name": name, "node": "pve1",
        "status": "running", "maxcpu": 1, "maxmem": 1u64 << 30});
    next["proxmox"]["/cluster/resources"].as_array_mut().unwrap().push(row);
    next["proxmox"]["/nodes/pve1/lxc/300/config"] = json!({"hostname": name, "rootfs": "local:8,size=8G"});
    next["proxmox"]["/nodes/pve1/lxc/300/snapshot"] = json!([{"name": "current"}]);
    next
}

#[test]
fn names_held_by_kept_orphans_are_taken() {
    let (_, synced) = sync(&sample());
    // dns01 (lxc/200) is gone from Proxmox and kept as an orphan; a new guest is called dns01.
    let next = with_replacement(&synced, "lxc/200", "dns01");
    let first = plan(&next);
    assert_eq!(
        op(&first, "virtual-machines:virtualization.virtualmachine:lxc/200")["reason"],
        "orphan-kept"
    );
    let created = op(&first, "virtual-machines:virtualization.virtualmachine:lxc/300");
    assert_eq!(
        created["fields"]["name"], "dns01 (2)",
        "NetBox names are unique per cluster"
    );
    let (_, after) = sync(&next);
    assert_eq!(writes(&plan(&after)), Vec::<String>::new());
    // Case-insensitively: DNS01 collides with the orphan's dns01 too.
    let shouting = with_replacement(&synced, "lxc/200", "DNS01");
    let created = op(
        &plan(&shouting),
        "virtual-machines:virtualization.virtualmachine:lxc/300",
    )
    .clone();
    assert_eq!(created["fields"]["name"], "DNS01 (2)");
}

#[test]
fn names_longer_than_netbox_allows_are_shortened_so_the_suffix_fits() {
    let long = "a-very-long-guest-name-that-goes-on-and-on-beyond-what-netbox-keeps";
    assert!(long.len() > 64);
    let (_, synced) = sync(&sample());
    let mut next = with_replacement(&synced, "lxc/200", long);
    let mut twin = next["proxmox"]["/cluster/resources"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    twin["vmid"] = json!(301);
    twin["id"] = json!("lxc/301");
    next["proxmox"]["/cluster/resources"].as_array_mut().unwrap().push(twin);
    next["proxmox"]["/nodes/pve1/lxc/301/config"] = json!({"hostname": long, "rootfs": "local:8,size=8G"});
    next["proxmox"]["/nodes/pve1/lxc/301/snapshot"] = json!([{"name": "current"}]);
    let first = plan(&next);
    let name = |id: &str| op(&first, id)["fields"]["name"].as_str().unwrap().to_owned();
    let a = name("virtual-machines:virtualization.virtualmachine:lxc/300");
    let b = name("virtual-machines:virtualization.virtualmachine:lxc/301");
    assert_eq!(a.chars().count(), 64);
    assert_eq!(b.chars().count(), 64);
    assert!(b.ends_with(" (2)"), "{b}");
    let (_, after) = sync(&next);
    assert_eq!(
        writes(&plan(&after)),
        Vec::<String>::new(),
        "the shortened names are kept"
    );
}

#[test]
fn an_existing_tag_with_the_same_name_and_another_slug_is_adopted() {
    let mut input = sample();
    records(&mut input, TAGS).push(json!({"id": 900, "name": "prod", "slug": "production"}));
    records(&mut input, TAGS).push(json!({"id": 901, "name": "Proxbox", "slug": "proxbox-managed"}));
    let first = plan(&input);
    let tag_creates: Vec<&str> = ops(&first, "create")
        .into_iter()
        .filter(|o| o["model"] == "extras.tag")
        .map(|o| o["fields"]["slug"].as_str().unwrap())
        .collect();
    assert!(!tag_creates.contains(&"prod"), "{tag_creates:?}");
    assert!(!tag_creates.contains(&"proxbox"), "{tag_creates:?}");
    let vm = op(&first, "virtual-machines:virtualization.virtualmachine:qemu/101");
    let tags = vm["fields"]["tags"].as_array().unwrap();
    assert!(tags.contains(&json!({"slug": "production"})), "{tags:?}");
    assert!(tags.contains(&json!({"slug": "proxbox-managed"})), "{tags:?}");
    let (_, after) = sync(&input);
    assert_eq!(writes(&plan(&after)), Vec::<String>::new());
}

fn lxc_201_nets(input: &mut Value, net0: &str, net1: &str) {
    let config = input["proxmox"][LXC_201].as_object_mut().unwrap();
    config.insert(
        "net0".into(),
        json!(format!(
            "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:CC:02:01,{net0},type=veth"
        )),
    );
    config.insert(
        "net1".into(),
        json!(format!(
            "name=eth1,bridge=vmbr1,hwaddr=BC:24:11:CC:02:02,{net1},tag=40,type=veth"
        )),
    );
}

/// A plan that converges in one run: applied, the next plan is empty.
fn converges_in_one_run(input: &Value) -> Value {
    let (first, after) = sync(input);
    assert_eq!(writes(&plan(&after)), Vec::<String>::new());
    first
}

#[test]
fn an_address_that_moves_between_nics_of_a_guest_ends_there_in_one_run() {
    let (_, mut synced) = sync(&sample());
    // 10.0.40.10/24 moves from eth1 to eth0.
    lxc_201_nets(&mut synced, "ip=10.0.40.10/24", "ip=dhcp");
    let first = converges_in_one_run(&synced);
    assert!(
        ops(&first, "create").iter().all(|o| o["model"] != "ipam.ipaddress"),
        "{first}"
    );
    assert!(warnings(&first, "duplicate-ip").is_empty());
    let moved: Vec<&Value> = ops(&first, "update")
        .into_iter()
        .filter(|o| o["model"] == "ipam.ipaddress")
        .collect();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert!(moved[0]["changes"].get("assigned_object_id").is_some());
    assert_eq!(moved[0]["id"], "ip-addresses:ipam.ipaddress:lxc/201/eth0/10.0.40.10/24");
}

#[test]
fn an_address_whose_prefix_length_changes_is_patched_not_recreated() {
    let (_, mut synced) = sync(&sample());
    lxc_201_nets(&mut synced, "ip=dhcp", "ip=10.0.40.10/25,ip6=2001:db8:40::10/64");
    let first = converges_in_one_run(&synced);
    let changed: Vec<&Value> = ops(&first, "update")
        .into_iter()
        .filter(|o| o["model"] == "ipam.ipaddress")
        .collect();
    assert_eq!(changed.len(), 1, "{first}");
    assert_eq!(changed[0]["changes"]["address"]["after"], "10.0.40.10/25");
    assert!(ops(&first, "delete").iter().all(|o| o["model"] != "ipam.ipaddress"));
}

#[test]
fn an_address_that_moves_to_a_renamed_nic_follows_it_in_one_run() {
    let (_, mut synced) = sync(&sample());
    let config = synced["proxmox"][LXC_201].as_object_mut().unwrap();
    let renamed = config["net1"].as_str().unwrap().replace("name=eth1", "name=lan1");
    config.insert("net1".into(), json!(renamed));
    let first = converges_in_one_run(&synced);
    assert!(ops(&first, "create").iter().all(|o| o["model"] != "ipam.ipaddress"));
    assert!(warnings(&first, "duplicate-ip").is_empty(), "{first}");
}

#[test]
fn an_address_that_moves_to_another_guest_follows_it_when_it_is_not_a_primary() {
    let (_, mut synced) = sync(&sample());
    // 2001:db8:40::10 (lxc/201, not its primary IPv6? make sure) moves to lxc/200.
    vm_of(&mut synced, 201)["primary_ip6"] = Value::Null;
    let v6 = records_of(&synced, IPS)
        .iter()
        .find(|ip| ip["address"] == "2001:db8:40::10/64")
        .unwrap()["id"]
        .clone();
    let config = synced["proxmox"][LXC_201].as_object_mut().unwrap();
    let net1 = config["net1"].as_str().unwrap().replace(",ip6=2001:db8:40::10/64", "");
    config.insert("net1".into(), json!(net1));
    let lxc_200 = synced["proxmox"]["/nodes/pve1/lxc/200/config"].as_object_mut().unwrap();
    let net0 = lxc_200["net0"]
        .as_str()
        .unwrap()
        .replace("ip6=auto", "ip6=2001:db8:40::10/64");
    lxc_200.insert("net0".into(), json!(net0));
    let first = converges_in_one_run(&synced);
    let moved = ops(&first, "update")
        .into_iter()
        .find(|o| o["target"]["id"] == v6)
        .unwrap_or_else(|| panic!("{first}"));
    assert_eq!(
        moved["id"],
        "ip-addresses:ipam.ipaddress:lxc/200/eth0/2001:db8:40::10/64"
    );
}

#[test]
fn a_guest_listed_twice_is_one_guest_whatever_the_order() {
    let mut input = sample();
    let mut twin = input["proxmox"]["/cluster/resources"][3].clone();
    twin["name"] = json!("web01-renamed");
    input["proxmox"]["/cluster/resources"]
        .as_array_mut()
        .unwrap()
        .push(twin);
    let a = proxbox_planner::plan_json(&input.to_string()).unwrap();
    input["proxmox"]["/cluster/resources"].as_array_mut().unwrap().reverse();
    let b = proxbox_planner::plan_json(&input.to_string()).unwrap();
    assert_eq!(a, b);
    let first: Value = serde_json::from_str(&a).unwrap();
    assert_eq!(warnings(&first, "duplicate-identity").len(), 1);
    assert_eq!(
        warnings(&first, "duplicate-identity")[0]["proxmox_path"],
        "/cluster/resources"
    );
    converges_in_one_run(&input);
}

#[test]
fn a_netbox_object_listed_twice_is_read_once() {
    let (_, mut synced) = sync(&sample());
    let vm = records_of(&synced, VMS)[0].clone();
    records(&mut synced, VMS).push(vm);
    let first = plan(&synced);
    assert_eq!(
        writes(&first),
        Vec::<String>::new(),
        "the same object twice is not an ambiguity"
    );
    let duplicate = warnings(&first, "duplicate-identity");
    assert_eq!(duplicate.len(), 1);
    assert_eq!(duplicate[0]["netbox_collection"], VMS);
    let a = proxbox_planner::plan_json(&synced.to_string()).unwrap();
    records(&mut synced, VMS).reverse();
    assert_eq!(proxbox_planner::plan_json(&synced.to_string()).unwrap(), a);
}

#[test]
fn two_lxc_nics_with_one_name_give_a_warning_and_a_plan_that_settles() {
    let mut input = sample();
    let config = input["proxmox"][LXC_201].as_object_mut().unwrap();
    let clash = config["net1"].as_str().unwrap().replace("name=eth1", "name=eth0");
    config.insert("net1".into(), json!(clash));
    let first = plan(&input);
    let clash = warnings(&first, "duplicate-identity");
    assert_eq!(clash.len(), 1, "{first}");
    assert_eq!(clash[0]["proxmox_path"], LXC_201);
    let eth0 = op(&first, "vm-interfaces:virtualization.vminterface:lxc/201/eth0");
    assert!(
        eth0["fields"].get("untagged_vlan").unwrap().is_null(),
        "net0 (the lower index) wins"
    );
    converges_in_one_run(&input);
}

#[test]
fn a_vmid_is_an_integer_from_1_to_999999999() {
    for bad in [
        json!(101.5),
        json!(1e20),
        json!(0),
        json!(-1),
        json!("101a"),
        json!(1_000_000_000u64),
    ] {
        let mut input = sample();
        input["proxmox"]["/cluster/resources"][3]["vmid"] = bad.clone();
        let error = proxbox_planner::plan(&input).unwrap_err();
        assert_eq!(error.code.as_str(), "invalid-value", "{bad}");
        assert_eq!(error.path, r#"$.proxmox["/cluster/resources"][3].vmid"#, "{bad}");
    }
    let mut input = sample();
    input["proxmox"]["/cluster/resources"][3]["vmid"] = json!("101");
    assert!(
        proxbox_planner::plan(&input).is_ok(),
        "decimal text is how some Proxmox releases answer"
    );
}

#[test]
fn a_custom_field_counts_as_present_only_for_the_model_it_is_needed_on() {
    let mut input = without_plugin(sample());
    records(&mut input, "/api/extras/custom-fields/").push(json!({
        "id": 50, "name": "proxmox_vmid", "type": {"value": "integer", "label": "Integer"},
        "object_types": ["dcim.device"],
    }));
    let first = plan(&input);
    let extended = op(&first, "bootstrap:extras.customfield:proxmox_vmid");
    assert_eq!(extended["action"], "update");
    assert_eq!(
        extended["changes"]["object_types"]["after"],
        json!(["dcim.device", "virtualization.virtualmachine"])
    );
    converges_in_one_run(&input);

    let mut input = without_plugin(sample());
    records(&mut input, "/api/extras/custom-fields/").push(json!({
        "id": 50, "name": "proxmox_vmid", "type": {"value": "text", "label": "Text"},
        "object_types": ["virtualization.virtualmachine"],
    }));
    let first = plan(&input);
    assert!(ops(&first, "create")
        .iter()
        .all(|o| o["model"] != "virtualization.virtualmachine"));
    let refused = warnings(&first, "not-owned");
    assert!(refused.iter().any(|w| w["netbox_id"] == 50), "{refused:?}");
}

/// Every warning names a Proxmox path, a NetBox collection or a stage, and
/// its text holds no list position (which would change with the order).
fn named(plan: &Value) {
    for warning in plan["warnings"].as_array().unwrap() {
        let named = ["proxmox_path", "netbox_collection", "stage"]
            .iter()
            .any(|k| warning.get(*k).is_some_and(|v| !v.is_null()));
        assert!(named, "{warning}");
        let message = warning["message"].as_str().unwrap();
        assert!(!message.contains("]["), "{message}");
    }
}

#[test]
fn every_warning_names_what_it_concerns() {
    let mut input = sample();
    // An ambiguous VM identity, an unreadable guest agent and guest config, a
    // duplicate host address, a duplicated storage row.
    let (_, mut synced) = sync(&input);
    let copy = records_of(&synced, VMS)[0].clone();
    let mut twin = copy.clone();
    twin["id"] = json!(9999);
    twin["name"] = json!("twin");
    records(&mut synced, VMS).push(twin);
    named(&plan(&synced));
    input["proxmox"]["/nodes/pve2/qemu/103/config"] = json!({"error": {"status": 500, "message": "down"}});
    input["proxmox"]["/nodes/pve1/qemu/101/agent/network-get-interfaces"] =
        json!({"error": {"status": 500, "message": "no agent"}});
    let row = input["proxmox"]["/storage"][0].clone();
    input["proxmox"]["/storage"].as_array_mut().unwrap().push(row);
    input["settings"]["max_deletes"] = json!(0);
    named(&plan(&input));
}

#[test]
fn same_input_same_bytes_for_every_sdn_list() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/sdn/evpn.json")).unwrap();
    let input: Value = serde_json::from_str(&text).unwrap();
    let baseline = proxbox_planner::plan_json(&input.to_string()).unwrap();
    let mut reversed = input.clone();
    for (path, list) in reversed["proxmox"].as_object_mut().unwrap() {
        if path.contains("/sdn/") {
            if let Some(items) = list.as_array_mut() {
                items.reverse();
            }
        }
    }
    assert_eq!(proxbox_planner::plan_json(&reversed.to_string()).unwrap(), baseline);
}

#[test]
fn stage_gating_and_the_planners_agree() {
    let stage_of = |plan: &Value, name: &str| {
        plan["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stage"] == name)
            .cloned()
    };
    let combinations: [&[&str]; 7] = [
        &["vm"],
        &["vm", "vm_template"],
        &["storage"],
        &["storage", "vm"],
        &["cluster", "node"],
        &["vm_interface"],
        &["ip_address", "mac"],
    ];
    for disabled in combinations {
        let mut input = sample();
        for resource in disabled {
            input["settings"][format!("sync_mode_{resource}")] = json!("disabled");
        }
        let first = plan(&input);
        for stage in first["stages"].as_array().unwrap() {
            let name = stage["stage"].as_str().unwrap();
            let of_stage: Vec<&Value> = first["operations"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|o| o["stage"] == name)
                .collect();
            if stage["run"] == false {
                assert_eq!(of_stage.len(), 1, "{disabled:?} {name}: one skip: {of_stage:?}");
                assert_eq!(of_stage[0]["reason"], "mode-disabled");
                assert_eq!(of_stage[0]["stage_wide"], true, "a UI places it with its stage");
            } else if !of_stage.is_empty() {
                let only_disabled = of_stage.iter().all(|o| o["reason"] == "mode-disabled");
                assert!(
                    !only_disabled,
                    "{disabled:?}: stage {name} runs to skip everything: {of_stage:?}"
                );
            }
        }
        // What does not run is not fetched.
        let mut empty = input.clone();
        empty["proxmox"] = json!({});
        empty["netbox"] = json!({});
        let mut asked = Vec::new();
        for _ in 0..4 {
            let next = proxbox_planner::discover(&empty).unwrap();
            for path in &next.proxmox {
                empty["proxmox"][path] = input["proxmox"].get(path).cloned().unwrap_or(json!([]));
            }
            for collection in &next.netbox {
                empty["netbox"][collection] = json!([]);
            }
            asked.extend(next.proxmox);
        }
        let runs = |name: &str| stage_of(&first, name).is_some_and(|s| s["run"] == true);
        // Backups are found on the storages that hold them.
        assert_eq!(
            asked.iter().any(|p| p == "/storage"),
            runs("storage") || runs("vm-backups"),
            "{disabled:?}"
        );
        assert_eq!(
            asked.iter().any(|p| p.contains("/tasks?")),
            runs("task-history"),
            "{disabled:?}"
        );
        assert_eq!(
            asked.iter().any(|p| p == "/cluster/backup"),
            runs("backup-routines"),
            "{disabled:?}"
        );
        assert_eq!(
            asked.iter().any(|p| p == "/cluster/replication"),
            runs("replications"),
            "{disabled:?}"
        );
    }
}

#[test]
fn two_guests_that_swap_names_converge_in_one_run() {
    let (_, mut synced) = sync(&sample());
    // web02 (qemu/102) and db01 (qemu/103) swap names in Proxmox.
    for row in synced["proxmox"]["/cluster/resources"].as_array_mut().unwrap() {
        match row["id"].as_str() {
            Some("qemu/102") => row["name"] = json!("db01"),
            Some("qemu/103") => row["name"] = json!("web02"),
            _ => {}
        }
    }
    let first = converges_in_one_run(&synced);
    let stand_in = op(
        &first,
        "virtual-machines:virtualization.virtualmachine:qemu/102/free-name",
    );
    assert!(stand_in["changes"]["name"]["after"]
        .as_str()
        .unwrap()
        .starts_with("web02 (renaming"));
    let after = |id: &str| op(&first, id)["changes"]["name"]["after"].clone();
    assert_eq!(after("virtual-machines:virtualization.virtualmachine:qemu/102"), "db01");
    assert_eq!(
        after("virtual-machines:virtualization.virtualmachine:qemu/103"),
        "web02"
    );
}
