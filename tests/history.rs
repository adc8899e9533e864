//! What the plugin keeps about a VM's past and its backups: backups,
//! snapshots, task history and the cluster's backup routines.

mod support;

use serde_json::{json, Value};
use support::{op, ops, plan, records, records_of, sample, sync, warnings, writes};

const BACKUPS: &str = "/api/plugins/proxbox/backups/";
const SNAPSHOTS: &str = "/api/plugins/proxbox/snapshots/";
const TASKS: &str = "/api/plugins/proxbox/task-history/";
const ROUTINES: &str = "/api/plugins/proxbox/backup-routines/";
const NFS: &str = "/nodes/pve1/storage/nas-nfs/content?content=backup";
const PVE1_LOCAL: &str = "/nodes/pve1/storage/local/content?content=backup";
const WEB01_BACKUP: &str = "nas-nfs:backup/vzdump-qemu-101-2026_07_20-01_00_02.vma.zst";
const SNAPSHOTS_101: &str = "/nodes/pve1/qemu/101/snapshot";
const PVE1_TASKS: &str = "/nodes/pve1/tasks?source=archive&start=0&limit=100";
const JOB: &str = "backup-8c2f0a3e-5d1b";

fn backup_op(id: &str) -> String {
    format!("vm-backups:netbox_proxbox.vmbackup:{id}")
}

fn of_model<'p>(plan: &'p Value, model: &str) -> Vec<&'p Value> {
    plan["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["model"] == model)
        .collect()
}

// ------------------------------------------------------------------ backups

#[test]
fn backups_are_read_once_per_shared_storage_and_per_node_otherwise() {
    let mut input = sample();
    input["proxmox"] = json!({});
    input["netbox"] = json!({});
    let full = sample();
    let mut asked = Vec::new();
    for _ in 0..4 {
        let next = proxbox_planner::discover(&input).unwrap();
        for path in &next.proxmox {
            input["proxmox"][path] = full["proxmox"][path].clone();
        }
        for collection in &next.netbox {
            input["netbox"][collection] = json!([]);
        }
        asked.extend(next.proxmox);
    }
    let content: Vec<&String> = asked.iter().filter(|p| p.contains("/content?")).collect();
    assert_eq!(
        content,
        [
            PVE1_LOCAL,
            NFS,
            "/nodes/pve2/storage/local/content?content=backup",
            "/nodes/pve3/storage/local/content?content=backup",
        ],
        "nas-nfs is shared: read from its first online node; local-lvm and ceph-rbd hold no backups"
    );
}

#[test]
fn a_backup_becomes_a_row_of_its_vm() {
    let first = plan(&sample());
    let backup = &op(&first, &backup_op(WEB01_BACKUP))["fields"];
    assert_eq!(
        backup["virtual_machine"],
        json!({"$ref": "virtual-machines:virtualization.virtualmachine:qemu/101"})
    );
    assert_eq!(
        backup["proxmox_storage"],
        json!({"$ref": "storage:netbox_proxbox.proxmoxstorage:nas-nfs"})
    );
    assert_eq!(
        (
            backup["storage"].as_str(),
            backup["subtype"].as_str(),
            backup["format"].as_str()
        ),
        (Some("nas-nfs"), Some("qemu"), Some("zst"))
    );
    assert_eq!(backup["creation_time"], "2026-07-20T01:00:02Z");
    assert_eq!(
        (backup["size"].as_u64(), backup["vmid"].as_u64()),
        (Some(2151677952), Some(101))
    );
    assert_eq!(backup["encrypted"], "", "the plugin keeps \"\" for not encrypted");
    let verified = &op(
        &first,
        &backup_op("nas-nfs:backup/vzdump-qemu-101-2026_07_19-01_00_02.vma.zst"),
    )["fields"];
    assert_eq!(verified["verification_state"], "ok");
    assert!(verified["verification_upid"]
        .as_str()
        .unwrap()
        .starts_with("UPID:pve1:"));
    let container = &op(
        &first,
        &backup_op("nas-nfs:backup/vzdump-lxc-200-2026_07_20-01_05_40.tar.zst"),
    )["fields"];
    assert_eq!(
        (container["subtype"].as_str(), container["format"].as_str()),
        (Some("lxc"), Some("tzst"))
    );
    let orphan = op(
        &first,
        &backup_op("nas-nfs:backup/vzdump-qemu-105-2026_05_02-01_00_02.vma.zst"),
    );
    assert_eq!(
        (orphan["action"].as_str(), orphan["reason"].as_str()),
        (Some("skip"), Some("unknown-vm"))
    );
    let (_, synced) = sync(&sample());
    assert_eq!(records_of(&synced, BACKUPS).len(), 5);
    assert_eq!(writes(&plan(&synced)), Vec::<String>::new());
}

#[test]
fn a_changed_backup_is_updated_and_a_gone_one_deleted() {
    let (_, mut synced) = sync(&sample());
    let rows = synced["proxmox"][NFS].as_array_mut().unwrap();
    rows.retain(|b| b["volid"] != "nas-nfs:backup/vzdump-qemu-102-2026_07_20-01_03_11.vma.zst");
    rows[0]["notes"] = json!("web01 before the nginx upgrade");
    let next = plan(&synced);
    let updated = op(&next, &backup_op(&rows_volid(&synced, 0)));
    assert_eq!(updated["action"], "update");
    assert_eq!(updated["changes"]["notes"]["after"], "web01 before the nginx upgrade");
    let deleted: Vec<&Value> = ops(&next, "delete");
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert!(deleted[0]["id"].as_str().unwrap().starts_with(&backup_op(
        "nas-nfs:backup/vzdump-qemu-102-2026_07_20-01_03_11.vma.zst#"
    )));
    let (_, after) = sync(&synced);
    assert_eq!(records_of(&after, BACKUPS).len(), 4);
    assert_eq!(writes(&plan(&after)), Vec::<String>::new());
}

fn rows_volid(state: &Value, at: usize) -> String {
    state["proxmox"][NFS][at]["volid"].as_str().unwrap().to_owned()
}

#[test]
fn a_storage_whose_content_failed_deletes_none_of_its_backups() {
    let (_, mut synced) = sync(&sample());
    synced["proxmox"][NFS] = json!({"error": {"status": 500, "message": "storage 'nas-nfs' is not online"}});
    let next = plan(&synced);
    assert!(ops(&next, "delete").is_empty(), "{:?}", ops(&next, "delete"));
    let warned = warnings(&next, "incomplete-snapshot");
    assert_eq!(warned.len(), 1);
    assert_eq!(warned[0]["proxmox_path"], NFS);
    // The other storage still syncs: its gone backup goes.
    synced["proxmox"][PVE1_LOCAL] = json!([]);
    let local_gone = plan(&synced);
    let deleted = ops(&local_gone, "delete");
    assert_eq!(deleted.len(), 1);
    assert!(deleted[0]["id"]
        .as_str()
        .unwrap()
        .contains("local:backup/vzdump-lxc-200"));
}

#[test]
fn an_offline_node_keeps_the_backups_of_its_local_storage() {
    let (_, mut synced) = sync(&sample());
    for row in synced["proxmox"]["/cluster/status"].as_array_mut().unwrap() {
        if row["name"] == "pve3" {
            row["online"] = json!(0);
        }
    }
    for row in synced["proxmox"]["/cluster/resources"].as_array_mut().unwrap() {
        if row["id"] == "node/pve3" {
            row["status"] = json!("offline");
        }
    }
    synced["proxmox"][PVE1_LOCAL] = json!([]);
    let next = plan(&synced);
    assert!(
        of_model(&next, "netbox_proxbox.vmbackup")
            .iter()
            .all(|o| o["action"] != "delete"),
        "pve3's local storage cannot be read: which local backups are gone is unknown"
    );
    let asked = proxbox_planner::discover(&synced).unwrap();
    assert!(
        !asked.proxmox.iter().any(|p| p.starts_with("/nodes/pve3/storage")),
        "{asked:?}"
    );
}

#[test]
fn backups_of_another_endpoints_vm_are_never_touched() {
    let (_, mut synced) = sync(&sample());
    let vm = records(&mut synced, "/api/virtualization/virtual-machines/")[0].clone();
    let mut foreign_vm = vm.clone();
    foreign_vm["id"] = json!(900);
    foreign_vm["name"] = json!("elsewhere");
    records(&mut synced, "/api/virtualization/virtual-machines/").push(foreign_vm);
    let mut foreign = records_of(&synced, BACKUPS)[0].clone();
    foreign["id"] = json!(901);
    foreign["virtual_machine"] = json!({"id": 900});
    foreign["volume_id"] = json!("nas-nfs:backup/vzdump-qemu-101-2020_01_01-00_00_00.vma.zst");
    records(&mut synced, BACKUPS).push(foreign);
    let next = plan(&synced);
    assert!(
        next["operations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["target"]["id"] != 901),
        "{next}"
    );
}

// ---------------------------------------------------------------- snapshots

#[test]
fn snapshots_keep_their_chain_and_leave_out_current() {
    let first = plan(&sample());
    let snapshots = of_model(&first, "netbox_proxbox.vmsnapshot");
    assert_eq!(snapshots.len(), 4, "{snapshots:?}");
    assert!(!first.to_string().contains("vmsnapshot:qemu/101/current"));
    let post = &op(&first, "vm-snapshots:netbox_proxbox.vmsnapshot:qemu/101/post-upgrade")["fields"];
    assert_eq!(
        (post["parent"].as_str(), post["node"].as_str(), post["vmid"].as_u64()),
        (Some("pre-upgrade"), Some("pve1"), Some(101))
    );
    assert_eq!(
        (post["subtype"].as_str(), post["status"].as_str()),
        (Some("qemu"), Some("active"))
    );
    assert_eq!(post["snaptime"], "2026-07-16T13:40:02Z");
    let ct = &op(
        &first,
        "vm-snapshots:netbox_proxbox.vmsnapshot:lxc/200/before-unbound-1-19",
    )["fields"];
    assert_eq!(ct["subtype"], "lxc");
    assert_eq!(ct["parent"], Value::Null);
}

#[test]
fn a_changed_snapshot_is_updated_a_gone_one_deleted() {
    let (_, mut synced) = sync(&sample());
    let list = synced["proxmox"][SNAPSHOTS_101].as_array_mut().unwrap();
    list.retain(|s| s["name"] != "pre-upgrade");
    for snapshot in list.iter_mut() {
        if snapshot["name"] == "post-upgrade" {
            snapshot.as_object_mut().unwrap().remove("parent");
            snapshot["description"] = json!("nginx 1.26, the only one left");
        }
    }
    let next = plan(&synced);
    let post = op(&next, "vm-snapshots:netbox_proxbox.vmsnapshot:qemu/101/post-upgrade");
    assert_eq!(
        post["changes"]["parent"],
        json!({"before": "pre-upgrade", "after": null})
    );
    assert_eq!(post["changes"]["description"]["after"], "nginx 1.26, the only one left");
    let deleted = ops(&next, "delete");
    assert_eq!(deleted.len(), 1);
    assert!(deleted[0]["id"].as_str().unwrap().contains("101/pre-upgrade@pve1#"));
    let (_, after) = sync(&synced);
    assert_eq!(writes(&plan(&after)), Vec::<String>::new());
}

#[test]
fn a_guest_whose_snapshots_failed_keeps_them() {
    let (_, mut synced) = sync(&sample());
    synced["proxmox"][SNAPSHOTS_101] = json!({"error": {"status": 500, "message": "VM 101 is locked (backup)"}});
    synced["proxmox"]["/nodes/pve1/lxc/200/snapshot"] = json!([{"name": "current"}]);
    let next = plan(&synced);
    let deleted = ops(&next, "delete");
    assert_eq!(deleted.len(), 1, "only lxc/200's, whose list was read: {deleted:?}");
    assert!(deleted[0]["id"].as_str().unwrap().contains("200/before-unbound-1-19"));
    assert_eq!(warnings(&next, "incomplete-snapshot")[0]["proxmox_path"], SNAPSHOTS_101);
}

#[test]
fn a_migrated_guest_moves_its_snapshots_to_the_new_node() {
    let (_, mut synced) = sync(&sample());
    for row in synced["proxmox"]["/cluster/resources"].as_array_mut().unwrap() {
        if row["id"] == "qemu/101" {
            row["node"] = json!("pve2");
        }
    }
    let moved = |from: &str, to: &str, state: &mut Value| {
        let value = state["proxmox"].as_object_mut().unwrap().remove(from).unwrap();
        state["proxmox"][to] = value;
    };
    moved(
        "/nodes/pve1/qemu/101/config",
        "/nodes/pve2/qemu/101/config",
        &mut synced,
    );
    moved(
        "/nodes/pve1/qemu/101/agent/network-get-interfaces",
        "/nodes/pve2/qemu/101/agent/network-get-interfaces",
        &mut synced,
    );
    moved(SNAPSHOTS_101, "/nodes/pve2/qemu/101/snapshot", &mut synced);
    let next = plan(&synced);
    let snapshot_ops = of_model(&next, "netbox_proxbox.vmsnapshot");
    assert_eq!(
        snapshot_ops.iter().filter(|o| o["action"] == "create").count(),
        2,
        "{snapshot_ops:?}"
    );
    assert_eq!(snapshot_ops.iter().filter(|o| o["action"] == "delete").count(), 2);
    let (_, after) = sync(&synced);
    let rows = records_of(&after, SNAPSHOTS);
    assert!(rows.iter().filter(|s| s["vmid"] == 101).all(|s| s["node"] == "pve2"));
    assert_eq!(writes(&plan(&after)), Vec::<String>::new());
}

#[test]
fn another_vms_row_holding_vmid_name_and_node_is_not_taken() {
    let mut input = sample();
    input["netbox"]["/api/virtualization/virtual-machines/"] =
        json!([{"id": 500, "name": "other-cluster-web01", "cluster": {"id": 77}, "tags": [], "custom_fields": {}}]);
    records(&mut input, SNAPSHOTS).push(json!({
        "id": 40, "virtual_machine": {"id": 500}, "vmid": 101, "name": "pre-upgrade", "node": "pve1",
        "status": {"value": "active"}, "tags": [], "custom_fields": {}}));
    let first = plan(&input);
    let refused = op(&first, "vm-snapshots:netbox_proxbox.vmsnapshot:qemu/101/pre-upgrade");
    assert_eq!(
        (refused["action"].as_str(), refused["reason"].as_str()),
        (Some("skip"), Some("not-owned"))
    );
    assert_eq!(refused["target"]["id"], 40);
    assert!(!warnings(&first, "not-owned").is_empty());
    let (_, after) = sync(&input);
    assert_eq!(
        records_of(&after, SNAPSHOTS).iter().filter(|s| s["id"] == 40).count(),
        1
    );
}

// ------------------------------------------------------------- task history

fn task_op(plan: &Value, upid: &str) -> Value {
    op(plan, &format!("task-history:netbox_proxbox.vmtaskhistory:{upid}")).clone()
}

#[test]
fn tasks_of_guests_become_history_rows_and_node_tasks_do_not() {
    let input = sample();
    let first = plan(&input);
    let tasks = of_model(&first, "netbox_proxbox.vmtaskhistory");
    assert_eq!(
        tasks.len(),
        12,
        "pve1's aptupdate (a node task) and a template's task have no VM"
    );
    let start = input["proxmox"][PVE1_TASKS]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "qmstart" && t["id"] == "101")
        .unwrap()
        .clone();
    let fields = task_op(&first, start["upid"].as_str().unwrap())["fields"].clone();
    assert_eq!(
        fields["virtual_machine"],
        json!({"$ref": "virtual-machines:virtualization.virtualmachine:qemu/101"})
    );
    assert_eq!(
        (fields["description"].as_str(), fields["vm_type"].as_str()),
        (Some("QEMU 101 - Start"), Some("qemu"))
    );
    assert_eq!(
        (fields["status"].as_str(), fields["exitstatus"].as_str()),
        (Some("OK"), Some("OK"))
    );
    assert_eq!(fields["task_state"], "stopped");
    assert_eq!(fields["start_time"], "2026-07-14T06:06:42Z");
    assert_eq!(fields["end_time"], "2026-07-14T06:06:46Z");
    assert_eq!(
        (fields["node"].as_str(), fields["username"].as_str()),
        (Some("pve1"), Some("root@pam"))
    );
    let failed = of_model(&first, "netbox_proxbox.vmtaskhistory")
        .into_iter()
        .find(|o| o["fields"]["task_id"] == "104" && o["fields"]["task_type"] == "qmstart")
        .unwrap();
    assert_eq!(failed["fields"]["status"], "start failed: QEMU exited with code 1");
    let backup = of_model(&first, "netbox_proxbox.vmtaskhistory")
        .into_iter()
        .find(|o| o["fields"]["task_id"] == "200" && o["fields"]["task_type"] == "vzdump")
        .unwrap();
    assert_eq!(backup["fields"]["description"], "CT 200 - Vzdump");
}

#[test]
fn a_new_task_is_read_incrementally_and_history_is_never_deleted() {
    let (_, mut synced) = sync(&sample());
    assert_eq!(records_of(&synced, TASKS).len(), 12);
    assert_eq!(writes(&plan(&synced)), Vec::<String>::new());
    let pve1 = synced["proxmox"][PVE1_TASKS].as_array_mut().unwrap();
    // Proxmox rotated its oldest task out of the archive and ran a new one.
    pve1.pop();
    let newest = pve1[0]["starttime"].as_i64().unwrap() + 60;
    let upid = format!("UPID:pve1:0003B000:001A0000:{newest:08X}:qmshutdown:101:root@pam:");
    pve1.insert(
        0,
        json!({"upid": upid, "node": "pve1", "pid": 241664, "pstart": 1703936, "starttime": newest, "endtime": newest + 9,
               "type": "qmshutdown", "id": "101", "user": "root@pam", "status": "OK"}),
    );
    let next = plan(&synced);
    assert_eq!(writes(&next).len(), 1, "{:?}", writes(&next));
    assert_eq!(task_op(&next, &upid)["action"], "create");
    let (_, after) = sync(&synced);
    assert_eq!(records_of(&after, TASKS).len(), 13, "the rotated task stays: history");
}

#[test]
fn a_task_is_planned_once_and_its_record_is_not_rewritten() {
    let (_, mut synced) = sync(&sample());
    let pve1 = synced["proxmox"][PVE1_TASKS].as_array_mut().unwrap();
    let task = pve1.iter_mut().find(|t| t["type"] == "vzstart").unwrap();
    task["status"] = json!("unexpected status");
    task["type"] = json!("vzreboot");
    let upid = task["upid"].as_str().unwrap().to_owned();
    let next = plan(&synced);
    let changed: Vec<String> = task_op(&next, &upid)["changes"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(changed, ["exitstatus", "status"], "the outcome only");
}

/// The 250 tasks of qemu/101 on pve1 before the `ran`th, newest first, a
/// minute apart: task k started at minute k.
fn busy_archive(ran: i64) -> Vec<Value> {
    (ran - 250..ran)
        .rev()
        .map(|k| {
            let start = 1_784_600_000 + 60 * k;
            json!({"upid": format!("UPID:pve1:{:08X}:00000001:{start:08X}:qmstart:101:root@pam:", 300_000 + k),
                   "node": "pve1", "pid": 300_000 + k, "starttime": start, "endtime": start + 1, "type": "qmstart",
                   "id": "101", "user": "root@pam", "status": "OK"})
        })
        .collect()
}

/// The pages of the archives as Proxmox serves them: pve1's `archive`,
/// the sample's for the other nodes.
fn serve_pages(input: &mut Value, archive: &[Value]) {
    let sample = sample();
    for _ in 0..8 {
        let asked = proxbox_planner::discover(input).unwrap();
        for path in asked.proxmox.iter().filter(|p| p.contains("/tasks?")) {
            let node = path.split('/').nth(2).unwrap();
            let whole = match node {
                "pve1" => archive.to_vec(),
                other => sample["proxmox"][format!("/nodes/{other}/tasks?source=archive&start=0&limit=100")]
                    .as_array()
                    .unwrap()
                    .clone(),
            };
            let query = path.split_once('?').unwrap().1;
            let number = |key: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                    .unwrap()
                    .parse::<usize>()
                    .unwrap()
            };
            let (start, limit) = (number("start"), number("limit"));
            let page: Vec<Value> = whole.into_iter().skip(start).take(limit).collect();
            input["proxmox"][path] = Value::Array(page);
        }
    }
}

#[test]
fn the_archive_is_paged_and_bounded_per_node() {
    let mut input = sample();
    input["settings"]["task_history_per_node"] = json!(230);
    let archive = busy_archive(250);
    input["proxmox"][PVE1_TASKS] = Value::Array(archive[..100].to_vec());
    serve_pages(&mut input, &archive);
    let pages: Vec<&String> = input["proxmox"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|p| p.starts_with("/nodes/pve1/tasks?"))
        .collect();
    assert_eq!(
        pages,
        [
            "/nodes/pve1/tasks?source=archive&start=0&limit=100",
            "/nodes/pve1/tasks?source=archive&start=100&limit=130",
        ],
        "a first page, then what the bound leaves"
    );
    let first = plan(&input);
    let tasks = of_model(&first, "netbox_proxbox.vmtaskhistory");
    assert_eq!(tasks.iter().filter(|t| t["fields"]["node"] == "pve1").count(), 230);

    // The next run: 30 new tasks. The first page holds them and reaches known history.
    let (_, mut synced) = sync(&input);
    let newer = busy_archive(280);
    synced["proxmox"]
        .as_object_mut()
        .unwrap()
        .retain(|p, _| !p.starts_with("/nodes/pve1/tasks?"));
    synced["proxmox"][PVE1_TASKS] = Value::Array(newer[..100].to_vec());
    let asked = proxbox_planner::discover(&synced).unwrap();
    assert!(asked.proxmox.is_empty(), "one page is enough: {:?}", asked.proxmox);
    let next = plan(&synced);
    assert_eq!(writes(&next).len(), 30, "{:?}", writes(&next));
}

#[test]
fn tasks_older_than_what_netbox_holds_are_not_planned_even_if_listed() {
    let mut input = sample();
    input["settings"]["task_history_per_node"] = json!(50);
    input["proxmox"].as_object_mut().unwrap().remove(PVE1_TASKS);
    let archive = busy_archive(250);
    serve_pages(&mut input, &archive);
    let (_, mut synced) = sync(&input);
    assert_eq!(
        records_of(&synced, TASKS)
            .iter()
            .filter(|t| t["node"] == "pve1")
            .count(),
        50
    );
    // The bound is raised: the first page now lists 50 older tasks too, and they are not filled in.
    synced["settings"]["task_history_per_node"] = json!(500);
    serve_pages(&mut synced, &archive);
    assert_eq!(synced["proxmox"][PVE1_TASKS].as_array().unwrap().len(), 100);
    let next = plan(&synced);
    assert_eq!(writes(&next), Vec::<String>::new());
}

#[test]
fn a_failed_archive_page_plans_nothing_for_that_node() {
    let mut input = sample();
    input["proxmox"][PVE1_TASKS] = json!({"error": {"status": 596, "message": "Connection timed out"}});
    let first = plan(&input);
    let tasks = of_model(&first, "netbox_proxbox.vmtaskhistory");
    assert!(tasks.iter().all(|t| t["fields"]["node"] != "pve1"), "{tasks:?}");
    assert_eq!(tasks.len(), 6, "pve2's and pve3's");
    assert_eq!(warnings(&first, "incomplete-snapshot")[0]["proxmox_path"], PVE1_TASKS);
}

#[test]
fn a_run_for_some_vms_leaves_task_history_to_a_full_run() {
    let mut input = sample();
    input["subset"] = json!({"guests": ["qemu/101"]});
    let first = plan(&input);
    let tasks = of_model(&first, "netbox_proxbox.vmtaskhistory");
    assert_eq!(tasks.len(), 1);
    assert_eq!(
        (tasks[0]["action"].as_str(), tasks[0]["reason"].as_str()),
        (Some("skip"), Some("subset-run"))
    );
    let mut empty = input.clone();
    empty["proxmox"] = json!({});
    for _ in 0..4 {
        let next = proxbox_planner::discover(&empty).unwrap();
        assert!(!next.proxmox.iter().any(|p| p.contains("/tasks?")), "{next:?}");
        for path in &next.proxmox {
            empty["proxmox"][path] = input["proxmox"][path].clone();
        }
    }
    // Backups and snapshots are per VM: only 101's.
    let backups: Vec<&Value> = ops(&first, "create")
        .into_iter()
        .filter(|o| o["model"] == "netbox_proxbox.vmbackup")
        .collect();
    assert_eq!(backups.len(), 2);
    assert!(backups.iter().all(|b| b["fields"]["vmid"] == 101));
    assert!(of_model(&first, "netbox_proxbox.vmbackup")
        .iter()
        .all(|o| o["reason"] != "unknown-vm"));
}

#[test]
fn task_pages_wait_for_what_netbox_holds() {
    let full = sample();
    let mut input = json!({"settings": full["settings"], "endpoint": full["endpoint"], "proxmox": {}, "netbox": {}});
    for path in ["/cluster/status", "/cluster/resources"] {
        input["proxmox"][path] = full["proxmox"][path].clone();
    }
    let before = proxbox_planner::discover(&input).unwrap();
    assert!(!before.proxmox.iter().any(|p| p.contains("/tasks?")), "{before:?}");
    for collection in &before.netbox {
        input["netbox"][collection] = json!([]);
    }
    let after = proxbox_planner::discover(&input).unwrap();
    assert!(after.proxmox.contains(&PVE1_TASKS.to_owned()), "{after:?}");
}

// ---------------------------------------------------------- backup routines

#[test]
fn a_backup_job_becomes_a_routine_with_its_links_and_retention() {
    let first = plan(&sample());
    let routine = &op(&first, &format!("backup-routines:netbox_proxbox.backuproutine:{JOB}"))["fields"];
    assert_eq!(
        (routine["endpoint"].as_u64(), routine["job_id"].as_str()),
        (Some(1), Some(JOB))
    );
    assert_eq!(routine["selection"], json!([101, 102, 200]));
    assert_eq!(
        (
            routine["keep_daily"].as_u64(),
            routine["keep_last"].as_u64(),
            routine["keep_weekly"].as_u64()
        ),
        (Some(7), Some(3), Some(4))
    );
    assert_eq!(routine["keep_monthly"], Value::Null);
    assert_eq!(
        routine["storage"],
        json!({"$ref": "storage:netbox_proxbox.proxmoxstorage:nas-nfs"})
    );
    assert_eq!(
        routine["fleecing_storage"],
        json!({"$ref": "storage:netbox_proxbox.proxmoxstorage:local-lvm"})
    );
    assert_eq!(routine["fleecing"], "enabled=1,storage=local-lvm");
    assert_eq!(
        (routine["enabled"].as_bool(), routine["repeat_missed"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(
        (routine["schedule"].as_str(), routine["notes_template"].as_str()),
        (Some("daily 01:00"), Some("{{guestname}}"))
    );
    assert_eq!(routine["raw_config"]["compress"], "zstd");
    assert_eq!(routine["node"], Value::Null, "the job runs on every node");
}

/// proxbox-api sends an empty selection for a job of all guests or of a
/// pool, which the plugin refuses ("This field cannot be blank").
#[test]
fn a_job_of_all_guests_or_of_a_pool_lists_the_guests_it_backs_up() {
    let routine_of = |job: Value| {
        let mut input = sample();
        input["proxmox"]["/cluster/backup"] = json!([job]);
        for row in input["proxmox"]["/cluster/resources"].as_array_mut().unwrap() {
            if row["id"] == "qemu/102" || row["id"] == "lxc/201" {
                row["pool"] = json!("prod");
            }
        }
        op(&plan(&input), "backup-routines:netbox_proxbox.backuproutine:j").clone()
    };
    let all = routine_of(json!({"id": "j", "type": "vzdump", "all": 1, "exclude": "103,9000"}));
    assert_eq!(all["fields"]["selection"], json!([101, 102, 104, 106, 200, 201]));
    let on_pve3 = routine_of(json!({"id": "j", "type": "vzdump", "all": 1, "node": "pve3"}));
    assert_eq!(on_pve3["fields"]["selection"], json!([104, 106, 201]));
    let pool = routine_of(json!({"id": "j", "type": "vzdump", "pool": "prod"}));
    assert_eq!(pool["fields"]["selection"], json!([102, 201]));
    let empty = routine_of(json!({"id": "j", "type": "vzdump", "pool": "example"}));
    assert_eq!(
        (empty["action"].as_str(), empty["reason"].as_str()),
        (Some("skip"), Some("unsupported-by-netbox")),
        "{empty}"
    );
}

#[test]
fn routines_are_updated_go_stale_for_this_endpoint_only_and_come_back() {
    let (_, mut synced) = sync(&sample());
    synced["proxmox"]["/cluster/backup"][0]["schedule"] = json!("sat 02:00");
    synced["proxmox"]["/cluster/backup"][0]["node"] = json!("pve2");
    let next = plan(&synced);
    let routine = op(&next, &format!("backup-routines:netbox_proxbox.backuproutine:{JOB}"));
    assert_eq!(routine["changes"]["schedule"]["after"], "sat 02:00");
    assert!(
        routine["changes"]["node"]["after"].as_u64().is_some(),
        "the plugin's pve2 row"
    );

    let mut foreign = records_of(&synced, ROUTINES)[0].clone();
    foreign["id"] = json!(77);
    foreign["endpoint"] = json!({"id": 2});
    records(&mut synced, ROUTINES).push(foreign);
    synced["proxmox"]["/cluster/backup"] = json!([]);
    let gone = plan(&synced);
    let stale = op(&gone, &format!("backup-routines:netbox_proxbox.backuproutine:{JOB}"));
    assert_eq!(
        stale["changes"]["status"],
        json!({"before": "active", "after": "stale"})
    );
    assert!(gone["operations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["target"]["id"] != 77));
    assert!(ops(&gone, "delete").is_empty());
    let (_, after) = sync(&synced);
    assert_eq!(writes(&plan(&after)), Vec::<String>::new());
    let mut back = after.clone();
    back["proxmox"]["/cluster/backup"] = sample()["proxmox"]["/cluster/backup"].clone();
    let revived = op(
        &plan(&back),
        &format!("backup-routines:netbox_proxbox.backuproutine:{JOB}"),
    )
    .clone();
    assert_eq!(
        (
            revived["reason"].as_str(),
            revived["changes"]["status"]["after"].as_str()
        ),
        (Some("back-in-proxmox"), Some("active"))
    );
}

#[test]
fn a_failed_job_list_leaves_the_routines_as_they_are() {
    let (_, mut synced) = sync(&sample());
    synced["proxmox"]["/cluster/backup"] =
        json!({"error": {"status": 403, "message": "Permission check failed (/, Sys.Audit)"}});
    let next = plan(&synced);
    assert!(of_model(&next, "netbox_proxbox.backuproutine").is_empty());
    assert_eq!(
        warnings(&next, "incomplete-snapshot")[0]["proxmox_path"],
        "/cluster/backup"
    );
}

// -------------------------------------------------------------------- modes

#[test]
fn backups_snapshots_and_tasks_follow_sync_mode_vm_and_routines_sync_mode_cluster() {
    let mut input = sample();
    input["settings"]["sync_mode_vm"] = json!("disabled");
    input["settings"]["sync_mode_cluster"] = json!("disabled");
    let first = plan(&input);
    for (stage, reason) in [
        ("task-history", "sync_mode_vm=disabled"),
        ("vm-backups", "sync_mode_vm=disabled"),
        ("vm-snapshots", "sync_mode_vm=disabled"),
        ("backup-routines", "sync_mode_cluster=disabled"),
    ] {
        let status = first["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stage"] == stage)
            .unwrap();
        assert_eq!(
            (status["run"].as_bool(), status["reason"].as_str()),
            (Some(false), Some(reason))
        );
    }

    let mut input = sample();
    input["settings"]["sync_mode_vm"] = json!("bootstrap_only");
    let (first, mut synced) = sync(&input);
    for created in ops(&first, "create").iter().filter(|o| o["stage"] == "vm-backups") {
        assert!(created["fields"]["tags"]
            .as_array()
            .unwrap()
            .contains(&json!({"slug": "bootstrap-only"})));
    }
    synced["proxmox"][NFS] = json!([]);
    synced["proxmox"][SNAPSHOTS_101] = json!([{"name": "current"}]);
    let next = plan(&synced);
    for model in ["netbox_proxbox.vmbackup", "netbox_proxbox.vmsnapshot"] {
        let touched: Vec<&Value> = of_model(&next, model)
            .into_iter()
            .filter(|o| o["action"] != "skip")
            .collect();
        assert!(touched.is_empty(), "{model}: {touched:?}");
        assert!(of_model(&next, model)
            .iter()
            .any(|o| o["reason"] == "bootstrap-only-tag"));
    }
}
