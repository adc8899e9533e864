// The "preview sync" dry-run component: shows what a sync would do, before anything is
// written. A plain DOM renderer, no framework, no dependencies.
//
//   import { createPreview } from './preview.js';
//   const preview = await createPreview(element, {
//     plannerUrl: '/static/proxbox/pkg/proxbox_planner.js',   // or planner: <the module>
//     sampleUrl: '/static/proxbox/fixtures/sample/snapshot.json', // optional
//     adapter: { label: 'NetBox + Proxmox', loadInput: async ({ planner }) => input }, // optional
//   });
//
// Every decision comes from the wasm core (`plan`); this file only reads the input, calls
// the core and renders. Every string that comes from Proxmox or NetBox (or from the plan)
// is rendered as text (text nodes, textContent, dataset), never parsed as HTML: no file of
// the preview assigns innerHTML.

import { add, clear, h, safeHref } from './dom.js';
import { PlanCatalog } from './describe.js';
import { OperationsView, ValueRenderer } from './operations.js';
import { diffPlans } from './plan-diff.js';

const SUMMARY_ACTIONS = ['create', 'update', 'delete', 'skip', 'unchanged'];
const CHANGE_ACTIONS = ['create', 'update', 'delete'];
const MODE_CHOICES = ['always', 'bootstrap_only', 'disabled'];

/** Extra classes per theme: inside NetBox the preview wears NetBox's (Tabler's) own. */
const THEMES = {
  plain: {},
  netbox: {
    card: 'card',
    button: 'btn btn-sm btn-outline-secondary',
    primary: 'btn btn-sm btn-primary',
    table: 'table table-sm table-hover',
    select: 'form-select form-select-sm',
    search: 'form-control form-control-sm',
  },
};

let instances = 0;

/**
 * Loads and initialises the planner module.
 * - `planner`: the module itself (`import * as planner from '.../proxbox_planner.js'`),
 *   initialised or not: a web build's default export (wasm-bindgen's `init`) is awaited,
 *   which is a no-op when it already ran.
 * - `plannerUrl`: where to import the web build from (resolved against the page).
 * - `wasmUrl`: where the `.wasm` is, when it is not next to the module.
 * @param {{ planner?: any, plannerUrl?: string | URL, wasmUrl?: string | URL }} [options]
 */
export async function loadPlanner({ planner, plannerUrl, wasmUrl } = {}) {
  let mod = planner;
  if (!mod) {
    if (!plannerUrl) throw new Error('the preview needs `planner` (the module) or `plannerUrl`');
    mod = await import(new URL(plannerUrl, document.baseURI).href);
  }
  if (typeof mod.default === 'function') {
    await mod.default(wasmUrl === undefined ? undefined : { module_or_path: new URL(wasmUrl, document.baseURI) });
  }
  if (typeof mod.plan !== 'function') throw new Error('the planner module has no plan() function');
  return mod;
}

/**
 * Mounts the preview into `root` (emptied first) and resolves to its controller once the
 * planner is loaded. Options: `planner` | `plannerUrl` (+ `wasmUrl`), `sampleUrl`,
 * `adapter` (see the README), `autoload` ('adapter' | 'sample'), `title`, `theme`
 * ('plain' | 'netbox'), `files` (false: no file chooser), `view` ('objects' | 'stages').
 */
export async function createPreview(root, options = {}) {
  const ui = new Preview(root, options);
  await ui.start();
  return ui.controller();
}

const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const ms = (t) => `${t < 10 ? t.toFixed(2) : t.toFixed(1)} ms`;
const changesIn = (counts) => CHANGE_ACTIONS.reduce((n, a) => n + (counts?.[a] ?? 0), 0);

function describeError(err) {
  if (err && typeof err === 'object' && err.code) {
    return `${err.code}${err.path ? ` at ${err.path}` : ''}: ${err.message}`;
  }
  return err instanceof Error ? err.message : String(err);
}

function safeFileName(s) {
  return String(s ?? 'plan').replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 64) || 'plan';
}

function download(text, fileName) {
  const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  const a = h('a', { href: url, download: fileName, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// ---------------------------------------------------------------------------

/** The two ways out of a field conflict, as the core names them, and their buttons. */
const CHOICES = [['accept-proxmox', "Write Proxmox's"], ['keep-netbox', "Keep NetBox's for good"]];

/** What each `on_operator_edit` does with a field both sides changed. */
const FIELD_RESOLUTION = {
  keep: "NetBox's value is kept",
  overwrite: "Proxmox's value is written",
  ask: 'waits for a choice; nothing is written',
};

class Preview {
  constructor(root, options) {
    this.root = root;
    this.opts = options;
    this.theme = THEMES[options.theme] ?? THEMES.plain;
    this.uid = `pbx${++instances}`;
    this.planner = null;
    this.input = null; // our own copy: mode overrides are applied to it
    this.originalEndpoint = null;
    this.label = '';
    this.plan = null;
    this.previousPlan = null; // the plan before the last re-plan
    this.diff = null;
    this.diffLabel = '';
    this.planMs = 0;
    this.replanned = false;
    this.models = {}; // NetBox's model and field names, from the adapter
    this.view = {
      view: options.view ?? 'objects',
      filters: { action: '', stage: '', text: '' },
      openNodes: new Set(),
      openOps: new Set(),
      closedGroups: new Set(),
      fullGroups: new Set(),
    };
    this.build();
  }

  controller() {
    const self = this;
    return {
      /** Plans `input` (the planner input document) and shows it; false if refused. */
      setInput: (input, label = 'input') => self.setInput(input, label),
      /** Calls the adapter's loadInput() and shows its plan. */
      loadFromAdapter: () => self.loadFromAdapter(),
      /** Reads live data again (overrides kept) and shows what changed against the plan before. */
      refresh: () => self.refresh(),
      /** Applies the shown plan through the adapter, after checking it is still current. */
      apply: () => self.apply(),
      /** Fetches `sampleUrl` and shows its plan. */
      loadSample: () => self.loadSample(),
      /** Sets one endpoint override ('' = inherit) and re-plans, as the page's selects do. */
      setOverride: (type, mode) => self.setOverride(type, mode),
      /** The input as planned now (overrides applied), its plan, and the last plan-to-plan diff. */
      get input() { return self.input; },
      get plan() { return self.plan; },
      get diff() { return self.diff; },
      get planner() { return self.planner; },
      element: self.root,
      destroy: () => clear(self.root),
    };
  }

  id(name) {
    return `${this.uid}-${name}`;
  }

  /** Our class plus the theme's for a kind of element (`button`, `table`...). */
  cls(kind, own) {
    return [own, this.theme[kind]].filter(Boolean).join(' ');
  }

  // --- the static frame -----------------------------------------------------

  build() {
    const { adapter, sampleUrl, files = true } = this.opts;
    clear(this.root);
    this.root.classList.add('pbx-preview');
    if (this.opts.theme === 'netbox') this.root.classList.add('pbx-netbox');

    this.fileInput = files ? h('input', {
      type: 'file', id: this.id('file'), accept: '.json,application/json',
      class: 'pbx-file', onchange: () => this.fileInput.files[0] && this.loadFile(this.fileInput.files[0]),
    }) : null;
    this.sampleButton = sampleUrl
      ? h('button', { type: 'button', class: this.cls('button', 'pbx-button'), onclick: () => this.loadSample() }, 'Load the bundled sample')
      : null;
    this.adapterButton = adapter
      ? h('button', { type: 'button', class: this.cls('primary', 'pbx-button pbx-primary'), onclick: () => this.loadFromAdapter() },
        adapter.label ? `Load live data (${adapter.label})` : 'Load live data')
      : null;
    this.status = h('p', { class: 'pbx-status', role: 'status', 'aria-live': 'polite' }, 'Loading the planner…');
    this.error = h('div', { class: 'pbx-error', role: 'alert', hidden: true });
    this.drop = h('div', { class: files ? 'pbx-drop' : 'pbx-drop pbx-no-files' },
      files ? h('p', { class: 'pbx-drop-hint' }, 'Drop a snapshot JSON file (the planner input) anywhere here, or:') : null,
      h('div', { class: 'pbx-input-actions' },
        files ? h('label', { class: this.cls('button', 'pbx-button pbx-file-label'), for: this.id('file') }, 'Choose a snapshot file…') : null,
        this.fileInput, this.sampleButton, this.adapterButton));
    this.applyPanel = h('section', { class: this.cls('card', 'pbx-card pbx-apply'), hidden: true, 'aria-live': 'polite' });
    this.results = h('div', { class: 'pbx-results', hidden: true });
    add(this.root, [
      h('section', { class: this.cls('card', 'pbx-card pbx-input'), 'aria-labelledby': this.id('input-h') },
        h('h2', { id: this.id('input-h') }, this.opts.title ?? 'Input'),
        this.drop, this.status, this.error),
      this.results,
    ]);
    this.setBusy(true);
    if (files) this.enableDrop();
  }

  /** Drag and drop: the whole component is a drop target for a snapshot file. */
  enableDrop() {
    let depth = 0;
    const hasFiles = (e) => e.dataTransfer?.types?.includes('Files');
    this.root.addEventListener('dragenter', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth += 1;
      this.root.classList.add('pbx-dragging');
    });
    this.root.addEventListener('dragover', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = 'copy';
    });
    this.root.addEventListener('dragleave', () => {
      depth = Math.max(0, depth - 1);
      if (depth === 0) this.root.classList.remove('pbx-dragging');
    });
    this.root.addEventListener('drop', (e) => {
      e.preventDefault();
      depth = 0;
      this.root.classList.remove('pbx-dragging');
      const file = e.dataTransfer?.files?.[0];
      if (file) this.loadFile(file);
    });
  }

  setBusy(busy) {
    this.busy = busy;
    const controls = [this.fileInput, this.sampleButton, this.adapterButton, ...this.root.querySelectorAll('button[data-action]')];
    for (const el of controls) if (el) el.disabled = busy || 'disabledWhy' in el.dataset;
    this.root.setAttribute('aria-busy', busy ? 'true' : 'false');
  }

  async start() {
    try {
      this.planner = await loadPlanner(this.opts);
    } catch (err) {
      this.showError(`Could not load the planner: ${describeError(err)}`);
      this.setStatus('The planner is not available.');
      throw err;
    }
    this.setBusy(false);
    const version = typeof this.planner.version === 'function' ? ` ${this.planner.version()}` : '';
    this.setStatus(`Planner${version} ready. Nothing is written: this page only computes the plan.`);
    if (this.opts.autoload === 'adapter' && this.opts.adapter) await this.loadFromAdapter();
    else if (this.opts.autoload === 'sample' && this.opts.sampleUrl) await this.loadSample();
  }

  setStatus(text) {
    this.status.textContent = text;
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  }

  // --- inputs ---------------------------------------------------------------

  async loadFile(file) {
    let input;
    try {
      input = JSON.parse(await file.text());
    } catch (err) {
      return this.failLoad(`${file.name} is not valid JSON: ${describeError(err)}`);
    } finally {
      this.fileInput.value = '';
    }
    return this.setInput(input, file.name);
  }

  async loadSample() {
    this.setBusy(true);
    this.setStatus('Loading the bundled sample…');
    try {
      const url = new URL(this.opts.sampleUrl, document.baseURI);
      const res = await fetch(url);
      if (!res.ok) throw new Error(`HTTP ${res.status} for ${url.pathname}`);
      return this.setInput(await res.json(), 'the bundled sample');
    } catch (err) {
      return this.failLoad(`Could not load the sample: ${describeError(err)}`);
    } finally {
      this.setBusy(false);
    }
  }

  /** The adapter's input; null (and the error shown) when it could not give one. */
  async readAdapter(doing) {
    const { adapter } = this.opts;
    this.setBusy(true);
    this.setStatus(doing);
    try {
      const input = await adapter.loadInput({ planner: this.planner, status: (text) => this.setStatus(text) });
      if (input === null || typeof input !== 'object') throw new Error('the adapter gave no planner input');
      return input;
    } catch (err) {
      this.showError(`Could not load live data: ${describeError(err)}`);
      return null;
    } finally {
      this.setBusy(false);
    }
  }

  async loadFromAdapter() {
    const input = await this.readAdapter('Loading live data…');
    if (!input) return this.failLoad(this.error.textContent);
    return this.setInput(input, this.opts.adapter.label ?? 'live data', { named: true });
  }

  /** Live data again, the operator's overrides kept; the plan-to-plan diff shows what moved. */
  async refresh(label = 'Re-planned from live data') {
    if (!this.opts.adapter) return false;
    if (!this.input) return this.loadFromAdapter();
    const overrides = this.overrides();
    const input = await this.readAdapter('Reading NetBox and Proxmox again…');
    if (!input) return false;
    this.input = structuredClone(input);
    this.originalEndpoint = structuredClone(this.input.endpoint ?? null);
    if (Object.keys(overrides).length) this.input.endpoint = { ...(this.input.endpoint ?? {}), ...overrides };
    return this.runPlanNamed(true, label);
  }

  /** A new input could not be planned: the error, and no (stale) plan. */
  /** Shows why nothing could be loaded, and no plan. @returns {false} */
  failLoad(message) {
    this.showError(message);
    this.setStatus('');
    this.plan = null;
    this.input = null;
    this.diff = null;
    clear(this.results);
    this.results.hidden = true;
    this.drop.hidden = false;
    return false;
  }

  /** `named`: wait for NetBox's model names before showing the plan (an async caller). */
  setInput(input, label, { named = false } = {}) {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) {
      return this.failLoad(`${label}: the snapshot must be a JSON object (the planner input).`);
    }
    if ('operations' in input && 'format_version' in input) {
      return this.failLoad(`${label} is a plan, not a snapshot: choose the planner input (settings, endpoint, proxmox, netbox).`);
    }
    this.input = structuredClone(input);
    this.originalEndpoint = structuredClone(this.input.endpoint ?? null);
    this.label = label;
    this.plan = null;
    this.view.openOps.clear();
    this.view.fullGroups.clear();
    return named ? this.runPlanNamed(false) : this.runPlan(false);
  }

  /** The endpoint's sync modes the operator changed here: `sync_mode_<type>` -> value. */
  overrides() {
    const now = this.input?.endpoint ?? {};
    const was = this.originalEndpoint ?? {};
    const keys = new Set([...Object.keys(now), ...Object.keys(was)].filter((k) => k.startsWith('sync_mode_')));
    return Object.fromEntries([...keys].filter((k) => (now[k] ?? null) !== (was[k] ?? null)).map((k) => [k, now[k] ?? null]));
  }

  /** Sets `endpoint.sync_mode_<type>` ('' = inherit) and re-plans; undone if refused. */
  setOverride(type, value) {
    if (!this.input) return false;
    if (!this.input.endpoint || typeof this.input.endpoint !== 'object') this.input.endpoint = {};
    const endpoint = this.input.endpoint;
    const key = `sync_mode_${type}`;
    const had = Object.hasOwn(endpoint, key);
    const before = endpoint[key];
    endpoint[key] = value === '' ? null : value;
    if (this.runPlan(true, `Override ${key} = ${value === '' ? 'inherit' : value}`)) return true;
    if (had) endpoint[key] = before;
    else delete endpoint[key];
    const select = this.root.querySelector(`select[name="${CSS.escape(key)}"]`);
    if (select) select.value = before ?? '';
    return false;
  }

  resetOverrides() {
    if (!this.input) return false;
    this.input.endpoint = structuredClone(this.originalEndpoint);
    return this.runPlan(true, 'Overrides reset');
  }

  /** Plans the input and shows the plan at once (NetBox's names follow when new models appear). */
  runPlan(replan, label = '') {
    const planned = this.planInput(replan);
    if (!planned) return false;
    this.show(planned, replan, label);
    this.loadModelNames(planned.plan).then((added) => { if (added && this.plan === planned.plan) this.render(); });
    return true;
  }

  /** As runPlan, with NetBox's names for the plan's models fetched before the first render. */
  async runPlanNamed(replan, label = '') {
    const planned = this.planInput(replan);
    if (!planned) return false;
    await this.loadModelNames(planned.plan);
    this.show(planned, replan, label);
    return true;
  }

  /** {plan, took} for the input, or false with the planner's refusal shown. */
  planInput(replan) {
    const t0 = performance.now();
    try {
      return { plan: this.planner.plan(this.input), took: performance.now() - t0 };
    } catch (err) {
      const msg = `The planner refused ${replan ? 'the changed input' : this.label}: ${describeError(err)}`;
      // A refused override keeps the last plan on screen (with the error above it);
      // a refused new input shows no plan at all, so no stale plan passes for its plan.
      if (replan) {
        this.showError(msg);
        return false;
      }
      return this.failLoad(msg);
    }
  }

  show({ plan, took }, replan, label) {
    this.showError('');
    this.previousCatalog = replan && this.plan ? this.catalog : null;
    this.previousPlan = replan ? this.plan : null;
    this.diff = this.previousPlan ? diffPlans(this.previousPlan, plan) : null;
    this.diffLabel = label;
    this.plan = plan;
    this.planMs = took;
    this.replanned = replan;
    this.render();
    const n = plan.operations?.length ?? 0;
    this.setStatus(`${replan ? label || 'Re-planned' : `Planned ${this.label}`}: ${plural(n, 'operation')} in ${ms(took)}.`);
  }

  /** NetBox's names for the plan's models not named yet; true when some were added. */
  async loadModelNames(plan) {
    const describe = this.opts.adapter?.describeModels;
    if (typeof describe !== 'function') return false;
    const wanted = [...new Set((plan.operations ?? []).map((op) => op.model))].filter((m) => m && !(m in this.models));
    if (!wanted.length) return false;
    for (const model of wanted) this.models[model] = null;
    try {
      Object.assign(this.models, await describe(wanted));
      return true;
    } catch {
      return false; // the built-in names stay
    }
  }

  // --- the plan -------------------------------------------------------------

  render() {
    const plan = this.plan;
    const models = Object.fromEntries(Object.entries(this.models).filter(([, v]) => v));
    this.catalog = new PlanCatalog(plan, this.input, { models });
    this.values = new ValueRenderer(this.catalog, { cls: (kind, own) => this.cls(kind, own), reveal: (id) => this.operations?.reveal(id) });
    this.operations = new OperationsView({
      uid: this.uid, plan, catalog: this.catalog, renderer: this.values, cls: (kind, own) => this.cls(kind, own),
      state: this.view, stageOrder: () => this.stageOrder(),
    });
    clear(this.results);
    add(this.results, [
      this.renderSummary(plan),
      this.applyPanel,
      this.renderDiff(),
      this.renderNotes(plan),
      this.section('operations', 'Operations', this.operations.render()),
      this.renderStages(plan),
      this.renderModes(plan),
    ]);
    this.results.hidden = false;
    // Without a file chooser the frame's only button is "load": the plan has it now.
    this.drop.hidden = this.opts.files === false;
  }

  section(name, title, ...children) {
    return h('section', { class: this.cls('card', `pbx-card pbx-${name}`), 'aria-labelledby': this.id(`${name}-h`) },
      h('h2', { id: this.id(`${name}-h`) }, title), ...children);
  }

  timing() {
    return h('output', { class: 'pbx-timing', dataset: { role: 'plan-time' } },
      `${this.replanned ? 'Re-planned' : 'Planned'} in ${ms(this.planMs)}`);
  }

  renderSummary(plan) {
    const s = plan.summary ?? {};
    const endpoint = plan.endpoint ?? {};
    const before = this.previousPlan?.summary;
    const totals = h('dl', { class: 'pbx-totals' });
    for (const action of SUMMARY_ACTIONS) {
      const n = s[action] ?? 0;
      const item = h('div', { class: `pbx-total pbx-a-${action}` }, h('dt', null, action), h('dd', { dataset: { total: action } }, String(n)));
      const d = before ? n - (before[action] ?? 0) : 0;
      if (d !== 0) add(item, h('dd', { class: 'pbx-delta', dataset: { delta: action } }, `${d > 0 ? '+' : '−'}${Math.abs(d)} vs before`));
      add(totals, item);
    }
    const title = ['Plan for endpoint ', h('q', null, String(endpoint.name ?? '?'))];
    if (endpoint.cluster != null) title.push(', cluster ', h('q', null, String(endpoint.cluster)));
    if (this.input?.subset) title.push(' ', h('span', { class: 'pbx-subset' }, this.subsetText()));
    const planFile = `proxbox-plan-${safeFileName(endpoint.name)}.json`;
    const button = (kind, label, onclick, extra = {}) => h(
      'button', { type: 'button', class: this.cls(kind, `pbx-button${kind === 'primary' ? ' pbx-primary' : ''}`), onclick, ...extra }, label
    );
    return h('section', { class: this.cls('card', 'pbx-card pbx-summary'), 'aria-labelledby': this.id('summary-h') },
      h('div', { class: 'pbx-head' },
        h('h2', { id: this.id('summary-h') }, title),
        h('div', { class: 'pbx-head-actions' },
          this.opts.adapter?.apply ? this.applyButton() : null,
          this.opts.adapter ? button('button', 'Re-plan', () => this.refresh(), { dataset: { action: 'replan' } }) : null,
          button(this.opts.adapter?.apply ? 'button' : 'primary', 'Download plan JSON', () => this.downloadPlan(planFile)),
          button('button', 'Download input JSON', () => this.downloadInput()))),
      h('p', { class: 'pbx-meta' },
        `Input: ${this.label} · planner ${plan.planner_version ?? '?'} · plan format ${plan.format_version ?? '?'} · `,
        this.timing()),
      plan.complete === false ? h('p', { class: 'pbx-incomplete', role: 'alert', dataset: { incomplete: '' } },
        'Incomplete input: the planner could not read everything it needs (see the warnings). ',
        'This plan does not show what a sync would do, and it cannot be applied.') : null,
      totals);
  }

  subsetText() {
    const subset = this.input.subset;
    const vms = subset.netbox_vm_ids?.length ? plural(subset.netbox_vm_ids.length, 'NetBox VM') : null;
    const guests = subset.guests?.length ? `guests ${subset.guests.join(', ')}` : null;
    return `(only ${[vms, guests].filter(Boolean).join(' and ') || 'a subset'})`;
  }

  downloadPlan(fileName) {
    // The core's own JSON (planJson), byte for byte what `proxbox-planner plan FILE --json`
    // prints for the same input, overrides included.
    const text = typeof this.planner.planJson === 'function'
      ? this.planner.planJson(JSON.stringify(this.input))
      : JSON.stringify(this.plan);
    download(`${text}\n`, fileName);
  }

  downloadInput() {
    download(`${JSON.stringify(this.input, null, 2)}\n`, `proxbox-snapshot-${safeFileName(this.input.endpoint?.name)}.json`);
  }

  // --- plan-to-plan diff ------------------------------------------------------

  renderDiff() {
    const diff = this.diff;
    if (!diff) return null;
    const label = this.diffLabel || 'Re-planned';
    if (diff.empty) {
      return this.section('diff', `${label}: the same plan`, h('p', { class: 'pbx-empty', dataset: { diffEmpty: '' } },
        `No operation appeared, vanished or changed (${plural(diff.same, 'operation')} as before).`));
    }
    const line = (op, extra) => h('li', { dataset: { diffOp: op.id } },
      h('span', { class: `pbx-badge pbx-a-${op.action}` }, op.action), ' ',
      h('span', { class: 'pbx-op-model' }, this.catalog.modelName(op.model)), ' ',
      h('span', { class: 'pbx-op-key' }, this.diffSubject(op)), extra ? [' ', extra] : null);
    const list = (kind, title, items) => (items.length
      ? h('div', { class: 'pbx-diff-part', dataset: { diff: kind } },
        h('h3', null, `${title} (${items.length})`), h('ul', { class: 'pbx-diff-list' }, items))
      : null);
    return this.section('diff', `${label}: what changed against the plan before`,
      list('appeared', 'Appeared', diff.appeared.map((op) => line(op))),
      list('vanished', 'Vanished', diff.vanished.map((op) => line(op))),
      list('changed', 'Changed', diff.changed.map(({ before, after, parts }) => line(after,
        h('span', { class: 'pbx-op-hint' }, before.action !== after.action ? `was ${before.action}; ` : '',
          `changed: ${parts.map((p) => this.partLabel(after.model, p)).join(', ')}`)))),
      diff.same ? h('p', { class: 'pbx-meta' }, `${plural(diff.same, 'operation')} as before.`) : null);
  }

  /** An operation of either plan by its object's name (a vanished one, by the plan before's). */
  diffSubject(op) {
    const catalog = this.catalog.opsById.has(op.id) ? this.catalog : this.previousCatalog ?? this.catalog;
    return catalog.referenceText(catalog.objectKey(op));
  }

  partLabel(model, part) {
    const [kind, field] = part.split('.');
    return field ? this.catalog.fieldLabel(model, field) : { target: 'target', depends_on: 'dependencies' }[kind] ?? kind;
  }

  // --- modes, stages, notes ---------------------------------------------------

  renderModes(plan) {
    const modes = plan.modes ?? {};
    const effective = modes.effective ?? {};
    const types = Object.keys(effective);
    const endpoint = this.input.endpoint ?? {};
    const settings = this.input.settings ?? {};
    const body = h('tbody');
    for (const type of types) {
      const key = `sync_mode_${type}`;
      const current = endpoint[key] ?? '';
      const global = settings[key];
      const inherit = global ? `inherit (global: ${global})` : 'inherit (default)';
      const select = h('select', {
        name: key, id: this.id(`mode-${type}`), class: this.cls('select', 'pbx-select'), 'aria-label': `${type}: endpoint override`,
        onchange: (e) => this.setOverride(type, e.target.value),
      }, h('option', { value: '' }, inherit), MODE_CHOICES.map((m) => h('option', { value: m }, m)));
      if (current && !MODE_CHOICES.includes(current)) add(select, h('option', { value: current }, current));
      select.value = current;
      const cascade = modes.cascade?.[type] ?? [];
      const changed = effective[type] !== modes.raw?.[type];
      add(body, h('tr', { dataset: { resource: type } },
        h('th', { scope: 'row' }, h('label', { for: select.id }, type)),
        h('td', null, select),
        h('td', null, h('span', { class: `pbx-mode pbx-m-${modes.raw?.[type]}` }, modes.raw?.[type] ?? '—')),
        h('td', null, h('span', { class: 'pbx-source', dataset: { source: type } }, modes.sources?.[type] ?? '—')),
        h('td', { class: changed ? 'pbx-cascaded' : null },
          h('span', { class: `pbx-mode pbx-m-${effective[type]}`, dataset: { effective: type } }, effective[type])),
        h('td', null, cascade.length ? `follows ${cascade.join(', ')}` : '—')));
    }
    const overridden = Object.keys(this.overrides()).length;
    const details = h('details', { class: this.cls('card', 'pbx-card pbx-modes'), open: overridden > 0 || this.modesOpen },
      h('summary', null, h('h2', { id: this.id('modes-h') }, 'Sync modes'), ' ',
        h(
          'span', { class: 'pbx-count' },
          overridden ? `${plural(overridden, 'override')} (what-if, not saved)` : `${types.length} resource types; what-if overrides`
        )),
      h('p', { class: 'pbx-help' },
        'Raw mode: endpoint override, else the global setting, else the default. Effective mode: after the cascade. ',
        'Changing an override re-plans at once; nothing is saved.'),
      h('div', { class: 'pbx-table-wrap' },
        h('table', { class: this.cls('table', 'pbx-table') },
          h('caption', { class: 'pbx-sr' }, 'Resolved sync mode per resource type'),
          h('thead', null, h('tr', null,
            ['Resource', 'Endpoint override', 'Raw', 'Source', 'Effective', 'Cascade'].map((c) => h('th', { scope: 'col' }, c)))),
          body)),
      h('p', { class: 'pbx-modes-foot' },
        h('button', { type: 'button', class: this.cls('button', 'pbx-button'), disabled: !overridden, onclick: () => this.resetOverrides() },
          'Reset overrides'),
        ' ', this.timing()));
    details.addEventListener('toggle', () => { this.modesOpen = details.open; });
    return details;
  }

  stageOrder() {
    const order = ['bootstrap', ...(this.plan.stages ?? []).map((s) => s.stage)];
    for (const name of Object.keys(this.plan.summary?.stages ?? {})) if (!order.includes(name)) order.push(name);
    for (const op of this.plan.operations ?? []) if (!order.includes(op.stage)) order.push(op.stage);
    return order;
  }

  /** Why a stage does what it does: the planner's reason, or "nothing to do" with counts. */
  stageWhy(stage, info, counts) {
    if (info.reason) return info.reason;
    if (!info.run) return '';
    if (changesIn(counts) === 0) {
      const parts = [counts.unchanged ? `${counts.unchanged} unchanged` : null, counts.skip ? `${counts.skip} skipped` : null].filter(Boolean);
      return `nothing to do${parts.length ? `: ${parts.join(', ')}` : ''}`;
    }
    return stage === 'bootstrap' ? 'always first' : '';
  }

  renderStages(plan) {
    const info = new Map((plan.stages ?? []).map((s) => [s.stage, s]));
    const per = plan.summary?.stages ?? {};
    const body = h('tbody');
    for (const stage of this.stageOrder()) {
      const s = info.get(stage) ?? { stage, run: true };
      const counts = per[stage] ?? {};
      add(body, h('tr', { class: s.run ? null : 'pbx-skipped-row', dataset: { stage } },
        h('th', { scope: 'row' }, stage),
        h('td', null, h('span', { class: `pbx-badge ${s.run ? 'pbx-run' : 'pbx-skip'}`, dataset: { stageRun: stage } },
          s.run ? 'runs' : 'skipped')),
        h('td', { class: 'pbx-reason', dataset: { stageReason: stage } }, this.stageWhy(stage, s, counts)),
        SUMMARY_ACTIONS.map((a) => h('td', { class: 'pbx-num', dataset: { stage, action: a } }, String(counts[a] ?? 0)))));
    }
    const s = plan.summary ?? {};
    // Collapsed like the modes (fourteen rows a reader rarely needs first): the summary
    // line names the stages that do not run.
    const skipped = (plan.stages ?? []).filter((st) => !st.run).map((st) => st.stage);
    const details = h('details', { class: this.cls('card', 'pbx-card pbx-stages'), open: this.stagesOpen },
      h('summary', null, h('h2', { id: this.id('stages-h') }, 'Stages'), ' ',
        h('span', { class: 'pbx-count' }, `${plural((plan.stages ?? []).length, 'stage')}${skipped.length ? `; skipped: ${skipped.join(', ')}` : ''}`)),
      h('div', { class: 'pbx-table-wrap' },
        h('table', { class: this.cls('table', 'pbx-table') },
          h('caption', { class: 'pbx-sr' }, 'Stages in run order, whether they run, and their operations by action'),
          h('thead', null, h('tr', null,
            ['Stage', 'Status', 'Why', ...SUMMARY_ACTIONS].map((c, i) => h('th', { scope: 'col', class: i > 2 ? 'pbx-num' : null }, c)))),
          body,
          h('tfoot', null, h('tr', null,
            h('th', { scope: 'row', colspan: 3 }, 'Total'),
            SUMMARY_ACTIONS.map((a) => h('td', { class: 'pbx-num', dataset: { stage: '*', action: a } }, String(s[a] ?? 0))))))));
    details.addEventListener('toggle', () => { this.stagesOpen = details.open; });
    return details;
  }

  renderNotes(plan) {
    const warnings = plan.warnings ?? [];
    const edited = (plan.conflicts ?? []).filter((c) => c.kind === 'operator-edited');
    const conflicts = (plan.conflicts ?? []).filter((c) => c.kind !== 'operator-edited');
    const fieldConflicts = edited.length ? this.renderFieldConflicts(edited) : null;
    if (!warnings.length && !conflicts.length) {
      return [h('p', { class: 'pbx-notes-none', dataset: { notes: 'none' } }, 'No warnings, no SDN conflicts.'), fieldConflicts];
    }
    const wlist = warnings.length
      ? h('ul', { class: 'pbx-notes' }, warnings.map((w) => h('li', { class: 'pbx-warning' },
        h('strong', null, w.code ?? 'warning'), ' ', w.message ?? '',
        this.kvList(w, ['code', 'message']))))
      : h('p', { class: 'pbx-empty' }, 'No warnings.');
    const clist = conflicts.length
      ? h('ul', { class: 'pbx-notes' }, conflicts.map((c) => h('li', { class: 'pbx-conflict' },
        c.code || c.message ? [h('strong', null, c.code ?? 'conflict'), ' ', c.message ?? ''] : null,
        this.kvList(c, ['kind', 'code', 'message']))))
      : h('p', { class: 'pbx-empty' }, 'No SDN conflicts.');
    return [
      h('div', { class: 'pbx-notes-row' },
        this.section('warnings', `Warnings (${warnings.length})`, wlist),
        this.section('conflicts', `SDN conflicts (${conflicts.length})`, clist)),
      fieldConflicts,
    ];
  }

  /** Fields an operator edited in NetBox that Proxmox changed too: both sides, who and when,
   *  what the plan does, and how to choose otherwise (the core planned both ways out). */
  renderFieldConflicts(edited) {
    const value = (c, v) => this.values.value(c.model, c.field, v, {}, true);
    const rows = edited.map((c) => h('tr', { dataset: { fieldConflict: c.id } },
      h('th', { scope: 'row' }, c.key, ' · ', this.catalog.fieldLabel(c.model, c.field)),
      h('td', { dataset: { side: 'netbox' } }, value(c, c.netbox),
        h('div', { class: 'pbx-muted' }, [c.changed_by, c.changed_at].filter(Boolean).join(', ') || 'another NetBox user')),
      h('td', { dataset: { side: 'proxmox' } }, value(c, c.proxmox)),
      h('td', { dataset: { side: 'base' } }, value(c, c.base)),
      h('td', { dataset: { resolution: c.resolution } }, FIELD_RESOLUTION[c.resolution] ?? c.resolution,
        h('div', { class: 'pbx-muted' }, h('code', null, `apply --accept-proxmox ${c.id}`), ' or ', h('code', null, `--keep-netbox ${c.id}`))),
      this.opts.adapter?.choose ? h('td', null, CHOICES.map(([choice, label]) => h('button', {
        type: 'button', class: this.cls('secondary', 'pbx-button'), dataset: { action: 'choose', choice }, onclick: () => this.choose(c, choice),
      }, label))) : null));
    return this.section('field-conflicts', `Edited in NetBox and changed in Proxmox (${edited.length})`,
      h('div', { class: 'pbx-table-wrap' },
        h('table', { class: this.cls('table', 'pbx-table') },
          h('caption', { class: 'pbx-sr' }, 'Fields an operator changed in NetBox that Proxmox changed too'),
          h('thead', null, h('tr', null, ['Field', 'NetBox (changed by)', 'Proxmox', 'Last synced', 'This plan', this.opts.adapter?.choose ? 'Choose' : null]
            .filter(Boolean).map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', null, rows))));
  }

  /** Writes the operation the core planned for `choice` of a field conflict (through the
   *  adapter, as the signed-in user), then re-plans: the conflict is not asked again. */
  async choose(conflict, choice) {
    const op = conflict.choices?.[choice];
    if (!op) return false;
    this.setBusy(true);
    this.setStatus('Writing your choice to NetBox…');
    try {
      await this.opts.adapter.choose(op, { changelogMessage: this.plan?.changelog_message });
    } catch (err) {
      this.showError(`Could not write your choice: ${describeError(err)}`);
      return false;
    } finally {
      this.setBusy(false);
    }
    return this.refresh(choice === 'keep-netbox' ? `Kept NetBox's ${conflict.field}; re-planned` : `Wrote Proxmox's ${conflict.field}; re-planned`);
  }

  /** The other keys of a warning or conflict, as a small definition list. */
  kvList(obj, skip) {
    const keys = Object.keys(obj ?? {}).filter((k) => !skip.includes(k));
    if (!keys.length) return null;
    return h('dl', { class: 'pbx-kv' }, keys.map((k) => [h('dt', null, k), h('dd', null, this.values.value(null, null, obj[k]))]));
  }

  // --- apply --------------------------------------------------------------------

  /** Stages of the shown plan with something to write, in run order. */
  changedStages() {
    const per = this.plan?.summary?.stages ?? {};
    return this.stageOrder().filter((stage) => changesIn(per[stage]) > 0);
  }

  /** Why Apply cannot run now, or null. */
  applyRefusal() {
    const { adapter } = this.opts;
    if (adapter?.applyRefusal) return adapter.applyRefusal;
    if (this.plan?.complete === false) return 'The input was incomplete: re-plan once NetBox and Proxmox can be read.';
    if (!this.plan || changesIn(this.plan.summary) === 0) return 'Nothing to apply: the plan has no create, update or delete.';
    if (Object.keys(this.overrides()).length) {
      return 'The plan shown uses what-if overrides, which the Proxbox sync does not: reset them (or save them on the endpoint) to apply.';
    }
    return null;
  }

  applyButton() {
    const refusal = this.applyRefusal();
    const n = changesIn(this.plan.summary);
    return h('button', {
      type: 'button', class: this.cls('primary', 'pbx-button pbx-primary'), disabled: Boolean(refusal) || this.busy,
      title: refusal ?? `Run the Proxbox sync of the stages with changes: ${this.changedStages().join(', ')}`,
      dataset: { action: 'apply', ...(refusal ? { disabledWhy: refusal } : {}) }, onclick: () => this.apply(),
    }, n ? `Apply ${plural(n, 'change')}` : 'Apply');
  }

  /**
   * The apply panel: state ('checking', 'refused', 'running', 'done', 'failed'), message, job.
   * @param {string} state @param {string} message
   * @param {{ url?: string, log?: any[], status?: string }} [job]  the job's page, its log, its status
   */
  showApply(state, message, { url, log = [], status } = {}) {
    const panel = this.applyPanel;
    panel.hidden = false;
    panel.dataset.applyState = state;
    clear(panel);
    add(panel,
      h('h2', null, 'Apply ', h('span', { class: `pbx-badge pbx-apply-${state}`, dataset: { applyBadge: state } }, status ?? state)),
      h('p', { class: 'pbx-apply-message', dataset: { applyMessage: '' } }, message),
      safeHref(url) ? h('p', null, h('a', { href: safeHref(url), class: 'pbx-link', dataset: { jobLink: '' } }, 'Open the job in NetBox')) : null,
      log.length ? h('ol', { class: 'pbx-job-log' }, log.slice(-12).map((entry) =>
        h('li', { class: `pbx-log-${entry.level ?? 'info'}` }, entry.message ?? String(entry)))) : null);
  }

  async apply() {
    const { adapter } = this.opts;
    if (!adapter?.apply || !this.plan || this.applying) return false;
    const refusal = this.applyRefusal();
    if (refusal) {
      this.showApply('refused', refusal);
      return false;
    }
    this.applying = true;
    try {
      return await this.applyCurrentPlan(adapter);
    } finally {
      this.applying = false;
    }
  }

  async applyCurrentPlan(adapter) {
    const shown = this.plan;
    this.showApply('checking', 'Checking the plan is still current: reading NetBox and Proxmox again…');
    if (!(await this.refresh('Re-planned before applying'))) {
      this.showApply('failed', 'Not applied: NetBox and Proxmox could not be read again to check the plan.');
      return false;
    }
    if (!diffPlans(shown, this.plan).empty) {
      this.showApply(
        'refused',
        'Not applied: NetBox or Proxmox changed since this plan was shown (the differences are listed below). Review the new plan, then press Apply again.'
      );
      return false;
    }
    const stages = this.changedStages();
    this.showApply('running', `Starting the Proxbox sync of ${stages.join(', ')}…`);
    let result;
    try {
      result = await adapter.apply({ plan: this.plan, input: this.input, stages, progress: (p) => this.showApply('running', p.message, p) });
    } catch (err) {
      this.showApply('failed', `The sync could not run: ${describeError(err)}`);
      return false;
    }
    const ok = Boolean(result?.ok);
    await this.refresh('Re-planned after the sync');
    const left = changesIn(this.plan?.summary);
    const after =
      left === 0 ? 'NetBox now matches Proxmox for this plan: nothing left to do.' : `${plural(left, 'change')} left after the sync: see the plan below.`;
    this.showApply(
      ok ? 'done' : 'failed', `${result?.message ?? (ok ? 'The sync finished.' : 'The sync failed.')} ${after}`,
      { ...result, status: result?.status }
    );
    return ok;
  }
}
