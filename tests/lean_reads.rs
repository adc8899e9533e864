//! Lean reads: the host asks NetBox for only the fields each model is read
//! with (`discover`'s `fields`, sent as `?fields=`), and the planners plan
//! the same from those as from full REST objects. `support::plan` plans the
//! lean shape everywhere; these tests check that nothing left out matters.

mod support;

use proptest::prelude::*;
use proxbox_planner::ALL_MODELS;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use support::{gen, lean, sample, sync, writes};

/// Every field some model is read with, plus tags and custom fields.
fn every_read_field() -> BTreeSet<&'static str> {
    let mut fields: BTreeSet<&str> = ALL_MODELS.iter().flat_map(|m| m.reads.iter().copied()).collect();
    fields.extend(["tags", "custom_fields"]);
    fields
}

/// The NetBox objects with a value in every field their model is NOT read
/// with (a nested object for references, a choice, a tag and custom fields
/// that would each change a plan if a planner read them).
fn with_noise(input: &Value) -> Value {
    let mut input = input.clone();
    let noise: Map<String, Value> = every_read_field()
        .into_iter()
        .map(|field| {
            let value = match field {
                "tags" => json!([{"id": 999, "name": "Noise", "slug": "noise"}]),
                "custom_fields" => json!({"proxmox_vmid": 4242, "proxmox_vm_id": 4242, "proxmox_endpoint": 7}),
                _ => json!({"id": 999, "value": "noise", "label": "Noise"}),
            };
            (field.to_owned(), value)
        })
        .collect();
    for model in ALL_MODELS {
        let declared = model.query_fields();
        // `get_mut`, not indexing: a collection the input lacks must stay absent.
        let objects = input["netbox"].get_mut(model.collection).and_then(Value::as_array_mut);
        for object in objects.into_iter().flatten().filter_map(Value::as_object_mut) {
            for (field, value) in &noise {
                if !declared.contains(&field.as_str()) {
                    object.insert(field.clone(), value.clone());
                }
            }
        }
    }
    input
}

/// A plan without where it was made (the input fingerprint covers every
/// field the reader keeps, so it tells full and lean objects apart).
fn decisions(input: &Value) -> Value {
    let mut plan = serde_json::to_value(proxbox_planner::plan(input).unwrap()).unwrap();
    plan.as_object_mut().unwrap().remove("origin");
    plan
}

#[test]
fn discover_names_the_fields_of_every_collection_it_asks_for() {
    let mut input = sample();
    input["netbox"] = json!({});
    let wanted = proxbox_planner::discover(&input).unwrap();
    assert!(wanted.netbox.len() > 10, "{:?}", wanted.netbox);
    assert_eq!(
        wanted.fields.keys().collect::<Vec<_>>(),
        wanted.netbox.iter().collect::<Vec<_>>()
    );
    for (collection, fields) in &wanted.fields {
        assert_eq!(fields[..2], ["id", "last_updated"], "{collection}");
        assert!(fields.len() > 2, "{collection} is read for more than its ids");
    }
    let vms = wanted.fields.get("/api/virtualization/virtual-machines/").unwrap();
    assert!(vms.contains(&"custom_fields") && vms.contains(&"tags"), "{vms:?}");
    assert!(
        !vms.contains(&"config_context"),
        "the biggest field of a VM is never read"
    );
    let text = serde_json::to_value(&wanted).unwrap();
    assert_eq!(
        text["fields"]["/api/extras/tags/"],
        json!(["id", "last_updated", "color", "description", "name", "slug"])
    );
}

#[test]
fn fields_a_model_is_not_read_with_change_no_plan() {
    let (_, synced) = sync(&sample());
    let mut drifted = synced.clone();
    // An operator's edits, so that the planners compare and update, too.
    for vm in support::records(&mut drifted, "/api/virtualization/virtual-machines/") {
        vm["memory"] = json!(1);
        vm["description"] = json!("edited");
    }
    for input in [sample(), synced, drifted] {
        let noisy = with_noise(&input);
        assert_eq!(decisions(&noisy), decisions(&lean(&noisy)));
        assert_eq!(
            decisions(&noisy),
            decisions(&lean(&input)),
            "the noise itself changes nothing"
        );
    }
}

#[test]
fn an_mtu_converges_when_read_lean() {
    let mut input = sample();
    let config = "/nodes/pve1/qemu/101/config";
    input["proxmox"][config]["net0"] = json!("virtio=BC:24:11:AA:01:01,bridge=vmbr0,firewall=1,tag=20,mtu=9000");
    let (first, synced) = sync(&input);
    assert!(
        first.to_string().contains("\"mtu\":9000"),
        "the interface is created with its MTU"
    );
    assert_eq!(writes(&support::plan(&synced)), Vec::<String>::new());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn random_clusters_plan_the_same_lean(before in gen::cluster(), after in gen::cluster()) {
        let (_, synced) = sync(&gen::snapshot(&before, Value::Null));
        let changed = with_noise(&gen::snapshot(&after, synced["netbox"].clone()));
        prop_assert_eq!(decisions(&changed), decisions(&lean(&changed)));
    }
}
