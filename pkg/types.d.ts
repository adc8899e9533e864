// Generated from the Rust types by `PROXBOX_WRITE_SCHEMA=1 cargo test --lib schema`: do not edit.
// pkg/schema/plan.schema.json and pkg/schema/input.schema.json are generated alongside.

/**
 * What an operation does to its NetBox object.
 *
 * - `create`: POST `fields` to `collection`.
 * - `update`: PATCH each `changes[field].after` to the `target`.
 * - `delete`: DELETE the `target`.
 * - `skip`: Do nothing: the plan says why (`reason`, `detail`).
 */
export type Action = "create" | "update" | "delete" | "skip";

export type Bootstrap = "bootstrap";

/**
 * One field of an update: what NetBox holds, and what the sync writes.
 */
export interface Change {
  /**
   * The value to PATCH.
   */
  after: unknown;
  /**
   * The value NetBox holds now (`null` when absent).
   */
  before: unknown;
}

/**
 * A field conflict's ways out: the operation each choice puts in its place.
 */
export interface Choices {
  "accept-proxmox": Operation;
  "keep-netbox": Operation;
}

/**
 * An SDN termination the planner would not write because its target
 * already terminates another L2VPN (SPEC §5): recorded, never overwritten.
 */
export interface Conflict {
  /**
   * The L2VPN the target terminates now.
   */
  existing_l2vpn: number;
  /**
   * The L2VPN the planner wanted there: an id, or a `$ref` to its create.
   */
  intended_l2vpn: IdOrRef;
  /**
   * That L2VPN's slug.
   */
  intended_l2vpn_slug: string;
  /**
   * Why it is not written, in words.
   */
  reason: string;
  /**
   * Its Proxmox name.
   */
  source_name: string;
  /**
   * What Proxmox terminates there: `vnet`, ...
   */
  source_type: string;
  /**
   * The target's NetBox id.
   */
  target_id: number;
  /**
   * The NetBox model of the termination's target.
   */
  target_type: string;
}

/**
 * What `conflicts` lists: each entry says its `kind`.
 */
export type ConflictEntry = (Conflict & {
  kind: "sdn-termination";
}) | (FieldConflict & {
  kind: "operator-edited";
});

/**
 * Operations of each action, and what needed none.
 */
export interface Counts {
  /**
   * Creates.
   */
  create: number;
  /**
   * Deletes.
   */
  delete: number;
  /**
   * Fields an operator changed that Proxmox did not: left alone, no operation.
   */
  operator_owned: number;
  /**
   * Skips.
   */
  skip: number;
  /**
   * Objects already as Proxmox says: no operation.
   */
  unchanged: number;
  /**
   * Updates.
   */
  update: number;
}

/**
 * What a host still has to fetch before it can plan.
 */
export interface Discovery {
  /**
   * True when nothing more is needed: call `plan` now.
   */
  complete: boolean;
  /**
   * For each of those collections, the fields to ask NetBox for
   * (`?fields=a,b`): the planners read no other. Full objects are read
   * the same way (a NetBox that ignores `fields` costs only time).
   */
  fields: Record<string, string[]>;
  /**
   * NetBox collections to list (their `results` go under `netbox[path]`):
   * every object, or, for those in `queries`, the filtered ones.
   */
  netbox: string[];
  /**
   * Proxmox API paths to GET (their `data` goes under `proxmox[path]`).
   */
  proxmox: string[];
  /**
   * Collections read with filters instead of in full: each query's results,
   * together (NetBox's change log and journal, for the objects the plan
   * would update: see `planner::ownership`).
   */
  queries?: Record<string, (Record<string, unknown>)[]>;
}

/**
 * The plugin's endpoint object; a `sync_mode_*` or `overwrite_*` that is null or "" inherits the global value.
 */
export interface Endpoint {
  id?: number | null;
  name?: string | null;
  on_operator_edit?: OnOperatorEdit | "" | null;
  overwrite_cluster_custom_fields?: boolean | null;
  overwrite_cluster_description?: boolean | null;
  overwrite_cluster_tags?: boolean | null;
  overwrite_device_custom_fields?: boolean | null;
  overwrite_device_description?: boolean | null;
  overwrite_device_role?: boolean | null;
  overwrite_device_status?: boolean | null;
  overwrite_device_tags?: boolean | null;
  overwrite_device_type?: boolean | null;
  overwrite_ip_address_dns_name?: boolean | null;
  overwrite_ip_custom_fields?: boolean | null;
  overwrite_ip_status?: boolean | null;
  overwrite_ip_tags?: boolean | null;
  overwrite_node_interface_custom_fields?: boolean | null;
  overwrite_node_interface_tags?: boolean | null;
  overwrite_storage_tags?: boolean | null;
  overwrite_vm_cloudinit?: boolean | null;
  overwrite_vm_custom_fields?: boolean | null;
  overwrite_vm_description?: boolean | null;
  overwrite_vm_interface_custom_fields?: boolean | null;
  overwrite_vm_interface_tags?: boolean | null;
  overwrite_vm_platform?: boolean | null;
  overwrite_vm_proxmox_tags?: boolean | null;
  overwrite_vm_role?: boolean | null;
  overwrite_vm_tags?: boolean | null;
  overwrite_vm_type?: boolean | null;
  site?: unknown;
  sync_mode_cluster?: SyncMode | "" | null;
  sync_mode_ip_address?: SyncMode | "" | null;
  sync_mode_mac?: SyncMode | "" | null;
  sync_mode_node?: SyncMode | "" | null;
  sync_mode_sdn?: SyncMode | "" | null;
  sync_mode_sdn_bgp?: SyncMode | "" | null;
  sync_mode_storage?: SyncMode | "" | null;
  sync_mode_vm?: SyncMode | "" | null;
  sync_mode_vm_interface?: SyncMode | "" | null;
  sync_mode_vm_template?: SyncMode | "" | null;
}

/**
 * The Proxmox endpoint the plan is for, as the input named it.
 */
export interface EndpointInfo {
  /**
   * The Proxmox cluster's name.
   */
  cluster: string | null;
  /**
   * The plugin's endpoint id.
   */
  id: number | null;
  /**
   * The endpoint's name.
   */
  name: string | null;
}

/**
 * Stable, machine-readable error codes (kebab-case on the wire).
 *
 * - `invalid-json`: The input text is not JSON at all.
 * - `wrong-type`: A value has the wrong JSON type (a string where an object was expected, ...).
 * - `missing-field`: A required value is absent.
 * - `invalid-value`: A value has the right type but is not acceptable.
 * - `unknown-sync-mode`: A sync mode other than `always`, `bootstrap_only` or `disabled`.
 * - `unknown-resource-type`: A resource type other than the ten sync-mode types.
 * - `unknown-sync-type`: A sync type (stage name) that does not exist.
 */
export type ErrorCode = "invalid-json" | "wrong-type" | "missing-field" | "invalid-value" | "unknown-sync-mode" | "unknown-resource-type" | "unknown-sync-type";

export interface Failed {
  error: FetchError;
}

/**
 * What a fetch that failed leaves in the input instead of an answer.
 */
export interface FetchError {
  message?: string | null;
  status?: number | null;
}

/**
 * A field an operator changed in NetBox after the sync last wrote it, and
 * Proxmox changed too. The operation with the same `id` does what
 * `resolution` says; `choices` holds the operation for each way out, which a
 * host puts in its place when someone chooses (`apply --accept-proxmox ID`).
 */
export interface FieldConflict {
  /**
   * What the sync last wrote (before the operator's edit).
   */
  base: unknown;
  /**
   * When, as NetBox's change log records it.
   */
  changed_at: string | null;
  /**
   * Who changed it in NetBox, and when (the change log's latest edit).
   */
  changed_by: string | null;
  /**
   * `accept-proxmox` (an update) and `keep-netbox` (a journal entry
   * that keeps the operator's value for good).
   */
  choices: Choices;
  /**
   * The field both changed.
   */
  field: string;
  /**
   * The operation's id: `<stage>:<model>:<identity>@<field>`.
   */
  id: string;
  /**
   * The object's name for people, as in its operation.
   */
  key: string;
  /**
   * NetBox's `app_label.model` of the object.
   */
  model: string;
  /**
   * What NetBox holds now (the operator's value).
   */
  netbox: unknown;
  /**
   * The object's NetBox id.
   */
  object_id: number;
  /**
   * What Proxmox says now.
   */
  proxmox: unknown;
  /**
   * What the plan does (`on_operator_edit`).
   */
  resolution: OnOperatorEdit;
  /**
   * The operation's stage.
   */
  stage: OperationStage;
}

/**
 * A NetBox id, or `{"$ref": "<op id>"}` for an object the plan creates first.
 */
export type IdOrRef = number | {
  "$ref": string;
};

/**
 * Which rule found an existing object (SPEC §3.1): an operation on an
 * existing object says how it was matched.
 *
 * - `sync-state`: The Proxbox plugin's sync-state record.
 * - `custom-field`: Our custom fields (`proxmox_vmid`, `proxmox_vm_type`, `proxmox_endpoint`).
 * - `legacy-custom-field`: The custom fields older Proxbox releases wrote (read only).
 * - `adopted-by-name`: A same-name object without identity, adopted because `adopt_by_name` is on.
 * - `natural-key`: The object's own key: a name, a parent and a name, an address.
 */
export type MatchedBy = "sync-state" | "custom-field" | "legacy-custom-field" | "adopted-by-name" | "natural-key";

/**
 * Modes, stages and query flags for one endpoint: everything that gates a sync.
 */
export interface ModeReport {
  /**
   * For a type the cascade disabled: the parents that disabled it.
   */
  cascade: Record<ResourceType, ResourceType[]>;
  /**
   * After the cascade: these decide what runs.
   */
  effective: Record<ResourceType, SyncMode>;
  /**
   * What the original plugin would send its backend.
   */
  query_flags: QueryFlags;
  /**
   * Endpoint → global → default, before the cascade.
   */
  raw: Record<ResourceType, SyncMode>;
  /**
   * Where each `raw` mode came from.
   */
  sources: Record<ResourceType, ModeSource>;
  /**
   * The requested stages, each with whether it runs.
   */
  stages: StageStatus[];
}

/**
 * Where a type's configured mode came from.
 *
 * - `endpoint`: The endpoint's own override.
 * - `global`: The plugin's global settings.
 * - `default`: Neither set it: the type's default.
 */
export type ModeSource = "endpoint" | "global" | "default";

/**
 * A NetBox collection's (fully paginated) `results`, or the error that replaced them.
 */
export type NetboxAnswer = (Record<string, unknown>)[] | Failed;

/**
 * What a plan does with a field both an operator (in NetBox) and Proxmox
 * changed since the sync last wrote it (see `planner::diff::Owner`).
 *
 * - `keep`: The operator's value stays; the plan says so.
 * - `overwrite`: Proxmox's value is written, visibly.
 * - `ask`: Nothing is written until someone chooses (`conflicts`).
 */
export type OnOperatorEdit = "keep" | "overwrite" | "ask";

/**
 * One step of the plan: create, update, delete or skip one NetBox object.
 */
export interface Operation {
  /**
   * What it does.
   */
  action: Action;
  /**
   * Field-level before/after (`update` only); `after` is what to PATCH.
   */
  changes?: Record<string, Change>;
  /**
   * The REST collection to write to.
   */
  collection: string;
  /**
   * Operations that must succeed first: those whose `$ref` it holds, and
   * writes NetBox needs to have seen before this one.
   */
  depends_on?: string[];
  /**
   * The reason in words, where there is more to say.
   */
  detail?: string | null;
  /**
   * The create payload (`create` only).
   */
  fields?: Record<string, unknown>;
  /**
   * `<stage>:<model>:<identity>`: the same in every plan of the same world.
   */
  id: string;
  /**
   * The object's name for people: `qemu/101 web01`, `pve1/vmbr0`, ...
   */
  key: string;
  /**
   * NetBox list filters that find the object a create made (`$ref`s
   * resolve like the payload's): what a host looks for before it re-sends
   * a create whose answer it lost.
   */
  lookup?: Record<string, unknown>;
  /**
   * How the existing object was found.
   */
  matched_by?: MatchedBy | null;
  /**
   * NetBox's `app_label.model`.
   */
  model: string;
  /**
   * Why it is in the plan.
   */
  reason: Reason;
  /**
   * The sync-mode resource type that governs it, where one does.
   */
  resource?: ResourceType | null;
  /**
   * The stage that planned it (a sync type, or a bookkeeping stage).
   */
  stage: OperationStage;
  /**
   * A skip about a stage's resource as a whole (its mode disables it, its
   * parent is missing), not about one object: no target, and its id ends
   * in the identity `*`. A UI shows it with its stage.
   */
  stage_wide?: boolean;
  /**
   * The existing object (not for a create).
   */
  target?: Target | null;
}

/**
 * A stage name, or `bootstrap` for the support objects (tags, types,
 * roles, sites) the stages refer to.
 */
export type OperationStage = StageName | Bootstrap;

/**
 * Where a plan was made, so it is applied nowhere else (Terraform refuses a
 * plan for another workspace the same way). Tokens never enter it.
 */
export interface Origin {
  /**
   * FNV-1a of the input (list order aside): the world this plan saw.
   */
  input_fingerprint: string;
  /**
   * A stable id of the NetBox instance, where the host found one.
   */
  instance: string | null;
  /**
   * The NetBox base URL the input was read from (origin and path prefix).
   */
  netbox_url: string | null;
  /**
   * NetBox's version, as its status endpoint reported it.
   */
  netbox_version: string | null;
}

/**
 * `$.origin`: where the host read NetBox (never a token).
 */
export interface OriginIn {
  instance?: StringOrNumber | null;
  netbox_url?: string | null;
  netbox_version?: string | null;
}

/**
 * What the core returns: everything a host needs to show, apply and report a sync.
 */
export interface Plan {
  /**
   * What a host sends as `changelog_message` with every write of this
   * plan: NetBox's change log then names the sync whoever's token it was.
   */
  changelog_message: string;
  /**
   * False when the input was too incomplete to plan (see the warnings):
   * an empty plan then means "could not look", not "nothing to do".
   */
  complete: boolean;
  /**
   * What the plan would not decide alone.
   */
  conflicts: ConflictEntry[];
  /**
   * The endpoint it is for.
   */
  endpoint: EndpointInfo;
  /**
   * `FORMAT_VERSION`.
   */
  format_version: number;
  /**
   * The sync modes in force.
   */
  modes: ResolvedModes;
  /**
   * What to do, in an order that respects `depends_on`.
   */
  operations: Operation[];
  /**
   * Where it was made, so it is applied nowhere else.
   */
  origin: Origin;
  /**
   * The planner that made it (`VERSION`).
   */
  planner_version: string;
  /**
   * What the original plugin would send its backend.
   */
  query_flags: QueryFlags;
  /**
   * The requested stages, each with whether it ran.
   */
  stages: StageStatus[];
  /**
   * Counts of `operations`.
   */
  summary: Summary;
  /**
   * What a person should know.
   */
  warnings: Warning[];
}

/**
 * The planner input (see the README). The schema describes it as hosts
 * write it; the planner itself reads it tolerantly, with a JSON path in
 * every error.
 */
export interface PlanInput {
  endpoint?: Endpoint | null;
  /**
   * NetBox collection path -> its (fully paginated) `results`, or `{ error: { status, message } }`.
   */
  netbox?: Record<string, NetboxAnswer>;
  /**
   * Where the host read NetBox: echoed into the plan (see `plan::Origin`).
   */
  origin?: OriginIn | null;
  /**
   * Proxmox API path -> the `data` of its answer, or `{ error: { status, message } }`.
   */
  proxmox?: Record<string, ProxmoxAnswer> | null;
  settings?: Settings | null;
  /**
   * The guests to plan, when not all (see `planner::context::Subset`).
   */
  subset?: SubsetIn | null;
  /**
   * Stage names (`virtual-machines`, ...) or `all`; absent means all.
   */
  sync_types?: string[] | null;
  /**
   * The NetBox user the host's token belongs to: the sync, in NetBox's
   * change log (`GET /api/authentication-check/`).
   */
  sync_user?: SyncUser | null;
}

/**
 * A Proxmox answer's `data`, or the error that replaced it.
 */
export type ProxmoxAnswer = Failed | unknown;

/**
 * SPEC §1.2: what the original plugin forwards to its backend, so a host that
 * still drives proxbox-api can use the planner for gating alone.
 */
export interface QueryFlags {
  /**
   * Sent with every stage: effective sync modes and overwrite flags.
   */
  common: Record<string, string>;
  /**
   * Extra flags for particular stages (only stages that have any).
   */
  stages: {
    "backup-routines"?: Record<string, string>;
    devices?: Record<string, string>;
    "ip-addresses"?: Record<string, string>;
    "network-interfaces"?: Record<string, string>;
    replications?: Record<string, string>;
    sdn?: Record<string, string>;
    storage?: Record<string, string>;
    "task-history"?: Record<string, string>;
    "virtual-machines"?: Record<string, string>;
    "vm-backups"?: Record<string, string>;
    "vm-disks"?: Record<string, string>;
    "vm-interfaces"?: Record<string, string>;
    "vm-snapshots"?: Record<string, string>;
    "vm-templates"?: Record<string, string>;
  };
}

/**
 * Why an operation is in the plan. Stable codes a UI or script can filter on.
 *
 * - `missing-in-netbox`: A bootstrap object (tag, custom field, type, role, ...) NetBox lacks.
 * - `new-in-proxmox`: Proxmox has it, NetBox does not yet.
 * - `changed-in-proxmox`: Proxmox and NetBox disagree on fields the sync owns.
 * - `gone-from-proxmox`: NetBox has it, Proxmox no longer does.
 * - `back-in-proxmox`: A soft-deleted VM is back in Proxmox.
 * - `bootstrap-only-tag`: The object carries the `bootstrap-only` tag: the sync leaves it as it is.
 * - `mode-disabled`: Its resource type's sync mode is `disabled` (or `bootstrap_only`, for a change).
 * - `ambiguous-identity`: Several NetBox objects (or Proxmox items) claim one identity: none is touched.
 * - `not-owned`: The matching NetBox object belongs to someone else (untagged, elsewhere).
 * - `incomplete-snapshot`: A Proxmox path the decision needs is missing or failed.
 * - `max-deletes-exceeded`: The stage would delete more than `max_deletes`: it deletes nothing.
 * - `orphan-kept`: `delete_orphans` is off: a gone VM is reported, not retired.
 * - `has-manual-objects`: Deleting would take manually created objects with it.
 * - `is-template`: A NetBox VM row for what is now a Proxmox template.
 * - `unknown-vm`: A replication job whose guest has no VM in NetBox.
 * - `sdn-conflict`: An SDN termination whose target already terminates another L2VPN.
 * - `unsupported-by-netbox`: Proxmox has it, but NetBox (or the plugin) has no way to store it.
 * - `missing-parent`: What it belongs to (the cluster, the VM) is not in NetBox.
 * - `unidentified-same-name`: A same-name NetBox object with no Proxmox identity: not copied, not taken (unless `adopt_by_name`).
 * - `operator-edited`: An operator changed the field in NetBox and Proxmox changed it too (`conflicts` has the three values and the choices).
 * - `ownership-unknown`: NetBox's change log could not be read: whether an operator changed the field is unknown, so it is not written.
 * - `subset-run`: A run for some VMs (`$.subset`) leaves this to a full run.
 */
export type Reason = "missing-in-netbox" | "new-in-proxmox" | "changed-in-proxmox" | "gone-from-proxmox" | "back-in-proxmox" | "bootstrap-only-tag" | "mode-disabled" | "ambiguous-identity" | "not-owned" | "incomplete-snapshot" | "max-deletes-exceeded" | "orphan-kept" | "has-manual-objects" | "is-template" | "unknown-vm" | "sdn-conflict" | "unsupported-by-netbox" | "missing-parent" | "unidentified-same-name" | "operator-edited" | "ownership-unknown" | "subset-run";

/**
 * The modes that decide the plan, with how each was reached.
 */
export interface ResolvedModes {
  /**
   * For a type the cascade disabled: the parents that disabled it.
   */
  cascade: Record<ResourceType, ResourceType[]>;
  /**
   * After the cascade: these decide what runs.
   */
  effective: Record<ResourceType, SyncMode>;
  /**
   * Endpoint → global → default, before the cascade.
   */
  raw: Record<ResourceType, SyncMode>;
  /**
   * Where each `raw` mode came from.
   */
  sources: Record<ResourceType, ModeSource>;
}

/**
 * The ten sync-mode resource types, in the order the seed lists them
 * (every parent comes before its children, which the cascade relies on).
 *
 * - `vm`: Virtual machines and containers (`sync_mode_vm`).
 * - `vm_template`: Guest templates (`sync_mode_vm_template`).
 * - `vm_interface`: Guest network interfaces (`sync_mode_vm_interface`).
 * - `mac`: MAC addresses of interfaces (`sync_mode_mac`).
 * - `cluster`: The cluster and its bootstrap objects (`sync_mode_cluster`).
 * - `node`: Nodes as devices (`sync_mode_node`).
 * - `storage`: Storage (`sync_mode_storage`).
 * - `ip_address`: IP addresses (`sync_mode_ip_address`).
 * - `sdn`: SDN zones, VNets and subnets (`sync_mode_sdn`).
 * - `sdn_bgp`: The SDN's BGP and EVPN controllers (`sync_mode_sdn_bgp`).
 */
export type ResourceType = "vm" | "vm_template" | "vm_interface" | "mac" | "cluster" | "node" | "storage" | "ip_address" | "sdn" | "sdn_bgp";

/**
 * The plugin's settings object (`GET /api/plugins/proxbox/settings/`); other keys are ignored.
 */
export interface Settings {
  adopt_by_name?: boolean;
  default_site?: unknown;
  delete_orphans?: boolean;
  ignore_ipv6_link_local_addresses?: boolean;
  max_deletes?: number;
  node_device_name_template?: string;
  on_operator_edit?: OnOperatorEdit | "" | null;
  overwrite_cluster_custom_fields?: boolean;
  overwrite_cluster_description?: boolean;
  overwrite_cluster_tags?: boolean;
  overwrite_device_custom_fields?: boolean;
  overwrite_device_description?: boolean;
  overwrite_device_role?: boolean;
  overwrite_device_status?: boolean;
  overwrite_device_tags?: boolean;
  overwrite_device_type?: boolean;
  overwrite_ip_address_dns_name?: boolean;
  overwrite_ip_custom_fields?: boolean;
  overwrite_ip_status?: boolean;
  overwrite_ip_tags?: boolean;
  overwrite_node_interface_custom_fields?: boolean;
  overwrite_node_interface_tags?: boolean;
  overwrite_storage_tags?: boolean;
  overwrite_vm_cloudinit?: boolean;
  overwrite_vm_custom_fields?: boolean;
  overwrite_vm_description?: boolean;
  overwrite_vm_interface_custom_fields?: boolean;
  overwrite_vm_interface_tags?: boolean;
  overwrite_vm_platform?: boolean;
  overwrite_vm_proxmox_tags?: boolean;
  overwrite_vm_role?: boolean;
  overwrite_vm_tags?: boolean;
  overwrite_vm_type?: boolean;
  sync_mode_cluster?: SyncMode;
  sync_mode_ip_address?: SyncMode;
  sync_mode_mac?: SyncMode;
  sync_mode_node?: SyncMode;
  sync_mode_sdn?: SyncMode;
  sync_mode_sdn_bgp?: SyncMode;
  sync_mode_storage?: SyncMode;
  sync_mode_vm?: SyncMode;
  sync_mode_vm_interface?: SyncMode;
  sync_mode_vm_template?: SyncMode;
  task_history_per_node?: number;
}

/**
 * A sync stage: the plugin's sync types, in the order a full run takes them.
 *
 * - `devices`: The cluster, its nodes as devices, and their bootstrap objects.
 * - `storage`: Proxmox storage, as the plugin's storage rows.
 * - `virtual-machines`: Guests as virtual machines.
 * - `vm-templates`: Guest templates, as the plugin's template rows.
 * - `task-history`: Proxmox task history, as the plugin's task rows.
 * - `vm-disks`: Guest disks as virtual disks.
 * - `vm-backups`: Backup volumes, as the plugin's backup rows.
 * - `vm-snapshots`: Guest snapshots, as the plugin's snapshot rows.
 * - `network-interfaces`: Node network interfaces (bridges, bonds, VLANs) as device interfaces.
 * - `vm-interfaces`: Guest NICs as VM interfaces, with their MACs and VLANs.
 * - `ip-addresses`: Guest addresses as IP addresses, and the primary IPs.
 * - `sdn`: SDN zones, VNets, subnets and controllers.
 * - `replications`: Replication jobs, as the plugin's replication rows.
 * - `backup-routines`: Backup jobs (vzdump schedules), as the plugin's backup routines.
 */
export type StageName = "devices" | "storage" | "virtual-machines" | "vm-templates" | "task-history" | "vm-disks" | "vm-backups" | "vm-snapshots" | "network-interfaces" | "vm-interfaces" | "ip-addresses" | "sdn" | "replications" | "backup-routines";

/**
 * Whether a requested stage runs, and if not, why.
 */
export interface StageStatus {
  /**
   * Why it does not run: the settings that disable it.
   */
  reason?: string | null;
  /**
   * False when the modes that gate it are all disabled.
   */
  run: boolean;
  /**
   * The stage.
   */
  stage: StageName;
}

export type StringOrNumber = string | number;

/**
 * `$.subset`: plan only these guests (`qemu/101`) and the guests of these NetBox VMs.
 */
export interface SubsetIn {
  guests?: string[] | null;
  netbox_vm_ids?: number[] | null;
}

/**
 * The plan's counts, in total and per stage.
 */
export interface Summary {
  /**
   * Creates.
   */
  create: number;
  /**
   * Deletes.
   */
  delete: number;
  /**
   * Fields an operator changed that Proxmox did not: left alone, no operation.
   */
  operator_owned: number;
  /**
   * Skips.
   */
  skip: number;
  /**
   * Each stage that planned anything.
   */
  stages: {
    "backup-routines"?: Counts;
    bootstrap?: Counts;
    devices?: Counts;
    "ip-addresses"?: Counts;
    "network-interfaces"?: Counts;
    replications?: Counts;
    sdn?: Counts;
    storage?: Counts;
    "task-history"?: Counts;
    "virtual-machines"?: Counts;
    "vm-backups"?: Counts;
    "vm-disks"?: Counts;
    "vm-interfaces"?: Counts;
    "vm-snapshots"?: Counts;
    "vm-templates"?: Counts;
  };
  /**
   * Objects already as Proxmox says: no operation.
   */
  unchanged: number;
  /**
   * Updates.
   */
  update: number;
}

/**
 * How much of a resource type the sync may write (SPEC §1).
 *
 * - `always`: Create, update and retire: NetBox follows Proxmox.
 * - `bootstrap_only`: Create what is missing, never change or retire what exists.
 * - `disabled`: Leave the type alone: no reads, no writes.
 */
export type SyncMode = "always" | "bootstrap_only" | "disabled";

/**
 * `$.sync_user`: `{"id": 3, "username": "proxbox"}`.
 */
export interface SyncUser {
  id: number;
  username?: string | null;
}

/**
 * The existing NetBox object an update, delete or skip is about.
 */
export interface Target {
  /**
   * A NetBox id, or `{"$ref": op}` for an object this plan creates first.
   */
  id: IdOrRef;
  /**
   * The precondition: apply refuses the operation if this changed.
   */
  last_updated: string | null;
}

/**
 * Something a person should know about the plan; `code` says what.
 */
export interface Warning {
  /**
   * What it is about.
   */
  code: WarningCode;
  /**
   * What happened and what the plan does about it.
   */
  message: string;
  /**
   * The NetBox object it concerns.
   */
  netbox_collection?: string | null;
  /**
   * The NetBox object's id, with `netbox_collection`.
   */
  netbox_id?: number | null;
  /**
   * The Proxmox answer it concerns.
   */
  proxmox_path?: string | null;
  /**
   * The stage it concerns, when it is about a whole stage.
   */
  stage?: OperationStage | null;
}

/**
 * What a warning is about. One enum, so the codes a UI can filter on are
 * exactly these (the README lists them).
 *
 * - `ambiguous-identity`: Several NetBox objects claim one identity: none is touched.
 * - `duplicate-identity`: The input lists one object twice; one deterministic winner is used.
 * - `duplicate-ip`: NetBox keeps host addresses unique: this one is not created.
 * - `incomplete-snapshot`: A Proxmox answer a stage needs is missing or failed: nothing is deleted from it.
 * - `invalid-cidr`: A subnet or address Proxmox reports is not a valid CIDR: it is left out.
 * - `max-deletes-exceeded`: A stage would delete more than `max_deletes`: it deletes nothing.
 * - `netbox-unreadable`: A NetBox collection could not be read: the plan is incomplete.
 * - `not-owned`: A NetBox object with our name but no identity, or one that belongs elsewhere.
 * - `proxbox-plugin-absent`: NetBox has no Proxbox plugin: its rows are not planned, the rest is.
 * - `proxmox-unreadable`: `/cluster/status` or `/cluster/resources` failed: nothing can be planned.
 * - `sdn-path-unsupported`: An SDN path older Proxmox releases do not have (404/501).
 * - `sdn-unreadable`: An SDN answer is not what Proxmox sends: that part of the SDN is not planned.
 * - `sdn-unsupported`: Proxmox has it, the plugin cannot store it.
 * - `unreadable-row`: Rows of a Proxmox list that are not objects: they are skipped.
 * - `unidentified-same-name`: A same-name NetBox object with no identity holds back a create.
 * - `changelog-unreadable`: NetBox's change log (or the journal) could not be read: updates an operator may have made are held.
 * - `decisions-pending`: `on_operator_edit` is `ask`: conflicts wait for a choice.
 * - `unsized-disk`: A guest disk without `size=` (a passthrough device, a bind mount): NetBox's virtual disks need a size; a NetBox disk of its name is kept.
 */
export type WarningCode = "ambiguous-identity" | "duplicate-identity" | "duplicate-ip" | "incomplete-snapshot" | "invalid-cidr" | "max-deletes-exceeded" | "netbox-unreadable" | "not-owned" | "proxbox-plugin-absent" | "proxmox-unreadable" | "sdn-path-unsupported" | "sdn-unreadable" | "sdn-unsupported" | "unreadable-row" | "unidentified-same-name" | "changelog-unreadable" | "decisions-pending" | "unsized-disk";

/** Every error the package throws: `code` to branch on, `path` the JSON path of the offending value. */
export interface ProxboxPlannerError extends Error {
  name: "ProxboxPlannerError";
  code: ErrorCode;
  path: string;
  detail: string;
}
