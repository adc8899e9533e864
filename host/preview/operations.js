// The operations of a plan, for reading: by NetBox object (the default) or by stage, with
// filters, every value in NetBox's terms (names, units, links) and every string as text.

import { add, clear, h, safeHref } from './dom.js';
import { formatSize, isRef, reasonText } from './describe.js';
import { buildTree, isStageWide } from './tree.js';

export const OP_ACTIONS = ['create', 'update', 'delete', 'skip'];
/** Operations rendered per group before a "show more" button. */
const GROUP_LIMIT = 200;
/** Fields shown inline on an update's line before "and N more". */
const INLINE_CHANGES = 2;

/** Fields whose values are model labels (`virtualization.vminterface`). */
const MODEL_FIELDS = ['assigned_object_type', 'object_types'];

const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Formats values and references of one plan; shared by every part of the preview. */
export class ValueRenderer {
  constructor(catalog, { cls, reveal }) {
    this.catalog = catalog;
    this.cls = cls;
    this.reveal = reveal;
  }

  /** A field's value as DOM, in NetBox's terms. `model`/`field` say what it is; `inline`
   *  keeps it on one line (lists joined, objects as "key: value"). */
  value(model, field, v, source = {}, inline = false) {
    if (v === null || v === undefined || v === '') return h('span', { class: 'pbx-null', title: v === '' ? 'empty' : 'none' }, '—');
    if (isRef(v)) return this.refButton(`op:${v.$ref}`);
    if (field === 'tags' && Array.isArray(v)) {
      return h('span', { class: 'pbx-tags' }, v.map((t) => h('span', { class: 'pbx-tag' }, this.catalog.tagName(t?.slug ?? t?.name ?? String(t)))));
    }
    if (field === 'custom_fields' && typeof v === 'object' && !Array.isArray(v)) {
      return this.pairs(Object.entries(v).map(([name, value]) => [this.catalog.customFieldLabel(name), this.value(null, name, value, {}, inline)]), inline);
    }
    if (MODEL_FIELDS.includes(field)) return this.modelNames(v);
    const referenced = field && typeof v !== 'string' && typeof v !== 'boolean' ? this.catalog.referenceKey(model, field, v, source) : null;
    if (referenced) return this.objectLink(referenced);
    const size = formatSize(model, field, v);
    if (size) return h('span', { class: 'pbx-size', title: `${v} (as stored in NetBox)` }, size);
    if (typeof v === 'boolean') return h('span', { class: 'pbx-lit' }, v ? 'yes' : 'no');
    if (typeof v === 'string') return h('span', { class: 'pbx-str' }, v);
    if (typeof v !== 'object') return h('span', { class: 'pbx-lit' }, String(v));
    if (Array.isArray(v)) {
      const items = v.map((item) => this.value(model, field, item, source, inline));
      return inline ? h('span', null, items.map((item, i) => [i ? ', ' : '', item])) : h('ul', { class: 'pbx-list' }, items.map((item) => h('li', null, item)));
    }
    if (typeof v.display === 'string') return h('span', { class: 'pbx-str' }, v.display);
    const keys = Object.keys(v);
    if (!keys.length) return h('span', { class: 'pbx-null' }, '—');
    if (inline) return h('span', { class: 'pbx-op-hint' }, plural(keys.length, 'key'));
    const list = this.pairs(keys.map((k) => [k, this.value(null, null, v[k])]), false);
    return keys.length > 6 ? h('details', { class: 'pbx-raw' }, h('summary', null, plural(keys.length, 'key')), list) : list;
  }

  /** [label, value node] pairs: a definition list, or "label: value; …" on one line. */
  pairs(entries, inline) {
    if (inline) return h('span', null, entries.map(([k, v], i) => [i ? '; ' : '', h('span', { class: 'pbx-pair-key' }, `${k}: `), v]));
    return h('dl', { class: 'pbx-kv pbx-nested' }, entries.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
  }

  /** `virtualization.vminterface` (or a list of them) as NetBox names them. */
  modelNames(v) {
    const labels = [v].flat().map((label) => this.catalog.modelName(label));
    return h('span', { class: 'pbx-str', title: [v].flat().join(', ') }, labels.join(', '));
  }

  /** A reference to an object this plan creates: its name, and a jump to its operation. */
  refButton(key) {
    const { op } = this.catalog.describe(key);
    return h('button', {
      type: 'button', class: 'pbx-ref', disabled: !op, dataset: { ref: key.slice(3) },
      title: op ? 'Created by this plan: show its operation' : 'Not an operation of this plan',
      // Inside an operation's line: show the other operation, do not fold this one.
      onclick: (e) => { e.preventDefault(); if (op) this.reveal(op.id); },
    }, '→ ', this.catalog.referenceText(key));
  }

  /** A NetBox object by name, linked to its page; a plan-created one as a reference. */
  objectLink(key) {
    if (key.startsWith('op:')) return this.refButton(key);
    const href = safeHref(this.catalog.describe(key).url);
    const text = this.catalog.referenceText(key);
    return href ? h('a', { href, class: 'pbx-link' }, text) : h('span', null, text);
  }

  /** "NetBox · change log" for an existing object, "new" for one the plan creates. */
  objectLinks(key) {
    const info = this.catalog.describe(key);
    if (key.startsWith('op:')) return h('span', { class: 'pbx-new', title: 'Created by this plan: not in NetBox yet' }, 'new');
    const href = safeHref(info.url);
    const log = safeHref(info.changelogUrl);
    return h('span', { class: 'pbx-links' },
      href ? h('a', { href, class: 'pbx-link', dataset: { objectLink: key } }, `#${info.netboxId}`) : `#${info.netboxId}`,
      log ? [' · ', h('a', { href: log, class: 'pbx-link', dataset: { changelogLink: key } }, 'change log')] : null);
  }

  /** What an operation does, on one line (the object is named around it). */
  opSummary(op) {
    const parts = [h('span', { class: `pbx-badge pbx-a-${op.action}` }, op.action)];
    const model = op.model;
    if (op.action === 'update' && op.changes) {
      const fields = Object.keys(op.changes);
      for (const field of fields.slice(0, INLINE_CHANGES)) {
        const change = op.changes[field] ?? {};
        parts.push(' ', h('span', { class: 'pbx-change', dataset: { field } },
          h('span', { class: 'pbx-change-field' }, this.catalog.fieldLabel(model, field)), ': ',
          this.value(model, field, change.before, {}, true), ' → ', this.value(model, field, change.after, {}, true)));
      }
      if (fields.length > INLINE_CHANGES) parts.push(' ', h('span', { class: 'pbx-op-hint' }, `and ${fields.length - INLINE_CHANGES} more`));
    }
    if (op.reason) parts.push(' ', h('span', { class: 'pbx-op-reason', dataset: { reason: op.reason } }, reasonText(op.reason)));
    if (op.detail != null) parts.push(' ', h('span', { class: 'pbx-op-detail' }, String(op.detail)));
    parts.push(' ', h('span', { class: 'pbx-stage-tag', title: 'stage' }, op.stage));
    return parts;
  }

  /** The fields of an operation (before/after of an update, values of a create) and its facts. */
  opBody(op) {
    const parts = [];
    const model = op.model;
    if (op.changes && typeof op.changes === 'object') {
      parts.push(h('table', { class: this.cls('table', 'pbx-table pbx-changes') },
        h('thead', null, h('tr', null, ['Field', 'Before', 'After'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, Object.entries(op.changes).map(([field, change]) => h('tr', { dataset: { field } },
          h('th', { scope: 'row' }, this.catalog.fieldLabel(model, field)),
          h('td', { class: 'pbx-before' }, this.value(model, field, change?.before)),
          h('td', { class: 'pbx-after' }, this.value(model, field, change?.after)))))));
    }
    if (op.fields && typeof op.fields === 'object') {
      parts.push(h('table', { class: this.cls('table', 'pbx-table pbx-fields') },
        h('thead', null, h('tr', null, ['Field', op.action === 'create' ? 'New value' : 'Value'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, Object.entries(op.fields).map(([field, v]) => h('tr', { dataset: { field } },
          h('th', { scope: 'row' }, this.catalog.fieldLabel(model, field)), h('td', null, this.value(model, field, v, op.fields)))))));
    }
    const facts = h('dl', { class: 'pbx-kv pbx-op-meta' });
    const fact = (k, v) => add(facts, [h('dt', null, k), h('dd', null, v)]);
    fact('Why', reasonText(op.reason));
    if (op.detail != null) fact('Detail', String(op.detail));
    fact('Stage', op.stage);
    const key = this.catalog.objectKey(op);
    if (op.action !== 'create' && !isStageWide(op)) fact('NetBox object', this.objectLinks(key));
    if (op.target && 'last_updated' in op.target && op.target.last_updated) fact('Last updated', String(op.target.last_updated));
    if (op.depends_on?.length) {
      fact('After', h('ul', { class: 'pbx-deps' }, op.depends_on.map((dep) => h('li', null, this.refButton(`op:${dep}`)))));
    }
    fact('Operation', h('code', null, op.id));
    parts.push(facts);
    return h('div', { class: 'pbx-op-body' }, parts);
  }
}

/**
 * What the operations card shows, kept across re-plans.
 * @typedef {object} ViewState
 * @property {string} view  'objects' or 'stages'
 * @property {{ action: string, stage: string, text: string }} filters
 * @property {Set<string>} openNodes  tree nodes shown open, by key
 * @property {Set<string>} openOps  operations shown open, by id
 * @property {Set<string>} closedGroups  `stage\0action` groups shown closed
 * @property {Set<string>} fullGroups  groups shown whole (not only their first operations)
 */

/**
 * The operations card. `state` outlives a re-plan: {view, filters, openNodes, openOps,
 * closedGroups, fullGroups}.
 */
export class OperationsView {
  /**
   * @param {object} o
   * @param {string} o.uid  the preview's id prefix
   * @param {import('proxbox-planner').Plan} o.plan
   * @param {import('./describe.js').PlanCatalog} o.catalog
   * @param {ValueRenderer} o.renderer
   * @param {(kind: string, own: string) => string} o.cls  the class names of a part (the theme's, and our own)
   * @param {ViewState} o.state
   * @param {() => string[]} o.stageOrder
   */
  constructor({ uid, plan, catalog, renderer, cls, state, stageOrder }) {
    this.uid = uid;
    this.plan = plan;
    this.catalog = catalog;
    this.renderer = renderer;
    this.cls = cls;
    this.state = state;
    this.stageOrder = stageOrder;
    this.ops = plan.operations ?? [];
    this.haystacks = this.ops.map((op) => {
      const key = catalog.objectKey(op);
      return [op.id, op.key, op.model, catalog.modelName(op.model), op.reason, reasonText(op.reason), op.detail,
        catalog.describe(key).name, catalog.referenceText(key)].filter((s) => s != null).join('\n').toLowerCase();
    });
    this.opElements = new Map();
  }

  id(name) {
    return `${this.uid}-${name}`;
  }

  render() {
    const byAction = countBy(this.ops, 'action');
    const byStage = countBy(this.ops, 'stage');
    const actions = [...OP_ACTIONS, ...[...byAction.keys()].filter((a) => !OP_ACTIONS.includes(a))];
    const stages = this.stageOrder().filter((s) => byStage.has(s));
    const { filters } = this.state;
    const select = (name, label, all, values, counts) => {
      const el = h('select', { id: this.id(`f-${name}`), name, class: this.cls('select', 'pbx-select'),
        onchange: (e) => { filters[name] = e.target.value; this.renderList(); } },
      h('option', { value: '' }, `${all} (${this.ops.length})`),
      values.map((v) => h('option', { value: v }, `${v} (${counts.get(v) ?? 0})`)),
      filters[name] && !values.includes(filters[name]) ? h('option', { value: filters[name] }, `${filters[name]} (0)`) : null);
      el.value = filters[name];
      return h('div', { class: 'pbx-field' }, h('label', { for: el.id }, label), el);
    };
    let timer;
    const search = h('input', {
      type: 'search', id: this.id('f-text'), name: 'q', class: this.cls('search', 'pbx-search'), value: filters.text,
      placeholder: 'name, model, reason…', autocomplete: 'off', spellcheck: 'false',
      oninput: (e) => {
        clearTimeout(timer);
        timer = setTimeout(() => { filters.text = e.target.value; this.renderList(); }, this.ops.length > 2000 ? 150 : 0);
      },
    });
    const views = h('div', { class: 'pbx-views', role: 'group', 'aria-label': 'Group operations' },
      [['objects', 'By NetBox object'], ['stages', 'By stage']].map(([view, label]) => h('button', {
        type: 'button', class: this.viewButtonClass(this.state.view === view),
        'aria-pressed': this.state.view === view ? 'true' : 'false', dataset: { view },
        onclick: () => { this.state.view = view; this.refreshViews(views); this.renderList(); },
      }, label)));
    this.count = h('p', { class: 'pbx-op-count', role: 'status', 'aria-live': 'polite' });
    this.list = h('div', { class: 'pbx-op-groups' });
    const form = h('form', { class: 'pbx-filters', role: 'search', 'aria-label': 'Filter operations', onsubmit: (e) => e.preventDefault() },
      h('div', { class: 'pbx-field' }, h('span', { class: 'pbx-label' }, 'Group'), views),
      select('action', 'Action', 'All actions', actions, byAction),
      select('stage', 'Stage', 'All stages', stages, byStage),
      h('div', { class: 'pbx-field pbx-grow' }, h('label', { for: search.id }, 'Search'), search),
      h('div', { class: 'pbx-field' }, h('button', { type: 'button', class: this.cls('button', 'pbx-button'), onclick: () => {
        Object.assign(filters, { action: '', stage: '', text: '' });
        for (const el of form.querySelectorAll('select, input')) el.value = '';
        this.renderList();
      } }, 'Clear filters')));
    this.renderList();
    return [form, this.count, this.list];
  }

  refreshViews(views) {
    for (const button of views.querySelectorAll('button')) {
      const on = button.dataset.view === this.state.view;
      button.setAttribute('aria-pressed', on ? 'true' : 'false');
      button.className = this.viewButtonClass(on);
    }
  }

  viewButtonClass(on) {
    return on ? this.cls('primary', 'pbx-button pbx-primary pbx-view') : this.cls('button', 'pbx-button pbx-view');
  }

  filtered() {
    const { action, stage, text } = this.state.filters;
    const words = text.trim().toLowerCase().split(/\s+/).filter(Boolean);
    return this.ops.filter((op, i) => (!action || op.action === action) && (!stage || op.stage === stage)
      && words.every((word) => this.haystacks[i].includes(word)));
  }

  get filtering() {
    const { action, stage, text } = this.state.filters;
    return Boolean(action || stage || text.trim());
  }

  renderList() {
    const shown = this.filtered();
    const total = this.ops.length;
    this.count.textContent = shown.length === total
      ? `${plural(total, 'operation')}.`
      : `Showing ${shown.length} of ${plural(total, 'operation')}.`;
    this.opElements = new Map();
    clear(this.list);
    if (!total) {
      add(this.list, h('p', { class: 'pbx-empty' }, 'No operations: NetBox already matches Proxmox for everything this plan covers.'));
      return;
    }
    if (!shown.length) {
      add(this.list, h('p', { class: 'pbx-empty' }, 'No operation matches the filters.'));
      return;
    }
    if (this.state.view === 'stages') this.renderStages(shown);
    else this.renderObjects(shown);
  }

  // --- by NetBox object -------------------------------------------------------

  renderObjects(shown) {
    const roots = buildTree(this.catalog, shown);
    add(this.list, h('div', { class: 'pbx-tree', role: 'tree' }, roots.map((n) => this.renderNode(n, 0))));
  }

  renderNode(node, depth) {
    const open = this.filtering || this.state.openNodes.has(node.key);
    const details = h('details', { class: `pbx-node pbx-node-${node.kind}`, open, role: 'treeitem',
      dataset: { nodeKey: node.key, nodeKind: node.kind, ...(node.model ? { nodeModel: node.model } : {}) } },
    h('summary', { class: 'pbx-node-line' }, this.nodeTitle(node), ' ', this.countBadges(node.counts)));
    buildWhenOpen(details, this.state.openNodes, node.key, () => {
      const context = node.kind === 'stage-wide' ? 'stage-wide' : 'object';
      const ops = node.ops.map((op) => this.renderOp(op, context));
      add(details, h('div', { class: 'pbx-node-body' },
        ops.length ? h('ol', { class: 'pbx-ops' }, ops) : null,
        node.children.map((child) => this.renderNode(child, depth + 1))));
    });
    return details;
  }

  nodeTitle(node) {
    const { catalog } = this;
    if (node.kind === 'group') return h('span', { class: 'pbx-node-title' }, h('strong', null, catalog.modelPlural(node.model)));
    if (node.kind === 'stage-wide') return h('span', { class: 'pbx-node-title' }, h('strong', null, 'Whole stages and resource types'));
    const info = catalog.describe(node.key);
    return h('span', { class: 'pbx-node-title' },
      h('span', { class: 'pbx-model' }, catalog.modelName(info.model)), ' ',
      h('strong', { class: 'pbx-node-name' }, String(info.name)), ' ',
      this.renderer.objectLinks(node.key));
  }

  countBadges(counts) {
    const items = OP_ACTIONS.filter((a) => counts[a]).map((a) =>
      h('span', { class: `pbx-count-badge pbx-a-${a}`, dataset: { nodeCount: a } }, `${counts[a]} ${a}`));
    return h('span', { class: 'pbx-counts' }, items);
  }

  // --- by stage ---------------------------------------------------------------

  renderStages(shown) {
    const groups = new Map(); // stage -> action -> ops
    for (const op of shown) {
      if (!groups.has(op.stage)) groups.set(op.stage, new Map());
      const byAction = groups.get(op.stage);
      if (!byAction.has(op.action)) byAction.set(op.action, []);
      byAction.get(op.action).push(op);
    }
    for (const stage of this.stageOrder()) {
      const byAction = groups.get(stage);
      if (!byAction) continue;
      const n = [...byAction.values()].reduce((sum, ops) => sum + ops.length, 0);
      const section = h('section', { class: 'pbx-stage-group', dataset: { stageGroup: stage }, 'aria-label': `Stage ${stage}` },
        h('h3', null, stage, ' ', h('span', { class: 'pbx-count' }, plural(n, 'operation'))));
      const actions = [...OP_ACTIONS, ...[...byAction.keys()].filter((a) => !OP_ACTIONS.includes(a))];
      for (const action of actions) if (byAction.has(action)) add(section, this.renderActionGroup(stage, action, byAction.get(action)));
      add(this.list, section);
    }
  }

  renderActionGroup(stage, action, ops) {
    const key = `${stage}\u0000${action}`;
    const all = this.plan.summary?.stages?.[stage]?.[action] ?? ops.length;
    const details = h('details', { class: 'pbx-action-group', open: !this.state.closedGroups.has(key), dataset: { group: `${stage}/${action}` } },
      h('summary', null,
        h('span', { class: `pbx-badge pbx-a-${action}` }, action), ' ',
        h('span', { class: 'pbx-group-count', dataset: { groupCount: `${stage}/${action}` } },
          ops.length === all ? String(ops.length) : `${ops.length} of ${all}`)));
    details.addEventListener('toggle', () => {
      if (details.open) this.state.closedGroups.delete(key);
      else this.state.closedGroups.add(key);
    });
    const list = h('ol', { class: 'pbx-ops' });
    const limit = this.state.fullGroups.has(key) ? ops.length : GROUP_LIMIT;
    for (const op of ops.slice(0, limit)) add(list, this.renderOp(op, 'stage'));
    add(details, list);
    if (ops.length > limit) {
      const more = h('button', { type: 'button', class: this.cls('button', 'pbx-button pbx-more'), onclick: () => {
        this.state.fullGroups.add(key);
        for (const op of ops.slice(limit)) add(list, this.renderOp(op, 'stage'));
        more.remove();
      } }, `Show ${ops.length - limit} more`);
      add(details, more);
    }
    return details;
  }

  // --- one operation ------------------------------------------------------------

  /** `context`: 'object' (its object names it around), 'stage' or 'stage-wide' (named here). */
  renderOp(op, context) {
    const { catalog } = this;
    const key = catalog.objectKey(op);
    const subject = context === 'object' ? null
      : context === 'stage-wide' || isStageWide(op)
        ? h('span', { class: 'pbx-op-key' }, `${catalog.modelPlural(op.model)}: ${op.key ?? ''}`)
        : [h('span', { class: 'pbx-op-model' }, catalog.modelName(op.model)), ' ', h('span', { class: 'pbx-op-key' }, catalog.referenceText(key))];
    const [badge, ...rest] = this.renderer.opSummary(op);
    const line = h('summary', { class: 'pbx-op-line' }, badge, subject ? [' ', subject] : null, rest);
    const details = h('details', { class: 'pbx-op-details', open: this.state.openOps.has(op.id) }, line);
    buildWhenOpen(details, this.state.openOps, op.id, () => add(details, this.renderer.opBody(op)));
    const li = h('li', { class: `pbx-op pbx-op-${op.action}`, dataset: { opId: op.id } }, details);
    this.opElements.set(op.id, li);
    return li;
  }

  /** Shows one operation: clears filters that hide it, opens what holds it, focuses it. */
  reveal(opId) {
    const op = this.ops.find((o) => o.id === opId);
    if (!op) return;
    if (!this.filtered().includes(op)) {
      Object.assign(this.state.filters, { action: '', stage: '', text: '' });
      for (const name of ['f-action', 'f-stage', 'f-text']) {
        const el = /** @type {HTMLInputElement | HTMLSelectElement | null} */ (document.getElementById(this.id(name)));
        if (el) el.value = '';
      }
    }
    if (this.state.view === 'stages') {
      const key = `${op.stage}\u0000${op.action}`;
      this.state.closedGroups.delete(key);
      this.state.fullGroups.add(key);
    } else {
      const wanted = isStageWide(op) ? 'stage-wide' : this.catalog.objectKey(op);
      for (const node of pathTo(buildTree(this.catalog, this.ops), wanted)) this.state.openNodes.add(node.key);
    }
    this.state.openOps.add(opId);
    this.renderList();
    const li = this.opElements.get(opId);
    if (!li) return;
    li.scrollIntoView({ block: 'center' });
    li.classList.add('pbx-flash');
    setTimeout(() => li.classList.remove('pbx-flash'), 1500);
    li.querySelector('summary')?.focus();
  }
}

/** Builds a <details>' contents the first time it is open, and keeps `openSet` in step with
 *  it, so what the reader opened stays open through a re-plan. */
function buildWhenOpen(details, openSet, key, build) {
  let built = false;
  const ensure = () => {
    if (built) return;
    built = true;
    build();
  };
  details.addEventListener('toggle', () => {
    if (details.open) {
      ensure();
      openSet.add(key);
    } else {
      openSet.delete(key);
    }
  });
  if (details.open) ensure();
}

/** The nodes from a root down to the node with `key` (empty when it is not there). */
function pathTo(nodes, key) {
  for (const node of nodes) {
    if (node.key === key) return [node];
    const below = pathTo(node.children, key);
    if (below.length) return [node, ...below];
  }
  return [];
}

function countBy(ops, key) {
  const m = new Map();
  for (const op of ops) m.set(op[key], (m.get(op[key]) ?? 0) + 1);
  return m;
}
