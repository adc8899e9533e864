// The two npm packages as users get them: `npm pack` of the core (pkg/) and of the
// host (the repository root), installed into empty folders, used from Node ESM,
// CommonJS, TypeScript (nodenext and bundler), a browser page in real Chromium and
// the CLI through `npx proxbox-planner demo`. Nothing here reads the source tree
// except to copy the consumer projects.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createPreviewServer } from '../preview/serve.js';
import { launchBrowser } from '../test-support/browser.js';
import { listenLoopback } from '../test-support/listen.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const CONSUMERS = join(REPO, 'tests/consumers');
const TSC = join(REPO, 'node_modules/typescript/bin/tsc');
const NODE_TYPES = join(REPO, 'node_modules/@types');

let work;
let tarballs;

/** `npm` in `cwd`, offline-safe: the only dependencies are the local tarballs. */
const npm = (cwd, ...args) => run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, maxBuffer: 2 ** 26 });

/** A copy of consumers/NAME in its own folder, with both tarballs installed. */
async function consumer(name) {
  const dir = join(work, name);
  cpSync(join(CONSUMERS, name), dir, { recursive: true });
  await npm(dir, 'install', ...tarballs);
  return dir;
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'pbx-packages-'));
  const packs = join(work, 'tarballs');
  mkdirSync(packs);
  await npm(REPO, 'pack', '--workspaces', '--include-workspace-root', '--pack-destination', packs);
  tarballs = readdirSync(packs).filter((f) => f.endsWith('.tgz')).map((f) => join(packs, f));
});

after(() => rmSync(work, { recursive: true, force: true }));

test('npm pack gives the core and the host, each with only what it ships', async () => {
  assert.deepEqual(tarballs.map((t) => t.split('/').pop()).sort(),
    [`proxbox-planner-${version()}.tgz`, `proxbox-planner-host-${version()}.tgz`]);
  const { stdout } = await npm(REPO, 'pack', '--workspaces', '--include-workspace-root', '--dry-run', '--json');
  const [host, core] = JSON.parse(stdout);
  const hostFiles = host.files.map((f) => f.path);
  const coreFiles = core.files.map((f) => f.path);
  assert.ok(hostFiles.includes('host/cli.js') && hostFiles.includes('fixtures/sample/snapshot.json'));
  assert.deepEqual(hostFiles.filter((f) => /^(src|tests|target|pkg)\/|^host\/(test|test-support|bench)\//.test(f)), []);
  assert.equal(coreFiles.filter((f) => f.endsWith('.wasm')).length, 1, `the wasm ships once: ${coreFiles}`);
  assert.ok(coreFiles.includes('schema/plan.schema.json') && coreFiles.includes('schema/input.schema.json'));
  assert.equal(JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).dependencies['proxbox-planner'], version());
});

test('npx proxbox-planner demo works from an empty folder with the two tarballs installed', async () => {
  const dir = join(work, 'empty');
  mkdirSync(dir);
  await npm(dir, 'install', ...tarballs);
  const { stdout } = await run('npx', ['--no-install', 'proxbox-planner', 'demo'], { cwd: dir });
  assert.match(stdout, /Plan: \d+ to create, \d+ to update, \d+ to delete/);
});

test('Node ESM: import without init(), init() resolves, the host API is there', async () => {
  const dir = await consumer('esm');
  const out = JSON.parse((await run(process.execPath, ['main.js'], { cwd: dir })).stdout);
  assert.equal(out.version, version());
  assert.ok(out.operations > 0);
});

test('CommonJS: require() gives the same API', async () => {
  const dir = await consumer('cjs');
  const { stdout, stderr } = await run(process.execPath, ['main.js'], { cwd: dir });
  assert.ok(JSON.parse(stdout).operations > 0);
  assert.doesNotMatch(stderr, /MODULE_TYPELESS_PACKAGE_JSON/);
});

test('TypeScript nodenext: the generated types check a real use, and it runs', async () => {
  const dir = await consumer('ts-nodenext');
  await run(process.execPath, [TSC, '-p', '.', '--typeRoots', NODE_TYPES], { cwd: dir });
  const out = JSON.parse((await run(process.execPath, ['dist/main.js'], { cwd: dir })).stdout);
  assert.ok(out.operations > 0 && out.stages > 0);
  assert.equal(out.defaultStages, out.stages, 'resolveSyncModes() with no arguments: every stage, as the sample plan');
});

test('TypeScript bundler: the browser types, with a typed init()', async () => {
  const dir = await consumer('ts-bundler');
  await run(process.execPath, [TSC, '-p', '.'], { cwd: dir });
  // The types are the point: a wrong use must not check.
  writeFileSync(join(dir, 'main.ts'), "import { planJson } from 'proxbox-planner';\nconst n: number = planJson('{}');\n");
  await assert.rejects(run(process.execPath, [TSC, '-p', '.'], { cwd: dir }), { stdout: /TS2322/ });
});

test('a browser page imports the package, awaits init() and plans the sample', async () => {
  const dir = await consumer('browser');
  const core = JSON.parse(readFileSync(join(dir, 'node_modules/proxbox-planner/package.json'), 'utf8'));
  const entry = `./node_modules/proxbox-planner/${core.exports['.'].browser.default.replace(/^\.\//, '')}`;
  const page = join(dir, 'index.html');
  writeFileSync(page, readFileSync(page, 'utf8').replace('__BROWSER_ENTRY__', entry));
  const server = createPreviewServer({ '/': dir });
  const base = await listenLoopback(server);
  const browser = await launchBrowser();
  try {
    const tab = await browser.context.newPage();
    await tab.goto(`${base}/index.html`);
    const result = await tab.waitForFunction(() => /** @type {any} */ (window).result).then((h) => h.jsonValue());
    assert.equal(result.error, undefined);
    assert.equal(result.version, version());
    assert.ok(result.operations > 0);
  } finally {
    await browser.close();
    server.close();
  }
});

function version() {
  return readFileSync(join(REPO, 'Cargo.toml'), 'utf8').match(/^version\s*=\s*"([^"]+)"/m)[1];
}
