// Generated from the Rust types by `PROXBOX_WRITE_SCHEMA=1 cargo test --lib schema`: do not edit.
// pkg/schema/plan.schema.json and pkg/schema/input.schema.json are generated alongside.

export type Action = "create" | "update" | "delete" | "skip";

export type Bootstrap = "bootstrap";

export interface Change {
  after: unknown;
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
  existing_l2vpn: number;
  /**
   * The L2VPN the planner wanted there: an id, or a `$ref` to its create.
   */
  intended_l2vpn: IdOrRef;
  intended_l2vpn_slug: string;
  reason: string;
  source_name: string;
  source_type: string;
  target_id: number;
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

export interface Counts {
  create: number;
  delete: number;
  /**
   * Fields an operator changed that Proxmox did not: left alone, no operation.
   */
  operator_owned: number;
  skip: number;
  unchanged: number;
  update: number;
}

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

export interface EndpointInfo {
  cluster: string | null;
  id: number | null;
  name: string | null;
}

/**
 * Stable, machine-readable error codes (kebab-case on the wire).
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
  field: string;
  /**
   * The operation's id: `<stage>:<model>:<identity>@<field>`.
   */
  id: string;
  key: string;
  model: string;
  netbox: unknown;
  object_id: number;
  proxmox: unknown;
  resolution: OnOperatorEdit;
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
  query_flags: QueryFlags;
  /**
   * Endpoint → global → default, before the cascade.
   */
  raw: Record<ResourceType, SyncMode>;
  sources: Record<ResourceType, ModeSource>;
  stages: StageStatus[];
}

export type ModeSource = "endpoint" | "global" | "default";

/**
 * A NetBox collection's (fully paginated) `results`, or the error that replaced them.
 */
export type NetboxAnswer = (Record<string, unknown>)[] | Failed;

/**
 * What a plan does with a field both an operator (in NetBox) and Proxmox
 * changed since the sync last wrote it (see `planner::diff::Owner`).
 */
export type OnOperatorEdit = "keep" | "overwrite" | "ask";

export interface Operation {
  action: Action;
  /**
   * Field-level before/after (`update` only); `after` is what to PATCH.
   */
  changes?: Record<string, Change>;
  /**
   * The REST collection to write to.
   */
  collection: string;
  depends_on?: string[];
  detail?: string | null;
  /**
   * The create payload (`create` only).
   */
  fields?: Record<string, unknown>;
  id: string;
  key: string;
  /**
   * NetBox list filters that find the object a create made (`$ref`s
   * resolve like the payload's): what a host looks for before it re-sends
   * a create whose answer it lost.
   */
  lookup?: Record<string, unknown>;
  matched_by?: MatchedBy | null;
  model: string;
  reason: Reason;
  resource?: ResourceType | null;
  stage: OperationStage;
  /**
   * A skip about a stage's resource as a whole (its mode disables it, its
   * parent is missing), not about one object: no target, and its id ends
   * in the identity `*`. A UI shows it with its stage.
   */
  stage_wide?: boolean;
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
  conflicts: ConflictEntry[];
  endpoint: EndpointInfo;
  format_version: number;
  modes: ResolvedModes;
  operations: Operation[];
  origin: Origin;
  planner_version: string;
  query_flags: QueryFlags;
  stages: StageStatus[];
  summary: Summary;
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
 */
export type Reason = "new-in-proxmox" | "changed-in-proxmox" | "gone-from-proxmox" | "bootstrap-only-tag" | "mode-disabled" | "ambiguous-identity" | "max-deletes-exceeded" | "sdn-conflict" | "missing-in-netbox" | "back-in-proxmox" | "not-owned" | "incomplete-snapshot" | "orphan-kept" | "has-manual-objects" | "is-template" | "unknown-vm" | "unsupported-by-netbox" | "missing-parent" | "unidentified-same-name" | "operator-edited" | "ownership-unknown" | "subset-run";

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
  sources: Record<ResourceType, ModeSource>;
}

/**
 * The ten sync-mode resource types, in the order the seed lists them
 * (every parent comes before its children, which the cascade relies on).
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

export type StageName = "devices" | "storage" | "virtual-machines" | "vm-templates" | "task-history" | "vm-disks" | "vm-backups" | "vm-snapshots" | "network-interfaces" | "vm-interfaces" | "ip-addresses" | "sdn" | "replications" | "backup-routines";

export interface StageStatus {
  reason?: string | null;
  run: boolean;
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

export interface Summary {
  create: number;
  delete: number;
  /**
   * Fields an operator changed that Proxmox did not: left alone, no operation.
   */
  operator_owned: number;
  skip: number;
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
  unchanged: number;
  update: number;
}

export type SyncMode = "always" | "bootstrap_only" | "disabled";

/**
 * `$.sync_user`: `{"id": 3, "username": "proxbox"}`.
 */
export interface SyncUser {
  id: number;
  username?: string | null;
}

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

export interface Warning {
  code: WarningCode;
  message: string;
  /**
   * The NetBox object it concerns.
   */
  netbox_collection?: string | null;
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
 */
export type WarningCode = "invalid-cidr" | "max-deletes-exceeded" | "proxbox-plugin-absent" | "sdn-unreadable" | "unreadable-row" | "ambiguous-identity" | "duplicate-identity" | "duplicate-ip" | "incomplete-snapshot" | "netbox-unreadable" | "not-owned" | "proxmox-unreadable" | "sdn-path-unsupported" | "sdn-unsupported" | "unidentified-same-name" | "changelog-unreadable" | "decisions-pending" | "unsized-disk";

/** Every error the package throws: `code` to branch on, `path` the JSON path of the offending value. */
export interface ProxboxPlannerError extends Error {
  name: "ProxboxPlannerError";
  code: ErrorCode;
  path: string;
  detail: string;
}
