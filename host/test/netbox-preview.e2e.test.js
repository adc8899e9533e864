// Preview sync inside NetBox, in real Chromium, against REAL servers this file starts and
// stops: NetBox 4.7.3 with netbox-proxbox 0.0.29.post6 and our plugin (proxbox_planner_netbox,
// from its source tree: host/test/servers/netbox.sh's NETBOX_EXTRA_PLUGINS) and its job
// runner `netbox rqworker`, fakepve with the sample cluster (one VM named like an HTML
// attack), and `proxbox-planner serve` as the plugin's FastAPI backend (the plugin adopts its
// API key). The browser logs in like an operator; nothing here is a stand-in.
//
// PBX_SCREENSHOT_DIR=dir: also saves the tab's screenshots (light and dark) there.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as planner from 'proxbox-planner';
import { NetBoxClient } from '../netbox.js';
import { diffPlans } from '../preview/plan-diff.js';
import {
  createLimitedToken, installFakepve, installNetbox, pveWrite as pveWriteTo, runCli, SAMPLE_SEED, serverEnv, startFakepve, startNetboxWithPlanner, startServe,
  stopFakepve, stopNetbox,
} from '../test-support/servers.js';
import { launchBrowser, watchedPage } from '../test-support/browser.js';
import { assertCountsShown, expand, openAllNodes, openModes, stageCells, text } from '../test-support/preview-page.js';

const MINUTE = 60 * 1000;
const PLUGIN = '/api/plugins/proxbox';
const VMS = '/api/virtualization/virtual-machines/';
const JOURNAL = '/api/extras/journal-entries/';
const HOSTILE = '<img src=x onerror=alert(1)>';
const HOSTILE_VMID = 102;
const CHANGES = ['create', 'update', 'delete'];

let nb; // netbox.env
let pve; // fakepve.env
let netbox; // NetBoxClient (v2 token): what the test itself reads and configures
let serve; // {url, process, output}
let work; // temporary files: the seed, serve's state, screenshots' scratch
let browser; // the admin's Chromium
let endpointId; // the plugin's ProxmoxEndpoint
const key = randomBytes(36).toString('base64url');

const api = async (method, path, body) => (await netbox.request(method, path, body === undefined ? {} : { body })).data;
const changes = (plan) => CHANGES.reduce((n, a) => n + plan.summary[a], 0);
const tabPath = () => `/plugins/proxbox/endpoints/proxmox/${endpointId}/sync-preview/`;

/** The sample cluster with one VM whose name is markup. Proxmox refuses such a name through
 *  its API, so it comes from the seed (as an imported or restored guest could carry it). */
function hostileSeed() {
  const seed = JSON.parse(readFileSync(SAMPLE_SEED, 'utf8'));
  const guest = seed.guests.find((g) => g.vmid === HOSTILE_VMID);
  guest.name = HOSTILE;
  guest.config.name = HOSTILE;
  const file = join(work, 'hostile.seed.json');
  writeFileSync(file, JSON.stringify(seed));
  return file;
}

/** serve as the plugin's backend, and the NetBox and Proxmox endpoints, all through the plugin's REST API. */
async function configurePlugin() {
  const port = Number(new URL(serve.url).port);
  await api('POST', `${PLUGIN}/endpoints/fastapi/`, {
    name: 'proxbox-planner', domain: 'localhost', port, use_https: false, verify_ssl: false, enabled: true, token: key,
  });
  const [tokenKey, tokenSecret] = nb.NETBOX_TOKEN_V2.slice('nbt_'.length).split('.');
  const nbEndpoint = await api('POST', `${PLUGIN}/endpoints/netbox/`, {
    name: 'this NetBox', domain: 'localhost', port: Number(new URL(nb.NETBOX_URL).port), verify_ssl: false,
    token_version: 'v2', token_key: tokenKey, token_secret: tokenSecret, enabled: true,
  });
  const pxEndpoint = await api('POST', `${PLUGIN}/endpoints/proxmox/`, {
    name: 'lab', mode: 'cluster', domain: 'localhost', port: Number(pve.PVE_PORT), token_name: 'proxbox', token_value: pve.PVE_TOKEN_SECRET, verify_ssl: true,
  });
  for (const [kind, id] of [['netbox', nbEndpoint.id], ['proxmox', pxEndpoint.id]]) {
    const review = await api('GET', `${PLUGIN}/endpoints/${kind}/${id}/connection-authority/`);
    await api('PUT', `${PLUGIN}/endpoints/${kind}/${id}/connection-authority/`, { target_fingerprint: review.target_fingerprint });
  }
  return pxEndpoint.id;
}

const pveWrite = (method, path, form) => pveWriteTo(pve, method, path, form);

/** `proxbox-planner plan --json` against the same NetBox and Proxmox (v1 token, CA file). */
async function cliPlan() {
  const r = await runCli(['plan', '--json'], { ...serverEnv(nb, pve), PROXBOX_ENDPOINT: String(endpointId) });
  assert.equal(r.code, 0, `plan --json: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** A Chromium logged in to NetBox as `username`. */
async function loggedIn(username, password) {
  const b = await launchBrowser();
  const page = await b.context.newPage();
  await page.goto(`${nb.NETBOX_URL}/login/`);
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', password);
  await Promise.all([page.waitForURL((url) => !url.pathname.startsWith('/login')), page.click('button[type="submit"]')]);
  await page.close();
  return b;
}

/** Opens a page of this NetBox in a watched tab; resolves to [page, response]. */
async function open(context, path) {
  const page = await watchedPage(context, nb.NETBOX_URL);
  const response = await page.goto(`${nb.NETBOX_URL}${path}`);
  return [page, response];
}

/** Waits for the preview's plan (or its error), fails with what the page says otherwise. */
async function planShown(page) {
  await page.waitForFunction(
    () => document.querySelector('[data-total="create"]') || !/** @type {HTMLElement} */ (document.querySelector('.pbx-error'))
      ?.hidden, null, { timeout: 3 * MINUTE }
  );
  const error = await page.locator('.pbx-error').evaluate((el) => (el.hidden ? '' : el.textContent));
  assert.equal(error, '', 'the preview shows no error');
  return page.evaluate(() => ({ plan: /** @type {any} */ (window).proxboxPreview.plan, input: /** @type {any} */ (window).proxboxPreview.input }));
}

/** The plan shown is current and complete; Apply runs and ends; resolves to the job. */
async function applyFromPage(page) {
  await page.locator('button[data-action="apply"]').click();
  await page.waitForSelector(
    '.pbx-apply[data-apply-state="done"], .pbx-apply[data-apply-state="failed"], .pbx-apply[data-apply-state="refused"]',
    { timeout: 10 * MINUTE }
  );
  const state = await page.locator('.pbx-apply').getAttribute('data-apply-state');
  const message = await text(page, '[data-apply-message]');
  const href = await page.locator('.pbx-apply [data-job-link]').getAttribute('href').catch(() => null);
  const id = Number(/\/jobs\/(\d+)\//.exec(href ?? '')?.[1]);
  const job = Number.isInteger(id) ? await api('GET', `/api/core/jobs/${id}/`) : null;
  return { state, message, job, log: (job?.log_entries ?? []).map((e) => `${e.level} ${e.message}`).join('\n') };
}

/** The tab in NetBox's light and dark mode, a node and one of its VMs opened. */
async function screenshots(page, dir) {
  await page.setViewportSize({ width: 1280, height: 1500 });
  for (const mode of ['light', 'dark']) {
    await page.evaluate((m) => localStorage.setItem('netbox-color-mode', m), mode);
    await page.reload();
    await planShown(page);
    const node = page.locator('.pbx-tree > details[data-node-model="dcim.device"]').first();
    await expand(node);
    const vm = node.locator(':scope > .pbx-node-body > details[data-node-model="virtualization.virtualmachine"]').first();
    await expand(vm);
    await vm.locator(':scope > .pbx-node-body > .pbx-ops > li > details > summary').first().click({ position: { x: 8, y: 8 } });
    await page.screenshot({ path: join(dir, `sync-preview-${mode}.png`) });
  }
  await page.evaluate(() => localStorage.removeItem('netbox-color-mode'));
  await page.setViewportSize({ width: 1280, height: 900 });
}

async function closeWatched(page) {
  await page.close();
  assert.deepEqual(page.seen.errors, [], 'no page errors, no CSP violation');
  assert.deepEqual(page.seen.dialogs, [], 'no dialog');
  assert.deepEqual(page.seen.foreign, [], 'nothing fetched from anywhere but this NetBox');
}

describe('Preview sync in NetBox 4.7.3 + netbox-proxbox 0.0.29.post6 + our plugin, with serve, rqworker and fakepve', { timeout: 60 * MINUTE }, () => {
  before(async () => {
    await installNetbox();
    await installFakepve();
    work = mkdtempSync(join(tmpdir(), 'pbp-preview-e2e-'));
    [pve, nb] = await Promise.all([startFakepve(hostileSeed()), startNetboxWithPlanner({ rqworker: true })]);
    netbox = new NetBoxClient({ url: nb.NETBOX_URL, token: nb.NETBOX_TOKEN_V2, timeout: 60000 });
    serve = await startServe({ stateDir: join(work, 'serve'), pveCaFile: pve.PVE_CA_FILE });
    endpointId = await configurePlugin();
    browser = await loggedIn(nb.NETBOX_USERNAME, nb.NETBOX_PASSWORD);
  }, { timeout: 45 * MINUTE });

  after(async () => {
    await browser?.close();
    serve?.process.kill('SIGTERM');
    netbox?.close();
    await Promise.allSettled([stopNetbox(nb), stopFakepve(pve)]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('the "Sync preview" tab: the plan shown is `proxbox-planner plan --json` for the same live data', async () => {
    const [detail, detailResponse] = await open(browser.context, `/plugins/proxbox/endpoints/proxmox/${endpointId}/`);
    assert.equal(detailResponse.headers()['content-security-policy'] ?? '', '', "NetBox's own pages keep NetBox's (absent) policy");
    const tab = detail.locator('.nav-tabs a', { hasText: 'Sync preview' });
    assert.equal(await tab.getAttribute('href'), tabPath());
    await detail.close();

    const [page, response] = await open(browser.context, tabPath());
    const csp = response.headers()['content-security-policy'];
    const scriptSrc = csp.split(';').map((d) => d.trim()).find((d) => d.startsWith('script-src'));
    assert.match(scriptSrc, /^script-src 'self' 'wasm-unsafe-eval' 'sha256-/);
    assert.doesNotMatch(scriptSrc, /'unsafe-inline'|'unsafe-eval'/, 'scripts only from NetBox or by hash');
    assert.equal(await page.locator('.nav-tabs a.active').textContent().then((t) => t.trim()), 'Sync preview', "NetBox's own tabs, ours active");
    const { plan, input } = await planShown(page);
    // The page plans as the sync: the user of the token the Proxbox plugin gives the backend.
    const { data: syncUser } = await netbox.request('GET', '/api/authentication-check/');
    assert.deepEqual(input.sync_user, { id: syncUser.id, username: syncUser.username });
    const cli = await cliPlan();
    assert.ok(changes(cli) > 60, `a first sync creates the sample: ${JSON.stringify(cli.summary)}`);
    assert.deepEqual(plan.summary, cli.summary);
    assert.deepEqual(plan.operations, cli.operations, 'the same operations, op for op');
    await assertCountsShown(page, cli, input);
    // The browser held no secret: the input it planned from has none of them.
    const seen = JSON.stringify(input) + await page.content();
    for (const secret of [
      pve.PVE_TOKEN_SECRET, nb.NETBOX_TOKEN, nb.NETBOX_TOKEN_V2.split('.')[1], key,
    ]) assert.ok(!seen.includes(secret), 'no token in the page');
    if (process.env.PBX_SCREENSHOT_DIR) await screenshots(page, process.env.PBX_SCREENSHOT_DIR);
    await closeWatched(page);
  });

  test('an override in the tab re-plans in the browser and shows what appeared, vanished and changed', async () => {
    const [page] = await open(browser.context, tabPath());
    const { plan: before, input } = await planShown(page);
    await openModes(page);
    await page.selectOption('select[name="sync_mode_vm_interface"]', 'disabled');
    const overridden = { ...input, endpoint: { ...input.endpoint, sync_mode_vm_interface: 'disabled' } };
    const after = planner.plan(overridden);
    await page.waitForFunction((n) => document.querySelector('[data-total="create"]')?.textContent === String(n), after.summary.create);
    const diff = diffPlans(before, after);
    assert.ok(diff.vanished.length > 0);
    const shown = await page.$$eval('.pbx-diff [data-diff]', (parts) => Object.fromEntries(parts.map((part) =>
      [part.dataset.diff, [...part.querySelectorAll('[data-diff-op]')].map((li) => li.dataset.diffOp).sort()])));
    const parts = /** @type {[string, any[]][]} */ ([['appeared', diff.appeared], ['vanished', diff.vanished], ['changed', diff.changed.map((c) => c.after)]]);
    assert.deepEqual(shown, Object.fromEntries(parts
      .filter(([, ops]) => ops.length).map(([kind, ops]) => [kind, ops.map((op) => op.id).sort()])));
    assert.equal(await page.locator('button[data-action="apply"]').isDisabled(), true, 'a what-if is not applied');
    await closeWatched(page);
  });

  test('a VM named like markup (from Proxmox) is text inside NetBox: no element, no script', async () => {
    const [page] = await open(browser.context, tabPath());
    await planShown(page);
    await openAllNodes(page, '#proxbox-preview');
    const names = await page.locator('#proxbox-preview .pbx-node-name').allTextContents();
    assert.ok(names.includes(HOSTILE), 'the VM is shown by its name');
    await page.$$eval(`#proxbox-preview li[data-op-id*="qemu/${HOSTILE_VMID}"] > details`, (all) => { for (const d of all) d.open = true; });
    await page.waitForFunction(
      (vmid) => [...document.querySelectorAll(`#proxbox-preview li[data-op-id*="qemu/${vmid}"] > details`)].every((d) => d.querySelector('.pbx-op-body')),
      HOSTILE_VMID
    );
    assert.ok(await page.locator('#proxbox-preview').getByText(HOSTILE, { exact: true }).count() >= 2);
    await page.waitForTimeout(300); // time for an onerror to fire, were there an <img>
    assert.equal(await page.locator('#proxbox-preview img').count(), 0, 'no img element in the preview');
    await closeWatched(page); // no dialog, no error
  });

  test('Apply: refused while the plan shown is stale; then the Proxbox sync job runs the previewed stages and the re-plan is empty', async () => {
    const [page] = await open(browser.context, tabPath());
    const { plan } = await planShown(page);
    const stages = ['bootstrap', ...plan.stages.map((s) => s.stage)].filter((s) => CHANGES.some((a) => plan.summary.stages[s]?.[a]));
    // Proxmox changes after the plan was shown: Apply checks first, and refuses.
    await pveWrite('PUT', '/nodes/pve1/qemu/100/config', { description: 'changed while the preview was open' });
    const refused = await applyFromPage(page);
    assert.equal(refused.state, 'refused');
    assert.match(refused.message, /changed since this plan was shown/);
    assert.equal(refused.job, null, 'no job was started');
    assert.equal(
      await page.locator('.pbx-diff [data-diff-op="virtual-machines:virtualization.virtualmachine:qemu/100"]').count(), 1,
      'the diff names what moved'
    );
    // The plan shown is current now.
    const applied = await applyFromPage(page);
    assert.equal(applied.state, 'done', `${applied.message}\n${applied.log.slice(-3000)}`);
    assert.equal(applied.job.status.value, 'completed');
    assert.equal(applied.job.name, 'Proxbox Sync: Preview sync');
    assert.deepEqual(applied.job.data.proxbox_sync.params.proxmox_endpoint_ids.map(Number), [endpointId]);
    const expectedTypes = [...new Set(stages.filter((s) => s !== 'bootstrap').map((s) => (s === 'vm-templates' ? 'virtual-machines' : s)))];
    assert.deepEqual([...applied.job.data.proxbox_sync.params.sync_types].sort(), [...expectedTypes].sort());
    assert.match(applied.log, /Starting Proxbox sync stages: /);
    const left = await page.evaluate(() => /** @type {any} */ (window).proxboxPreview.plan.operations.filter((op) => op.action !== 'skip'));
    assert.match(
      applied.message, /NetBox now matches Proxmox for this plan: nothing left to do\.$/,
      left.map((op) => `${op.action} ${op.id}: ${JSON.stringify(op.changes)}`).join('\n')
    );
    for (const a of CHANGES) assert.equal(await text(page, `[data-total="${a}"]`), '0', a);
    const cells = await stageCells(page);
    const reasons = await page.$$eval('[data-stage-reason]', (els) => Object.fromEntries(els.map((el) => [el.dataset.stageReason, el.textContent])));
    for (const s of plan.stages.filter((x) => x.run)) {
      assert.match(reasons[s.stage], /^nothing to do/, s.stage);
      if (cells[s.stage].unchanged) assert.ok(reasons[s.stage].includes(`: ${cells[s.stage].unchanged} unchanged`), `${s.stage}: ${reasons[s.stage]}`);
    }
    assert.equal(changes(await cliPlan()), 0, 'and the CLI sees nothing left either');
    await closeWatched(page);
  });

  test('a VM\'s "Preview sync": only that VM is planned and applied', async () => {
    await pveWrite('PUT', '/nodes/pve1/qemu/100/config', { name: 'web01-renamed' });
    await pveWrite('PUT', '/nodes/pve1/qemu/101/config', { name: 'db01-renamed' });
    const [web01] = await netbox.list(VMS, { query: { name: 'web01' } });
    const [vmPage] = await open(browser.context, `/virtualization/virtual-machines/${web01.id}/`);
    await Promise.all([vmPage.waitForURL(/\/sync-preview\/$/), vmPage.getByRole('link', { name: 'Preview sync' }).click()]);
    const { plan, input } = await planShown(vmPage);
    assert.deepEqual(input.subset, { netbox_vm_ids: [web01.id] });
    assert.deepEqual(plan, { ...planner.plan(input), origin: plan.origin }, 'what the core plans for that subset');
    const ids = plan.operations.filter((op) => op.action !== 'skip').map((op) => op.id);
    assert.ok(ids.includes('virtual-machines:virtualization.virtualmachine:qemu/100'), 'the rename is planned');
    assert.deepEqual(ids.filter((id) => !id.includes(':qemu/100')), [], `only web01 (and its sync-state record) changes: ${ids.join(', ')}`);
    const applied = await applyFromPage(vmPage);
    assert.equal(applied.state, 'done', `${applied.message}\n${applied.log.slice(-3000)}`);
    assert.deepEqual(applied.job.data.proxbox_sync.params.netbox_vm_ids.map(Number), [web01.id]);
    assert.equal((await netbox.get(VMS, web01.id)).name, 'web01-renamed');
    assert.equal((await netbox.list(VMS, { query: { name: 'db01' } })).length, 1, 'the other VM is untouched');
    await closeWatched(vmPage);
    // The VM named like markup, on its own preview page: text in NetBox's header and in ours.
    const [hostile] = await netbox.list(VMS, { query: { name: HOSTILE } });
    assert.equal(hostile?.name, HOSTILE);
    const [hostilePage] = await open(browser.context, `/virtualization/virtual-machines/${hostile.id}/sync-preview/`);
    await planShown(hostilePage);
    assert.equal(await text(hostilePage, '#proxbox-preview .pbx-input h2'), `Sync preview for ${HOSTILE}`);
    assert.ok((await hostilePage.title()).includes(HOSTILE), "NetBox's page title, escaped by NetBox");
    await hostilePage.waitForTimeout(300);
    assert.equal(await hostilePage.locator('#proxbox-preview img').count(), 0);
    await closeWatched(hostilePage);
    // The endpoint's tab still has db01's rename to do.
    const [page] = await open(browser.context, tabPath());
    const { plan: rest } = await planShown(page);
    const left = rest.operations.filter((op) => op.action !== 'skip').map((op) => op.id);
    assert.ok(left.includes('virtual-machines:virtualization.virtualmachine:qemu/101'), left.join(', '));
    assert.deepEqual(left.filter((id) => id.startsWith('virtual-machines:') && !id.includes(':qemu/101')), [], 'no other VM left to change');
    await closeWatched(page);
  });

  test('permissions: no tab without view on the endpoint; no Apply without the permission to run Proxbox syncs', async () => {
    const everything = (await netbox.list('/api/core/object-types/')).map((t) => `${t.app_label}.${t.model}`);
    const user = async (username, objectTypes) => {
      const password = randomBytes(12).toString('hex');
      const created = await api('POST', '/api/users/users/', { username, password });
      await api('POST', '/api/users/permissions/', { name: `${username} may view`, object_types: objectTypes, actions: ['view'], users: [created.id] });
      return loggedIn(username, password);
    };
    const viewer = await user('viewer', everything);
    const outsider = await user('outsider', everything.filter((t) => t !== 'netbox_proxbox.proxmoxendpoint'));
    try {
      // May view the endpoint, may not add jobs: the tab and the plan, Apply off with the reason.
      const [page] = await open(viewer.context, tabPath());
      await planShown(page);
      const apply = page.locator('button[data-action="apply"]');
      assert.equal(await apply.isDisabled(), true);
      assert.equal(await apply.getAttribute('title'), 'Applying needs the permission to run Proxbox syncs (add Job).');
      const direct = await page.evaluate(async ([url, id]) => {
        const config = JSON.parse(document.getElementById('proxbox-preview-config').textContent);
        const res = await fetch(url, {
          method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRFToken': config.csrf_token },
          body: JSON.stringify({ endpoint_id: id, stages: ['devices'] }),
        });
        return [res.status, await res.json()];
      }, ['/plugins/proxbox-planner/apply/', endpointId]);
      assert.deepEqual(direct, [403, { error: { status: 403, message: 'Applying needs the permission to run Proxbox syncs (add Job).' } }]);
      // Chromium logs that refused request as a console error: the one error this page may have.
      page.seen.errors = page.seen.errors.filter((e) => !/status of 403 \(Forbidden\)/.test(e));
      await closeWatched(page);
      // May not view the endpoint: no page, no tab, no button, no Proxmox answers.
      const vm = (await netbox.list(VMS)).find((v) => v.name !== HOSTILE);
      const [vmPage] = await open(outsider.context, `/virtualization/virtual-machines/${vm.id}/`);
      assert.equal(await vmPage.getByRole('link', { name: 'Preview sync' }).count(), 0, 'no Preview sync button');
      const read = await vmPage.evaluate(async (id) => {
        const res = await fetch('/plugins/proxbox-planner/proxmox/', {
          method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRFToken': /** @type {any} */ (window).CSRF_TOKEN },
          body: JSON.stringify({ endpoint_id: id, paths: ['/cluster/status'] }),
        });
        return res.status;
      }, endpointId);
      assert.equal(read, 404);
      await vmPage.close();
      for (const path of [`/plugins/proxbox/endpoints/proxmox/${endpointId}/`, tabPath()]) {
        const [p, response] = await open(outsider.context, path);
        // NetBox answers 403 to a user without the model's view permission (404: not among the objects one may view).
        assert.ok([403, 404].includes(response.status()), `${path}: HTTP ${response.status()}`);
        assert.equal(await p.locator('.nav-tabs a', { hasText: 'Sync preview' }).count(), 0);
        await p.close();
      }
    } finally {
      await Promise.allSettled([viewer.close(), outsider.close()]);
    }
  });

  test('a field an operator edited that Proxmox changed too: both sides in the tab; "Keep NetBox\'s for good" records it and it is never asked again',
    async () => {
    const edits = new Set(['virtualization.virtualmachine']);
    const alice = new NetBoxClient({
      url: nb.NETBOX_URL, token: await createLimitedToken(netbox, 'alice', { view: (t) => edits.has(t), write: (t) => edits.has(t) }),
      timeout: 60000,
    });
    const [state] = (await netbox.list('/api/plugins/proxbox/sync-state/virtual-machines/')).filter((r) => r.proxmox_vm_id === 103);
    const vmId = state.virtual_machine.id;
    const synced = (await netbox.get(VMS, vmId)).description;
    await alice.request('PATCH', `${VMS}${vmId}/`, { body: { description: 'Jump host: ask #ops before patching' } });
    alice.close();
    await pveWrite('PUT', '/nodes/pve3/qemu/103/config', { description: 'Windows Server 2025 jump host' });
    const id = 'virtual-machines:virtualization.virtualmachine:qemu/103@description';

    const [page] = await open(browser.context, tabPath());
    const { plan } = await planShown(page);
    assert.deepEqual(plan.conflicts.filter((c) => c.kind === 'operator-edited').map((c) => [c.id, c.changed_by, c.resolution]), [[id, 'alice', 'keep']]);
    const row = page.locator(`tr[data-field-conflict="${id}"]`);
    assert.match(await row.locator('[data-side="netbox"]').textContent(), /^Jump host: ask #ops before patchingalice, \d{4}-/);
    assert.equal(await row.locator('[data-side="proxmox"]').textContent(), 'Windows Server 2025 jump host');
    assert.equal(await row.locator('[data-side="base"]').textContent(), synced);
    await row.locator('button[data-choice="keep-netbox"]').click();
    await page.waitForFunction(
      () => /^Kept NetBox's description; re-planned/.test(document.querySelector('.pbx-status')?.textContent ?? ''), null, { timeout: 2 * MINUTE },
    );
    const [record] = await netbox.list(JOURNAL, { query: { assigned_object_type: 'virtualization.virtualmachine', assigned_object_id: vmId } });
    assert.match(record.comments, /\nkeep-netbox: description$/);
    const [signedIn] = await netbox.list('/api/users/users/', { query: { username: nb.NETBOX_USERNAME } });
    assert.equal(record.created_by, signedIn.id, 'written as the signed-in user');
    const after = await page.evaluate(() => /** @type {any} */ (window).proxboxPreview.plan);
    assert.equal(await page.locator(`tr[data-field-conflict="${id}"]`).count(), 0, 'not asked again');
    assert.equal(
      after.operations.find((op) => op.id === id || op.id === 'virtual-machines:virtualization.virtualmachine:qemu/103'), undefined,
      'no operation on its description'
    );
    assert.ok(after.summary.operator_owned >= 1);
    assert.equal((await cliPlan()).conflicts.filter((c) => c.kind === 'operator-edited').length, 0, 'and the CLI sees it kept too');
    assert.equal((await netbox.get(VMS, vmId)).description, 'Jump host: ask #ops before patching');
    await closeWatched(page);
  });
});
