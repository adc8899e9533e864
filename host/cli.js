#!/usr/bin/env node
// proxbox-planner command line. Every decision comes from the wasm core; this
// file only reads files, calls the core and prints.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as planner from 'proxbox-planner';
import { renderModes, renderPlan } from './render.js';

const SAMPLE = fileURLToPath(new URL('../fixtures/sample/snapshot.json', import.meta.url));

const commands = {
  /** Plans the bundled sample cluster against an empty NetBox. */
  demo(args) {
    const input = JSON.parse(readFileSync(SAMPLE, 'utf8'));
    if (args.includes('--json')) {
      process.stdout.write(planner.planJson(JSON.stringify(input)) + '\n');
      return;
    }
    const color = process.stdout.isTTY;
    const report = planner.resolveSyncModes(input.settings, input.endpoint, input.sync_types);
    process.stdout.write(renderModes(report, { color }) + '\n');
    process.stdout.write(renderPlan(planner.plan(input), { color }));
  },
  /** Plans a snapshot file (the planner input document). */
  plan(args) {
    const file = args.find((a) => !a.startsWith('--'));
    if (!file) throw new Error('usage: proxbox-planner plan SNAPSHOT.json [--json]');
    const text = readFileSync(file, 'utf8');
    if (args.includes('--json')) {
      process.stdout.write(planner.planJson(text) + '\n');
      return;
    }
    process.stdout.write(renderPlan(planner.plan(JSON.parse(text)), { color: process.stdout.isTTY }));
  },
  version() {
    process.stdout.write(`proxbox-planner ${planner.version()}\n`);
  },
};

const [name = 'help', ...rest] = process.argv.slice(2);
const command = commands[name];
if (!command) {
  process.stderr.write(`usage: proxbox-planner <${Object.keys(commands).join('|')}>\n`);
  process.exit(name === 'help' ? 0 : 2);
}
try {
  await command(rest);
} catch (error) {
  const where = error.path ? ` (at ${error.path})` : '';
  process.stderr.write(`error: ${error.detail ?? error.message}${where}\n`);
  process.exit(1);
}
