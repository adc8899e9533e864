//! Sync-mode rules (SPEC §1): three modes, ten resource types, endpoint over
//! global over default, the parent-to-child cascade, the stage list and the
//! query flags a proxbox-api backend expects.
//!
//! The rules are tabular, so they live in tables (`RESOURCES`, `STAGES`);
//! the functions below only walk them.

use crate::error::{ErrorCode, PlanError, Result};
use crate::json::{as_array, Path};
use crate::vec_map::VecMap;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(transform = crate::schema::unit_enum))]
#[serde(rename_all = "snake_case")]
/// How much of a resource type the sync may write (SPEC §1).
pub enum SyncMode {
    /// Create, update and retire: NetBox follows Proxmox.
    Always,
    /// Create what is missing, never change or retire what exists.
    BootstrapOnly,
    /// Leave the type alone: no reads, no writes.
    Disabled,
}

impl SyncMode {
    /// The three modes, in the order the plugin's settings list them.
    pub const ALL: [SyncMode; 3] = [SyncMode::Always, SyncMode::BootstrapOnly, SyncMode::Disabled];

    /// The setting's value: `always`, `bootstrap_only`, `disabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Always => "always",
            SyncMode::BootstrapOnly => "bootstrap_only",
            SyncMode::Disabled => "disabled",
        }
    }

    /// Case and `-`/`_` are forgiven (`Bootstrap-Only`); anything else is refused.
    pub fn parse(text: &str) -> Option<SyncMode> {
        let normalized = text.trim().to_ascii_lowercase().replace('-', "_");
        SyncMode::ALL.into_iter().find(|mode| mode.as_str() == normalized)
    }

    /// `Disabled`.
    pub fn is_disabled(self) -> bool {
        self == SyncMode::Disabled
    }
}

/// The ten sync-mode resource types, in the order the seed lists them
/// (every parent comes before its children, which the cascade relies on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(transform = crate::schema::unit_enum))]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    /// Virtual machines and containers (`sync_mode_vm`).
    Vm,
    /// Guest templates (`sync_mode_vm_template`).
    VmTemplate,
    /// Guest network interfaces (`sync_mode_vm_interface`).
    VmInterface,
    /// MAC addresses of interfaces (`sync_mode_mac`).
    Mac,
    /// The cluster and its bootstrap objects (`sync_mode_cluster`).
    Cluster,
    /// Nodes as devices (`sync_mode_node`).
    Node,
    /// Storage (`sync_mode_storage`).
    Storage,
    /// IP addresses (`sync_mode_ip_address`).
    IpAddress,
    /// SDN zones, VNets and subnets (`sync_mode_sdn`).
    Sdn,
    /// The SDN's BGP and EVPN controllers (`sync_mode_sdn_bgp`).
    SdnBgp,
}

pub(crate) const RESOURCE_COUNT: usize = 10;

pub(crate) struct ResourceSpec {
    pub resource: ResourceType,
    pub name: &'static str,
    pub default: SyncMode,
    /// The resource is effectively disabled when **all** of these are.
    pub disabled_with: &'static [ResourceType],
}

use ResourceType as R;

pub(crate) const RESOURCES: [ResourceSpec; RESOURCE_COUNT] = [
    ResourceSpec {
        resource: R::Vm,
        name: "vm",
        default: SyncMode::Always,
        disabled_with: &[],
    },
    ResourceSpec {
        resource: R::VmTemplate,
        name: "vm_template",
        default: SyncMode::Always,
        disabled_with: &[],
    },
    ResourceSpec {
        resource: R::VmInterface,
        name: "vm_interface",
        default: SyncMode::Always,
        disabled_with: &[R::Vm, R::VmTemplate],
    },
    ResourceSpec {
        resource: R::Mac,
        name: "mac",
        default: SyncMode::Always,
        disabled_with: &[R::VmInterface],
    },
    ResourceSpec {
        resource: R::Cluster,
        name: "cluster",
        default: SyncMode::Always,
        disabled_with: &[],
    },
    ResourceSpec {
        resource: R::Node,
        name: "node",
        default: SyncMode::Always,
        disabled_with: &[R::Cluster],
    },
    ResourceSpec {
        resource: R::Storage,
        name: "storage",
        default: SyncMode::Always,
        disabled_with: &[],
    },
    ResourceSpec {
        resource: R::IpAddress,
        name: "ip_address",
        default: SyncMode::Always,
        disabled_with: &[R::VmInterface],
    },
    ResourceSpec {
        resource: R::Sdn,
        name: "sdn",
        default: SyncMode::Disabled,
        disabled_with: &[],
    },
    ResourceSpec {
        resource: R::SdnBgp,
        name: "sdn_bgp",
        default: SyncMode::Disabled,
        disabled_with: &[R::Sdn],
    },
];

impl ResourceType {
    /// Every type, parents before children (the cascade's order).
    pub const ALL: [ResourceType; RESOURCE_COUNT] = [
        R::Vm,
        R::VmTemplate,
        R::VmInterface,
        R::Mac,
        R::Cluster,
        R::Node,
        R::Storage,
        R::IpAddress,
        R::Sdn,
        R::SdnBgp,
    ];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn spec(self) -> &'static ResourceSpec {
        RESOURCES
            .iter()
            .find(|spec| spec.resource == self)
            .unwrap_or(&RESOURCES[0])
    }

    /// The name settings use after `sync_mode_`: `vm`, `vm_interface`, ...
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The setting's field name: `sync_mode_vm`, ...
    pub fn setting_field(self) -> String {
        format!("sync_mode_{}", self.name())
    }

    /// SPEC §1 step 1: trim, lower-case, `-` → `_`, drop a leading `sync_mode_`.
    pub fn parse(text: &str) -> Option<ResourceType> {
        let normalized = text.trim().to_ascii_lowercase().replace('-', "_");
        let bare = normalized.strip_prefix("sync_mode_").unwrap_or(&normalized);
        RESOURCES
            .iter()
            .find(|spec| spec.name == bare)
            .map(|spec| spec.resource)
    }

    /// Every name, comma-separated, for error messages.
    pub fn valid_names() -> String {
        RESOURCES.iter().map(|spec| spec.name).collect::<Vec<_>>().join(", ")
    }
}

/// A value for each resource type, stored by enum discriminant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerType<T>([T; RESOURCE_COUNT]);

impl<T> PerType<T> {
    pub(crate) fn from_fn(mut f: impl FnMut(ResourceType) -> T) -> Self {
        PerType(ResourceType::ALL.map(&mut f))
    }

    /// The value for `resource`.
    #[allow(clippy::indexing_slicing)] // the index is a discriminant of a 10-variant enum
    pub fn get(&self, resource: ResourceType) -> &T {
        &self.0[resource.index()]
    }

    /// Each type with its value, in `ResourceType::ALL` order.
    pub fn iter(&self) -> impl Iterator<Item = (ResourceType, &T)> {
        ResourceType::ALL.into_iter().zip(self.0.iter())
    }
}

/// Serialized as an object keyed by resource name, in table order.
impl<T: Serialize> Serialize for PerType<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(RESOURCE_COUNT))?;
        for (resource, value) in self.iter() {
            map.serialize_entry(resource.name(), value)?;
        }
        map.end()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(transform = crate::schema::unit_enum))]
#[serde(rename_all = "snake_case")]
/// Where a type's configured mode came from.
pub enum ModeSource {
    /// The endpoint's own override.
    Endpoint,
    /// The plugin's global settings.
    Global,
    /// Neither set it: the type's default.
    Default,
}

/// The per-type values an operator set: global settings and endpoint overrides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ModeSettings {
    pub global: PerType<Option<SyncMode>>,
    pub endpoint: PerType<Option<SyncMode>>,
}

impl ModeSettings {
    /// SPEC §1 steps 2–3, without the cascade (what `effective_sync_mode` returns).
    pub(crate) fn configured(&self, resource: ResourceType) -> (SyncMode, ModeSource) {
        if let Some(mode) = self.endpoint.get(resource) {
            (*mode, ModeSource::Endpoint)
        } else if let Some(mode) = self.global.get(resource) {
            (*mode, ModeSource::Global)
        } else {
            (resource.spec().default, ModeSource::Default)
        }
    }

    pub(crate) fn resolve(&self) -> ResolvedModes {
        let raw = PerType::from_fn(|r| self.configured(r).0);
        let sources = PerType::from_fn(|r| self.configured(r).1);
        // Parents precede children in RESOURCES, so one forward pass settles the cascade.
        let mut effective = raw.0;
        let mut inherited_from: [Vec<ResourceType>; RESOURCE_COUNT] = Default::default();
        for (index, spec) in RESOURCES.iter().enumerate() {
            let parents = spec.disabled_with;
            let cascades = !parents.is_empty()
                && parents
                    .iter()
                    .all(|p| effective.get(p.index()).is_some_and(|m| m.is_disabled()));
            if cascades {
                if let (Some(mode), Some(from)) = (effective.get_mut(index), inherited_from.get_mut(index)) {
                    if !mode.is_disabled() {
                        *mode = SyncMode::Disabled;
                        *from = parents.to_vec();
                    }
                }
            }
        }
        ResolvedModes {
            raw,
            sources,
            effective: PerType(effective),
            inherited_from: PerType(inherited_from),
        }
    }
}

/// The modes that decide the plan, with how each was reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ResolvedModes {
    /// Endpoint → global → default, before the cascade.
    pub raw: PerType<SyncMode>,
    /// Where each `raw` mode came from.
    pub sources: PerType<ModeSource>,
    /// After the cascade: these decide what runs.
    pub effective: PerType<SyncMode>,
    /// For a type the cascade disabled: the parents that disabled it.
    #[serde(rename = "cascade")]
    pub inherited_from: PerType<Vec<ResourceType>>,
}

impl ResolvedModes {
    /// The mode in force for `resource`, after the cascade.
    pub fn effective(&self, resource: ResourceType) -> SyncMode {
        *self.effective.get(resource)
    }

    /// Whether `resource` is disabled, by its own mode or by the cascade.
    pub fn is_disabled(&self, resource: ResourceType) -> bool {
        self.effective(resource).is_disabled()
    }

    /// `sync_mode_x=disabled`, naming the cascade when that is where it came from.
    pub fn disabled_reason(&self, resource: ResourceType) -> String {
        let own = format!("{}=disabled", resource.setting_field());
        let parents = self.inherited_from.get(resource);
        if parents.is_empty() {
            return own;
        }
        let causes: Vec<String> = parents.iter().map(|p| self.disabled_reason(*p)).collect();
        format!("{own} (inherited from {})", causes.join(" and "))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(rename = "StageName"))]
#[cfg_attr(test, schemars(transform = crate::schema::unit_enum))]
#[serde(rename_all = "kebab-case")]
/// A sync stage: the plugin's sync types, in the order a full run takes them.
pub enum Stage {
    /// The cluster, its nodes as devices, and their bootstrap objects.
    Devices,
    /// Proxmox storage, as the plugin's storage rows.
    Storage,
    /// Guests as virtual machines.
    VirtualMachines,
    /// Guest templates, as the plugin's template rows.
    VmTemplates,
    /// Proxmox task history, as the plugin's task rows.
    TaskHistory,
    /// Guest disks as virtual disks.
    VmDisks,
    /// Backup volumes, as the plugin's backup rows.
    VmBackups,
    /// Guest snapshots, as the plugin's snapshot rows.
    VmSnapshots,
    /// Node network interfaces (bridges, bonds, VLANs) as device interfaces.
    NetworkInterfaces,
    /// Guest NICs as VM interfaces, with their MACs and VLANs.
    VmInterfaces,
    /// Guest addresses as IP addresses, and the primary IPs.
    IpAddresses,
    /// SDN zones, VNets, subnets and controllers.
    Sdn,
    /// Replication jobs, as the plugin's replication rows.
    Replications,
    /// Backup jobs (vzdump schedules), as the plugin's backup routines.
    BackupRoutines,
}

pub(crate) struct StageSpec {
    pub stage: Stage,
    pub name: &'static str,
    /// The stage is skipped when **all** of these are effectively disabled.
    pub gated_by: &'static [ResourceType],
}

/// Dependency order: this is the order stages run and operations are listed in
/// (netbox-proxbox's `_SYNC_STAGE_ORDER`, with `vm-templates`, which the
/// plugin runs itself, after the VMs).
pub(crate) const STAGES: &[StageSpec] = &[
    StageSpec {
        stage: Stage::Devices,
        name: "devices",
        gated_by: &[R::Cluster, R::Node],
    },
    StageSpec {
        stage: Stage::Storage,
        name: "storage",
        gated_by: &[R::Storage],
    },
    StageSpec {
        stage: Stage::VirtualMachines,
        name: "virtual-machines",
        gated_by: &[R::Vm],
    },
    StageSpec {
        stage: Stage::VmTemplates,
        name: "vm-templates",
        gated_by: &[R::VmTemplate],
    },
    StageSpec {
        stage: Stage::TaskHistory,
        name: "task-history",
        gated_by: &[R::Vm],
    },
    StageSpec {
        stage: Stage::VmDisks,
        name: "vm-disks",
        gated_by: &[R::Vm],
    },
    StageSpec {
        stage: Stage::VmBackups,
        name: "vm-backups",
        gated_by: &[R::Vm],
    },
    StageSpec {
        stage: Stage::VmSnapshots,
        name: "vm-snapshots",
        gated_by: &[R::Vm],
    },
    StageSpec {
        stage: Stage::NetworkInterfaces,
        name: "network-interfaces",
        gated_by: &[R::Node],
    },
    StageSpec {
        stage: Stage::VmInterfaces,
        name: "vm-interfaces",
        gated_by: &[R::VmInterface],
    },
    StageSpec {
        stage: Stage::IpAddresses,
        name: "ip-addresses",
        gated_by: &[R::IpAddress, R::Mac],
    },
    StageSpec {
        stage: Stage::Sdn,
        name: "sdn",
        gated_by: &[R::Sdn],
    },
    StageSpec {
        stage: Stage::Replications,
        name: "replications",
        gated_by: &[R::Vm, R::VmTemplate],
    },
    StageSpec {
        stage: Stage::BackupRoutines,
        name: "backup-routines",
        gated_by: &[R::Cluster],
    },
];

pub(crate) const STAGE_COUNT: usize = STAGES.len();

impl Stage {
    /// Every stage, in run order (what `all` expands to).
    pub const ALL: [Stage; STAGE_COUNT] = {
        let mut all = [Stage::Devices; STAGE_COUNT];
        let mut at = 0;
        while at < STAGE_COUNT {
            #[allow(clippy::indexing_slicing)] // both have STAGE_COUNT entries (a compile-time loop)
            {
                // Stages are looked up by discriminant: the table lists them in enum order.
                assert!(
                    STAGES[at].stage as usize == at,
                    "STAGES must list the stages in enum order"
                );
                all[at] = STAGES[at].stage;
            }
            at += 1;
        }
        all
    };

    pub(crate) fn spec(self) -> &'static StageSpec {
        // The table lists the stages in enum order (checked where `ALL` is built).
        #[allow(clippy::indexing_slicing)]
        &STAGES[self as usize]
    }

    /// The sync type's name: `virtual-machines`, `vm-interfaces`, ...
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// Stage names are forgiving about case and `_`/`-` (`virtual_machines`).
    pub fn parse(text: &str) -> Option<Stage> {
        let normalized = text.trim().to_ascii_lowercase().replace('_', "-");
        STAGES
            .iter()
            .find(|spec| spec.name == normalized)
            .map(|spec| spec.stage)
    }

    /// Stages this one cannot run without (IPs need interfaces).
    fn pulls_in(self) -> &'static [Stage] {
        match self {
            Stage::IpAddresses => &[Stage::VmInterfaces],
            _ => &[],
        }
    }
}

fn valid_sync_types() -> String {
    std::iter::once("all")
        .chain(STAGES.iter().map(|spec| spec.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// SPEC §1.1: expand `all`, collapse duplicates, pull in dependencies, sort by
/// stage order. Absent or `null` means `["all"]`.
pub(crate) fn parse_sync_types(value: Option<&Value>, path: &Path) -> Result<Vec<Stage>> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Stage::ALL.to_vec()),
        Some(value) => as_array(value, path)?,
    };
    if items.is_empty() {
        return Err(PlanError::new(
            ErrorCode::InvalidValue,
            path,
            format!("no sync types given; use [\"all\"] or some of: {}", valid_sync_types()),
        ));
    }
    let mut wanted = [false; STAGE_COUNT];
    for (index, item) in items.iter().enumerate() {
        let item_path = path.index(index);
        let text = item
            .as_str()
            .ok_or_else(|| crate::json::wrong_type(&item_path, "a sync type string", item))?;
        if text.trim().eq_ignore_ascii_case("all") {
            wanted = [true; STAGE_COUNT];
            continue;
        }
        let stage = Stage::parse(text).ok_or_else(|| {
            PlanError::new(
                ErrorCode::UnknownSyncType,
                item_path,
                format!("unknown sync type {text:?}; valid sync types: {}", valid_sync_types()),
            )
        })?;
        for marked in std::iter::once(stage).chain(stage.pulls_in().iter().copied()) {
            if let Some(slot) = wanted.get_mut(marked as usize) {
                *slot = true;
            }
        }
    }
    Ok(Stage::ALL
        .into_iter()
        .filter(|stage| wanted.get(*stage as usize) == Some(&true))
        .collect())
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
/// Whether a requested stage runs, and if not, why.
pub struct StageStatus {
    /// The stage.
    pub stage: Stage,
    /// False when the modes that gate it are all disabled.
    pub run: bool,
    /// Why it does not run: the settings that disable it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

pub(crate) fn stage_statuses(stages: &[Stage], modes: &ResolvedModes) -> Vec<StageStatus> {
    stages
        .iter()
        .map(|&stage| {
            let gates = stage.spec().gated_by;
            let skipped = gates.iter().all(|r| modes.is_disabled(*r));
            let reason = skipped.then(|| {
                gates
                    .iter()
                    .map(|r| modes.disabled_reason(*r))
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            StageStatus {
                stage,
                run: !skipped,
                reason,
            }
        })
        .collect()
}

/// SPEC §1.2: what the original plugin forwards to its backend, so a host that
/// still drives proxbox-api can use the planner for gating alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct QueryFlags {
    /// Sent with every stage: effective sync modes and overwrite flags.
    pub common: VecMap<String, String>,
    /// Extra flags for particular stages (only stages that have any).
    pub stages: VecMap<Stage, VecMap<String, String>>,
}

fn flag(value: bool) -> String {
    if value { "true" } else { "false" }.to_owned()
}

pub(crate) fn query_flags(
    statuses: &[StageStatus],
    modes: &ResolvedModes,
    overwrite: &[(&'static str, bool)],
) -> QueryFlags {
    let mut common = VecMap::new();
    for (resource, mode) in modes.effective.iter() {
        common.insert(resource.setting_field(), mode.as_str().to_owned());
    }
    for (name, value) in overwrite {
        common.insert((*name).to_owned(), flag(*value));
    }

    let runs = |stage: Stage| statuses.iter().any(|s| s.stage == stage && s.run);
    let ip_disabled = modes.is_disabled(R::IpAddress);
    let mac_disabled = modes.is_disabled(R::Mac);
    let mut stages = VecMap::new();
    if runs(Stage::VirtualMachines) {
        let mut vm = VecMap::new();
        // Dedicated interface/IP stages (or disabled interfaces) own network sync.
        if runs(Stage::VmInterfaces) || runs(Stage::IpAddresses) || modes.is_disabled(R::VmInterface) {
            vm.insert("sync_vm_network".to_owned(), flag(false));
        } else {
            if ip_disabled {
                vm.insert("assign_vm_interface_ips".to_owned(), flag(false));
            }
            if mac_disabled {
                vm.insert("sync_vm_interface_macs".to_owned(), flag(false));
            }
        }
        if !vm.is_empty() {
            stages.insert(Stage::VirtualMachines, vm);
        }
    }
    if runs(Stage::VmInterfaces) && mac_disabled {
        let flags = VecMap::from([("sync_vm_interface_macs".to_owned(), flag(false))]);
        stages.insert(Stage::VmInterfaces, flags);
    }
    QueryFlags { common, stages }
}

/// Modes, stages and query flags for one endpoint: everything that gates a sync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ModeReport {
    /// The modes in force and how each was reached.
    #[serde(flatten)]
    pub modes: ResolvedModes,
    /// The requested stages, each with whether it runs.
    pub stages: Vec<StageStatus>,
    /// What the original plugin would send its backend.
    pub query_flags: QueryFlags,
}

pub(crate) fn mode_report(settings: &crate::settings::Settings, stages: &[Stage]) -> ModeReport {
    let modes = settings.modes.resolve();
    let stages = stage_statuses(stages, &modes);
    let query_flags = query_flags(&stages, &modes, &settings.overwrite.0);
    ModeReport {
        modes,
        stages,
        query_flags,
    }
}
