//! Property tests: random clusters converge, plans are deterministic, and no
//! input makes the core panic.

mod support;

use proptest::prelude::*;
use serde_json::Value;
use support::{apply::apply, gen, plan, writes};

fn converge(input: &Value) -> Result<Value, TestCaseError> {
    let first = plan(input);
    let mut next = input.clone();
    apply(&mut next["netbox"], &first).map_err(|e| TestCaseError::fail(format!("apply: {e}")))?;
    let again = plan(&next);
    prop_assert_eq!(writes(&again), Vec::<String>::new());
    Ok(next)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_clusters_converge_from_empty(guests in gen::cluster()) {
        converge(&gen::snapshot(&guests, Value::Null))?;
    }

    #[test]
    fn random_changes_converge(before in gen::cluster(), after in gen::cluster()) {
        let synced = converge(&gen::snapshot(&before, Value::Null))?;
        let changed = gen::snapshot(&after, synced["netbox"].clone());
        let first = plan(&changed);
        // Nothing the planner did not create is ever deleted: here all of it was.
        for op in first["operations"].as_array().unwrap().iter().filter(|op| op["action"] == "delete") {
            prop_assert!(op["target"]["id"].is_u64());
        }
        converge(&changed)?;
    }

    #[test]
    fn mode_switches_converge(
        before in gen::cluster(), first_modes in gen::modes(), after in gen::cluster(), then_modes in gen::modes(),
        listed_twice in any::<bool>(),
    ) {
        let mut input = gen::snapshot(&before, Value::Null);
        input["settings"] = first_modes;
        let synced = converge(&input)?;
        let mut changed = gen::snapshot(&after, synced["netbox"].clone());
        changed["settings"] = then_modes;
        // Offset pagination lists an object twice while someone writes: the
        // plan from that listing must be the plan from NetBox as it is.
        let mut listed = changed.clone();
        if listed_twice {
            let vms = listed["netbox"]["/api/virtualization/virtual-machines/"].as_array_mut().unwrap();
            if let Some(first) = vms.first().cloned() {
                vms.push(first);
            }
        }
        let mut a = plan(&listed);
        let mut b = plan(&changed);
        for plan in [&mut a, &mut b] {
            plan["warnings"].as_array_mut().unwrap().retain(|w| w["code"] != "duplicate-identity");
        }
        prop_assert_eq!(&a["operations"], &b["operations"]);
        converge(&changed)?;
    }

    #[test]
    fn plans_are_deterministic(guests in gen::cluster()) {
        let input = gen::snapshot(&guests, Value::Null);
        let a = support::schema::checked_text(&proxbox_planner::plan_json(&input.to_string()).unwrap());
        let mut reversed = input.clone();
        reversed["proxmox"]["/cluster/resources"].as_array_mut().unwrap().reverse();
        prop_assert_eq!(a, proxbox_planner::plan_json(&reversed.to_string()).unwrap());
    }
}

/// Arbitrary JSON, biased towards the shapes the planner reads.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-z0-9_/=,:;. -]{0,24}".prop_map(Value::from),
        prop::sample::select(vec![
            "always",
            "disabled",
            "qemu",
            "lxc",
            "running",
            "virtio=BC:24:11:00:00:01,tag=5",
            "size=9G"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop::sample::select(vec![
            "settings",
            "endpoint",
            "proxmox",
            "netbox",
            "sync_types",
            "id",
            "name",
            "type",
            "vmid",
            "node",
            "tags",
            "/cluster/status",
            "/cluster/resources",
            "/api/extras/tags/",
            "net0",
            "custom_fields",
            "error",
            "result",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::btree_map(keys, inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

/// Replaces the value at a random spot of a real snapshot.
fn mutate(value: &mut Value, path: &[usize], replacement: Value) {
    let Some((first, rest)) = path.split_first() else {
        *value = replacement;
        return;
    };
    let child = match value {
        Value::Object(map) if !map.is_empty() => {
            let key = map.keys().nth(first % map.len()).unwrap().clone();
            map.get_mut(&key)
        }
        Value::Array(items) if !items.is_empty() => {
            let len = items.len();
            items.get_mut(first % len)
        }
        _ => None,
    };
    match child {
        Some(child) => mutate(child, rest, replacement),
        None => *value = replacement,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics(input in arbitrary_json()) {
        for result in [proxbox_planner::plan(&input).map(drop), proxbox_planner::discover(&input).map(drop)] {
            if let Err(error) = result {
                prop_assert!(error.path.starts_with('$'), "{}", error.path);
                prop_assert!(!error.message.is_empty());
            }
        }
    }

    #[test]
    fn mutated_snapshots_never_panic(path in prop::collection::vec(any::<usize>(), 1..6), replacement in arbitrary_json()) {
        let mut input = support::sample();
        mutate(&mut input, &path, replacement);
        match proxbox_planner::plan(&input) {
            Ok(plan) => drop(support::schema::checked(serde_json::to_value(plan).unwrap())),
            Err(error) => prop_assert!(error.path.starts_with('$'), "{}", error.path),
        }
        let _ = proxbox_planner::discover(&input);
    }
}
