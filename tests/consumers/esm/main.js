// A Node ESM program: the core plans with no init(), the host's API is importable.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import init, { planJson, version } from 'proxbox-planner';
import { applyPlan, collectInput, syncOnce, NetBoxClient, ProxmoxClient } from 'proxbox-planner-host';
import { createPreview } from 'proxbox-planner-host/preview';

const sample = readFileSync(new URL('./node_modules/proxbox-planner-host/fixtures/sample/snapshot.json', import.meta.url), 'utf8');
const plan = JSON.parse(planJson(sample));
assert.equal(plan.planner_version, version());
assert.ok(plan.operations.length > 0);
await init(); // resolves at once in Node: the same API as in browsers
for (const fn of [applyPlan, collectInput, syncOnce, createPreview]) assert.equal(typeof fn, 'function');
for (const cls of [NetBoxClient, ProxmoxClient]) assert.equal(typeof cls, 'function');
console.log(JSON.stringify({ operations: plan.operations.length, version: version() }));
