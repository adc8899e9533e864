// The "preview sync" dry-run component: shows what a sync would do, before
// anything is written. A plain DOM renderer, no framework, no dependencies.
//
//   import { createPreview } from './preview.js';
//   const preview = await createPreview(element, {
//     plannerUrl: '/static/proxbox/pkg/proxbox_planner.js',   // or planner: <the module>
//     sampleUrl: '/static/proxbox/fixtures/sample/snapshot.json', // optional
//     adapter: { label: 'NetBox + Proxmox', loadInput: async ({ planner }) => input }, // optional
//   });
//
// Every decision comes from the wasm core (`plan`); this file only reads the
// input, calls the core and renders. Every string that comes from Proxmox or
// NetBox (or from the plan) is rendered as text (text nodes, textContent,
// dataset), never parsed as HTML: this file never assigns innerHTML.

const SUMMARY_ACTIONS = ['create', 'update', 'delete', 'skip', 'unchanged'];
const OP_ACTIONS = ['create', 'update', 'delete', 'skip'];
const MODE_CHOICES = ['always', 'bootstrap_only', 'disabled'];
/** Operations rendered per stage/action group before a "show all" button. */
const GROUP_LIMIT = 200;

let instances = 0;

/**
 * Loads and initialises the planner module.
 * - `planner`: the module itself (`import * as planner from '.../proxbox_planner.js'`),
 *   initialised or not: a web build's default export (wasm-bindgen's `init`) is awaited,
 *   which is a no-op when it already ran.
 * - `plannerUrl`: where to import the web build from (resolved against the page).
 * - `wasmUrl`: where the `.wasm` is, when it is not next to the module.
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
 * `adapter` ({ label?, loadInput({ planner }): Promise<PlanInput> }), `autoload`
 * ('adapter' | 'sample'), `title`.
 */
export async function createPreview(root, options = {}) {
  const ui = new Preview(root, options);
  await ui.start();
  return ui.controller();
}

// ---------------------------------------------------------------------------
// DOM helpers: text only.

/** Creates an element. `props`: class, dataset, on<event> handlers, DOM properties
 *  (hidden, disabled, value, type...) or attributes; children: nodes or text. */
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key in el && typeof el[key] !== 'string' && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  add(el, children);
  return el;
}

/** Appends children: strings and numbers become text nodes, never markup. */
function add(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function clear(el) {
  el.replaceChildren();
  return el;
}

const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const ms = (t) => `${t < 10 ? t.toFixed(2) : t.toFixed(1)} ms`;
const isRef = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 && typeof v.$ref === 'string';

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

class Preview {
  constructor(root, options) {
    this.root = root;
    this.opts = options;
    this.uid = `pbx${++instances}`;
    this.planner = null;
    this.input = null; // our own copy: mode overrides are applied to it
    this.originalEndpoint = null;
    this.label = '';
    this.plan = null;
    this.previous = null; // the summary before the last re-plan
    this.planMs = 0;
    this.replanned = false;
    this.filters = { action: '', stage: '', text: '' };
    this.openOps = new Set();
    this.closedGroups = new Set();
    this.fullGroups = new Set();
    this.build();
  }

  controller() {
    const self = this;
    return {
      /** Plans `input` (the planner input document) and shows it; false if refused. */
      setInput: (input, label = 'input') => self.setInput(input, label),
      /** Calls the adapter's loadInput() and shows its plan. */
      loadFromAdapter: () => self.loadFromAdapter(),
      /** Fetches `sampleUrl` and shows its plan. */
      loadSample: () => self.loadSample(),
      /** Sets one endpoint override ('' = inherit) and re-plans, as the page's selects do. */
      setOverride: (type, mode) => self.setOverride(type, mode),
      /** The input as planned now (overrides applied) and its plan. */
      get input() { return self.input; },
      get plan() { return self.plan; },
      get planner() { return self.planner; },
      element: self.root,
      destroy: () => clear(self.root),
    };
  }

  id(name) {
    return `${this.uid}-${name}`;
  }

  // --- the static frame -----------------------------------------------------

  build() {
    const { adapter, sampleUrl } = this.opts;
    clear(this.root);
    this.root.classList.add('pbx-preview');

    this.fileInput = h('input', {
      type: 'file', id: this.id('file'), accept: '.json,application/json',
      class: 'pbx-file', onchange: () => this.fileInput.files[0] && this.loadFile(this.fileInput.files[0]),
    });
    this.sampleButton = sampleUrl
      ? h('button', { type: 'button', class: 'pbx-button', onclick: () => this.loadSample() }, 'Load the bundled sample')
      : null;
    this.adapterButton = adapter
      ? h('button', { type: 'button', class: 'pbx-button pbx-primary', onclick: () => this.loadFromAdapter() },
        adapter.label ? `Load live data (${adapter.label})` : 'Load live data')
      : null;
    this.status = h('p', { class: 'pbx-status', role: 'status', 'aria-live': 'polite' }, 'Loading the planner…');
    this.error = h('div', { class: 'pbx-error', role: 'alert', hidden: true });

    this.drop = h('div', { class: 'pbx-drop' },
      h('p', { class: 'pbx-drop-hint' }, 'Drop a snapshot JSON file (the planner input) anywhere here, or:'),
      h('div', { class: 'pbx-input-actions' },
        h('label', { class: 'pbx-button pbx-file-label', for: this.id('file') }, 'Choose a snapshot file…'),
        this.fileInput, this.sampleButton, this.adapterButton));

    this.results = h('div', { class: 'pbx-results', hidden: true });
    add(this.root, [
      h('section', { class: 'pbx-card pbx-input', 'aria-labelledby': this.id('input-h') },
        h('h2', { id: this.id('input-h') }, this.opts.title ?? 'Input'),
        this.drop, this.status, this.error),
      this.results,
    ]);
    this.setBusy(true);

    // Drag and drop: the whole component is a drop target.
    let depth = 0;
    this.root.addEventListener('dragenter', (e) => {
      if (!e.dataTransfer?.types?.includes('Files')) return;
      e.preventDefault();
      depth += 1;
      this.root.classList.add('pbx-dragging');
    });
    this.root.addEventListener('dragover', (e) => {
      if (!e.dataTransfer?.types?.includes('Files')) return;
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
    for (const el of [this.fileInput, this.sampleButton, this.adapterButton]) if (el) el.disabled = busy;
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

  async loadFromAdapter() {
    const { adapter } = this.opts;
    this.setBusy(true);
    this.setStatus('Loading live data…');
    try {
      const input = await adapter.loadInput({ planner: this.planner });
      return this.setInput(input, adapter.label ?? 'live data');
    } catch (err) {
      return this.failLoad(`Could not load live data: ${describeError(err)}`);
    } finally {
      this.setBusy(false);
    }
  }

  /** A new input could not be planned: the error, and no (stale) plan. */
  failLoad(message) {
    this.showError(message);
    this.setStatus('');
    this.plan = null;
    this.input = null;
    clear(this.results);
    this.results.hidden = true;
    return false;
  }

  setInput(input, label) {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) {
      return this.failLoad(`${label}: the snapshot must be a JSON object (the planner input).`);
    }
    if ('operations' in input && 'format_version' in input) {
      return this.failLoad(`${label} is a plan, not a snapshot: choose the planner input (settings, endpoint, proxmox, netbox).`);
    }
    this.input = structuredClone(input);
    this.originalEndpoint = structuredClone(this.input.endpoint ?? null);
    this.label = label;
    this.openOps.clear();
    this.fullGroups.clear();
    return this.runPlan(false);
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
    if (this.runPlan(true)) return true;
    if (had) endpoint[key] = before;
    else delete endpoint[key];
    const select = this.root.querySelector(`select[name="${CSS.escape(key)}"]`);
    if (select) select.value = before ?? '';
    return false;
  }

  resetOverrides() {
    if (!this.input) return false;
    this.input.endpoint = structuredClone(this.originalEndpoint);
    return this.runPlan(true);
  }

  runPlan(replan) {
    let plan;
    const t0 = performance.now();
    try {
      plan = this.planner.plan(this.input);
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
    const took = performance.now() - t0;
    this.showError('');
    this.previous = replan && this.plan ? this.plan.summary : null;
    this.plan = plan;
    this.planMs = took;
    this.replanned = replan;
    this.render();
    const n = plan.operations?.length ?? 0;
    this.setStatus(`${replan ? 'Re-planned' : `Planned ${this.label}`}: ${plural(n, 'operation')} in ${ms(took)}.`);
    return true;
  }

  // --- the plan -------------------------------------------------------------

  render() {
    const plan = this.plan;
    this.ops = plan.operations ?? [];
    this.haystacks = this.ops.map((op) =>
      [op.id, op.key, op.model, op.reason, op.detail].filter((s) => s != null).join('\n').toLowerCase());
    this.opsById = new Map(this.ops.map((op) => [op.id, op]));
    clear(this.results);
    add(this.results, [
      this.renderSummary(plan),
      this.renderModes(plan),
      this.renderStages(plan),
      this.renderNotes(plan),
      this.renderOperations(),
    ]);
    this.results.hidden = false;
  }

  section(name, title, ...children) {
    return h('section', { class: `pbx-card pbx-${name}`, 'aria-labelledby': this.id(`${name}-h`) },
      h('h2', { id: this.id(`${name}-h`) }, title), ...children);
  }

  timing() {
    return h('output', { class: 'pbx-timing', dataset: { role: 'plan-time' } },
      `${this.replanned ? 'Re-planned' : 'Planned'} in ${ms(this.planMs)}`);
  }

  renderSummary(plan) {
    const s = plan.summary ?? {};
    const endpoint = plan.endpoint ?? {};
    const totals = h('dl', { class: 'pbx-totals' });
    for (const action of SUMMARY_ACTIONS) {
      const n = s[action] ?? 0;
      const item = h('div', { class: `pbx-total pbx-a-${action}` },
        h('dt', null, action),
        h('dd', { dataset: { total: action } }, String(n)));
      if (this.previous) {
        const d = n - (this.previous[action] ?? 0);
        if (d !== 0) {
          add(item, h('dd', { class: 'pbx-delta', dataset: { delta: action } },
            `${d > 0 ? '+' : '−'}${Math.abs(d)} vs before`));
        }
      }
      add(totals, item);
    }
    const title = ['Plan for endpoint ', h('q', null, String(endpoint.name ?? '?'))];
    if (endpoint.cluster != null) title.push(', cluster ', h('q', null, String(endpoint.cluster)));
    const planFile = `proxbox-plan-${safeFileName(endpoint.name)}.json`;
    return h('section', { class: 'pbx-card pbx-summary', 'aria-labelledby': this.id('summary-h') },
      h('div', { class: 'pbx-head' },
        h('h2', { id: this.id('summary-h') }, title),
        h('div', { class: 'pbx-head-actions' },
          h('button', { type: 'button', class: 'pbx-button pbx-primary', onclick: () => this.downloadPlan(planFile) },
            'Download plan JSON'),
          h('button', { type: 'button', class: 'pbx-button', onclick: () => this.downloadInput() },
            'Download input JSON'))),
      h('p', { class: 'pbx-meta' },
        `Input: ${this.label} · planner ${plan.planner_version ?? '?'} · plan format ${plan.format_version ?? '?'} · `,
        this.timing()),
      totals);
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
        name: key, id: this.id(`mode-${type}`), class: 'pbx-select', 'aria-label': `${type}: endpoint override`,
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
    const overridden = types.some((t) => (endpoint[`sync_mode_${t}`] ?? null) !== (this.originalEndpoint?.[`sync_mode_${t}`] ?? null));
    return this.section('modes', 'Sync modes',
      h('p', { class: 'pbx-help' },
        'Raw mode: endpoint override, else the global setting, else the default. Effective mode: after the cascade. ',
        'Changing an override re-plans at once; nothing is saved.'),
      h('div', { class: 'pbx-table-wrap' },
        h('table', { class: 'pbx-table' },
          h('caption', { class: 'pbx-sr' }, 'Resolved sync mode per resource type'),
          h('thead', null, h('tr', null,
            ['Resource', 'Endpoint override', 'Raw', 'Source', 'Effective', 'Cascade'].map((c) => h('th', { scope: 'col' }, c)))),
          body)),
      h('p', { class: 'pbx-modes-foot' },
        h('button', { type: 'button', class: 'pbx-button', disabled: !overridden, onclick: () => this.resetOverrides() },
          'Reset overrides'),
        ' ', this.timing()));
  }

  stageOrder() {
    const order = ['bootstrap', ...(this.plan.stages ?? []).map((s) => s.stage)];
    for (const name of Object.keys(this.plan.summary?.stages ?? {})) if (!order.includes(name)) order.push(name);
    for (const op of this.ops) if (!order.includes(op.stage)) order.push(op.stage);
    return order;
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
        h('td', { class: 'pbx-reason', dataset: { stageReason: stage } }, s.reason ?? (stage === 'bootstrap' ? 'always first' : '')),
        SUMMARY_ACTIONS.map((a) => h('td', { class: 'pbx-num', dataset: { stage, action: a } }, String(counts[a] ?? 0)))));
    }
    const s = plan.summary ?? {};
    return this.section('stages', 'Stages',
      h('div', { class: 'pbx-table-wrap' },
        h('table', { class: 'pbx-table' },
          h('caption', { class: 'pbx-sr' }, 'Stages in run order, whether they run, and their operations by action'),
          h('thead', null, h('tr', null,
            ['Stage', 'Status', 'Why', ...SUMMARY_ACTIONS].map((c, i) => h('th', { scope: 'col', class: i > 2 ? 'pbx-num' : null }, c)))),
          body,
          h('tfoot', null, h('tr', null,
            h('th', { scope: 'row', colspan: 3 }, 'Total'),
            SUMMARY_ACTIONS.map((a) => h('td', { class: 'pbx-num', dataset: { stage: '*', action: a } }, String(s[a] ?? 0))))))));
  }

  renderNotes(plan) {
    const warnings = plan.warnings ?? [];
    const conflicts = plan.conflicts ?? [];
    const wlist = warnings.length
      ? h('ul', { class: 'pbx-notes' }, warnings.map((w) => h('li', { class: 'pbx-warning' },
        h('strong', null, w.code ?? 'warning'), ' ', w.message ?? '',
        this.kvList(w, ['code', 'message']))))
      : h('p', { class: 'pbx-empty' }, 'No warnings.');
    const clist = conflicts.length
      ? h('ul', { class: 'pbx-notes' }, conflicts.map((c) => h('li', { class: 'pbx-conflict' },
        c.code || c.message ? [h('strong', null, c.code ?? 'conflict'), ' ', c.message ?? ''] : null,
        this.kvList(c, ['code', 'message']))))
      : h('p', { class: 'pbx-empty' }, 'No SDN conflicts.');
    return h('div', { class: 'pbx-notes-row' },
      this.section('warnings', `Warnings (${warnings.length})`, wlist),
      this.section('conflicts', `SDN conflicts (${conflicts.length})`, clist));
  }

  /** The other keys of a warning or conflict, as a small definition list. */
  kvList(obj, skip) {
    const keys = Object.keys(obj ?? {}).filter((k) => !skip.includes(k));
    if (!keys.length) return null;
    return h('dl', { class: 'pbx-kv' }, keys.map((k) => [h('dt', null, k), h('dd', null, this.value(obj[k]))]));
  }

  // --- operations -----------------------------------------------------------

  renderOperations() {
    const countBy = (key) => {
      const m = new Map();
      for (const op of this.ops) m.set(op[key], (m.get(op[key]) ?? 0) + 1);
      return m;
    };
    const byAction = countBy('action');
    const byStage = countBy('stage');
    const actions = [...OP_ACTIONS, ...[...byAction.keys()].filter((a) => !OP_ACTIONS.includes(a))];
    const stages = this.stageOrder().filter((s) => byStage.has(s));
    // Filters survive a re-plan; a value that no longer exists still shows (0).
    const actionSelect = h('select', { id: this.id('f-action'), name: 'action', class: 'pbx-select',
      onchange: (e) => { this.filters.action = e.target.value; this.renderOpList(); } },
    h('option', { value: '' }, `All actions (${this.ops.length})`),
    actions.map((a) => h('option', { value: a }, `${a} (${byAction.get(a) ?? 0})`)));
    actionSelect.value = this.filters.action;
    const stageSelect = h('select', { id: this.id('f-stage'), name: 'stage', class: 'pbx-select',
      onchange: (e) => { this.filters.stage = e.target.value; this.renderOpList(); } },
    h('option', { value: '' }, `All stages (${this.ops.length})`),
    stages.map((s) => h('option', { value: s }, `${s} (${byStage.get(s)})`)),
    this.filters.stage && !stages.includes(this.filters.stage) ? h('option', { value: this.filters.stage }, `${this.filters.stage} (0)`) : null);
    stageSelect.value = this.filters.stage;
    let timer;
    const search = h('input', {
      type: 'search', id: this.id('f-text'), name: 'q', class: 'pbx-search', value: this.filters.text,
      placeholder: 'id, key, model, reason, detail', autocomplete: 'off', spellcheck: 'false',
      oninput: (e) => {
        clearTimeout(timer);
        timer = setTimeout(() => { this.filters.text = e.target.value; this.renderOpList(); }, this.ops.length > 2000 ? 150 : 0);
      },
    });
    const clearButton = h('button', { type: 'button', class: 'pbx-button', onclick: () => {
      this.filters = { action: '', stage: '', text: '' };
      actionSelect.value = ''; stageSelect.value = ''; search.value = '';
      this.renderOpList();
    } }, 'Clear filters');
    this.opCount = h('p', { class: 'pbx-op-count', role: 'status', 'aria-live': 'polite' });
    this.opList = h('div', { class: 'pbx-op-groups' });
    const form = h('form', { class: 'pbx-filters', role: 'search', 'aria-label': 'Filter operations', onsubmit: (e) => e.preventDefault() },
      h('div', { class: 'pbx-field' }, h('label', { for: actionSelect.id }, 'Action'), actionSelect),
      h('div', { class: 'pbx-field' }, h('label', { for: stageSelect.id }, 'Stage'), stageSelect),
      h('div', { class: 'pbx-field pbx-grow' }, h('label', { for: search.id }, 'Search'), search),
      h('div', { class: 'pbx-field' }, clearButton));
    const section = this.section('operations', 'Operations', form, this.opCount, this.opList);
    this.renderOpList();
    return section;
  }

  matches(op, i) {
    const { action, stage, text } = this.filters;
    if (action && op.action !== action) return false;
    if (stage && op.stage !== stage) return false;
    const q = text.trim().toLowerCase();
    return !q || q.split(/\s+/).every((word) => this.haystacks[i].includes(word));
  }

  renderOpList() {
    const groups = new Map(); // stage -> action -> ops
    let shown = 0;
    this.ops.forEach((op, i) => {
      if (!this.matches(op, i)) return;
      shown += 1;
      if (!groups.has(op.stage)) groups.set(op.stage, new Map());
      const byAction = groups.get(op.stage);
      if (!byAction.has(op.action)) byAction.set(op.action, []);
      byAction.get(op.action).push(op);
    });
    const total = this.ops.length;
    this.opCount.textContent = shown === total
      ? `Showing all ${plural(total, 'operation')}.`
      : `Showing ${shown} of ${plural(total, 'operation')}.`;
    this.opElements = new Map();
    clear(this.opList);
    if (!total) {
      add(this.opList, h('p', { class: 'pbx-empty' }, 'No operations: NetBox already matches Proxmox for everything this plan covers.'));
      return;
    }
    if (!shown) {
      add(this.opList, h('p', { class: 'pbx-empty' }, 'No operation matches the filters.'));
      return;
    }
    const totalsIn = (stage, action) => this.plan.summary?.stages?.[stage]?.[action];
    for (const stage of this.stageOrder()) {
      const byAction = groups.get(stage);
      if (!byAction) continue;
      const n = [...byAction.values()].reduce((a, ops) => a + ops.length, 0);
      const sectionEl = h('section', { class: 'pbx-stage-group', dataset: { stageGroup: stage }, 'aria-label': `Stage ${stage}` },
        h('h3', null, stage, ' ', h('span', { class: 'pbx-count' }, plural(n, 'operation'))));
      const actions = [...OP_ACTIONS, ...[...byAction.keys()].filter((a) => !OP_ACTIONS.includes(a))];
      for (const action of actions) {
        const ops = byAction.get(action);
        if (!ops) continue;
        const key = `${stage}\u0000${action}`;
        const all = totalsIn(stage, action) ?? ops.length;
        const details = h('details', { class: 'pbx-action-group', open: !this.closedGroups.has(key), dataset: { group: `${stage}/${action}` } },
          h('summary', null,
            h('span', { class: `pbx-badge pbx-a-${action}` }, action), ' ',
            h('span', { class: 'pbx-group-count', dataset: { groupCount: `${stage}/${action}` } },
              ops.length === all ? String(ops.length) : `${ops.length} of ${all}`)));
        details.addEventListener('toggle', () => {
          if (details.open) this.closedGroups.delete(key);
          else this.closedGroups.add(key);
        });
        const list = h('ol', { class: 'pbx-ops' });
        const limit = this.fullGroups.has(key) ? ops.length : GROUP_LIMIT;
        for (const op of ops.slice(0, limit)) add(list, this.renderOp(op));
        add(details, list);
        if (ops.length > limit) {
          const more = h('button', { type: 'button', class: 'pbx-button pbx-more', onclick: () => {
            this.fullGroups.add(key);
            for (const op of ops.slice(limit)) add(list, this.renderOp(op));
            more.remove();
          } }, `Show ${ops.length - limit} more`);
          add(details, more);
        }
        add(sectionEl, details);
      }
      add(this.opList, sectionEl);
    }
  }

  renderOp(op) {
    const line = h('summary', { class: 'pbx-op-line' },
      h('span', { class: `pbx-badge pbx-a-${op.action}` }, op.action), ' ',
      h('span', { class: 'pbx-op-model' }, op.model ?? ''), ' ',
      h('span', { class: 'pbx-op-key' }, op.key ?? op.id), ' ',
      op.reason ? h('span', { class: 'pbx-op-reason', dataset: { reason: op.reason } }, op.reason) : null);
    if (op.changes && typeof op.changes === 'object') {
      const fields = Object.keys(op.changes);
      add(line, [' ', h('span', { class: 'pbx-op-hint' }, `changes: ${fields.join(', ')}`)]);
    }
    if (op.detail != null) add(line, [' ', h('span', { class: 'pbx-op-detail' }, String(op.detail))]);
    const details = h('details', { class: 'pbx-op-details' }, line);
    let built = false;
    const build = () => {
      if (built) return;
      built = true;
      add(details, this.renderOpBody(op));
    };
    details.addEventListener('toggle', () => {
      if (details.open) {
        build();
        this.openOps.add(op.id);
      } else {
        this.openOps.delete(op.id);
      }
    });
    if (this.openOps.has(op.id)) {
      build();
      details.open = true;
    }
    const li = h('li', { class: `pbx-op pbx-op-${op.action}`, dataset: { opId: op.id } }, details);
    this.opElements.set(op.id, li);
    return li;
  }

  renderOpBody(op) {
    const known = ['id', 'stage', 'resource', 'model', 'collection', 'action', 'key', 'reason', 'detail',
      'target', 'changes', 'fields', 'depends_on'];
    const meta = h('dl', { class: 'pbx-kv pbx-op-meta' });
    const row = (k, v) => add(meta, [h('dt', null, k), h('dd', null, v)]);
    row('id', h('code', null, op.id));
    for (const k of ['stage', 'resource', 'collection', 'reason', 'detail']) {
      if (op[k] != null) row(k, k === 'collection' ? h('code', null, String(op[k])) : String(op[k]));
    }
    if (op.target) {
      row('target id', this.value(op.target.id));
      if ('last_updated' in op.target) row('last updated', this.value(op.target.last_updated));
    }
    for (const k of Object.keys(op)) if (!known.includes(k)) row(k, this.value(op[k]));
    if (op.depends_on?.length) {
      row('depends on', h('ul', { class: 'pbx-deps' }, op.depends_on.map((dep) => h('li', null, this.refButton(dep)))));
    }
    const parts = [meta];
    if (op.changes && typeof op.changes === 'object') {
      parts.push(h('table', { class: 'pbx-table pbx-changes' },
        h('caption', null, 'Field changes'),
        h('thead', null, h('tr', null, ['Field', 'Before', 'After'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, Object.entries(op.changes).map(([field, change]) => h('tr', { dataset: { field } },
          h('th', { scope: 'row' }, field),
          h('td', { class: 'pbx-before' }, this.value(change?.before)),
          h('td', { class: 'pbx-after' }, this.value(change?.after)))))));
    }
    if (op.fields && typeof op.fields === 'object') {
      parts.push(h('table', { class: 'pbx-table pbx-fields' },
        h('caption', null, op.action === 'create' ? 'Create payload' : 'Fields'),
        h('thead', null, h('tr', null, ['Field', 'Value'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, Object.entries(op.fields).map(([field, v]) => h('tr', { dataset: { field } },
          h('th', { scope: 'row' }, field), h('td', null, this.value(v)))))));
    }
    return h('div', { class: 'pbx-op-body' }, parts);
  }

  /** A JSON value as DOM: $refs become links to the operation, strings stay text. */
  value(v) {
    if (v === null || v === undefined) return h('span', { class: 'pbx-null' }, 'null');
    if (isRef(v)) return this.refButton(v.$ref);
    if (typeof v === 'string') {
      return v === '' ? h('span', { class: 'pbx-null' }, '(empty string)') : h('span', { class: 'pbx-str' }, v);
    }
    if (typeof v !== 'object') return h('code', { class: 'pbx-lit' }, String(v));
    if (Array.isArray(v)) {
      if (!v.length) return h('code', { class: 'pbx-lit' }, '[]');
      return h('ul', { class: 'pbx-list' }, v.map((item) => h('li', null, this.value(item))));
    }
    const keys = Object.keys(v);
    if (!keys.length) return h('code', { class: 'pbx-lit' }, '{}');
    if (keys.length === 1 && (v[keys[0]] === null || typeof v[keys[0]] !== 'object')) {
      return h('span', { class: 'pbx-pair' }, h('span', { class: 'pbx-pair-key' }, `${keys[0]}: `), this.value(v[keys[0]]));
    }
    return h('dl', { class: 'pbx-kv pbx-nested' }, keys.map((k) => [h('dt', null, k), h('dd', null, this.value(v[k]))]));
  }

  refButton(id) {
    const known = this.opsById.has(id);
    return h('button', {
      type: 'button', class: 'pbx-ref', disabled: !known,
      title: known ? 'Show the operation (its object gets its NetBox id when applied)' : 'Not an operation of this plan',
      onclick: () => this.revealOp(id),
    }, '→ ', id);
  }

  /** Shows one operation: clears filters that hide it, opens its group and itself. */
  revealOp(id) {
    const op = this.opsById.get(id);
    if (!op) return;
    const i = this.ops.indexOf(op);
    if (!this.matches(op, i)) {
      this.filters = { action: '', stage: '', text: '' };
      for (const name of ['f-action', 'f-stage', 'f-text']) {
        const el = this.root.querySelector(`#${this.id(name)}`);
        if (el) el.value = '';
      }
    }
    const key = `${op.stage}\u0000${op.action}`;
    this.closedGroups.delete(key);
    this.fullGroups.add(key);
    this.openOps.add(id);
    this.renderOpList();
    const li = this.opElements.get(id);
    if (!li) return;
    li.scrollIntoView({ block: 'center' });
    li.classList.add('pbx-flash');
    setTimeout(() => li.classList.remove('pbx-flash'), 1500);
    li.querySelector('summary')?.focus();
  }
}
