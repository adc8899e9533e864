#!/usr/bin/env node
// proxbox-planner command line. Every sync decision comes from the wasm core;
// this file reads files and flags, talks to NetBox and Proxmox through the
// host modules, calls the core and prints. Exit status: outcome.js.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline/promises';
import * as planner from 'proxbox-planner';
import { renderApplyReport, renderModes, renderPlan, renderProgress } from './render.js';
import { checkInteger, checkPort, netboxClient, proxmoxClient, resolveOptions, secretsOf } from './config.js';
import { applyPlan, countChanges, withChoices } from './apply.js';
import { completePayload, EventStream } from './events.js';
import { applyResult, collectInput, endpointUrl, planResult, readContext, saveSnapshot, syncOnce } from './sync.js';
import { checkPlanFormat, checkPlanOrigin, checkWrites } from './preflight.js';
import { exitCodeOf, incompleteReason, outcomeOfError, planOutcome, RunError, UsageError, USAGE_EXIT_CODE } from './outcome.js';
import { redact } from './http.js';

const SAMPLE = fileURLToPath(new URL('../fixtures/sample/snapshot.json', import.meta.url));

// ------------------------------------------------------------------- flags
//
// One table per command (plus the live options that talk to NetBox and
// Proxmox): parseArgs options, the help text, and a `check` for values that
// must be numbers, ports or words from a list (config.js checks the live ones).

const LIVE_FLAGS = {
  'netbox-url': { type: 'string', arg: 'URL', help: 'NetBox base URL, with its path prefix if any (NETBOX_URL)' },
  'netbox-token': { type: 'string', arg: 'TOKEN', help: 'NetBox token (NETBOX_TOKEN; prefer the variable: flags show in ps)' },
  'netbox-token-file': { type: 'string', arg: 'FILE', help: 'file holding the NetBox token (NETBOX_TOKEN_FILE)' },
  'netbox-branch': { type: 'string', arg: 'ID', help: 'netbox-branching schema id, sent as X-NetBox-Branch (NETBOX_BRANCH)' },
  'pve-url': { type: 'string', arg: 'URL', help: 'Proxmox API URL, https://host:8006 (PVE_URL; default: the plugin endpoint\'s)' },
  'proxmox-url': { type: 'string', arg: 'URL', help: 'the same as --pve-url' },
  'pve-token': { type: 'string', arg: 'TOKEN', help: 'Proxmox token user@realm!tokenid=secret (PVE_TOKEN; prefer the variable)' },
  'pve-token-file': { type: 'string', arg: 'FILE', help: 'file holding the Proxmox token (PVE_TOKEN_FILE)' },
  'pve-ca-file': { type: 'string', arg: 'FILE', help: 'PEM CA that signed the Proxmox certificate (PVE_CA_FILE)' },
  'pve-insecure': { type: 'boolean', help: 'skip Proxmox certificate verification (or PVE_INSECURE=1)' },
  endpoint: { type: 'string', arg: 'ID|NAME', help: 'the plugin endpoint to sync (PROXBOX_ENDPOINT)' },
  'sync-types': { type: 'string', arg: 'A,B', help: 'stages to run (default all)' },
  set: { type: 'string', multiple: true, arg: 'KEY=VALUE', help: 'override a plugin setting (repeatable; stands in without the plugin)' },
  'endpoint-set': { type: 'string', multiple: true, arg: 'KEY=VALUE', help: 'override an endpoint field (id=1, name=lab without the plugin)' },
  timeout: { type: 'string', arg: 'MS', help: 'per NetBox/Proxmox request (default 30000/15000)' },
  retries: { type: 'string', arg: 'N', help: 'NetBox retries on 429/5xx/timeouts/resets (default 5)' },
  'batch-size': { type: 'string', arg: 'N', help: 'objects per bulk write (default 100)' },
  concurrency: { type: 'string', arg: 'N', help: 'NetBox requests in flight: pages read, batches written (default 4; fewer while NetBox answers 429/503)' },
  'verify-creates': {
    type: 'string', arg: 'MODE',
    help: 'always (default): look for identical objects before each create batch; retry: only after an unknown outcome; never',
  },
};

const FLAG = {
  json: { type: 'boolean', help: 'print JSON instead of the readable listing' },
  verbose: { type: 'boolean', short: 'v', help: 'also list the fields of each create' },
  yes: { type: 'boolean', short: 'y', help: 'apply without asking' },
};

const COMMON_FLAGS = {
  'no-color': { type: 'boolean', help: 'no colours (or NO_COLOR=1)' },
  help: { type: 'boolean', short: 'h', help: 'this help' },
};

/** `serve`'s own flags. */
const SERVE_FLAGS = {
  port: { type: 'string', arg: 'PORT', help: 'port to listen on (default 8800, or PORT; 0 picks one)', check: checkPort },
  host: { type: 'string', arg: 'ADDR', help: 'address to bind (default 127.0.0.1)' },
  'state-dir': {
    type: 'string', arg: 'DIR',
    help: 'where serve keeps endpoint settings and run history (PROXBOX_PLANNER_STATE_DIR; default ~/.local/state/proxbox-planner)',
  },
  'api-key-file': { type: 'string', arg: 'FILE', help: 'require X-Proxbox-API-Key with this file\'s key (or PROXBOX_API_KEY)' },
  keepalive: {
    type: 'string', arg: 'MS', help: 'SSE keepalive comment after this much silence (default 15000)',
    check: (v, s) => checkInteger(v, s, { min: 1, unit: 'milliseconds' }),
  },
};

const COMMANDS = {
  demo: { summary: 'plan the bundled sample cluster against an empty NetBox', flags: { json: FLAG.json } },
  plan: {
    args: '[SNAPSHOT.json]',
    summary: 'plan a snapshot file, or live (NetBox + Proxmox); nothing is written',
    flags: { json: FLAG.json, out: { type: 'string', arg: 'PLAN.json', help: 'also write the plan to this file' }, verbose: FLAG.verbose },
    live: true,
  },
  snapshot: {
    args: '--out FILE',
    summary: 'save the live planner input (no tokens in it) for offline planning',
    flags: { out: { type: 'string', arg: 'FILE', help: 'where to write it (required; mode 0600)' }, json: { type: 'boolean', help: 'no progress on stderr' } },
    live: true,
  },
  apply: {
    args: '[PLAN.json]',
    summary: 'apply a saved plan, or plan live and apply (asks first on a terminal)',
    flags: {
      yes: FLAG.yes,
      stream: { type: 'boolean', help: 'NDJSON events on stdout ({"event", "data"} per line, ending with "complete"); needs --yes' },
      json: { type: 'boolean', help: 'print the apply report as JSON' },
      out: { type: 'string', arg: 'PLAN.json', help: 'keep the live plan in this file' },
      verbose: FLAG.verbose,
      'accept-proxmox': {
        type: 'string', multiple: true, arg: 'ID',
        help: 'write Proxmox\'s value for this conflict (repeatable; IDs from the plan\'s conflicts)',
      },
      'keep-netbox': {
        type: 'string', multiple: true, arg: 'ID',
        help: 'keep the operator\'s value of this conflict for good (a journal entry on the object records it)',
      },
    },
    live: true,
  },
  serve: { summary: 'HTTP server with the Proxbox SSE stream paths (/full-update/stream, ...)', flags: SERVE_FLAGS, live: true },
  version: { summary: 'print the version', flags: {} },
};

const EXIT_STATUS = `Exit status: 0 ok (also with warnings), 1 partial (some operations failed or were stale,
or not applied at the prompt), 2 failed (nothing could be planned or applied), 64 usage error.`;

function flagLines(flags) {
  return Object.entries(flags).map(([name, spec]) => {
    const head = `${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.arg ? ` ${spec.arg}` : ''}`;
    return `  ${head.padEnd(28)} ${spec.help}`;
  });
}

function commandHelp(name) {
  const spec = COMMANDS[name];
  const lines = [
    `usage: proxbox-planner ${name}${spec.args ? ` ${spec.args}` : ''} [options]`, '',
    `${spec.summary[0].toUpperCase()}${spec.summary.slice(1)}.`, '', 'Options:', ...flagLines({ ...spec.flags, ...COMMON_FLAGS }),
  ];
  if (spec.live) lines.push('', 'Live options (flags win over the environment):', ...flagLines(LIVE_FLAGS));
  lines.push('', EXIT_STATUS);
  return `${lines.join('\n')}\n`;
}

function globalHelp() {
  const lines = ['usage: proxbox-planner <command> [options]', '', 'Commands:'];
  for (const [name, spec] of Object.entries(COMMANDS)) lines.push(`  ${`${name}${spec.args ? ` ${spec.args}` : ''}`.padEnd(28)} ${spec.summary}`);
  lines.push('', '`proxbox-planner <command> --help` lists the options of a command.', '', EXIT_STATUS);
  return `${lines.join('\n')}\n`;
}

const parseSpec = (flags) => Object.fromEntries(
  Object.entries(flags).map(([name, { type, short, multiple }]) => [name, { type, ...(short ? { short } : {}), ...(multiple ? { multiple } : {}) }])
);

/** The command's flags and positionals; a UsageError (exit 64) for an unknown flag or a bad value. */
function parse(name, args) {
  const spec = COMMANDS[name];
  const flags = { ...spec.flags, ...COMMON_FLAGS, ...(spec.live ? LIVE_FLAGS : {}) };
  let parsed;
  try {
    parsed = parseArgs({ args, options: parseSpec(flags), allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(`${error.message.split('\n')[0].replace(/\. To specify a positional.*$/, '')} (see proxbox-planner ${name} --help)`);
  }
  const { values, positionals } = parsed;
  const allowed = spec.args?.startsWith('[') ? 1 : 0;
  if (positionals.length > allowed) throw new UsageError(`unexpected argument "${positionals[allowed]}" (see proxbox-planner ${name} --help)`);
  for (const [flag, { check }] of Object.entries(flags)) {
    if (check && values[flag] !== undefined) values[flag] = check(values[flag], `--${flag}`);
  }
  return { flags: values, positionals };
}

// ------------------------------------------------------------------ output

/** Colour on a terminal, unless NO_COLOR (https://no-color.org) or --no-color says otherwise. */
let noColor = Boolean(process.env.NO_COLOR);
const colorOn = (stream) => Boolean(stream.isTTY) && !noColor;

/** Every token seen in options, so the last-resort error printer can redact it. */
const SECRETS = [];
function options(flags) {
  const resolved = resolveOptions(flags);
  SECRETS.push(...secretsOf(resolved));
  return resolved;
}

/** A JSON file the user named; a usage error naming it when it is missing or not JSON. */
function readJsonFile(file, what) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`${file}: cannot read the ${what} (${error.code === 'ENOENT' ? 'no such file' : error.message})`);
  }
  try {
    return { text, value: JSON.parse(text) };
  } catch (error) {
    throw new UsageError(`${file} is not valid JSON (${error.message}): give a ${what} written by proxbox-planner`);
  }
}

/** Plans live: NetBox settings/endpoint → discovery → plan. @param {import('./events.js').Emit} [emit] */
async function livePlan(opts, emit = () => {}) {
  const netbox = netboxClient(opts);
  try {
    return await syncOnce({
      netbox,
      makeProxmox: (fallback) => proxmoxClient(opts, fallback),
      endpoint: opts.endpoint,
      settings: opts.settings,
      endpointOverrides: opts.endpointOverrides,
      syncTypes: opts.syncTypes,
      emit,
    });
  } finally {
    netbox.close();
  }
}

const NO_TERMINAL = 'refusing to apply without confirmation: pass --yes (stdin is not a terminal)';

async function confirm(question) {
  if (!process.stdin.isTTY) throw new UsageError(NO_TERMINAL);
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
  else process.stdout.write(renderPlan(plan, { color: colorOn(process.stdout), fields: Boolean(flags.verbose) }));
}

/** An incomplete plan is shown (it says what could not be read) and then fails the command. */
function failIfIncomplete(plan) {
  if (plan.complete === false) throw new RunError(incompleteReason(plan));
}

// ---------------------------------------------------------------- commands

const commands = {
  /** Plans the bundled sample cluster against an empty NetBox. */
  demo({ flags }) {
    const input = JSON.parse(readFileSync(SAMPLE, 'utf8'));
    if (flags.json) {
      process.stdout.write(planner.planJson(JSON.stringify(input)) + '\n');
      return 'ok';
    }
    const color = colorOn(process.stdout);
    const report = planner.resolveSyncModes(input.settings, input.endpoint, input.sync_types);
    process.stdout.write(renderModes(report, { color }) + '\n');
    const plan = planner.plan(input);
    process.stdout.write(renderPlan(plan, { color }));
    return planOutcome(plan);
  },

  /** Plans a snapshot file (the planner input document), or live. */
  async plan({ flags, positionals: [file] }) {
    if (file) {
      const { text, value } = readJsonFile(file, 'snapshot');
      let plan;
      try {
        plan = flags.json && !flags.out ? JSON.parse(planner.planJson(text)) : planner.plan(value);
      } catch (error) {
        throw new UsageError(`${file} is not a planner input: ${error.detail ?? error.message}${error.path ? ` (at ${error.path})` : ''}`);
      }
      if (flags.json && !flags.out) process.stdout.write(planner.planJson(text) + '\n');
      else writePlanOutputs(plan, flags);
      failIfIncomplete(plan);
      return planOutcome(plan);
    }
    const opts = options(flags);
    const progress = flags.json ? () => {} : stderrProgress();
    const { plan } = await livePlan(opts, progress);
    clearProgress();
    writePlanOutputs(plan, flags);
    failIfIncomplete(plan);
    return planOutcome(plan);
  },

  /** Saves the live planner input. */
  async snapshot({ flags }) {
    if (!flags.out) throw new UsageError('snapshot needs --out FILE (see proxbox-planner snapshot --help)');
    const opts = options(flags);
    const netbox = netboxClient(opts);
    let proxmox;
    try {
      const context = await readContext(netbox, { endpoint: opts.endpoint, settings: opts.settings, endpointOverrides: opts.endpointOverrides });
      proxmox = proxmoxClient(opts, endpointUrl(context.endpoint));
      const input = await collectInput({
        netbox, proxmox, settings: context.settings, endpoint: context.endpoint, origin: context.origin, syncUser: context.syncUser,
        syncTypes: opts.syncTypes, emit: flags.json ? () => {} : stderrProgress(),
      });
      clearProgress();
      saveSnapshot(flags.out, input, { secrets: secretsOf(opts) });
      process.stderr.write(`wrote ${flags.out}: ${Object.keys(input.proxmox).length} Proxmox paths, ${Object.keys(input.netbox).length} NetBox collections\n`);
      return 'ok';
    } finally {
      netbox.close();
      proxmox?.close();
    }
  },

  /** Applies a saved plan, or plans live and applies. */
  async apply({ flags, positionals: [file] }) {
    const streamMode = Boolean(flags.stream);
    if (streamMode && !flags.yes) throw new UsageError('--stream needs --yes (a stream is read by a program, which cannot answer the question)');
    const opts = options(flags);
    const events = new EventStream({ secrets: secretsOf(opts) });
    const printer = streamMode ? pumpNdjson(events) : null;
    const emit = streamMode ? events.emit : process.stderr.isTTY ? ttyProgress() : () => {};
    const quiet = streamMode || flags.json;
    try {
      const planned = file ? savedPlan(file) : await livePlan(opts, emit);
      clearProgress();
      const { result } = planned;
      if (!file && flags.out) writeFileSync(flags.out, `${JSON.stringify(planned.plan, null, 2)}\n`);
      // The conflicts someone chose: their other operation stands in (the core planned both).
      const plan = withChoices(planned.plan, { acceptProxmox: flags['accept-proxmox'], keepNetbox: flags['keep-netbox'] });
      if (!file && !quiet) process.stdout.write(renderPlan(plan, { color: colorOn(process.stdout), fields: Boolean(flags.verbose) }));
      failIfIncomplete(plan);
      const changes = countChanges(plan);
      // Nobody can answer the question: refuse before any check talks to NetBox.
      if (changes && !flags.yes && !process.stdin.isTTY) throw new UsageError(NO_TERMINAL);
      const netbox = changes ? netboxClient(opts) : null;
      let report;
      try {
        if (changes) {
          if (file) await checkPlanOrigin(netbox, plan, { name: file, endpoint: opts.endpoint });
          await checkWrites(netbox, plan);
          if (!flags.yes && !(await confirm(`Apply ${changes} changes to NetBox? [y/N] `))) {
            process.stderr.write('Not applied.\n');
            return 1;
          }
          report = await applyPlan(plan, netbox, { emit, verifyCreates: opts.verifyCreates, ...(opts.batchSize ? { batchSize: opts.batchSize } : {}) });
        }
      } finally {
        netbox?.close();
      }
      clearProgress();
      const done = report ? applyResult(result, report) : { ...result, message: 'Nothing to apply' };
      if (streamMode) events.emit('complete', completePayload({ result: done, label: 'Apply' }));
      else if (flags.json) {
        const nothingDone = {
          ok: done.ok, outcome: done.outcome, warnings: done.warnings, counts: { total: plan.operations.length, changes: 0, done: 0 }, operations: [],
        };
        process.stdout.write(`${JSON.stringify(report ?? nothingDone, null, 2)}\n`);
      }
      else process.stdout.write(report ? renderApplyReport(report, { color: colorOn(process.stdout) }) : 'Nothing to apply.\n');
      return done.outcome;
    } catch (error) {
      if (streamMode) {
        events.emit('error', { message: error.message, ...(error.code ? { code: error.code } : {}) });
        events.emit('complete', completePayload({ error, label: 'Apply' }));
      }
      throw error;
    } finally {
      events.end();
      if (printer) await printer;
    }
  },

  /** The Proxbox backend (and SSE server for scripts). */
  async serve({ flags }) {
    const opts = options(flags);
    // NetBox and Proxmox usually come from the plugin's endpoint push; flags given are checked now, not on the first run.
    if (opts.netboxUrl || opts.netboxToken) netboxClient(opts).close();
    const { createSyncServer } = await import('./server.js');
    const { defaultStateDir } = await import('./backend/state.js');
    const apiKey = flags['api-key-file'] ? readFileSync(flags['api-key-file'], 'utf8').trim() : process.env.PROXBOX_API_KEY || undefined;
    const port = flags.port ?? (process.env.PORT ? checkPort(process.env.PORT, 'PORT') : 8800);
    const stateDir = flags['state-dir'] ?? defaultStateDir();
    if (apiKey) SECRETS.push(apiKey);
    const secrets = [...secretsOf(opts), ...(apiKey ? [apiKey] : [])];
    const server = createSyncServer({
      options: opts,
      apiKey,
      stateDir,
      keepaliveMs: flags.keepalive ?? 15000,
      log: (line) => process.stderr.write(`${new Date().toISOString()} ${redact(line, secrets)}\n`),
    });
    const host = flags.host ?? '127.0.0.1';
    await /** @type {Promise<void>} */ (new Promise((resolve, reject) => {
      server.once(
        'error',
        (/** @type {NodeJS.ErrnoException} */ error) => reject(
          new UsageError(`cannot listen on ${host}:${port} (${error.code ?? error.message}): choose another --port or --host`),
        ),
      );
      server.listen(port, host, resolve);
    }));
    process.stderr.write(`${new Date().toISOString()} serve: state in ${stateDir}\n`);
    process.stdout.write(`http://${host.includes(':') ? `[${host}]` : host}:${/** @type {import('node:net').AddressInfo} */ (server.address()).port}/\n`);
    const stop = () => server.close(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    return null; // runs until stopped
  },

  version() {
    process.stdout.write(`proxbox-planner ${planner.version()}\n`);
    return 'ok';
  },
};

/** A saved plan, checked offline (format, planner version, completeness); `result` as a live plan's. */
function savedPlan(file) {
  const { value: plan } = readJsonFile(file, 'plan');
  checkPlanFormat(plan, file);
  return { plan, result: planResult(plan) };
}

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
    if (event === 'item_progress' && data.action !== 'skip') {
      process.stderr.write(`\r\x1b[2K${renderProgress(data, { color: colorOn(process.stderr), width: process.stderr.columns ?? 100 })}`);
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

function printError(error) {
  clearProgress();
  const where = error.path && !String(error.path).startsWith('/') && !error.message.includes(error.path) ? ` (at ${error.path})` : '';
  let secrets = SECRETS;
  try {
    secrets = [...SECRETS, ...secretsOf(resolveOptions({}))];
  } catch {
    // Unreadable token files or bad variables: keep what was seen.
  }
  const text = error instanceof UsageError || error instanceof RunError ? error.message : (error.detail ?? error.message);
  process.stderr.write(`error: ${redact(text, secrets).split('\n')[0]}${where}\n`);
}

async function main(argv) {
  const [name = 'help', ...rest] = argv;
  if (name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(rest[0] && COMMANDS[rest[0]] ? commandHelp(rest[0]) : globalHelp());
    return 0;
  }
  if (!COMMANDS[name]) {
    process.stderr.write(`error: unknown command "${name}"\n\n${globalHelp()}`);
    return USAGE_EXIT_CODE;
  }
  try {
    const parsed = parse(name, rest);
    if (parsed.flags.help) {
      process.stdout.write(commandHelp(name));
      return 0;
    }
    if (parsed.flags['no-color']) noColor = true;
    const outcome = await commands[name](parsed);
    return typeof outcome === 'number' || outcome === null ? outcome : exitCodeOf(outcome);
  } catch (error) {
    printError(error);
    return exitCodeOf(outcomeOfError(error));
  }
}

const code = await main(process.argv.slice(2));
if (code !== null) process.exitCode = code;
