#!/usr/bin/env node
// proxbox-planner command line. Every sync decision comes from the wasm core;
// this file reads files and flags, talks to NetBox and Proxmox through the
// host modules, calls the core and prints.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline/promises';
import * as planner from 'proxbox-planner';
import { renderApplyReport, renderModes, renderPlan, renderProgress } from './render.js';
import { ENV_VARS, netboxClient, proxmoxClient, resolveOptions, secretsOf } from './config.js';
import { applyPlan } from './apply.js';
import { EventStream } from './events.js';
import { collectInput, endpointUrl, readContext, saveSnapshot, syncOnce } from './sync.js';
import { redact } from './http.js';

const SAMPLE = fileURLToPath(new URL('../fixtures/sample/snapshot.json', import.meta.url));

const LIVE_OPTIONS = {
  'netbox-url': { type: 'string' },
  'netbox-token': { type: 'string' },
  'netbox-token-file': { type: 'string' },
  'netbox-branch': { type: 'string' },
  'pve-url': { type: 'string' },
  'proxmox-url': { type: 'string' },
  'pve-token': { type: 'string' },
  'pve-token-file': { type: 'string' },
  'pve-ca-file': { type: 'string' },
  'pve-insecure': { type: 'boolean' },
  endpoint: { type: 'string' },
  'sync-types': { type: 'string' },
  set: { type: 'string', multiple: true },
  'endpoint-set': { type: 'string', multiple: true },
  timeout: { type: 'string' },
  'batch-size': { type: 'string' },
  retries: { type: 'string' },
  'verify-creates': { type: 'string' },
};

const COMMON = { json: { type: 'boolean' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } };

const USAGE = `usage: proxbox-planner <command> [options]

  demo [--json]                       plan the bundled sample cluster against an empty NetBox
  plan [SNAPSHOT.json] [--json] [--out PLAN.json]
                                      plan a snapshot file, or live (NetBox + Proxmox)
  snapshot --out FILE                 save the live planner input (no tokens in it)
  apply [PLAN.json] [--yes] [--stream] [--json]
                                      apply a saved plan, or plan live and apply (--yes skips the question)
  serve [--port 8800] [--host 127.0.0.1] [--state-dir D] [--api-key-file F]
                                      the Proxbox backend: point the plugin's FastAPI endpoint at it
                                      (state: D, PROXBOX_PLANNER_STATE_DIR or ~/.local/state/proxbox-planner)
  version

Live options (flags win over the environment):
  --netbox-url URL      ${ENV_VARS.NETBOX_URL} (NETBOX_URL)
  --netbox-token-file F ${ENV_VARS.NETBOX_TOKEN_FILE}; or NETBOX_TOKEN
  --netbox-branch ID    ${ENV_VARS.NETBOX_BRANCH} (NETBOX_BRANCH)
  --pve-url URL         ${ENV_VARS.PVE_URL} (PVE_URL)
  --pve-token-file F    or PVE_TOKEN (user@realm!tokenid=secret)
  --pve-ca-file F       ${ENV_VARS.PVE_CA_FILE} (PVE_CA_FILE)
  --pve-insecure        ${ENV_VARS.PVE_INSECURE} (PVE_INSECURE=1)
  --endpoint ID|NAME    ${ENV_VARS.PROXBOX_ENDPOINT} (PROXBOX_ENDPOINT)
  --sync-types a,b      stages to run (default all)
  --set key=value       override a plugin setting (repeatable; stands in without the plugin)
  --endpoint-set k=v    override an endpoint field (e.g. id=1, name=lab without the plugin)
  --timeout MS          per NetBox/Proxmox request (default 30000/15000)
  --retries N           NetBox retries on 429/5xx/timeouts/resets (default 5)
  --batch-size N        objects per bulk write (default 100)
  --verify-creates M    always (default): look for identical existing objects before each
                        create batch; retry: only after an unknown outcome; never
`;

function parse(args, extra = {}, { live = false } = {}) {
  const { values, positionals } = parseArgs({ args, options: { ...COMMON, ...(live ? LIVE_OPTIONS : {}), ...extra }, allowPositionals: true, strict: true });
  return { flags: values, positionals };
}

const isTTY = () => Boolean(process.stdout.isTTY);

/** Every token seen in options, so the last-resort error printer can redact it. */
const SECRETS = [];
function options(flags) {
  const resolved = resolveOptions(flags);
  SECRETS.push(...secretsOf(resolved));
  return resolved;
}

/** Plans live: NetBox settings/endpoint → discovery → plan. */
async function livePlan(flags, emit = () => {}) {
  const opts = options(flags);
  const netbox = netboxClient(opts);
  try {
    const { plan, input, result } = await syncOnce({
      netbox,
      makeProxmox: (fallback) => proxmoxClient(opts, fallback),
      endpoint: opts.endpoint,
      settings: opts.settings,
      endpointOverrides: opts.endpointOverrides,
      syncTypes: opts.syncTypes,
      emit,
    });
    return { plan, input, result, options: opts };
  } finally {
    netbox.close();
  }
}

async function confirm(question) {
  if (!process.stdin.isTTY) throw new Error('refusing to apply without confirmation: pass --yes (stdin is not a terminal)');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

function writePlanOutputs(plan, flags) {
  const text = `${JSON.stringify(plan, null, 2)}\n`;
  if (flags.out) writeFileSync(flags.out, text);
  if (flags.json) process.stdout.write(text);
  else process.stdout.write(renderPlan(plan, { color: isTTY(), fields: Boolean(flags.verbose) }));
}

const commands = {
  /** Plans the bundled sample cluster against an empty NetBox. */
  demo(args) {
    const { flags } = parse(args);
    const input = JSON.parse(readFileSync(SAMPLE, 'utf8'));
    if (flags.json) {
      process.stdout.write(planner.planJson(JSON.stringify(input)) + '\n');
      return;
    }
    const color = isTTY();
    const report = planner.resolveSyncModes(input.settings, input.endpoint, input.sync_types);
    process.stdout.write(renderModes(report, { color }) + '\n');
    process.stdout.write(renderPlan(planner.plan(input), { color }));
  },

  /** Plans a snapshot file (the planner input document), or live. */
  async plan(args) {
    const { flags, positionals } = parse(args, { verbose: { type: 'boolean', short: 'v' } }, { live: true });
    const file = positionals[0];
    if (file) {
      const text = readFileSync(file, 'utf8');
      if (flags.json && !flags.out) {
        process.stdout.write(planner.planJson(text) + '\n');
        return;
      }
      writePlanOutputs(planner.plan(JSON.parse(text)), flags);
      return;
    }
    const progress = flags.json ? () => {} : stderrProgress();
    const { plan } = await livePlan(flags, progress);
    clearProgress();
    writePlanOutputs(plan, flags);
  },

  /** Saves the live planner input. */
  async snapshot(args) {
    const { flags } = parse(args, {}, { live: true });
    if (!flags.out) throw new Error('usage: proxbox-planner snapshot --out FILE');
    const opts = options(flags);
    const netbox = netboxClient(opts);
    let proxmox;
    try {
      const context = await readContext(netbox, { endpoint: opts.endpoint, settings: opts.settings, endpointOverrides: opts.endpointOverrides });
      proxmox = proxmoxClient(opts, endpointUrl(context.endpoint));
      const input = await collectInput({ netbox, proxmox, settings: context.settings, endpoint: context.endpoint, syncTypes: opts.syncTypes, emit: flags.json ? () => {} : stderrProgress() });
      clearProgress();
      saveSnapshot(flags.out, input, { secrets: secretsOf(opts) });
      process.stderr.write(`wrote ${flags.out}: ${Object.keys(input.proxmox).length} Proxmox paths, ${Object.keys(input.netbox).length} NetBox collections\n`);
    } finally {
      netbox.close();
      proxmox?.close();
    }
  },

  /** Applies a saved plan, or plans live and applies. */
  async apply(args) {
    const { flags, positionals } = parse(args, { yes: { type: 'boolean', short: 'y' }, stream: { type: 'boolean' }, verbose: { type: 'boolean', short: 'v' } }, { live: true });
    const opts = options(flags);
    const secrets = secretsOf(opts);
    const file = positionals[0];
    const streamMode = Boolean(flags.stream);
    const events = new EventStream({ secrets });
    const printer = streamMode ? pumpNdjson(events) : null;
    const emit = streamMode ? events.emit : isTTY() ? ttyProgress() : () => {};
    let exitCode = 0;
    try {
      let plan;
      if (file) {
        plan = JSON.parse(readFileSync(file, 'utf8'));
        if (plan.format_version !== 1 || !Array.isArray(plan.operations)) throw new Error(`${file} is not a plan (format_version 1)`);
      } else {
        ({ plan } = await livePlan(flags, emit));
        clearProgress();
        if (flags.out) writeFileSync(flags.out, `${JSON.stringify(plan, null, 2)}\n`);
        if (!streamMode && !flags.json) process.stdout.write(renderPlan(plan, { color: isTTY(), fields: Boolean(flags.verbose) }));
      }
      const writes = plan.operations.filter((op) => op.action !== 'skip').length;
      if (!writes) {
        if (!streamMode && !flags.json) process.stdout.write('Nothing to apply.\n');
        if (streamMode) events.emit('complete', { ok: true, message: 'Nothing to apply', result: { summary: plan.summary } });
        else if (flags.json) process.stdout.write(`${JSON.stringify({ ok: true, counts: { total: plan.operations.length, done: 0 }, operations: [] })}\n`);
        return;
      }
      const netbox = netboxClient(opts);
      if (!flags.yes && !(await confirm(`Apply ${writes} operations to NetBox? [y/N] `).catch((error) => {
        netbox.close();
        throw error;
      }))) {
        netbox.close();
        process.stderr.write('Not applied.\n');
        exitCode = 1;
        return;
      }
      let report;
      try {
        report = await applyPlan(plan, netbox, { emit, verifyCreates: opts.verifyCreates, ...(opts.batchSize ? { batchSize: opts.batchSize } : {}) });
      } finally {
        netbox.close();
      }
      clearProgress();
      if (streamMode) {
        events.emit('complete', { ok: report.ok, message: report.ok ? 'Apply completed' : 'Apply finished with errors', result: { counts: report.counts, requests: report.requests, ms: report.duration_ms } });
      } else if (flags.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      } else {
        process.stdout.write(renderApplyReport(report, { color: isTTY() }));
      }
      if (!report.ok) exitCode = 1;
    } catch (error) {
      if (!streamMode) throw error;
      events.emit('error', { message: error.message });
      events.emit('complete', { ok: false, message: `Apply failed: ${error.message}`, errors: [{ message: error.message }] });
      exitCode = 1;
    } finally {
      events.end();
      if (printer) await printer;
      process.exitCode = exitCode || process.exitCode;
    }
  },

  /** The Proxbox backend (and SSE server for scripts). */
  async serve(args) {
    const { flags } = parse(args, { port: { type: 'string' }, host: { type: 'string' }, 'api-key-file': { type: 'string' }, 'state-dir': { type: 'string' }, keepalive: { type: 'string' } }, { live: true });
    const opts = options(flags);
    // NetBox and Proxmox usually come from the plugin's endpoint push; flags given are checked now, not on the first run.
    if (opts.netboxUrl || opts.netboxToken) netboxClient(opts).close();
    const { createSyncServer } = await import('./server.js');
    const { defaultStateDir } = await import('./backend/state.js');
    const apiKey = flags['api-key-file'] ? readFileSync(flags['api-key-file'], 'utf8').trim() : process.env.PROXBOX_API_KEY || undefined;
    if (apiKey) SECRETS.push(apiKey);
    const stateDir = flags['state-dir'] ?? defaultStateDir();
    const server = createSyncServer({
      options: opts,
      apiKey,
      stateDir,
      keepaliveMs: flags.keepalive ? Number(flags.keepalive) : 15000,
      log: (line) => process.stderr.write(`${new Date().toISOString()} ${redact(line, SECRETS)}\n`),
    });
    const host = flags.host ?? '127.0.0.1';
    await new Promise((resolve) => server.listen(Number(flags.port ?? process.env.PORT ?? 8800), host, resolve));
    const { port } = server.address();
    process.stderr.write(`${new Date().toISOString()} serve: state in ${stateDir}\n`);
    process.stdout.write(`http://${host.includes(':') ? `[${host}]` : host}:${port}/\n`);
    const stop = () => server.close(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  },

  version() {
    process.stdout.write(`proxbox-planner ${planner.version()}\n`);
  },
};

// ------------------------------------------------------------------ progress

let progressShown = false;

function clearProgress() {
  if (progressShown && process.stderr.isTTY) process.stderr.write('\r\x1b[2K');
  progressShown = false;
}

/** Discovery/plan steps as short lines on stderr (a terminal only). */
function stderrProgress() {
  if (!process.stderr.isTTY) return () => {};
  return (event, data) => {
    if (event === 'discovery' || (event === 'step' && data.status === 'completed' && ['discovery', 'plan'].includes(data.step))) {
      process.stderr.write(`\r\x1b[2K${data.message}`);
      progressShown = true;
    }
  };
}

/** One progress line on a terminal while applying. */
function ttyProgress() {
  const discovery = stderrProgress();
  return (event, data) => {
    if (event === 'item_progress' && process.stderr.isTTY) {
      process.stderr.write(`\r\x1b[2K${renderProgress(data, { color: true, width: process.stderr.columns ?? 100 })}`);
      progressShown = true;
    } else {
      discovery(event, data);
    }
  };
}

async function pumpNdjson(events) {
  for await (const line of events.ndjson()) process.stdout.write(line);
}

// ---------------------------------------------------------------------- main

// `proxbox-planner plan | head`: a closed pipe is not an error.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

const [name = 'help', ...rest] = process.argv.slice(2);
const command = commands[name];
if (!command || name === 'help' || rest.includes('--help') || rest.includes('-h')) {
  const out = command || name === 'help' ? process.stdout : process.stderr;
  out.write(USAGE);
  process.exit(command || name === 'help' ? 0 : 2);
}
try {
  await command(rest);
} catch (error) {
  clearProgress();
  const where = error.path && !String(error.path).startsWith('/') ? ` (at ${error.path})` : '';
  let secrets = SECRETS;
  try {
    secrets = [...SECRETS, ...secretsOf(resolveOptions({}))];
  } catch {
    // Unreadable token files: keep what was seen.
  }
  process.stderr.write(`error: ${redact(error.detail ?? error.message, secrets)}${where}\n`);
  process.exit(error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || error.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' ? 2 : 1);
}
