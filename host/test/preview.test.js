// The browser "preview sync" page (host/preview/) in real headless Chromium: Debian's
// /usr/bin/chromium driven by playwright-core, against host/preview/serve.js on a random
// loopback port. Chromium is installed with apt when it is missing (needs root).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import * as planner from 'proxbox-planner';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic',
];
const SERVE = fileURLToPath(new URL('../preview/serve.js', import.meta.url));
const sampleText = readFileSync(new URL('../../fixtures/sample/snapshot.json', import.meta.url), 'utf8');
const sample = () => JSON.parse(sampleText);
const HOSTILE = '<img src=x onerror=alert(1)>';
const ACTIONS = ['create', 'update', 'delete', 'skip', 'unchanged'];

/** Installs Debian's chromium when /usr/bin/chromium is missing; fails clearly otherwise. */
function ensureChromium() {
  if (existsSync(CHROMIUM)) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`${CHROMIUM} is missing and installing it needs root: ` +
      'run `apt-get update && apt-get install -y chromium` as root, then the tests again');
  }
  process.stderr.write(`${CHROMIUM} is missing: installing Debian's chromium with apt-get\n`);
  const run = spawnSync('sh', ['-c', 'apt-get update && apt-get install -y chromium'], {
    stdio: ['ignore', process.stderr, process.stderr],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (run.status !== 0 || !existsSync(CHROMIUM)) {
    throw new Error(`installing chromium failed (apt-get exit ${run.status ?? run.signal}); ${CHROMIUM} is still missing`);
  }
}

/** Starts serve.js on port 0; resolves to { child, url } once it printed its URL. */
function startServer() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SERVE, '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`serve.js printed no URL in 10 s: ${out}`)), 10_000);
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`serve.js exited (${code}) before printing its URL: ${out}`)));
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const line = out.split('\n').find((l) => l.startsWith('http://'));
      if (line) {
        clearTimeout(timer);
        resolve({ child, url: line.trim() });
      }
    });
  });
}

let server;
let base; // http://127.0.0.1:PORT
let pageUrl; // .../preview/
let context;
let profile;
let downloads;

before(async () => {
  ensureChromium();
  server = await startServer();
  pageUrl = server.url;
  base = new URL(pageUrl).origin;
  profile = mkdtempSync(join(tmpdir(), 'pbx-chromium-'));
  downloads = mkdtempSync(join(tmpdir(), 'pbx-downloads-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
  });
});

after(async () => {
  await context?.close();
  if (server) {
    server.child.removeAllListeners('exit');
    server.child.kill('SIGTERM');
  }
  for (const dir of [profile, downloads]) if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A fresh tab on the page, recording errors, dialogs and any request off the server. */
async function openPage() {
  const page = await context.newPage();
  const seen = { errors: [], dialogs: [], foreign: [] };
  page.on('pageerror', (err) => seen.errors.push(String(err)));
  page.on('console', (msg) => { if (msg.type() === 'error') seen.errors.push(msg.text()); });
  page.on('dialog', (dialog) => { seen.dialogs.push(dialog.message()); dialog.dismiss().catch(() => {}); });
  page.on('request', (req) => {
    const url = req.url();
    if (!url.startsWith(`${base}/`) && !url.startsWith('blob:') && !url.startsWith('data:')) seen.foreign.push(url);
  });
  await page.goto(pageUrl);
  await page.waitForFunction(() => /ready/.test(document.querySelector('.pbx-status')?.textContent ?? ''));
  page.seen = seen;
  return page;
}

/** Closes the tab after checking nothing went wrong in it. */
async function closePage(page) {
  await page.close();
  assert.deepEqual(page.seen.errors, [], 'no page errors');
  assert.deepEqual(page.seen.dialogs, [], 'no dialog');
  assert.deepEqual(page.seen.foreign, [], 'nothing fetched from anywhere but the server');
}

async function loadSample(page) {
  await page.getByRole('button', { name: 'Load the bundled sample' }).click();
  await page.waitForSelector('[data-total="create"]');
}

const totals = (page, scope = '') => page.$$eval(`${scope} [data-total]`, (els) =>
  Object.fromEntries(els.map((el) => [el.dataset.total, Number(el.textContent)])));

const stageCells = (page) => page.$$eval('td[data-stage][data-action]', (els) => {
  const out = {};
  for (const el of els) (out[el.dataset.stage] ??= {})[el.dataset.action] = Number(el.textContent);
  return out;
});

const text = (page, selector) => page.locator(selector).first().textContent();

/** Asserts the page shows `plan`'s counts: totals, the stage table and the op groups. */
async function assertCountsShown(page, plan) {
  const shown = await totals(page);
  for (const a of ACTIONS) assert.equal(shown[a], plan.summary[a], `total ${a}`);
  const cells = await stageCells(page);
  for (const a of ACTIONS) assert.equal(cells['*'][a], plan.summary[a], `total row ${a}`);
  for (const [stage, counts] of Object.entries(cells)) {
    if (stage === '*') continue;
    for (const a of ACTIONS) assert.equal(counts[a], plan.summary.stages[stage]?.[a] ?? 0, `${stage} ${a}`);
  }
  for (const stage of Object.keys(plan.summary.stages)) assert.ok(cells[stage], `stage ${stage} is listed`);
  const groups = await page.$$eval('[data-group-count]', (els) =>
    Object.fromEntries(els.map((el) => [el.dataset.groupCount, el.textContent])));
  const expected = {};
  for (const op of plan.operations) expected[`${op.stage}/${op.action}`] = (expected[`${op.stage}/${op.action}`] ?? 0) + 1;
  assert.deepEqual(groups, Object.fromEntries(Object.entries(expected).map(([k, n]) => [k, String(n)])));
  assert.equal(await page.locator('li[data-op-id]').count(), plan.operations.length);
}

test('serve.js: loopback only, the right MIME types, nothing outside its folders', async () => {
  assert.match(pageUrl, /^http:\/\/127\.0\.0\.1:\d+\/preview\/$/);
  const get = async (path) => {
    const res = await fetch(`${base}${path}`, { redirect: 'manual' });
    await res.arrayBuffer();
    return res;
  };
  assert.equal((await get('/pkg/proxbox_planner_bg.wasm')).headers.get('content-type'), 'application/wasm');
  assert.match((await get('/pkg/proxbox_planner.js')).headers.get('content-type'), /^text\/javascript/);
  assert.match((await get('/preview/')).headers.get('content-type'), /^text\/html/);
  assert.match((await get('/fixtures/sample/snapshot.json')).headers.get('content-type'), /^application\/json/);
  assert.equal((await get('/')).headers.get('location'), '/preview/');
  for (const path of ['/fixtures/%2e%2e/package.json', '/pkg/..%2f..%2fpackage.json', '/preview/%2e%2e/cli.js', '/package.json', '/src/lib.rs']) {
    assert.equal((await get(path)).status, 404, path);
  }
  const post = await fetch(`${base}/preview/`, { method: 'POST' });
  assert.equal(post.status, 405);
});

test('the bundled sample: the counts shown are plan.summary from the nodejs package', async () => {
  const plan = planner.plan(sample());
  const page = await openPage();
  await loadSample(page);
  await assertCountsShown(page, plan);
  assert.equal(await text(page, '.pbx-op-count'), `Showing all ${plan.operations.length} operations.`);
  // Modes: one row per resource type of plan.modes.effective, with source and effective mode.
  const rows = await page.$$eval('.pbx-modes tbody tr', (trs) => trs.map((tr) => ({
    type: tr.dataset.resource,
    source: tr.querySelector('[data-source]').textContent,
    effective: tr.querySelector('[data-effective]').textContent,
    override: tr.querySelector('select').value,
  })));
  assert.equal(rows.length, 10);
  assert.deepEqual(rows.map((r) => r.type), Object.keys(plan.modes.effective));
  for (const r of rows) {
    assert.equal(r.source, plan.modes.sources[r.type]);
    assert.equal(r.effective, plan.modes.effective[r.type]);
    assert.equal(r.override, '', `${r.type} inherits`);
  }
  // Stages: the sdn stage is skipped, with the planner's reason.
  const sdn = plan.stages.find((s) => s.stage === 'sdn');
  assert.equal(sdn.run, false);
  assert.equal(await text(page, '[data-stage-run="sdn"]'), 'skipped');
  assert.equal(await text(page, '[data-stage-reason="sdn"]'), sdn.reason);
  assert.equal(await text(page, '[data-stage-run="devices"]'), 'runs');
  assert.equal(await text(page, '.pbx-warnings .pbx-empty'), 'No warnings.');
  assert.equal(await text(page, '.pbx-conflicts .pbx-empty'), 'No SDN conflicts.');
  assert.match(await text(page, '[data-role="plan-time"]'), /^Planned in \d+(\.\d+)? ms$/);
  // An update shows its field-level before/after; a create its payload.
  const update = plan.operations.find((op) => op.action === 'update');
  const field = Object.keys(update.changes)[0];
  const li = page.locator(`li[data-op-id="${update.id}"]`);
  await li.locator('summary').click();
  const row = li.locator(`.pbx-changes tr[data-field="${field}"]`);
  assert.equal(await row.locator('.pbx-before').textContent(), String(update.changes[field].before ?? 'null'));
  assert.match(await row.locator('.pbx-after').textContent(), new RegExp(update.changes[field].after.$ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  const vm = page.locator('li[data-op-id="virtual-machines:virtualization.virtualmachine:qemu/101"]');
  await vm.locator('summary').click();
  assert.equal(await vm.locator('.pbx-fields tr[data-field="name"] td').textContent(), 'web01');
  // A {"$ref": op id} links to the operation that creates the object.
  await vm.locator('.pbx-fields tr[data-field="device"] .pbx-ref').click();
  assert.equal(await page.locator('li[data-op-id="devices:dcim.device:pve1"] > details').evaluate((d) => d.open), true);
  assert.equal(await page.evaluate(() => document.activeElement.closest('li[data-op-id]')?.dataset.opId), 'devices:dcim.device:pve1');
  // Filters: by action, by stage, and the text search.
  await page.selectOption('select[name="action"]', 'update');
  assert.equal(await page.locator('li[data-op-id]').count(), plan.summary.update);
  await page.selectOption('select[name="stage"]', 'ip-addresses');
  assert.equal(await page.locator('li[data-op-id]').count(), plan.summary.stages['ip-addresses'].update);
  await page.selectOption('select[name="action"]', '');
  await page.fill('input[name="q"]', 'ipam.ipaddress');
  const ips = plan.operations.filter((op) => op.stage === 'ip-addresses' && op.model === 'ipam.ipaddress').length;
  assert.ok(ips > 0);
  assert.equal(await page.locator('li[data-op-id]').count(), ips);
  assert.equal(await text(page, '.pbx-op-count'), `Showing ${ips} of ${plan.operations.length} operations.`);
  await page.getByRole('button', { name: 'Clear filters' }).click();
  assert.equal(await page.locator('li[data-op-id]').count(), plan.operations.length);
  await closePage(page);
});

test('a skip reason is shown: sync_mode_ip_address=disabled gives a mode-disabled skip', async () => {
  const input = sample();
  input.endpoint.sync_mode_ip_address = 'disabled';
  const plan = planner.plan(input);
  const skip = plan.operations.find((op) => op.action === 'skip' && op.resource === 'ip_address');
  assert.equal(skip.reason, 'mode-disabled');
  const skips = plan.operations.filter((op) => op.action === 'skip').length;
  const page = await openPage();
  await loadSample(page);
  await page.selectOption('select[name="sync_mode_ip_address"]', 'disabled');
  await page.waitForFunction((n) => document.querySelector('[data-total="skip"]')?.textContent === String(n), skips);
  await assertCountsShown(page, plan);
  const li = page.locator(`li[data-op-id="${skip.id}"]`);
  assert.equal(await li.locator('.pbx-op-reason').textContent(), 'mode-disabled');
  assert.equal(await li.locator('.pbx-op-detail').textContent(), skip.detail);
  assert.equal(skip.detail, 'sync_mode_ip_address=disabled');
  assert.equal(await text(page, '[data-source="ip_address"]'), 'endpoint');
  await page.selectOption('select[name="action"]', 'skip');
  assert.equal(await page.locator('li[data-op-id]').count(), skips);
  await page.selectOption('select[name="action"]', '');
  await page.fill('input[name="q"]', 'sync_mode_ip_address=disabled');
  assert.equal(await page.locator('li[data-op-id]').count(), 1);
  await closePage(page);
});

test('a mode override re-plans at once: counts change, stages become skipped, the time is shown', async () => {
  const before = planner.plan(sample());
  const input = sample();
  input.endpoint.sync_mode_vm_interface = 'disabled';
  const changed = planner.plan(input);
  assert.notEqual(changed.summary.create, before.summary.create);
  const page = await openPage();
  await loadSample(page);
  await assertCountsShown(page, before);
  assert.equal(await text(page, '[data-stage-run="vm-interfaces"]'), 'runs');
  await page.selectOption('select[name="sync_mode_vm_interface"]', 'disabled');
  await page.waitForFunction((n) => document.querySelector('[data-total="create"]')?.textContent === String(n), changed.summary.create);
  await assertCountsShown(page, changed);
  for (const stage of ['vm-interfaces', 'ip-addresses']) {
    const info = changed.stages.find((s) => s.stage === stage);
    assert.equal(info.run, false);
    assert.equal(await text(page, `[data-stage-run="${stage}"]`), 'skipped');
    assert.equal(await text(page, `[data-stage-reason="${stage}"]`), info.reason);
  }
  assert.equal(await text(page, '[data-effective="mac"]'), 'disabled');
  assert.equal(await text(page, '.pbx-modes tr[data-resource="mac"] td:last-child'), 'follows vm_interface');
  assert.equal(await text(page, '[data-source="vm_interface"]'), 'endpoint');
  const times = await page.$$eval('[data-role="plan-time"]', (els) => els.map((el) => el.textContent));
  assert.ok(times.length >= 1);
  for (const t of times) assert.match(t, /^Re-planned in \d+(\.\d+)? ms$/);
  assert.equal(await text(page, '[data-delta="create"]'), `−${before.summary.create - changed.summary.create} vs before`);
  // Back to what the snapshot says.
  await page.getByRole('button', { name: 'Reset overrides' }).click();
  await page.waitForFunction((n) => document.querySelector('[data-total="create"]')?.textContent === String(n), before.summary.create);
  await assertCountsShown(page, before);
  assert.equal(await page.locator('select[name="sync_mode_vm_interface"]').inputValue(), '');
  await closePage(page);
});

test('a hostile VM name is shown as text: no element, no script, no dialog', async () => {
  const input = sample();
  const resource = input.proxmox['/cluster/resources'].find((r) => r.id === 'qemu/101');
  resource.name = HOSTILE;
  input.proxmox['/nodes/pve1/qemu/101/config'].name = HOSTILE;
  // And in a Proxmox error message, which the planner quotes in a warning.
  input.proxmox['/nodes/pve1/qemu/101/agent/network-get-interfaces'] = { error: { status: 500, message: HOSTILE } };
  const plan = planner.plan(input);
  assert.equal(plan.warnings.length, 1);
  assert.ok(plan.warnings[0].message.includes(HOSTILE));
  const vm = plan.operations.find((op) => op.id === 'virtual-machines:virtualization.virtualmachine:qemu/101');
  assert.equal(vm.fields.name, HOSTILE, 'the planner passes the name through');
  const page = await openPage();
  await page.setInputFiles('input[type="file"]', {
    name: 'hostile.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(input)),
  });
  await page.waitForSelector('[data-total="create"]');
  await assertCountsShown(page, plan);
  const li = page.locator(`li[data-op-id="${vm.id}"]`);
  assert.equal(await li.locator('.pbx-op-key').textContent(), vm.key);
  assert.ok(vm.key.includes(HOSTILE));
  await li.locator('summary').click();
  assert.equal(await li.locator('.pbx-fields tr[data-field="name"] td').textContent(), HOSTILE);
  // Open every operation that mentions the name, so every place it is rendered is rendered.
  for (const op of plan.operations.filter((o) => JSON.stringify(o).includes('onerror'))) {
    const details = page.locator(`li[data-op-id="${op.id}"] > details`);
    if (!(await details.evaluate((d) => d.open))) await details.locator('summary').click();
  }
  assert.equal(await text(page, '.pbx-warnings h2'), 'Warnings (1)');
  assert.equal(await text(page, '.pbx-warnings li > strong'), plan.warnings[0].code);
  assert.ok((await text(page, '.pbx-warnings li')).includes(plan.warnings[0].message));
  await page.waitForTimeout(300); // time for an onerror to fire, were there an <img>
  assert.equal(await page.evaluate(() => document.querySelectorAll('img').length), 0, 'no img element');
  const body = await page.evaluate(() => document.body.textContent);
  assert.ok(body.includes(HOSTILE), 'the name appears literally');
  assert.ok(await page.getByText(HOSTILE, { exact: true }).count() >= 1);
  await closePage(page); // asserts no dialog fired
});

test('drag and drop a snapshot; bad input shows an error, not a stale plan', async () => {
  const page = await openPage();
  const drop = (name, content) => page.evaluate(([n, c]) => {
    const dt = new DataTransfer();
    dt.items.add(new File([c], n, { type: 'application/json' }));
    document.querySelector('.pbx-drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, [name, content]);
  await drop('snapshot.json', sampleText);
  await page.waitForSelector('[data-total="create"]');
  await assertCountsShown(page, planner.plan(sample()));
  assert.match(await text(page, '.pbx-meta'), /Input: snapshot\.json/);
  await drop('broken.json', '{"settings": ');
  await page.waitForFunction(() => !document.querySelector('.pbx-error').hidden);
  assert.match(await text(page, '.pbx-error'), /^broken\.json is not valid JSON/);
  assert.equal(await page.locator('.pbx-results').isHidden(), true, 'no stale plan under the error');
  await drop('snapshot.json', sampleText);
  await page.waitForSelector('[data-total="create"]');
  assert.equal(await page.locator('.pbx-error').isHidden(), true, 'the error goes with a good input');
  const bad = sample();
  delete bad.proxmox['/cluster/status'];
  await drop('incomplete.json', JSON.stringify(bad));
  await page.waitForFunction(() => /missing-field/.test(document.querySelector('.pbx-error').textContent));
  assert.match(await text(page, '.pbx-error'), /missing-field at \$\.proxmox\["\/cluster\/status"\]/);
  assert.equal(await page.locator('.pbx-results').isHidden(), true, 'no plan is shown for a refused input');
  await closePage(page);
});

test('the download button saves the plan JSON the core gives (overrides included)', async () => {
  const page = await openPage();
  await loadSample(page);
  const save = async (name) => {
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download plan JSON' }).click(),
    ]);
    assert.equal(download.suggestedFilename(), 'proxbox-plan-lab.json');
    const file = join(downloads, name);
    await download.saveAs(file);
    return readFileSync(file, 'utf8');
  };
  const first = await save('plan.json');
  assert.equal(first, `${planner.planJson(sampleText)}\n`, 'what `proxbox-planner plan --json` prints');
  assert.deepEqual(JSON.parse(first), planner.plan(sample()));
  await page.selectOption('select[name="sync_mode_storage"]', 'disabled');
  const input = sample();
  input.endpoint.sync_mode_storage = 'disabled';
  const second = await save('plan-storage.json');
  assert.deepEqual(JSON.parse(second), planner.plan(input));
  assert.equal(JSON.parse(second).stages.find((s) => s.stage === 'storage').run, false);
  await closePage(page);
});

test('embedding: the planner module as a parameter and live data through an adapter', async () => {
  const page = await openPage();
  const result = await page.evaluate(async (input) => {
    const { createPreview } = await import('/preview/preview.js');
    const planner = await import('/pkg/proxbox_planner.js');
    const el = document.createElement('section');
    el.id = 'embedded';
    document.body.append(el);
    let received;
    const preview = window.embeddedPreview = await createPreview(el, {
      planner,
      adapter: { label: 'NetBox + Proxmox', loadInput: async (ctx) => { received = ctx; window.adapterContext = ctx; return input; } },
    });
    return {
      hasSampleButton: el.textContent.includes('bundled sample'),
      buttonText: el.querySelector('button').textContent,
      plannerGiven: preview.planner === planner,
      calledEarly: received !== undefined,
    };
  }, sample());
  assert.deepEqual(result, {
    hasSampleButton: false, buttonText: 'Load live data (NetBox + Proxmox)', plannerGiven: true, calledEarly: false,
  });
  await page.locator('#embedded').getByRole('button', { name: 'Load live data (NetBox + Proxmox)' }).click();
  await page.waitForSelector('#embedded [data-total="create"]');
  const plan = planner.plan(sample());
  const shown = await totals(page, '#embedded');
  for (const a of ACTIONS) assert.equal(shown[a], plan.summary[a]);
  assert.match(await text(page, '#embedded .pbx-meta'), /Input: NetBox \+ Proxmox/);
  assert.equal(await page.evaluate(() => typeof window.adapterContext.planner.discover), 'function',
    'the adapter is given the planner (discover lists what to fetch)');
  // The controller: an override the planner refuses is shown, undone, and the plan stays.
  const refused = await page.evaluate(async () => {
    const { createPreview } = await import('/preview/preview.js');
    const planner = await import('/pkg/proxbox_planner.js');
    const el = document.createElement('section');
    document.body.append(el);
    const preview = await createPreview(el, { planner });
    const planned = preview.setInput(null, 'nothing');
    return { planned, error: el.querySelector('.pbx-error').textContent, hidden: el.querySelector('.pbx-results').hidden };
  });
  assert.deepEqual(refused, { planned: false, error: 'nothing: the snapshot must be a JSON object (the planner input).', hidden: true });
  const undone = await page.evaluate(() => {
    const el = document.getElementById('embedded');
    return { ok: window.embeddedPreview.setOverride('vm', 'sometimes'), error: el.querySelector('.pbx-error').textContent,
      endpointVm: window.embeddedPreview.input.endpoint.sync_mode_vm, select: el.querySelector('select[name="sync_mode_vm"]').value,
      create: el.querySelector('[data-total="create"]').textContent };
  });
  assert.match(undone.error, /^The planner refused the changed input: unknown-sync-mode at \$\.endpoint\.sync_mode_vm: /);
  assert.deepEqual({ ...undone, error: undefined },
    { ok: false, error: undefined, endpointVm: null, select: '', create: String(plan.summary.create) });
  await closePage(page);
});
