// Starts and stops the real test servers (host/test/servers/*.sh) for the
// end-to-end tests, and parses the env files they write.
import { execFile, spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

const SERVERS = fileURLToPath(new URL('../test/servers/', import.meta.url));
export const NETBOX_SH = `${SERVERS}netbox.sh`;
export const FAKEPVE_SH = `${SERVERS}fakepve.sh`;
export const PROXBOX_API_SH = `${SERVERS}proxbox-api.sh`;
export const SAMPLE_SEED = `${SERVERS}sample-cluster.seed.json`;
export const CLI = fileURLToPath(new URL('../cli.js', import.meta.url));

/** Our NetBox plugin (host/netbox-plugin/): its source directory and module. */
export const PLANNER_PLUGIN_DIR = fileURLToPath(new URL('../netbox-plugin/', import.meta.url));
export const PLANNER_PLUGIN = 'proxbox_planner_netbox';

/** Runs a program; resolves to its stdout (trimmed); rejects with the end of its stderr.
 *  stderr goes to ours as well unless `quiet`.
 * @param {string} program @param {string[]} args
 * @param {{ env?: Record<string, string>, quiet?: boolean, cwd?: string }} [options]  `env` is added to ours */
export function run(program, args, { env = {}, quiet = true, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => {
      err += d;
      if (!quiet) process.stderr.write(d);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out.trim());
      else reject(new Error(`${program} ${args.join(' ')} exited ${code}\n${err.split('\n').slice(-30).join('\n')}`));
    });
  });
}

/** Runs a script of ours with bash; its stderr goes to ours unless `quiet`. */
export function sh(script, args, { env = {}, quiet = false } = {}) {
  return run('bash', [script, ...args], { env, quiet });
}

/** KEY=value lines → object. @returns {Record<string, string>} */
export function parseEnv(text) {
  /** @type {Record<string, string>} */
  const env = {};
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0 && !line.startsWith('#')) env[line.slice(0, at).trim()] = line.slice(at + 1).trim().replace(/^['"]|['"]$/g, '');
  }
  return env;
}

export function readEnvFile(file) {
  return parseEnv(readFileSync(file, 'utf8'));
}

/**
 * Runs a server script's `start`; resolves to the env file it wrote, with ENV_FILE: its path.
 * @returns {Promise<Record<string, string>>}
 */
async function startServer(script, args, env) {
  const file = (await sh(script, args, { env, quiet: true })).split('\n').at(-1);
  return { ...readEnvFile(file), ENV_FILE: file };
}

export async function installNetbox() {
  return sh(NETBOX_SH, ['install']);
}

/**
 * @param {{rqworker?: boolean, plugins?: string[], pythonPath?: string[]}} [o]
 *   rqworker: also run `netbox rqworker` (background jobs such as the Proxbox sync);
 *   plugins: extra PLUGINS for this run, imported from `pythonPath` (netbox.sh's
 *   NETBOX_EXTRA_PLUGINS; the cache is not changed)
 */
export async function startNetbox({ rqworker = false, plugins = [], pythonPath = [] } = {}) {
  const env = {
    ...(rqworker ? { NETBOX_RQWORKER: '1' } : {}),
    ...(plugins.length ? { NETBOX_EXTRA_PLUGINS: plugins.join(','), NETBOX_EXTRA_PYTHONPATH: pythonPath.join(':') } : {}),
  };
  return startServer(NETBOX_SH, ['start'], env);
}

/** NetBox with our plugin from its source tree (its static files copied in first). */
export async function startNetboxWithPlanner(options = {}) {
  await buildPlannerPluginStatic();
  return startNetbox({ ...options, plugins: [PLANNER_PLUGIN], pythonPath: [PLANNER_PLUGIN_DIR] });
}

/** The cached NetBox venv, instance root and the interpreter the venv was made from. */
export async function netboxPaths() {
  return parseEnv(await sh(NETBOX_SH, ['paths'], { quiet: true }));
}

/** Copies host/preview/ and pkg/web/ into the plugin's static directory (build_static.py). */
export async function buildPlannerPluginStatic() {
  const { NETBOX_VENV } = await netboxPaths();
  return run(`${NETBOX_VENV}/bin/python`, [`${PLANNER_PLUGIN_DIR}build_static.py`]);
}

/** Runs Python code in `netbox shell` against a started NetBox; resolves to its stdout. */
export function netboxShell(env, code) {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [NETBOX_SH, 'shell', env.RUN_DIR], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on(
      'close',
      (code_) => (code_ === 0 ? resolve(out.trim()) : reject(new Error(`netbox shell exited ${code_}\n${err.split('\n').slice(-20).join('\n')}`)))
    );
    child.stdin.end(code);
  });
}

export async function stopNetbox(env) {
  if (env?.RUN_DIR) await sh(NETBOX_SH, ['stop', env.RUN_DIR], { quiet: true });
}

export async function installFakepve() {
  return sh(FAKEPVE_SH, ['install']);
}

export async function startFakepve(seed = SAMPLE_SEED, env = {}) {
  return startServer(FAKEPVE_SH, ['start', seed], env);
}

export async function stopFakepve(env) {
  if (!env?.RUN_DIR) return;
  await sh(FAKEPVE_SH, ['stop', env.RUN_DIR], { quiet: true });
  // fakepve.sh keeps its log and certificate; the tests have no use for them afterwards.
  if (/^fakepve\./.test(basename(env.RUN_DIR))) rmSync(env.RUN_DIR, { recursive: true, force: true });
}

export async function installProxboxApi() {
  return sh(PROXBOX_API_SH, ['install']);
}

/** proxbox-api, unconfigured (host/test-support/peer.js configures it). */
export async function startProxboxApi(env = {}) {
  return startServer(PROXBOX_API_SH, ['start'], env);
}

export async function stopProxboxApi(env) {
  if (env?.RUN_DIR) await sh(PROXBOX_API_SH, ['stop', env.RUN_DIR], { quiet: true });
}

/** Our environment without the settings the CLI reads, so a test says every one it means. */
export function cleanEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(NETBOX|PVE|PROXBOX)_|^NO_COLOR$|^NODE_EXTRA_CA_CERTS$/.test(k)));
}

/**
 * Runs the CLI with `env` as its only NETBOX_/PVE_/PROXBOX_/NO_COLOR settings
 * (none leak in from the caller's environment). Resolves to {code, stdout, stderr}.
 */
export function runCli(args, env = {}, { timeout = 5 * 60 * 1000 } = {}) {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...cleanEnv(), ...env }, timeout, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, stdout, stderr });
    });
  });
}

/** The environment that points the CLI at the test servers (v1 NetBox token, CA-verified Proxmox). */
export function serverEnv(nb, pve) {
  return { NETBOX_URL: nb.NETBOX_URL, NETBOX_TOKEN: nb.NETBOX_TOKEN, PVE_URL: pve.PVE_URL, PVE_TOKEN: pve.PVE_TOKEN, PVE_CA_FILE: pve.PVE_CA_FILE };
}

/** The Proxbox plugin endpoint for the simulator (what an operator creates first). Resolves to its id. */
export async function createEndpoint(netbox, pve, name = 'lab') {
  const { data } = await netbox.request('POST', '/api/plugins/proxbox/endpoints/proxmox/', {
    body: {
      name, mode: 'cluster', domain: 'localhost', port: Number(pve.PVE_PORT), token_name: 'proxbox', token_value: pve.PVE_TOKEN_SECRET,
      verify_ssl: true,
    },
  });
  return data.id;
}

/** A write to the Proxmox simulator's own API (rename, add a NIC, remove a guest). */
export async function pveWrite(pve, method, path, form) {
  const body = form ? new URLSearchParams(form).toString() : undefined;
  const { default: https } = await import('node:https');
  return new Promise((resolve, reject) => {
    const req = https.request(`${pve.PVE_API_URL}${path}`, {
      method,
      ca: readFileSync(pve.PVE_CA_FILE),
      headers: {
        Authorization: `PVEAPIToken=${pve.PVE_TOKEN}`,
        ...(body ? { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(body) } : {}),
      },
    }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => (res.statusCode < 300 ? resolve(JSON.parse(text).data) : reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * `proxbox-planner serve` with no NetBox or Proxmox settings (the Proxbox plugin tells it
 * where they are), keeping its state in `stateDir`; resolves to {url, process, output}.
 */
export async function startServe({ stateDir, pveCaFile }) {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME };
  const child = spawn(
    process.execPath, [CLI, 'serve', '--port', '0', '--state-dir', stateDir, '--pve-ca-file', pveCaFile],
    { env, stdio: ['ignore', 'pipe', 'pipe'] }
  );
  const output = { text: '' };
  child.stderr.on('data', (d) => (output.text += d));
  const url = await new Promise((resolve, reject) => {
    child.stdout.once('data', (d) => {
      output.text += d;
      resolve(String(d).trim().split('\n')[0]);
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${output.text}`)));
  });
  child.stdout.on('data', (d) => (output.text += d));
  return { url: url.endsWith('/') ? url : `${url}/`, process: child, output };
}

/**
 * A new NetBox user who may view and write (add, change) the object types
 * `view` and `write` pick, and a v2 token of theirs. Resolves to the token.
 * @param {import('../netbox.js').NetBoxClient} admin
 * @param {string} name
 * @param {{ view?: (type: string) => boolean, write?: (type: string) => boolean }} [pick]  by `app_label.model`; default: all
 */
export async function createLimitedToken(admin, name, { view = () => true, write = () => true } = {}) {
  const types = (await admin.list('/api/core/object-types/')).map((t) => `${t.app_label}.${t.model}`);
  const { data: user } = await admin.request('POST', '/api/users/users/', { body: { username: name, password: `${name}-Password-0123` } });
  await admin.request('POST', '/api/users/permissions/', {
    body: { name: `${name} view`, object_types: types.filter(view), actions: ['view'], users: [user.id] },
  });
  await admin.request('POST', '/api/users/permissions/', {
    body: { name: `${name} write`, object_types: types.filter(write), actions: ['add', 'change'], users: [user.id] },
  });
  const { data: token } = await admin.request('POST', '/api/users/tokens/', { body: { user: user.id, version: 2 } });
  return `nbt_${token.key}.${token.token}`;
}
