// The host's public API (`import { syncOnce } from 'proxbox-planner-host'`):
// read Proxmox and NetBox, ask the core for a plan, apply it. Every sync
// decision is the core's (`proxbox-planner`); this package does the I/O.
export { applyPlan, countChanges, summaryLine } from './apply.js';
export { collectInput, planLive, makePlan, syncOnce, saveSnapshot, loadSnapshot, readContext } from './sync.js';
export { NetBoxClient, NetBoxError } from './netbox.js';
export { ProxmoxClient, ProxmoxError } from './proxmox.js';
export { createSyncServer } from './server.js';
export { RunError, UsageError, planOutcome, applyOutcome, exitCodeOf } from './outcome.js';
export { renderPlan, renderApplyReport } from './render.js';
