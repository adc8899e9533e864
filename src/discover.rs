//! Sans-IO discovery: which Proxmox paths and NetBox collections a plan still
//! needs, given what has been fetched so far. The host loops until both lists
//! are empty, then calls `plan`. Each planner says what it needs
//! (`planner::PLANNERS`); disabled resources cause no fetches.

use crate::error::Result;
use crate::input::InputDoc;
use crate::json::Path;
use crate::modes::{mode_report, parse_sync_types, Stage};
use crate::netbox::NetboxState;
use crate::planner::{asks, reads, selected, subset_scope, Read};
use crate::proxmox_path;
use crate::settings::read_settings;
use crate::source::{inventory, ProxmoxSnapshot};
use crate::vec_map::VecMap;
use serde::Serialize;
use serde_json::{Map, Value};

/// What a host still has to fetch before it can plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Discovery {
    /// Proxmox API paths to GET (their `data` goes under `proxmox[path]`).
    pub proxmox: Vec<String>,
    /// NetBox collections to list (their `results` go under `netbox[path]`):
    /// every object, or, for those in `queries`, the filtered ones.
    pub netbox: Vec<String>,
    /// Collections read with filters instead of in full: each query's results,
    /// together (NetBox's change log and journal, for the objects the plan
    /// would update: see `planner::ownership`).
    #[serde(skip_serializing_if = "VecMap::is_empty")]
    pub queries: VecMap<String, Vec<Map<String, Value>>>,
    /// For each of those collections, the fields to ask NetBox for
    /// (`?fields=a,b`): the planners read no other. Full objects are read
    /// the same way (a NetBox that ignores `fields` costs only time).
    pub fields: VecMap<String, Vec<&'static str>>,
    /// True when nothing more is needed: call `plan` now.
    pub complete: bool,
}

/// What to fetch next for the planner input `input`; loop until `complete`.
pub fn discover(input: &Value) -> Result<Discovery> {
    discover_doc(&InputDoc::from_value(input)?)
}

/// `discover` for the input as JSON text (what the JavaScript boundary hands over).
pub fn discover_json(input: &str) -> Result<Discovery> {
    discover_doc(&InputDoc::from_json(input)?)
}

fn discover_doc(input: &InputDoc) -> Result<Discovery> {
    let settings = read_settings(input.settings.as_ref(), input.endpoint.as_ref())?;
    let stages = parse_sync_types(input.sync_types.as_ref(), &Path::ROOT.key("sync_types"))?;
    let subset = input.subset()?;
    let report = mode_report(&settings, &stages);
    let running: Vec<Stage> = report.stages.iter().filter(|s| s.run).map(|s| s.stage).collect();
    let selected = selected(&running);
    let snapshot = ProxmoxSnapshot::read(input.proxmox.as_ref())?;
    let netbox = NetboxState::read(&input.netbox)?;

    let mut proxmox = Vec::new();
    if !selected.is_empty() {
        for path in [proxmox_path::CLUSTER_STATUS, proxmox_path::CLUSTER_RESOURCES] {
            if !snapshot.has(path) {
                proxmox.push(path.to_owned());
            }
        }
        let found = inventory(&snapshot).ok().and_then(Result::ok);
        let scope = subset_scope(&netbox, &settings, found.as_ref(), subset.as_ref())?;
        let in_scope = |guest: &crate::source::Guest| scope.as_ref().is_none_or(|keys| keys.contains(&guest.key()));
        let read = Read {
            settings: &settings,
            snapshot: &snapshot,
            inventory: found.as_ref(),
            netbox: &netbox,
            subset: subset.is_some(),
        };
        proxmox.extend(asks(&selected, &read, &in_scope));
    }
    crate::sort::sort(&mut proxmox);
    proxmox.dedup();
    let mut fields = VecMap::new();
    if !selected.is_empty() {
        for model in reads(&selected, subset.as_ref()) {
            if !netbox.has(model) {
                fields.insert(model.collection.to_owned(), model.query_fields());
            }
        }
    }
    // Last, once everything else is read: the history of what the plan would update.
    let mut queries = VecMap::new();
    if !selected.is_empty() && proxmox.is_empty() && fields.is_empty() {
        for (collection, (model, list)) in crate::planner::history_queries(input)? {
            fields.insert(collection.to_owned(), model.query_fields());
            queries.insert(collection.to_owned(), list);
        }
    }
    let complete = proxmox.is_empty() && fields.is_empty();
    Ok(Discovery {
        proxmox,
        netbox: fields.keys().cloned().collect(),
        queries,
        fields,
        complete,
    })
}
