// The browser "preview sync" page (host/preview/) in real headless Chromium: Debian's
// /usr/bin/chromium driven by playwright-core (test-support/browser.js), against
// host/preview/serve.js on a random loopback port.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as planner from 'proxbox-planner';
import { diffPlans } from '../preview/plan-diff.js';
import { launchBrowser, watchedPage } from '../test-support/browser.js';
import { ACTIONS, assertCountsShown, expand, openAllNodes, openModes, showView, text, totals } from '../test-support/preview-page.js';
import { memoryConflictInput } from '../test-support/sample-fakes.js';

const SERVE = fileURLToPath(new URL('../preview/serve.js', import.meta.url));
const sampleText = readFileSync(new URL('../../fixtures/sample/snapshot.json', import.meta.url), 'utf8');
const sample = () => JSON.parse(sampleText);
const HOSTILE = '<img src=x onerror=alert(1)>';

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
let browser;
let context;
let downloads;

before(async () => {
  server = await startServer();
  pageUrl = server.url;
  base = new URL(pageUrl).origin;
  downloads = mkdtempSync(join(tmpdir(), 'pbx-downloads-'));
  browser = await launchBrowser({ acceptDownloads: true });
  context = browser.context;
});

after(async () => {
  await browser?.close();
  if (server) {
    server.child.removeAllListeners('exit');
    server.child.kill('SIGTERM');
  }
  if (downloads) rmSync(downloads, { recursive: true, force: true });
});

/** A fresh tab on the page, recording errors, dialogs and any request off the server. */
async function openPage() {
  const page = await watchedPage(context, base);
  await page.goto(pageUrl);
  await page.waitForFunction(() => /ready/.test(document.querySelector('.pbx-status')?.textContent ?? ''));
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

/** The sample with `n` more guests like web01 (own vmid, name, MACs and addresses). */
function withExtraGuests(input, n) {
  const resources = input.proxmox['/cluster/resources'];
  const web01 = resources.find((r) => r.id === 'qemu/101');
  for (let i = 1; i <= n; i += 1) {
    const vmid = 150 + i;
    const swap = (value) => JSON.parse(JSON.stringify(value)
      .replaceAll('AA:01:', `E${i}:01:`).replaceAll('aa:01:', `e${i}:01:`)
      .replaceAll('10.0.20.11', `10.0.20.${100 + i}`).replaceAll('10.0.30.11', `10.0.30.${100 + i}`)
      .replaceAll('2001:db8:20::11', `2001:db8:20::${100 + i}`).replaceAll('0101', `0${vmid}`));
    resources.push({ ...web01, id: `qemu/${vmid}`, vmid, name: `web-extra-${i}` });
    // Every answer about web01 (config, agent, snapshots...), for the copy.
    for (const [path, answer] of Object.entries(input.proxmox)) {
      if (path.startsWith('/nodes/pve1/qemu/101/')) input.proxmox[path.replace('/qemu/101/', `/qemu/${vmid}/`)] = swap(answer);
    }
    input.proxmox[`/nodes/pve1/qemu/${vmid}/config`].name = `web-extra-${i}`;
  }
  return input;
}

test('the bundled sample, by NetBox object: the counts are plan.summary; names, units, field labels, references by name', async () => {
  const input = sample();
  const plan = planner.plan(input);
  const page = await openPage();
  await loadSample(page);
  await assertCountsShown(page, plan, input);
  assert.equal(await text(page, '.pbx-op-count'), `${plan.operations.length} operations.`);
  assert.equal(await page.locator('li[data-op-id]').count(), 0, 'groups start collapsed');
  // Modes (a collapsed card): one row per resource type of plan.modes.effective.
  await openModes(page);
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
  // The sample's one warning: its passthrough disk, which NetBox cannot hold without a size.
  assert.deepEqual(plan.warnings.map((w) => w.code), ['unsized-disk']);
  assert.equal(await text(page, '.pbx-warnings h2'), 'Warnings (1)');
  assert.match(await text(page, '[data-role="plan-time"]'), /^Planned in \d+(\.\d+)? ms$/);
  // A node holds its VMs; a VM reads by its name and NetBox's model name.
  const pve1 = page.locator('.pbx-tree > details[data-node-key="op:devices:dcim.device:pve1"]');
  await expand(pve1);
  const web01 = pve1.locator(':scope > .pbx-node-body > details[data-node-key="op:virtual-machines:virtualization.virtualmachine:qemu/101"]');
  assert.equal(await web01.locator(':scope > summary .pbx-node-name').textContent(), 'web01');
  assert.equal(await web01.locator(':scope > summary .pbx-model').textContent(), 'Virtual machine');
  assert.equal(await web01.locator(':scope > summary .pbx-new').textContent(), 'new');
  await expand(web01);
  const create = web01.locator('li[data-op-id="virtual-machines:virtualization.virtualmachine:qemu/101"]');
  await create.locator('summary').click();
  const cell = (field) => create.locator(`.pbx-fields tr[data-field="${field}"] td`).textContent();
  assert.equal(await create.locator('.pbx-fields tr[data-field="memory"] th').textContent(), 'Memory');
  assert.equal(await cell('memory'), '8 GiB');
  assert.equal(await cell('disk'), '32 GiB');
  assert.equal(await cell('name'), 'web01');
  assert.equal(await create.locator('.pbx-fields tr[data-field="vcpus"] th').textContent(), 'vCPUs');
  // A reference to an object the plan creates reads by name, and shows its operation.
  assert.equal(await create.locator('.pbx-fields tr[data-field="device"] .pbx-ref').textContent(), '→ Device pve1');
  await create.locator('.pbx-fields tr[data-field="device"] .pbx-ref').click();
  assert.equal(await page.locator('li[data-op-id="devices:dcim.device:pve1"] > details').evaluate((d) => d.open), true);
  assert.equal(
    await page.evaluate(() => /** @type {HTMLElement} */ (document.activeElement.closest('li[data-op-id]'))?.dataset.opId),
    'devices:dcim.device:pve1'
  );
  // Interfaces beneath their VM, MACs and IPs beneath their interface; the primary MAC by name.
  const eth0Key = 'op:vm-interfaces:virtualization.vminterface:lxc/200/eth0';
  const dns01 = pve1.locator(':scope > .pbx-node-body > details[data-node-key="op:virtual-machines:virtualization.virtualmachine:lxc/200"]');
  await expand(dns01);
  const eth0 = dns01.locator(`details[data-node-key="${eth0Key}"]`);
  await expand(eth0);
  assert.deepEqual(await eth0.locator(':scope > .pbx-node-body > details[data-node-key]').evaluateAll((els) => els.map((el) => el.dataset.nodeModel).sort()),
    ['dcim.macaddress', 'ipam.ipaddress', 'netbox_proxbox.proxboxvminterfacesyncstate']);
  const primaryMac = eth0.locator('li[data-op-id="ip-addresses:virtualization.vminterface:lxc/200/eth0/primary-mac"]');
  assert.equal(await primaryMac.locator('.pbx-change[data-field="primary_mac_address"] .pbx-change-field').textContent(), 'Primary MAC address');
  assert.equal(await primaryMac.locator('.pbx-change .pbx-ref').textContent(), '→ MAC address BC:24:11:CC:02:00 on eth0');
  // Filters work in both views: by action, by stage, and the text search (names included).
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
  await showView(page, 'stages');
  assert.equal(await page.locator('li[data-op-id]').count(), ips);
  await page.fill('input[name="q"]', 'BC:24:11:CC:02:00');
  assert.deepEqual(await page.locator('li[data-op-id]').evaluateAll((els) => els.map((el) => el.dataset.opId)),
    ['ip-addresses:dcim.macaddress:lxc/200/eth0/BC:24:11:CC:02:00']);
  await page.getByRole('button', { name: 'Clear filters' }).click();
  assert.equal(await page.locator('li[data-op-id]').count(), plan.operations.length, 'the stage view shows every operation');
  await closePage(page);
});

test('compact: over 100 operations, collapsed groups with counts, fit on two screens', async (t) => {
  const input = withExtraGuests(sample(), 2);
  const plan = planner.plan(input);
  assert.ok(plan.operations.length >= 100, `${plan.operations.length} operations`);
  const page = await openPage();
  await page.setInputFiles('input[type="file"]', { name: 'big.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(input)) });
  await page.waitForSelector('[data-total="create"]');
  await assertCountsShown(page, plan, input);
  const { height, viewport } = await page.evaluate(() => ({ height: document.documentElement.scrollHeight, viewport: window.innerHeight }));
  t.diagnostic(`${plan.operations.length} operations: the page is ${height} px tall (viewport ${viewport} px)`);
  assert.ok(height <= 2 * viewport, `${height} px for ${plan.operations.length} operations`);
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
  await openModes(page);
  await page.selectOption('select[name="sync_mode_ip_address"]', 'disabled');
  await page.waitForFunction((n) => document.querySelector('[data-total="skip"]')?.textContent === String(n), skips);
  await assertCountsShown(page, plan, input);
  assert.equal(await text(page, '[data-source="ip_address"]'), 'endpoint');
  await page.selectOption('select[name="action"]', 'skip');
  assert.equal(await page.locator('li[data-op-id]').count(), skips);
  const li = page.locator(`li[data-op-id="${skip.id}"]`);
  assert.equal(await li.locator('.pbx-op-reason').getAttribute('data-reason'), 'mode-disabled');
  assert.equal(await li.locator('.pbx-op-reason').textContent(), 'sync mode disabled');
  assert.equal(await li.locator('.pbx-op-detail').textContent(), skip.detail);
  assert.equal(skip.detail, 'sync_mode_ip_address=disabled');
  await page.selectOption('select[name="action"]', '');
  await page.fill('input[name="q"]', 'sync_mode_ip_address=disabled');
  assert.equal(await page.locator('li[data-op-id]').count(), 1);
  await closePage(page);
});

test('a mode override re-plans at once: counts change, stages become skipped, and the plan-to-plan diff names what moved', async () => {
  const before = planner.plan(sample());
  const input = sample();
  input.endpoint.sync_mode_vm_interface = 'disabled';
  const changed = planner.plan(input);
  assert.notEqual(changed.summary.create, before.summary.create);
  const page = await openPage();
  await loadSample(page);
  await assertCountsShown(page, before, sample());
  assert.equal(await page.locator('.pbx-diff').count(), 0, 'no diff before a re-plan');
  assert.equal(await text(page, '[data-stage-run="vm-interfaces"]'), 'runs');
  await openModes(page);
  await page.selectOption('select[name="sync_mode_vm_interface"]', 'disabled');
  await page.waitForFunction((n) => document.querySelector('[data-total="create"]')?.textContent === String(n), changed.summary.create);
  await assertCountsShown(page, changed, input);
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
  // The diff: exactly the operations that appeared, vanished or changed, by name.
  const diff = diffPlans(before, changed);
  const parts = /** @type {[string, any[]][]} */ ([['appeared', diff.appeared], ['vanished', diff.vanished], ['changed', diff.changed.map((c) => c.after)]]);
  const expected = Object.fromEntries(parts
    .filter(([, ops]) => ops.length).map(([kind, ops]) => [kind, ops.map((op) => op.id).sort()]));
  assert.ok(expected.vanished.length > 0);
  const shownDiff = await page.$$eval('.pbx-diff [data-diff]', (parts) => Object.fromEntries(parts.map((part) =>
    [part.dataset.diff, [...part.querySelectorAll('[data-diff-op]')].map((li) => li.dataset.diffOp).sort()])));
  assert.deepEqual(shownDiff, expected);
  assert.match(await text(page, '.pbx-diff h2'), /^Override sync_mode_vm_interface = disabled: what changed/);
  const gone = diff.vanished.find((op) => op.id === 'vm-interfaces:virtualization.vminterface:lxc/200/eth0');
  assert.ok(gone);
  assert.equal(await text(page, `.pbx-diff [data-diff-op="${gone.id}"] .pbx-op-key`), 'Interface eth0 on dns01', 'a vanished operation by name');
  // Back to what the snapshot says: the diff shows it all coming back.
  await page.getByRole('button', { name: 'Reset overrides' }).click();
  await page.waitForFunction((n) => document.querySelector('[data-total="create"]')?.textContent === String(n), before.summary.create);
  await assertCountsShown(page, before, sample());
  assert.equal(await page.locator('select[name="sync_mode_vm_interface"]').inputValue(), '');
  assert.equal(await page.locator('.pbx-diff [data-diff="appeared"] [data-diff-op]').count(), diff.vanished.length);
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
  const quoting = plan.warnings.filter((w) => w.message.includes(HOSTILE));
  assert.equal(quoting.length, 1);
  const vm = plan.operations.find((op) => op.id === 'virtual-machines:virtualization.virtualmachine:qemu/101');
  assert.equal(vm.fields.name, HOSTILE, 'the planner passes the name through');
  const page = await openPage();
  await page.setInputFiles('input[type="file"]', {
    name: 'hostile.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(input)),
  });
  await page.waitForSelector('[data-total="create"]');
  await assertCountsShown(page, plan, input);
  await openAllNodes(page);
  const node = page.locator(`details[data-node-key="op:${vm.id}"]`);
  assert.equal(await node.locator(':scope > summary .pbx-node-name').textContent(), HOSTILE);
  // Open every operation that mentions the name, so every place it is rendered is rendered.
  const mentioning = plan.operations.filter((o) => JSON.stringify(o).includes('onerror'));
  assert.ok(mentioning.length >= 1);
  for (const op of mentioning) {
    const details = page.locator(`li[data-op-id="${op.id}"] > details`);
    if (!(await details.evaluate((d) => d.open))) await details.locator('summary').click();
  }
  assert.equal(await page.locator(`li[data-op-id="${vm.id}"] .pbx-fields tr[data-field="name"] td`).textContent(), HOSTILE);
  await showView(page, 'stages');
  assert.ok((await page.locator(`li[data-op-id="${vm.id}"] .pbx-op-key`).textContent()).includes(HOSTILE));
  assert.equal(await text(page, '.pbx-warnings h2'), `Warnings (${plan.warnings.length})`);
  const shown = page.locator('.pbx-warnings li').filter({ hasText: 'onerror' });
  assert.equal(await shown.locator('strong').textContent(), quoting[0].code);
  assert.ok((await shown.textContent()).includes(quoting[0].message));
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
  await page.waitForFunction(() => !/** @type {HTMLElement} */ (document.querySelector('.pbx-error')).hidden);
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
  await openModes(page);
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
    const shared = /** @type {any} */ (window); // what later callbacks read back
    const preview = shared.embeddedPreview = await createPreview(el, {
      planner,
      adapter: { label: 'NetBox + Proxmox', loadInput: async (ctx) => { received = ctx; shared.adapterContext = ctx; return input; } },
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
  assert.equal(await page.evaluate(() => typeof /** @type {any} */ (window).adapterContext.planner.discover), 'function',
    'the adapter is given the planner (discover lists what to fetch)');
  // The controller: an override the planner refuses is shown, undone, and the plan stays.
  const refused = await page.evaluate(async () => {
    const { createPreview } = await import('/preview/preview.js');
    const planner = await import('/pkg/proxbox_planner.js');
    const el = document.createElement('section');
    document.body.append(el);
    const preview = await createPreview(el, { planner });
    const planned = preview.setInput(null, 'nothing');
    return { planned, error: el.querySelector('.pbx-error').textContent, hidden: /** @type {HTMLElement} */ (el.querySelector('.pbx-results')).hidden };
  });
  assert.deepEqual(refused, { planned: false, error: 'nothing: the snapshot must be a JSON object (the planner input).', hidden: true });
  const undone = await page.evaluate(() => {
    const el = document.getElementById('embedded');
    const { embeddedPreview } = /** @type {any} */ (window);
    return { ok: embeddedPreview.setOverride('vm', 'sometimes'), error: el.querySelector('.pbx-error').textContent,
      endpointVm: embeddedPreview.input.endpoint.sync_mode_vm, select: /** @type {HTMLSelectElement} */ (el.querySelector('select[name="sync_mode_vm"]')).value,
      create: el.querySelector('[data-total="create"]').textContent };
  });
  assert.match(undone.error, /^The planner refused the changed input: unknown-sync-mode at \$\.endpoint\.sync_mode_vm: /);
  assert.deepEqual({ ...undone, error: undefined },
    { ok: false, error: undefined, endpointVm: null, select: '', create: String(plan.summary.create) });
  await closePage(page);
});

test('apply through an adapter: refused with overrides or when live data moved since; runs the changed stages; re-plans after', async () => {
  const plan = planner.plan(sample());
  const changedStages = ['bootstrap', ...plan.stages.map((s) => s.stage)]
    .filter((stage) => ['create', 'update', 'delete'].some((a) => plan.summary.stages[stage]?.[a]));
  const page = await openPage();
  await page.evaluate(async (input) => {
    const { createPreview } = await import('/preview/preview.js');
    const planner = await import('/pkg/proxbox_planner.js');
    const el = document.createElement('section');
    el.id = 'applied';
    document.body.append(el);
    const shared = /** @type {any} */ (window); // what later callbacks read back and change
    // What "NetBox + Proxmox" answer next: the tests change it between the steps.
    shared.live = structuredClone(input);
    shared.applied = [];
    shared.reads = 0;
    shared.appliedPreview = await createPreview(el, {
      planner,
      adapter: {
        label: 'stub',
        loadInput: async () => { shared.reads += 1; return structuredClone(shared.live); },
        apply: async ({ stages, progress }) => {
          shared.applied.push(stages);
          progress({ message: 'Job #7 is running…', log: [{ level: 'info', message: 'stage devices' }], status: 'running' });
          // After the sync NetBox matches Proxmox: here, a plan with every mode disabled has nothing to write.
          for (const t of [
            'vm', 'vm_template', 'vm_interface', 'mac', 'ip_address', 'cluster', 'node', 'storage', 'sdn', 'sdn_bgp',
          ]) shared.live.endpoint[`sync_mode_${t}`] = 'disabled';
          return { ok: true, message: 'Job #7 completed.', status: 'completed' };
        },
      },
    });
    await shared.appliedPreview.loadFromAdapter();
  }, sample());
  const scope = '#applied';
  const apply = page.locator(`${scope} button[data-action="apply"]`);
  assert.equal(await apply.textContent(), `Apply ${plan.summary.create + plan.summary.update + plan.summary.delete} changes`);
  // A what-if override is not what the sync would do: Apply says so and is off.
  await openModes(page);
  await page.locator(`${scope} select[name="sync_mode_storage"]`).selectOption('disabled');
  assert.equal(await apply.isDisabled(), true);
  assert.match(await apply.getAttribute('title'), /what-if overrides/);
  await page.locator(`${scope} .pbx-modes button`, { hasText: 'Reset overrides' }).click();
  assert.equal(await apply.isDisabled(), false);
  // Proxmox moved since the plan was shown: Apply re-reads, finds a different plan, refuses.
  await page.evaluate(() => {
    const { live } = /** @type {any} */ (window);
    live.proxmox['/cluster/resources'].find((r) => r.id === 'qemu/101').name = 'web01-moved';
    live.proxmox['/nodes/pve1/qemu/101/config'].name = 'web01-moved';
  });
  await apply.click();
  await page.waitForSelector(`${scope} .pbx-apply[data-apply-state="refused"]`);
  assert.match(await text(page, `${scope} [data-apply-message]`), /changed since this plan was shown/);
  assert.deepEqual(await page.evaluate(() => /** @type {any} */ (window).applied), [], 'nothing applied');
  assert.ok(
    await page.locator(`${scope} .pbx-diff [data-diff="changed"] [data-diff-op="virtual-machines:virtualization.virtualmachine:qemu/101"]`).count() === 1
  );
  // The plan shown is now current: Apply runs the stages with changes, then re-plans.
  await page.locator(`${scope} button[data-action="apply"]`).click();
  await page.waitForSelector(`${scope} .pbx-apply[data-apply-state="done"]`);
  assert.deepEqual(await page.evaluate(() => /** @type {any} */ (window).applied), [changedStages]);
  assert.match(await text(page, `${scope} [data-apply-message]`), /^Job #7 completed\. NetBox now matches Proxmox for this plan: nothing left to do\.$/);
  for (const a of ['create', 'update', 'delete']) assert.equal(await text(page, `${scope} [data-total="${a}"]`), '0');
  assert.equal(await page.locator(`${scope} button[data-action="apply"]`).isDisabled(), true, 'nothing left to apply');
  assert.match(await text(page, `${scope} .pbx-diff h2`), /^Re-planned after the sync/);
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).reads), 4, 'load, check, check, after the sync');
  await closePage(page);
});

test('a field an operator edited that Proxmox changed too: both sides, who and when, last synced, what the plan does and how to choose', async () => {
  const { input, before } = await memoryConflictInput();
  const [conflict] = planner.plan(input).conflicts.filter((c) => c.kind === 'operator-edited');
  assert.ok(conflict, 'the input has a field conflict');
  const page = await openPage();
  const planned = await page.evaluate(async (doc) => {
    const { createPreview } = await import('/preview/preview.js');
    const el = document.createElement('section');
    el.id = 'edited';
    document.body.append(el);
    const preview = await createPreview(el, { planner: await import('/pkg/proxbox_planner.js') });
    return preview.setInput(doc, 'edited.json');
  }, input);
  assert.equal(planned, true);
  const row = page.locator(`#edited .pbx-field-conflicts tr[data-field-conflict="${conflict.id}"]`);
  await row.waitFor();
  const cells = await row.evaluate((tr) => Object.fromEntries([...tr.querySelectorAll('[data-side], [data-resolution]')]
    .map((td) => [td.dataset.side ?? 'plan', td.textContent])));
  assert.match(await row.locator('th').textContent(), /^qemu\/101 web01 · Memory/);
  // Sizes in NetBox's unit (MiB) read as sizes: Alice's 6000, Proxmox's doubled 8 GiB, the 8 GiB the sync wrote.
  assert.equal(before, 8192);
  assert.deepEqual([cells.netbox, cells.proxmox, cells.base], ['5.86 GiBalice, 2026-11-23T11:00:00.000000Z', '16 GiB', '8 GiB']);
  assert.equal(cells.plan, `NetBox's value is keptapply --accept-proxmox ${conflict.id} or --keep-netbox ${conflict.id}`);
  assert.match(await text(page, '#edited .pbx-field-conflicts h2'), /^Edited in NetBox and changed in Proxmox \(1\)$/);
  await closePage(page);
});
