//! Templates, storage and replications: the Proxbox plugin's own models.

mod support;

use serde_json::{json, Value};
use support::{op, ops, plan, records, sample, sync, warnings, writes};

const TEMPLATE: &str = "vm-templates:netbox_proxbox.proxmoxvmtemplate:qemu/9000";

#[test]
fn a_cloud_init_template_becomes_a_vm_templates_record() {
    let first = plan(&sample());
    let fields = &op(&first, TEMPLATE)["fields"];
    assert_eq!(fields["name"], "tmpl-debian12");
    assert_eq!(fields["vmid"], 9000);
    assert_eq!(fields["proxmox_endpoint"], 1);
    assert_eq!(fields["node_name"], "pve1");
    assert_eq!(fields["proxmox_type"], "qemu");
    assert_eq!(fields["status"], "stopped");
    assert_eq!(
        (
            fields["vcpus"].as_u64(),
            fields["memory"].as_u64(),
            fields["disk"].as_u64()
        ),
        (Some(2), Some(2048), Some(8))
    );
    assert_eq!(fields["os_type"], "l26");
    assert_eq!(fields["cloud_init_enabled"], true);
    assert_eq!(
        fields["net_config"],
        json!({"net0": "virtio=BC:24:11:AA:90:00,bridge=vmbr0"})
    );
    assert_eq!(
        fields["disk_config"].as_object().unwrap().len(),
        2,
        "scsi0 and the cloud-init drive"
    );
    assert_eq!(fields["raw_config"]["template"], 1);
    assert!(
        fields.get("source_vm").is_none() && fields.get("cloned_vms").is_none(),
        "operator-owned"
    );
    assert!(
        !first.to_string().contains("virtualmachine:qemu/9000"),
        "never a VirtualMachine"
    );
}

fn add_template(input: &mut Value, vmid: u64, config: Value) {
    input["proxmox"]["/cluster/resources"]
        .as_array_mut()
        .unwrap()
        .push(json!({
        "id": format!("qemu/{vmid}"), "type": "qemu", "vmid": vmid, "node": "pve2", "status": "stopped", "template": 1,
        "maxcpu": 1, "maxmem": 1u64 << 30}));
    input["proxmox"][format!("/nodes/pve2/qemu/{vmid}/config")] = config;
}

#[test]
fn templates_without_cloud_init_or_name() {
    let mut input = sample();
    add_template(
        &mut input,
        9001,
        json!({"memory": "1024", "scsi0": "local-lvm:base-9001-disk-0,size=1536M", "template": 1}),
    );
    let first = plan(&input);
    let fields = &op(&first, "vm-templates:netbox_proxbox.proxmoxvmtemplate:qemu/9001")["fields"];
    assert_eq!(fields["cloud_init_enabled"], false);
    assert_eq!(fields["name"], "template-9001");
    assert_eq!(fields["disk"], 2, "GiB, rounded up");
}

#[test]
fn templates_converge_and_operator_links_survive() {
    let (_, mut synced) = sync(&sample());
    let record = &mut records(&mut synced, "/api/plugins/proxbox/vm-templates/")[0];
    record["source_vm"] = json!({"id": 1});
    record["cloned_vms"] = json!([{"id": 2}]);
    assert_eq!(writes(&plan(&synced)), Vec::<String>::new());
    synced["proxmox"]["/nodes/pve1/qemu/9000/config"]["description"] = json!("Debian 12, refreshed");
    let next = plan(&synced);
    let update = op(&next, TEMPLATE);
    assert_eq!(update["action"], "update");
    let changed: Vec<&String> = update["changes"].as_object().unwrap().keys().collect();
    assert!(
        changed.contains(&&"description".to_owned()) && changed.contains(&&"raw_config".to_owned()),
        "{changed:?}"
    );
    assert!(!changed
        .iter()
        .any(|c| c.as_str() == "source_vm" || c.as_str() == "cloned_vms"));
}

#[test]
fn a_template_whose_config_failed_is_skipped_not_deleted() {
    let (_, mut synced) = sync(&sample());
    synced["proxmox"]["/nodes/pve1/qemu/9000/config"] = json!({"error": {"status": 500, "message": "timeout"}});
    let next = plan(&synced);
    let skip = op(&next, TEMPLATE);
    assert_eq!(
        (skip["action"].as_str(), skip["reason"].as_str()),
        (Some("skip"), Some("incomplete-snapshot"))
    );
    assert!(ops(&next, "delete").is_empty());
}

#[test]
fn gone_templates_are_deleted_unless_protected_or_not_ours() {
    let (_, mut synced) = sync(&sample());
    synced["proxmox"]["/cluster/resources"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["id"] != "qemu/9000");
    let next = plan(&synced);
    assert_eq!(ops(&next, "delete").len(), 1);
    assert_eq!(ops(&next, "delete")[0]["model"], "netbox_proxbox.proxmoxvmtemplate");
    let (_, after) = sync(&synced);
    assert!(after["netbox"]["/api/plugins/proxbox/vm-templates/"]
        .as_array()
        .unwrap()
        .is_empty());

    let mut protected = synced.clone();
    protected["settings"]["sync_mode_vm_template"] = json!("bootstrap_only");
    records(&mut protected, "/api/plugins/proxbox/vm-templates/")[0]["tags"]
        .as_array_mut()
        .unwrap()
        .push(json!({"slug": "bootstrap-only"}));
    assert!(ops(&plan(&protected), "delete").is_empty());

    // A row the plugin's own template sync wrote (no tag): the endpoint link
    // is the claim, as in the plugin, so it goes as well.
    let mut untagged = synced.clone();
    records(&mut untagged, "/api/plugins/proxbox/vm-templates/")[0]["tags"] = json!([]);
    assert_eq!(ops(&plan(&untagged), "delete").len(), 1);

    // Another endpoint's row is never ours.
    let mut foreign = synced.clone();
    records(&mut foreign, "/api/plugins/proxbox/vm-templates/")[0]["proxmox_endpoint"] = json!({"id": 99});
    let kept = plan(&foreign);
    assert!(ops(&kept, "delete").is_empty(), "{kept}");
}

#[test]
fn storage_of_several_types() {
    let first = plan(&sample());
    let get = |name: &str| op(&first, &format!("storage:netbox_proxbox.proxmoxstorage:{name}"))["fields"].clone();
    let local = get("local");
    assert_eq!(
        (local["storage_type"].as_str(), local["path"].as_str()),
        (Some("dir"), Some("/var/lib/vz"))
    );
    assert_eq!(local["nodes"], "pve1,pve2,pve3", "from the per-node rows");
    assert_eq!(
        (local["shared"].as_bool(), local["enabled"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(local["cluster"], json!({"$ref": "devices:virtualization.cluster:lab"}));
    let nfs = get("nas-nfs");
    assert_eq!(
        (nfs["server"].as_str(), nfs["export"].as_str(), nfs["shared"].as_bool()),
        (Some("10.0.0.50"), Some("/export/pve"), Some(true))
    );
    let ceph = get("ceph-rbd");
    assert_eq!(
        (ceph["pool"].as_str(), ceph["monhost"].as_str()),
        (Some("vmpool"), Some("10.0.0.11 10.0.0.12 10.0.0.13"))
    );
    assert_eq!(get("local-lvm")["raw_config"]["thinpool"], "data");
    let (_, mut synced) = sync(&sample());
    synced["proxmox"]["/storage"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s["storage"] != "nas-nfs");
    synced["proxmox"]["/storage"][0]["content"] = json!("iso,backup");
    let next = plan(&synced);
    assert_eq!(
        op(&next, "storage:netbox_proxbox.proxmoxstorage:local")["changes"]["content"]["after"],
        "iso,backup"
    );
    assert!(ops(&next, "delete").iter().any(|o| o["id"]
        .as_str()
        .unwrap()
        .starts_with("storage:netbox_proxbox.proxmoxstorage:nas-nfs#")));
    let (_, after) = sync(&synced);
    assert_eq!(writes(&plan(&after)), Vec::<String>::new());
}

fn job<'p>(plan: &'p Value, id: &str) -> &'p Value {
    op(plan, &format!("replications:netbox_proxbox.replication:{id}"))
}

#[test]
fn replication_jobs_map_every_field() {
    let first = plan(&sample());
    let zero = &job(&first, "101-0")["fields"];
    assert_eq!(
        (zero["jobnum"].as_u64(), zero["guest"].as_u64()),
        (Some(0), Some(101)),
        "jobnum 0 is valid"
    );
    assert_eq!(zero["rate"], Value::Null, "rate may be absent");
    assert_eq!(zero["disable"], false, "absent disable means false");
    assert_eq!(
        zero["virtual_machine"],
        json!({"$ref": "virtual-machines:virtualization.virtualmachine:qemu/101"})
    );
    assert_eq!(
        (
            zero["target"].as_str(),
            zero["job_type"].as_str(),
            zero["schedule"].as_str()
        ),
        (Some("pve2"), Some("local"), Some("*/15"))
    );
    let limited = &job(&first, "103-1")["fields"];
    assert_eq!(
        (limited["rate"].as_f64(), limited["comment"].as_str()),
        (Some(50.0), Some("db replica"))
    );
    let disabled = &job(&first, "200-0")["fields"];
    assert_eq!(
        (disabled["disable"].as_bool(), disabled["remove_job"].as_str()),
        (Some(true), Some("local"))
    );
    assert_eq!(disabled["endpoint"], 1);
}

#[test]
fn replication_jobs_for_unknown_guests_are_skipped() {
    let mut input = sample();
    input["proxmox"]["/cluster/replication"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "999-0", "guest": 999, "jobnum": 0, "target": "pve1", "type": "local"}));
    input["proxmox"]["/cluster/replication"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "9000-0", "guest": 9000, "jobnum": 0, "target": "pve2", "type": "local"}));
    let first = plan(&input);
    assert_eq!(
        (
            job(&first, "999-0")["action"].as_str(),
            job(&first, "999-0")["reason"].as_str()
        ),
        (Some("skip"), Some("unknown-vm"))
    );
    assert_eq!(job(&first, "9000-0")["reason"], "is-template");
}

#[test]
fn removed_jobs_go_stale_for_this_endpoint_only_and_come_back() {
    let (_, mut synced) = sync(&sample());
    // Another endpoint's job with the same id is not ours to touch.
    let mut foreign = records(&mut synced, "/api/plugins/proxbox/replications/")[0].clone();
    foreign["id"] = json!(500);
    foreign["endpoint"] = json!({"id": 2});
    records(&mut synced, "/api/plugins/proxbox/replications/").push(foreign);
    synced["proxmox"]["/cluster/replication"]
        .as_array_mut()
        .unwrap()
        .retain(|j| j["id"] != "101-0");
    let next = plan(&synced);
    let stale = job(&next, "101-0");
    assert_eq!(stale["action"], "update");
    assert_eq!(
        stale["changes"]["status"],
        json!({"before": "active", "after": "stale"})
    );
    assert_eq!(stale["target"]["id"], 1);
    assert!(ops(&next, "delete").is_empty(), "never deleted");
    let (_, gone) = sync(&synced);
    assert_eq!(writes(&plan(&gone)), Vec::<String>::new());
    let mut back = gone.clone();
    back["proxmox"]["/cluster/replication"] = sample()["proxmox"]["/cluster/replication"].clone();
    let revived = plan(&back);
    assert_eq!(job(&revived, "101-0")["reason"], "back-in-proxmox");
    assert_eq!(job(&revived, "101-0")["changes"]["status"]["after"], "active");
}

#[test]
fn without_the_plugin_its_stages_are_skipped_with_a_warning() {
    let mut input = sample();
    for collection in [
        "/api/plugins/proxbox/vm-templates/",
        "/api/plugins/proxbox/storage/",
        "/api/plugins/proxbox/replications/",
    ] {
        input["netbox"][collection] = json!({"error": {"status": 404, "message": "Not Found"}});
    }
    let first = plan(&input);
    let absent = warnings(&first, "proxbox-plugin-absent");
    assert_eq!(absent.len(), 3, "{absent:?}");
    let plugin_ops: Vec<&Value> = first["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| {
            [
                "netbox_proxbox.proxmoxvmtemplate",
                "netbox_proxbox.proxmoxstorage",
                "netbox_proxbox.replication",
            ]
            .contains(&o["model"].as_str().unwrap())
        })
        .collect();
    assert!(
        plugin_ops.is_empty(),
        "nothing planned for plugin models: {plugin_ops:?}"
    );
    assert!(
        ops(&first, "create")
            .iter()
            .any(|o| o["model"] == "virtualization.virtualmachine"),
        "the rest still runs"
    );
}

#[test]
fn plugin_model_modes() {
    // Replications have no mode of their own: their stage runs while VMs or
    // templates do (SPEC 1.1), so they follow both.
    for (settings, model) in [
        (&["sync_mode_vm_template"][..], "netbox_proxbox.proxmoxvmtemplate"),
        (&["sync_mode_storage"][..], "netbox_proxbox.proxmoxstorage"),
        (
            &["sync_mode_vm", "sync_mode_vm_template"][..],
            "netbox_proxbox.replication",
        ),
    ] {
        let setting = settings.join("+");
        let mut input = sample();
        settings.iter().for_each(|s| input["settings"][*s] = json!("disabled"));
        let disabled = plan(&input);
        let of_model: Vec<&Value> = disabled["operations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["model"] == model)
            .collect();
        assert_eq!(of_model.len(), 1, "{setting}: one skip: {of_model:?}");
        assert_eq!(of_model[0]["reason"], "mode-disabled");

        settings
            .iter()
            .for_each(|s| input["settings"][*s] = json!("bootstrap_only"));
        let (first, mut synced) = sync(&input);
        for create in ops(&first, "create").iter().filter(|o| o["model"] == model) {
            assert!(
                create["fields"]["tags"]
                    .as_array()
                    .unwrap()
                    .contains(&json!({"slug": "bootstrap-only"})),
                "{setting}"
            );
        }
        // Change everything in Proxmox: tagged records stay untouched.
        synced["proxmox"]["/nodes/pve1/qemu/9000/config"]["description"] = json!("changed");
        synced["proxmox"]["/storage"][0]["content"] = json!("iso");
        synced["proxmox"]["/cluster/replication"][0]["schedule"] = json!("*/5");
        let next = plan(&synced);
        let touched: Vec<&Value> = next["operations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["model"] == model && o["action"] != "skip")
            .collect();
        assert!(touched.is_empty(), "{setting}: {touched:?}");
        assert!(next["operations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["model"] == model && o["reason"] == "bootstrap-only-tag"));
    }
}

#[test]
fn replications_run_while_templates_do_and_link_to_the_vms_netbox_has() {
    let (_, mut synced) = sync(&sample());
    synced["settings"]["sync_mode_vm"] = json!("disabled");
    synced["proxmox"]["/cluster/replication"][0]["schedule"] = json!("*/5");
    let next = plan(&synced);
    let stage = next["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "replications")
        .unwrap();
    assert_eq!(stage["run"], true, "only vm is disabled, vm_template is not");
    let updated: Vec<&Value> = ops(&next, "update")
        .into_iter()
        .filter(|o| o["model"] == "netbox_proxbox.replication")
        .collect();
    assert_eq!(updated.len(), 1, "{updated:?}");
    assert_eq!(updated[0]["changes"]["schedule"]["after"], "*/5");
    assert!(
        ops(&next, "update")
            .iter()
            .all(|o| o["model"] != "virtualization.virtualmachine"),
        "VM rows are not written while sync_mode_vm is disabled"
    );
}

#[test]
fn a_template_row_the_plugin_wrote_is_not_re_tagged_every_run() {
    let (_, mut synced) = sync(&sample());
    records(&mut synced, "/api/plugins/proxbox/vm-templates/")[0]["tags"] = json!([]);
    let next = plan(&synced);
    let touched: Vec<&Value> = next["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["model"] == "netbox_proxbox.proxmoxvmtemplate" && o["action"] != "skip")
        .collect();
    assert!(touched.is_empty(), "{touched:?}");
}
