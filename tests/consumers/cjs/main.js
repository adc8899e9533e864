// A CommonJS program: require() gives the same API (Node >= 20.19 loads the ESM entry).
const assert = require('node:assert/strict');
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const planner = require('proxbox-planner');

const sample = readFileSync(join(__dirname, 'node_modules/proxbox-planner-host/fixtures/sample/snapshot.json'), 'utf8');
const plan = JSON.parse(planner.planJson(sample));
assert.equal(typeof planner.default, 'function');
assert.equal(plan.planner_version, planner.version());
console.log(JSON.stringify({ operations: plan.operations.length, version: planner.version() }));
