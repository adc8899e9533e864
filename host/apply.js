// The executor: applies a plan to NetBox, batching consecutive operations of
// the same collection and action, resolving `$ref`s to the ids NetBox
// returned, and checking every update/delete precondition
// (`target.last_updated`) first. It makes no sync decision: what to write
// comes from the plan; this file only decides how to get it written safely.
//
// Batches run side by side, up to `concurrency` at once: a batch starts as
// soon as every operation it depends on (`depends_on`, the plan's DAG) has
// an outcome, so the interfaces of the first VMs are written while later VMs
// still are (a pipeline, not a barrier per stage). Two operations on one
// object run in plan order, and deletes (children first, at the end of a
// plan) run one batch at a time after everything else.
//
// The plan is the unit of retry. After a failure or a crash, re-plan against
// fresh NetBox state and apply the new plan. Applying the SAME plan again is
// safe too: before every create batch the executor looks for an object that
// already has exactly the fields the plan would write (found: the operation is
// done, with that object's id, `existing: true`: the core's `lookup` finds the
// candidates and its `matchesExisting` decides); updates of objects changed
// since planning are refused as `stale`; deletes of objects already gone are
// done.
import * as planner from 'proxbox-planner';
import { backoffDelay, sleep } from './http.js';
import { applyOutcome, incompleteReason, OUTCOMES, RunError, UsageError, warningsOf } from './outcome.js';

/** @typedef {import('proxbox-planner').Plan} Plan @typedef {import('proxbox-planner').Operation} Operation */
/**
 * @typedef {object} ApplyOptions
 * @property {number} [batchSize=100]
 * @property {number} [concurrency] batches in flight at most (default: the client's
 *   `concurrency`, 4); fewer while the client's gate is lowered by 429/503 answers
 * @property {'always'|'retry'|'never'|boolean} [verifyCreates='always'] look for identical existing
 *   objects before every create batch ('retry': only before re-sending after an unknown outcome;
 *   true and false: always and never)
 * @property {number} [writeRetries=3] re-sends of a create batch whose outcome was unknown
 * @property {import('./events.js').Emit} [emit] progress events (see events.js)
 * @property {(ms: number) => Promise<unknown>} [sleep]  the wait between re-sends (tests)
 * @property {() => number} [random]  the back-off jitter (tests)
 */
/**
 * What happened to one operation: `status` is one of STATUSES.
 * @typedef {object} Outcome
 * @property {string} status
 * @property {number} [netbox_id]  the object written, matched or found gone
 * @property {Record<string, any>} [error]  `message`, and NetBox's `status` and `body` when it answered
 * @property {boolean} [existing]  done without a write: the object was already there (or already gone)
 * @property {string} [detail]  a skip's detail
 */
/** @typedef {Outcome & { id: string, action: string, collection: string, key: string }} ReportEntry */
/**
 * `total` operations, the `changes` among them (not skips), one count per status (STATUSES),
 * and the same per action.
 * @typedef {{ total: number, changes: number, by_action: Record<string, Record<string, number>> } & Record<string, any>} ApplyCounts
 */
/**
 * @typedef {object} ApplyReport
 * @property {boolean} ok
 * @property {string} outcome  one of OUTCOMES (outcome.js)
 * @property {import('proxbox-planner').Warning[]} warnings
 * @property {ApplyCounts} counts
 * @property {ReportEntry[]} operations  in plan order
 * @property {{ total: number, retries: number, by_method: Record<string, number> }} requests  this apply's NetBox requests
 * @property {number} duration_ms
 */

export const STATUSES = ['done', 'failed', 'stale', 'skipped', 'skipped-dependency'];
const BLOCKING = new Set(['failed', 'stale', 'skipped-dependency']);
const OUTCOME = { create: 'created', update: 'updated', delete: 'deleted' };

class UnresolvedRef extends Error {
  constructor(ref) {
    super(`unresolved $ref ${ref}: that operation did not create an object`);
    this.ref = ref;
  }
}

const isRef = (value) =>
  value !== null && typeof value === 'object' && !Array.isArray(value) && typeof value.$ref === 'string' && Object.keys(value).length === 1;

/** Replaces every `{"$ref": op}` (at any depth) with the NetBox id `ids.get(op)`. */
export function resolveRefs(value, ids) {
  if (isRef(value)) {
    if (!ids.has(value.$ref)) throw new UnresolvedRef(value.$ref);
    return ids.get(value.$ref);
  }
  if (Array.isArray(value)) return value.map((v) => resolveRefs(v, ids));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveRefs(v, ids)]));
  }
  return value;
}

/** The operations whose NetBox ids `op` needs: the `$ref`s of its payload and target. */
function referencedOps(op) {
  const out = new Set();
  const walk = (value) => {
    if (isRef(value)) out.add(value.$ref);
    else if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === 'object') Object.values(value).forEach(walk);
  };
  walk(op.fields);
  for (const change of Object.values(op.changes ?? {})) walk(change.after);
  walk(op.target?.id);
  return out;
}

/**
 * Groups plan operations into batches: consecutive operations of the same
 * collection and action, none needing the id of another of the same batch,
 * and (for updates/deletes) no target twice. An operation may wait for one
 * earlier in its batch without a `$ref` to it (one VM's disks, one after
 * another): NetBox writes a bulk request's objects in order, in one
 * transaction. Exported for tests; the executor builds the same batches as
 * it goes.
 */
export function batches(operations, { batchSize = 100 } = {}) {
  const out = [];
  let current = null;
  for (const op of operations) {
    if (op.action === 'skip') {
      current = null;
      out.push([op]);
      continue;
    }
    if (current && canJoin(current, op, batchSize)) {
      current.push(op);
      continue;
    }
    current = [op];
    out.push(current);
  }
  return out;
}

function canJoin(batch, op, batchSize) {
  const head = batch[0];
  if (batch.length >= batchSize || head.collection !== op.collection || head.action !== op.action) return false;
  const ids = new Set(batch.map((o) => o.id));
  const needed = referencedOps(op);
  if ((op.depends_on ?? []).some((dep) => ids.has(dep) && needed.has(dep))) return false;
  if (op.action !== 'create') {
    const key = JSON.stringify(op.target?.id);
    if (batch.some((o) => JSON.stringify(o.target?.id) === key)) return false;
  }
  return true;
}

/**
 * Applies `plan` through `client` (a NetBoxClient).
 * @param {Plan} plan  the core's plan
 * @param {import('./netbox.js').NetBoxClient} client
 * @param {ApplyOptions} [options]
 * @returns {Promise<ApplyReport>}
 */
export async function applyPlan(plan, client, options = {}) {
  const executor = new Executor(plan, client, options);
  return executor.run();
}

/**
 * The plan's batches as units of work, in plan order: `ops`, the operation
 * ids each waits for (`after`: what its operations depend on, and earlier
 * operations on the same object), and whether it must run alone after
 * everything before it (`alone`: deletes).
 */
export function workUnits(operations, { batchSize = 100 } = {}) {
  const planned = new Set(operations.map((op) => op.id));
  const lastOnTarget = new Map(); // collection + target id -> the last operation on it so far
  return batches(operations, { batchSize }).map((ops, index) => {
    const own = new Set(ops.map((op) => op.id));
    const after = new Set();
    for (const op of ops) {
      for (const dep of op.depends_on ?? []) if (planned.has(dep) && !own.has(dep)) after.add(dep);
      if (op.action === 'update' || op.action === 'delete') {
        const key = `${op.collection} ${JSON.stringify(op.target?.id)}`;
        const previous = lastOnTarget.get(key);
        if (previous && !own.has(previous)) after.add(previous);
        lastOnTarget.set(key, op.id);
      }
    }
    return { index, ops, after, alone: ops[0].action === 'delete' };
  });
}

class Executor {
  /** @param {Plan} plan @param {import('./netbox.js').NetBoxClient} client @param {ApplyOptions} [options] */
  constructor(plan, client, {
    batchSize = client.batchSize ?? 100, concurrency = client.concurrency ?? 4, verifyCreates = 'always', writeRetries = 3,
    emit = () => {}, sleep: sleeper = sleep, random = Math.random,
  } = {}) {
    if (!plan || !Array.isArray(plan.operations)) throw new Error('not a plan: no operations list');
    // An empty or short plan from an input the core could not read whole means "could not look".
    if (plan.complete === false) throw new RunError(incompleteReason(plan));
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`concurrency must be a positive integer (got ${concurrency})`);
    this.plan = plan;
    this.client = client;
    // NetBox records it with each change: the core reads the sync's own writes by it.
    this.changelogMessage = typeof plan.changelog_message === 'string' && plan.changelog_message ? plan.changelog_message : null;
    this.batchSize = batchSize;
    this.concurrency = concurrency;
    this.verifyCreates = verifyCreates === true ? 'always' : verifyCreates === false ? 'never' : verifyCreates;
    this.writeRetries = writeRetries;
    this.emit = emit;
    this.sleep = sleeper;
    this.random = random;
    this.ids = new Map(); // op id -> NetBox id (creates)
    this.results = new Map(); // op id -> report entry
    this.touched = new Set(); // `${collection}#${id}` written or matched by this apply
    // Progress counts changes (create/update/delete), as the prompt and the report do; planned skips are not work.
    this.total = countChanges(plan);
    this.current = 0;
    this.stageStats = new Map();
    this.remaining = new Map(); // stage -> operations without an outcome yet
    for (const op of plan.operations) this.remaining.set(op.stage, (this.remaining.get(op.stage) ?? 0) + 1);
    this.waiters = new Map(); // op id -> units waiting for its outcome
    this.aloneRunning = false;
  }

  async run() {
    const started = Date.now();
    const before = { ...this.client.stats, byMethod: { ...this.client.stats.byMethod } };
    this.emit('step', { step: 'apply', status: 'started', message: `Applying ${this.total} changes` });
    await this.#schedule(workUnits(this.plan.operations, { batchSize: this.batchSize }));
    const report = this.#report(started, before);
    this.emit('step', { step: 'apply', status: report.ok ? 'completed' : 'failed', message: summaryLine(report.counts) });
    return report;
  }

  /** Batches in flight, at most `concurrency` (fewer while the client's gate is lowered). */
  get #capacity() {
    return Math.max(1, Math.min(this.concurrency, this.client.gate?.limit ?? this.concurrency));
  }

  /**
   * Starts every unit whose operations' dependencies have outcomes, earliest
   * in the plan first, while there is room; waits for one to finish; again.
   */
  async #schedule(units) {
    for (const unit of units) {
      unit.waiting = 0;
      for (const id of unit.after) {
        if (this.results.has(id)) continue;
        unit.waiting += 1;
        if (!this.waiters.has(id)) this.waiters.set(id, []);
        this.waiters.get(id).push(unit);
      }
    }
    let pending = units;
    const running = new Set();
    while (pending.length || running.size) {
      const settled = this.results.size;
      pending = this.#startReady(pending, running);
      if (running.size) await Promise.race(running);
      else if (pending.length && this.results.size === settled) {
        this.#failStuck(pending);
        pending = [];
      }
    }
  }

  /** Starts what may start now (see #schedule); returns the units still to start, in plan order. */
  #startReady(pending, running) {
    const left = [];
    let aloneLeft = false;
    for (const unit of pending) {
      // A unit that runs alone waits for everything before it, and nothing starts beside or after it.
      const held = this.aloneRunning || aloneLeft || (unit.alone && (left.length > 0 || running.size > 0));
      if (held || unit.waiting > 0) {
        left.push(unit);
        aloneLeft ||= unit.alone;
        continue;
      }
      if (!this.#settleUnrunnable(unit)) continue; // skips and operations whose dependencies failed: no request
      if (running.size >= this.#capacity) {
        left.push(unit);
        aloneLeft ||= unit.alone;
        continue;
      }
      this.aloneRunning = unit.alone;
      const task = this.#runBatch(unit.live).finally(() => {
        running.delete(task);
        if (unit.alone) this.aloneRunning = false;
      });
      running.add(task);
    }
    return left;
  }

  /**
   * Records the unit's skips and the operations whose dependencies failed;
   * `unit.live` is what is left to send. False when nothing is.
   */
  #settleUnrunnable(unit) {
    if (!unit.live) {
      unit.live = [];
      for (const op of unit.ops) {
        this.#stageStarted(op);
        if (op.action === 'skip') {
          this.#record(op, { status: 'skipped', detail: op.detail ?? op.reason });
          continue;
        }
        if (this.#unblocked(op)) unit.live.push(op);
      }
    }
    return unit.live.length > 0;
  }

  /** Operations that wait for an operation planned after them (a plan not in dependency order). */
  #failStuck(pending) {
    for (const unit of pending) {
      for (const op of unit.ops) {
        if (this.results.has(op.id)) continue;
        this.#stageStarted(op);
        this.#record(op, { status: 'failed', error: { message: 'waits for an operation planned after it: the plan is not in dependency order' } });
      }
      unit.waiting = 0;
      unit.live = [];
    }
  }

  async #runBatch(batch) {
    const { action } = batch[0];
    try {
      if (action === 'create') await this.#creates(batch);
      else if (action === 'update' || action === 'delete') await this.#writes(batch, action);
      else for (const o of batch) this.#record(o, { status: 'failed', error: { message: `unknown action ${o.action}` } });
    } catch (error) {
      // A bug here must not leave operations without an outcome (or the run waiting for them).
      for (const o of batch) if (!this.results.has(o.id)) this.#record(o, { status: 'failed', error: errorInfo(error) });
    }
  }

  /**
   * The items still to send once the operations of their own batch they
   * wait for failed: those are recorded `skipped-dependency`, in order, so a
   * chain is skipped to its end.
   */
  #withoutBlocked(items) {
    return items.filter((item) => this.#unblocked(item.op));
  }

  /** False, with the operation recorded `skipped-dependency`, when one it depends on failed. */
  #unblocked(op) {
    const blocker = this.#blocker(op);
    if (!blocker) return true;
    this.#record(op, { status: 'skipped-dependency', error: { message: `depends on ${blocker} (${this.results.get(blocker).status})`, dependency: blocker } });
    return false;
  }

  #blocker(op) {
    for (const dep of op.depends_on ?? []) {
      const result = this.results.get(dep);
      if (result && BLOCKING.has(result.status)) return dep;
    }
    return null;
  }

  #stageStarted(op) {
    if (this.stageStats.has(op.stage)) return;
    this.stageStats.set(op.stage, { created: 0, updated: 0, deleted: 0, skipped: 0, failed: 0, stale: 0, skipped_dependency: 0 });
    this.emit('step', { step: op.stage, phase: op.stage, status: 'started', message: `Stage ${op.stage}` });
  }

  /** @param {Operation} op @param {Outcome} outcome */
  #record(op, { status, netbox_id, error, existing, detail }) {
    /** @type {ReportEntry} */
    const entry = { id: op.id, action: op.action, status, collection: op.collection, key: op.key };
    if (netbox_id !== undefined && netbox_id !== null) entry.netbox_id = netbox_id;
    if (existing) entry.existing = true;
    if (error) entry.error = error;
    if (detail && status === 'skipped') entry.detail = detail;
    this.results.set(op.id, entry);
    if (op.action !== 'skip') this.current += 1;
    const outcome = status === 'done' ? OUTCOME[op.action] : status;
    const stats = this.stageStats.get(op.stage);
    const key = status === 'done' ? outcome : status === 'skipped-dependency' ? 'skipped_dependency' : status;
    if (stats && key in stats) stats[key] += 1;
    const percent = this.total ? Math.round((this.current / this.total) * 1000) / 10 : 100;
    const label = `${op.model} ${op.key}`;
    const message = status === 'done'
      ? `${outcome[0].toUpperCase()}${outcome.slice(1)} ${label}${existing ? ' (already there)' : ''}`
      : status === 'skipped' ? `Skipped ${label}: ${op.reason}` : `${status} ${label}: ${error?.message ?? ''}`;
    // `status` stays "progress": the Proxbox UI ends its stream on status "failed".
    this.emit('item_progress', {
      phase: op.stage, step: op.stage, status: 'progress', outcome, operation: op.id, action: op.action,
      model: op.model, key: op.key, ...(entry.netbox_id !== undefined ? { netbox_id: entry.netbox_id } : {}),
      message, progress: { current: this.current, total: this.total, percent },
    });
    if (BLOCKING.has(status)) {
      this.emit('error_detail', {
        phase: op.stage, category: status === 'stale' ? 'stale' : status === 'skipped-dependency' ? 'dependency' : 'netbox',
        operation: op.id, message: `${label}: ${error?.message ?? status}`, ...(error?.status ? { status: error.status } : {}),
        ...(error?.body !== undefined ? { detail: error.body } : {}),
      });
    }
    const left = this.remaining.get(op.stage) - 1;
    this.remaining.set(op.stage, left);
    if (left === 0) this.#stageDone(op.stage);
    for (const unit of this.waiters.get(op.id) ?? []) unit.waiting -= 1;
    this.waiters.delete(op.id);
  }

  #stageDone(stage) {
    // Once every operation of the stage has an outcome (deletes come at the end of a plan).
    const stats = this.stageStats.get(stage);
    if (!stats) return;
    const failed = stats.failed + stats.stale + stats.skipped_dependency;
    this.emit('phase_summary', {
      phase: stage, step: stage, status: failed ? 'completed_with_errors' : 'completed',
      result: { ...stats },
      message: `${stage}: ${stats.created} created, ${stats.updated} updated, ${stats.deleted} deleted, ${stats.skipped} skipped, ${failed} failed`,
    });
    this.emit('step', {
      step: stage, phase: stage, status: failed ? 'failed' : 'completed',
      message: `Stage ${stage} ${failed ? 'finished with errors' : 'done'}`,
    });
  }

  // ------------------------------------------------------------------ creates

  async #creates(batch) {
    const items = [];
    for (const op of batch) {
      try {
        items.push({ op, payload: resolveRefs(op.fields ?? {}, this.ids), lookup: resolveRefs(op.lookup ?? {}, this.ids) });
      } catch (error) {
        this.#record(op, { status: 'failed', error: errorInfo(error) });
      }
    }
    await this.#createItems(batch[0].collection, items, true);
  }

  async #createItems(collection, items, splittable) {
    let pending = items;
    let lookFirst = this.verifyCreates === 'always';
    let unsure = false; // an earlier attempt got no answer: it may still land, after our look
    for (let attempt = 0; pending.length; ) {
      if (lookFirst) {
        pending = await this.#adoptExisting(collection, pending);
        if (!pending.length) return;
        lookFirst = false;
      }
      try {
        const created = await this.client.createBatch(collection, pending.map((i) => this.#marked(i.payload)), { idempotent: false });
        if (!Array.isArray(created) || created.length !== pending.length) {
          throw Object.assign(new Error(`POST ${collection}: expected a list of ${pending.length} objects back`), { status: 200 });
        }
        pending.forEach((item, at) => this.#created(item.op, created[at].id));
        return;
      } catch (error) {
        const perItem = itemErrors(error, pending.length);
        if (perItem) {
          // NetBox validated every item and created nothing: fail the bad ones, re-send the rest.
          const refused = new Map(pending.flatMap((item, at) => (perItem.has(at) ? [[item, perItem.get(at)]] : [])));
          pending = pending.filter((item, at) => !perItem.has(at));
          // Refused as a duplicate of our own earlier attempt, landed after the look? Look again.
          const notOurs = unsure ? await this.#adoptExisting(collection, [...refused.keys()]) : [...refused.keys()];
          for (const item of notOurs) {
            const body = refused.get(item);
            this.#record(item.op, {
              status: 'failed',
              error: { status: error.status, body, message: `POST ${collection} → ${error.status}: ${JSON.stringify(body)}` },
            });
          }
          pending = this.#withoutBlocked(pending);
          continue;
        }
        if (error.ambiguous && this.verifyCreates !== 'never' && attempt < this.writeRetries) {
          // The batch may or may not have been created: wait, then look before re-sending.
          await this.sleep(backoffDelay(attempt, { base: this.client.backoff ?? 500, max: this.client.maxBackoff ?? 8000, random: this.random }));
          attempt += 1;
          lookFirst = true;
          unsure = true;
          continue;
        }
        const httpFailure = error.status >= 400 && error.status !== 429 && error.status !== 503 && !error.ambiguous;
        if (splittable && pending.length > 1 && httpFailure) {
          // One object broke the whole batch (a 500 IntegrityError, an unusual 400): isolate it.
          for (const item of pending) if (this.#unblocked(item.op)) await this.#createItems(collection, [item], false);
          return;
        }
        const info = errorInfo(error);
        if (error.ambiguous) info.message = `${info.message} (outcome unknown: re-plan to see what NetBox holds)`;
        for (const item of pending) this.#record(item.op, { status: 'failed', error: info });
        return;
      }
    }
  }

  /** A write's body with the plan's change-log message, when it has one. */
  #marked(body) {
    return this.changelogMessage ? { ...body, changelog_message: this.changelogMessage } : body;
  }

  #created(op, id) {
    this.ids.set(op.id, id);
    this.touched.add(`${op.collection}#${id}`);
    this.#record(op, { status: 'done', netbox_id: id });
  }

  /**
   * Finds objects that already hold exactly what the pending creates would
   * write (a crash or lost answer after NetBox created them, or a second apply
   * of the same plan): those operations are done with the existing ids.
   */
  async #adoptExisting(collection, pending) {
    let candidates;
    try {
      candidates = await this.#lookup(collection, pending);
    } catch (error) {
      // The lookup is a safety net; if it fails the create still meets NetBox's own uniqueness checks.
      this.emit('error_detail', {
        phase: pending[0].op.stage, category: 'lookup', message: `existing-object lookup on ${collection} failed: ${error.message}`,
      });
      return pending;
    }
    const rest = [];
    for (const item of pending) {
      // An object this apply made or matched is another operation's, even when it looks the same.
      const match = candidates.find((object) => !this.touched.has(`${collection}#${object.id}`) && planner.matchesExisting(item.payload, object));
      if (!match) {
        rest.push(item);
        continue;
      }
      this.ids.set(item.op.id, match.id);
      this.touched.add(`${collection}#${match.id}`);
      this.#record(item.op, { status: 'done', netbox_id: match.id, existing: true });
    }
    return rest;
  }

  /** The candidates, with the fields the creates would write (what `matchesExisting` compares). */
  async #lookup(collection, pending) {
    const fields = [...new Set(['id', ...pending.flatMap((item) => Object.keys(item.payload))])].join(',');
    const found = new Map();
    for (const group of lookupGroups(pending)) {
      for (const object of await this.client.list(collection, { query: { ...group, fields }, cursor: false })) found.set(object.id, object);
    }
    return [...found.values()].sort((a, b) => a.id - b.id);
  }

  // ---------------------------------------------------------- updates/deletes

  async #writes(batch, action) {
    const collection = batch[0].collection;
    const items = [];
    for (const op of batch) {
      try {
        const id = resolveRefs(op.target?.id, this.ids);
        if (!Number.isInteger(id)) throw new Error(`target id is not an id: ${JSON.stringify(op.target?.id)}`);
        const body = this.#marked(action === 'update' ? { id, ...resolveChanges(op.changes, this.ids) } : { id });
        items.push({ op, id, body });
      } catch (error) {
        this.#record(op, { status: 'failed', error: errorInfo(error) });
      }
    }
    const ready = await this.#preconditions(collection, items, action);
    if (!ready.length) return;
    if (action === 'update') await this.#updateItems(collection, ready);
    else await this.#deleteItems(collection, ready);
  }

  /** Refuses (stale) what changed since planning, unless this apply changed it. */
  async #preconditions(collection, items, action) {
    const check = items.filter(({ op, id }) => op.target?.last_updated && !this.touched.has(`${collection}#${id}`));
    if (!check.length) return items;
    let current;
    try {
      current = await this.client.getMany(collection, check.map((i) => i.id), { fields: ['id', 'last_updated'] });
    } catch (error) {
      for (const item of items) this.#record(item.op, {
        status: 'failed', error: { ...errorInfo(error), message: `precondition check failed: ${error.message}` },
      });
      return [];
    }
    const now = new Map(current.map((o) => [o.id, o.last_updated]));
    const checked = new Set(check);
    return items.filter((item) => {
      if (!checked.has(item)) return true;
      if (!now.has(item.id)) {
        if (action === 'delete') this.#record(item.op, { status: 'done', netbox_id: item.id, existing: true });
        else this.#record(item.op, { status: 'failed', netbox_id: item.id, error: { status: 404, message: `${collection}${item.id}/ no longer exists` } });
        return false;
      }
      if (!sameInstant(now.get(item.id), item.op.target.last_updated)) {
        this.#record(item.op, {
          status: 'stale', netbox_id: item.id,
          error: {
            message: `changed since planning: last_updated was ${item.op.target.last_updated}, now ${now.get(item.id)}`,
            planned: item.op.target.last_updated, current: now.get(item.id),
          },
        });
        return false;
      }
      return true;
    });
  }

  /**
   * PATCHes or DELETEs a list. NetBox refuses a whole list for one bad item:
   * the items its answer names are settled by `how.itemError` and the rest
   * re-sent; any other failure of a list is retried item by item.
   */
  async #writeItems(collection, items, splittable, how) {
    let pending = items;
    while (pending.length) {
      try {
        await how.send(pending);
        for (const item of pending) how.done(item);
        return;
      } catch (error) {
        const perItem = itemErrors(error, pending.length, pending.map((i) => i.id));
        if (perItem) {
          pending = pending.filter((item, at) => {
            if (!perItem.has(at)) return true;
            how.itemError(item, perItem.get(at), error);
            return false;
          });
          pending = this.#withoutBlocked(pending);
          continue;
        }
        if (how.settled?.(error, pending)) return;
        if (splittable && pending.length > 1) {
          for (const item of pending) if (this.#unblocked(item.op)) await this.#writeItems(collection, [item], false, how);
          return;
        }
        for (const item of pending) this.#record(item.op, { status: 'failed', netbox_id: item.id, error: errorInfo(error) });
        return;
      }
    }
  }

  #updateItems(collection, items) {
    return this.#writeItems(collection, items, true, {
      send: (pending) => this.client.updateBatch(collection, pending.map((i) => i.body)),
      done: (item) => {
        this.touched.add(`${collection}#${item.id}`);
        this.#record(item.op, { status: 'done', netbox_id: item.id });
      },
      itemError: (item, body, error) => {
        const status = isMissing(body) ? 404 : error.status;
        this.#record(item.op, {
          status: 'failed', netbox_id: item.id,
          error: { ...errorInfo(error), status, body, message: `PATCH ${collection} → ${status}: ${JSON.stringify(body)}` },
        });
      },
    });
  }

  #deleteItems(collection, items) {
    return this.#writeItems(collection, items, true, {
      send: (pending) => this.client.deleteBatch(collection, pending.map((i) => i.body)),
      done: (item) => this.#record(item.op, { status: 'done', netbox_id: item.id }),
      // Already gone (a cascade, an earlier apply): that delete is done.
      itemError: (item, body, error) => {
        if (isMissing(body)) this.#record(item.op, { status: 'done', netbox_id: item.id, existing: true });
        else this.#record(item.op, { status: 'failed', netbox_id: item.id, error: { ...errorInfo(error), body } });
      },
      settled: (error, pending) => {
        if (error.status !== 404 || pending.length !== 1) return false;
        this.#record(pending[0].op, { status: 'done', netbox_id: pending[0].id, existing: true });
        return true;
      },
    });
  }

  #report(started, before) {
    const operations = this.plan.operations.map((op) => this.results.get(op.id));
    const counts = /** @type {ApplyCounts} */ ({ total: operations.length, changes: this.total }); // the rest just below
    for (const status of STATUSES) counts[status] = 0;
    /** @type {ApplyCounts['by_action']} */
    const byAction = {};
    for (const entry of operations) {
      counts[entry.status] += 1;
      byAction[entry.action] ??= {};
      byAction[entry.action][entry.status] = (byAction[entry.action][entry.status] ?? 0) + 1;
    }
    counts.by_action = byAction;
    const stats = this.client.stats;
    /** @type {Record<string, number>} */
    const byMethod = {};
    for (const [m, n] of Object.entries(stats.byMethod)) byMethod[m] = n - (before.byMethod[m] ?? 0);
    const outcome = applyOutcome(this.plan, counts);
    return {
      ok: OUTCOMES[outcome].ok,
      outcome,
      warnings: warningsOf(this.plan),
      counts,
      operations,
      requests: { total: stats.requests - before.requests, retries: stats.retries - before.retries, by_method: byMethod },
      duration_ms: Date.now() - started,
    };
  }
}

/** The two ways out of a field conflict, as `apply --accept-proxmox ID` / `--keep-netbox ID` name them. */
export const CHOICES = { acceptProxmox: 'accept-proxmox', keepNetbox: 'keep-netbox' };

/**
 * The plan with the chosen operation of each named conflict in place of the
 * one its resolution picked. The core planned both (`conflicts[].choices`):
 * this only picks. Throws a UsageError for an id that is not a conflict of
 * the plan, or one named for both choices.
 * @param {object} plan
 * @param {{acceptProxmox?: string[], keepNetbox?: string[]}} chosen
 */
export function withChoices(plan, chosen = {}) {
  const byId = new Map((plan.conflicts ?? []).filter((c) => c.kind === 'operator-edited').map((c) => [c.id, c]));
  const picks = new Map();
  for (const [key, choice] of Object.entries(CHOICES)) {
    for (const id of chosen[key] ?? []) {
      if (!byId.has(id)) {
        const known = [...byId.keys()];
        throw new UsageError(`--${choice} ${id}: the plan has no such conflict (${known.length ? `its conflicts: ${known.join(', ')}` : 'it has none'})`);
      }
      if (picks.has(id) && picks.get(id) !== choice) throw new UsageError(`${id} is named for both --accept-proxmox and --keep-netbox: choose one`);
      picks.set(id, choice);
    }
  }
  if (!picks.size) return plan;
  const operations = plan.operations.map((op) => (picks.has(op.id) ? byId.get(op.id).choices[picks.get(op.id)] : op));
  return { ...plan, operations };
}

/** Operations that write (create, update, delete): what "N changes" means everywhere. */
export function countChanges(plan) {
  return plan.operations.reduce((n, op) => n + (op.action === 'skip' ? 0 : 1), 0);
}

export function summaryLine(counts) {
  return `${counts.done} done, ${counts.failed} failed, ${counts.stale} stale, ${counts.skipped} skipped, ${counts['skipped-dependency']} skipped (dependency)`;
}

function resolveChanges(changes, ids) {
  if (!changes || typeof changes !== 'object') throw new Error('update without changes');
  return Object.fromEntries(Object.entries(changes).map(([field, change]) => [field, resolveRefs(change?.after ?? null, ids)]));
}

function errorInfo(error) {
  const info = { message: error.message };
  if (error.status != null) info.status = error.status;
  if (error.body != null) info.body = error.body;
  if (error.code) info.code = error.code;
  if (error.ref) info.ref = error.ref;
  return info;
}

/** Two ISO timestamps for the same instant (NetBox always writes microseconds and Z). */
function sameInstant(a, b) {
  if (a === b) return true;
  const micro = (s) => {
    const m = /^(.*?:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?$/.exec(String(s));
    if (!m) return NaN;
    const base = Date.parse(`${m[1]}${m[3] ?? 'Z'}`);
    return base * 1000 + Number((m[2] ?? '').padEnd(6, '0').slice(0, 6));
  };
  const x = micro(a);
  return Number.isFinite(x) && x === micro(b);
}

const isMissing = (body) => /does not exist|not found/i.test(JSON.stringify(body ?? ''));

/**
 * NetBox's bulk error shape `{"errors": [{"index": i | "id": n, "errors": {...}}]}`
 * as a Map position -> errors, or null when the body is not that shape.
 */
function itemErrors(error, count, ids) {
  const list = error?.body?.errors;
  if (error?.status !== 400 || !Array.isArray(list) || !list.length) return null;
  const out = new Map();
  for (const entry of list) {
    let at = Number.isInteger(entry?.index) ? entry.index : -1;
    if (at < 0 && ids && entry?.id !== undefined) at = ids.indexOf(Number(entry.id));
    if (at < 0 || at >= count) return null;
    out.set(at, entry.errors ?? entry);
  }
  return out;
}

// ---------------------------------------------------------- identical objects

const MAX_QUERY = 3000;

/**
 * Query objects covering the pending creates, from each create's `lookup`
 * (the core's filters for the object it makes): lookups with the same keys
 * share a query (values OR-ed per key; NetBox ANDs the keys), so no filter
 * can hide another operation's object. Split to keep URLs short. Whether a
 * found object is the one is the core's call (`matchesExisting`).
 */
export function lookupGroups(pending) {
  const bySignature = new Map();
  for (const { lookup } of pending) {
    const filters = Object.fromEntries(Object.entries(lookup ?? {}).filter(([, v]) => ['string', 'number'].includes(typeof v)));
    const signature = Object.keys(filters).sort().join(',');
    if (!signature) continue;
    if (!bySignature.has(signature)) bySignature.set(signature, []);
    bySignature.get(signature).push(filters);
  }
  const groups = [];
  for (const list of bySignature.values()) {
    let current = {};
    let length = 0;
    for (const filters of list) {
      const cost = Object.entries(filters).reduce((n, [k, v]) => n + k.length + String(v).length + 2, 0);
      if (length && length + cost > MAX_QUERY) {
        groups.push(current);
        current = {};
        length = 0;
      }
      for (const [key, value] of Object.entries(filters)) {
        const values = (current[key] ??= []);
        if (!values.includes(value)) {
          values.push(value);
          length += key.length + String(value).length + 2;
        }
      }
    }
    groups.push(current);
  }
  return groups;
}
