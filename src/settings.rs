//! Reading the plugin's settings and endpoint objects (their REST shapes).
//!
//! Global settings are a flat object (`{"sync_mode_vm": "always",
//! "overwrite_vm_tags": true, ...}`); the endpoint carries the same keys as
//! optional overrides where `null` or `""` means "inherit". Keys we do not know
//! (`id`, `url`, `display`, ...) are ignored: the REST objects carry plenty.

use crate::error::{ErrorCode, PlanError, Result};
use crate::json::{as_object, opt_bool, opt_str, opt_u64, wrong_type, Path};
use crate::modes::{ModeSettings, PerType, ResourceType, SyncMode};
use serde_json::{Map, Value};

/// SPEC §3.3: global booleans, per-endpoint tri-state overrides. The
/// plugin (0.0.29) has these 26; all default to true but `overwrite_vm_platform`.
/// The planner honours the SPEC's 18 and passes all 26 on as query flags.
#[rustfmt::skip]
pub const OVERWRITE_FLAGS: [(&str, bool); 26] = [
    ("overwrite_device_role", true), ("overwrite_device_type", true), ("overwrite_device_tags", true),
    ("overwrite_device_status", true), ("overwrite_device_description", true),
    ("overwrite_device_custom_fields", true),
    ("overwrite_vm_role", true), ("overwrite_vm_type", true), ("overwrite_vm_platform", false),
    ("overwrite_vm_tags", true), ("overwrite_vm_proxmox_tags", true), ("overwrite_vm_description", true),
    ("overwrite_vm_custom_fields", true), ("overwrite_vm_cloudinit", true),
    ("overwrite_cluster_tags", true), ("overwrite_cluster_description", true),
    ("overwrite_cluster_custom_fields", true),
    ("overwrite_node_interface_tags", true), ("overwrite_node_interface_custom_fields", true),
    ("overwrite_storage_tags", true),
    ("overwrite_vm_interface_tags", true), ("overwrite_vm_interface_custom_fields", true),
    ("overwrite_ip_status", true), ("overwrite_ip_tags", true), ("overwrite_ip_custom_fields", true),
    ("overwrite_ip_address_dns_name", true),
];

/// The resolved overwrite flags, in `OVERWRITE_FLAGS` order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverwriteFlags(pub Vec<(&'static str, bool)>);

impl OverwriteFlags {
    pub fn get(&self, name: &str) -> bool {
        self.0
            .iter()
            .find(|(flag, _)| *flag == name)
            .is_some_and(|(_, value)| *value)
    }
}

/// What a plan does with a field both an operator (in NetBox) and Proxmox
/// changed since the sync last wrote it (see `planner::diff::Owner`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(transform = crate::schema::unit_enum))]
#[serde(rename_all = "lowercase")]
pub enum OnOperatorEdit {
    /// The operator's value stays; the plan says so.
    #[default]
    Keep,
    /// Proxmox's value is written, visibly.
    Overwrite,
    /// Nothing is written until someone chooses (`conflicts`).
    Ask,
}

impl OnOperatorEdit {
    const NAMES: [(&'static str, OnOperatorEdit); 3] = [
        ("keep", OnOperatorEdit::Keep),
        ("overwrite", OnOperatorEdit::Overwrite),
        ("ask", OnOperatorEdit::Ask),
    ];

    /// The setting's value (`keep`, `overwrite`, `ask`); anything else is `None`.
    pub fn parse(text: &str) -> Option<OnOperatorEdit> {
        Self::NAMES
            .iter()
            .find(|(name, _)| *name == text.trim())
            .map(|(_, value)| *value)
    }

    /// The setting's value.
    pub fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, value)| *value == self)
            .map_or("keep", |(name, _)| name)
    }
}

/// Everything the planner reads from settings + endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub modes: ModeSettings,
    pub overwrite: OverwriteFlags,
    pub options: Options,
    pub endpoint: Endpoint,
    /// `on_operator_edit`: the endpoint's value over the global one.
    pub on_operator_edit: OnOperatorEdit,
}

/// Behaviour options beyond modes and overwrite flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Retire VMs gone from Proxmox (status decommissioning + soft-delete tag).
    pub delete_orphans: bool,
    /// Per-stage ceiling on deletes; above it deletes become skips.
    pub max_deletes: u64,
    /// `{node}` (and `{cluster}`) are replaced.
    pub node_device_name_template: String,
    pub ignore_ipv6_link_local: bool,
    /// Adopt a same-name NetBox VM that has no Proxmox identity (the way in
    /// from netbox-sync, netbox-pve-sync or a hand inventory).
    pub adopt_by_name: bool,
    /// The most archived tasks read per node and run (newest first): the
    /// whole reach of a first run, and of each later run past the newest
    /// task NetBox holds.
    pub task_history_per_node: u64,
}

/// The ceiling of `task_history_per_node`: ten pages of the task archive.
pub const TASK_HISTORY_PER_NODE_MAX: u64 = 5000;

impl Default for Options {
    fn default() -> Self {
        Options {
            delete_orphans: false,
            max_deletes: 50,
            node_device_name_template: "{node}".to_owned(),
            ignore_ipv6_link_local: true,
            adopt_by_name: false,
            task_history_per_node: 500,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Endpoint {
    pub id: Option<u64>,
    pub name: Option<String>,
    /// The NetBox site nodes are placed in (`site` on the endpoint, or
    /// `default_site` in the settings); bootstrap makes one when neither is set.
    pub site_id: Option<u64>,
}

/// `null`/absent objects stand for "nothing configured".
fn object_or_empty<'v>(value: Option<&'v Value>, path: &Path) -> Result<Option<&'v Map<String, Value>>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => as_object(value, path).map(Some),
    }
}

fn read_mode(obj: &Map<String, Value>, resource: ResourceType, path: &Path) -> Result<Option<SyncMode>> {
    let field = resource.setting_field();
    let field_path = path.key(&field);
    match obj.get(&field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => SyncMode::parse(text).map(Some).ok_or_else(|| {
            PlanError::new(
                ErrorCode::UnknownSyncMode,
                field_path,
                format!("unknown sync mode {text:?}; valid modes: always, bootstrap_only, disabled"),
            )
        }),
        Some(other) => Err(wrong_type(&field_path, "a sync mode string", other)),
    }
}

fn read_modes(obj: Option<&Map<String, Value>>, path: &Path) -> Result<PerType<Option<SyncMode>>> {
    let mut modes = Vec::with_capacity(ResourceType::ALL.len());
    for resource in ResourceType::ALL {
        modes.push(match obj {
            Some(obj) => read_mode(obj, resource, path)?,
            None => None,
        });
    }
    let mut modes = modes.into_iter();
    Ok(PerType::from_fn(|_| modes.next().flatten()))
}

/// Global and endpoint sync modes, with errors located at `$.settings` / `$.endpoint`.
pub fn read_mode_settings(settings: Option<&Value>, endpoint: Option<&Value>) -> Result<ModeSettings> {
    let settings_path = Path::ROOT.key("settings");
    let endpoint_path = Path::ROOT.key("endpoint");
    let global = object_or_empty(settings, &settings_path)?;
    let overrides = object_or_empty(endpoint, &endpoint_path)?;
    Ok(ModeSettings {
        global: read_modes(global, &settings_path)?,
        endpoint: read_modes(overrides, &endpoint_path)?,
    })
}

fn read_overwrite_flags(
    global: Option<&Map<String, Value>>,
    endpoint: Option<&Map<String, Value>>,
    settings_path: &Path,
    endpoint_path: &Path,
) -> Result<OverwriteFlags> {
    let mut flags = Vec::with_capacity(OVERWRITE_FLAGS.len());
    for (name, default) in OVERWRITE_FLAGS {
        let from_endpoint = match endpoint {
            Some(obj) => opt_bool(obj, name, endpoint_path)?,
            None => None,
        };
        let from_global = match global {
            Some(obj) => opt_bool(obj, name, settings_path)?,
            None => None,
        };
        flags.push((name, from_endpoint.or(from_global).unwrap_or(default)));
    }
    Ok(OverwriteFlags(flags))
}

fn read_options(global: Option<&Map<String, Value>>, path: &Path) -> Result<Options> {
    let mut options = Options::default();
    let Some(obj) = global else {
        return Ok(options);
    };
    if let Some(value) = opt_bool(obj, "delete_orphans", path)? {
        options.delete_orphans = value;
    }
    if let Some(value) = opt_u64(obj, "max_deletes", path)? {
        options.max_deletes = value;
    }
    if let Some(value) = opt_str(obj, "node_device_name_template", path)? {
        if !value.contains("{node}") {
            return Err(PlanError::new(
                ErrorCode::InvalidValue,
                path.key("node_device_name_template"),
                format!("{value:?} must contain {{node}}, or every node would get the same device name"),
            ));
        }
        options.node_device_name_template = value.to_owned();
    }
    if let Some(value) = opt_bool(obj, "ignore_ipv6_link_local_addresses", path)? {
        options.ignore_ipv6_link_local = value;
    }
    if let Some(value) = opt_bool(obj, "adopt_by_name", path)? {
        options.adopt_by_name = value;
    }
    if let Some(value) = opt_u64(obj, "task_history_per_node", path)? {
        if !(1..=TASK_HISTORY_PER_NODE_MAX).contains(&value) {
            return Err(PlanError::new(
                ErrorCode::InvalidValue,
                path.key("task_history_per_node"),
                format!(
                    "{value} is out of range: read 1 to {TASK_HISTORY_PER_NODE_MAX} archived tasks per node and run"
                ),
            ));
        }
        options.task_history_per_node = value;
    }
    Ok(options)
}

/// A NetBox reference: an id or a nested object with one.
fn opt_reference(obj: Option<&Map<String, Value>>, key: &str, path: &Path) -> Result<Option<u64>> {
    match obj.and_then(|o| o.get(key)) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => crate::netbox::fk_id(value)
            .map(Some)
            .ok_or_else(|| wrong_type(&path.key(key), "a NetBox id or an object with an id", value)),
    }
}

fn read_endpoint(
    endpoint: Option<&Map<String, Value>>,
    global: Option<&Map<String, Value>>,
    path: &Path,
    settings_path: &Path,
) -> Result<Endpoint> {
    let site_id = match opt_reference(endpoint, "site", path)? {
        Some(id) => Some(id),
        None => opt_reference(global, "default_site", settings_path)?,
    };
    let Some(obj) = endpoint else {
        return Ok(Endpoint {
            site_id,
            ..Endpoint::default()
        });
    };
    Ok(Endpoint {
        id: opt_u64(obj, "id", path)?,
        name: opt_str(obj, "name", path)?.map(str::to_owned),
        site_id,
    })
}

/// `on_operator_edit` of one object (`null` or `""`: not set there).
fn read_on_operator_edit(obj: Option<&Map<String, Value>>, path: &Path) -> Result<Option<OnOperatorEdit>> {
    let Some(text) = obj.map(|o| opt_str(o, "on_operator_edit", path)).transpose()?.flatten() else {
        return Ok(None);
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    OnOperatorEdit::parse(text).map(Some).ok_or_else(|| {
        PlanError::new(
            ErrorCode::InvalidValue,
            path.key("on_operator_edit"),
            format!("{text:?} is not one of keep, overwrite, ask"),
        )
    })
}

/// Everything in `$.settings` and `$.endpoint`.
pub fn read_settings(settings: Option<&Value>, endpoint: Option<&Value>) -> Result<Settings> {
    let settings_path = Path::ROOT.key("settings");
    let endpoint_path = Path::ROOT.key("endpoint");
    let global = object_or_empty(settings, &settings_path)?;
    let overrides = object_or_empty(endpoint, &endpoint_path)?;
    Ok(Settings {
        modes: read_mode_settings(settings, endpoint)?,
        overwrite: read_overwrite_flags(global, overrides, &settings_path, &endpoint_path)?,
        options: read_options(global, &settings_path)?,
        endpoint: read_endpoint(overrides, global, &endpoint_path, &settings_path)?,
        on_operator_edit: read_on_operator_edit(overrides, &endpoint_path)?
            .or(read_on_operator_edit(global, &settings_path)?)
            .unwrap_or_default(),
    })
}
