// Reading the preview component in a page (Playwright): what it shows, compared with what
// the planner and the tree module compute in Node. Shared by the standalone page's tests
// and the tests inside NetBox.
import assert from 'node:assert/strict';
import { PlanCatalog } from '../preview/describe.js';
import { buildTree } from '../preview/tree.js';

export const ACTIONS = ['create', 'update', 'delete', 'skip', 'unchanged'];

export const totals = (page, scope = '') => page.$$eval(`${scope} [data-total]`, (els) =>
  Object.fromEntries(els.map((el) => [el.dataset.total, Number(el.textContent)])));

export const stageCells = (page) => page.$$eval('td[data-stage][data-action]', (els) => {
  const out = {};
  for (const el of els) (out[el.dataset.stage] ??= {})[el.dataset.action] = Number(el.textContent);
  return out;
});

export const text = (page, selector) => page.locator(selector).first().textContent();

/** The top-level groups shown by NetBox object: key -> counts per action. */
export const shownRoots = (page, scope = '') => page.$$eval(`${scope} .pbx-tree > details[data-node-key]`, (els) =>
  Object.fromEntries(els.map((el) => [el.dataset.nodeKey, Object.fromEntries([...el.querySelector(':scope > summary').querySelectorAll('[data-node-count]')]
    .map((b) => [b.dataset.nodeCount, Number.parseInt(b.textContent, 10)]))])));

/** The same, as the tree module computes it in Node from the plan and its input. */
export function expectedRoots(plan, input) {
  const roots = buildTree(new PlanCatalog(plan, input), plan.operations);
  return Object.fromEntries(
    roots.map((r) => [r.key, Object.fromEntries(['create', 'update', 'delete', 'skip'].filter((a) => r.counts[a]).map((a) => [a, r.counts[a]]))])
  );
}

export async function showView(page, view) {
  await page.locator(`button[data-view="${view}"]`).click();
  assert.equal(await page.locator(`button[data-view="${view}"]`).getAttribute('aria-pressed'), 'true');
}

/** Opens an object group and waits for its contents (built on the toggle event). */
export async function expand(node) {
  await node.locator(':scope > summary').click();
  await node.locator(':scope > .pbx-node-body').waitFor();
}

export async function openModes(page) {
  const modes = page.locator('details.pbx-modes');
  if (!(await modes.evaluate((d) => d.open))) await modes.locator('summary').click();
}

/** Asserts the page shows `plan`'s counts: totals, the stage table, the objects and the op groups. */
export async function assertCountsShown(page, plan, input) {
  const shown = await totals(page);
  for (const a of ACTIONS) assert.equal(shown[a], plan.summary[a], `total ${a}`);
  const cells = await stageCells(page);
  for (const a of ACTIONS) assert.equal(cells['*'][a], plan.summary[a], `total row ${a}`);
  for (const [stage, counts] of Object.entries(cells)) {
    if (stage === '*') continue;
    for (const a of ACTIONS) assert.equal(counts[a], plan.summary.stages[stage]?.[a] ?? 0, `${stage} ${a}`);
  }
  for (const stage of Object.keys(plan.summary.stages)) assert.ok(cells[stage], `stage ${stage} is listed`);
  const view = await page.locator('button[data-view][aria-pressed="true"]').getAttribute('data-view');
  assert.deepEqual(await shownRoots(page), expectedRoots(plan, input), 'by NetBox object');
  await showView(page, 'stages');
  const groups = await page.$$eval('[data-group-count]', (els) =>
    Object.fromEntries(els.map((el) => [el.dataset.groupCount, el.textContent])));
  const expected = {};
  for (const op of plan.operations) expected[`${op.stage}/${op.action}`] = (expected[`${op.stage}/${op.action}`] ?? 0) + 1;
  assert.deepEqual(groups, Object.fromEntries(Object.entries(expected).map(([k, n]) => [k, String(n)])));
  assert.equal(await page.locator('li[data-op-id]').count(), plan.operations.length);
  await showView(page, view);
}

/** Opens every collapsed object group (all levels), so every operation is in the page. */
export async function openAllNodes(page, scope = '') {
  for (let guard = 0; guard < 5000; guard += 1) {
    const node = await page.$(`${scope} details[data-node-key]:not([open])`);
    if (!node) return;
    await (await node.$(':scope > summary')).click();
    await page.waitForFunction((el) => el.querySelector(':scope > .pbx-node-body'), node);
  }
  throw new Error('object groups keep appearing');
}
