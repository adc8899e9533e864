// Which runs are active (one per endpoint: a second one is refused with 409)
// and what the last ones did, for `GET /planner/status` and `GET /sync/active`.

const RECENT = 50;

export class RunBoard {
  #active = new Map();
  #recent = [];
  #next = 1;

  /** The run holding `key`, or null. */
  holder(key) {
    return this.#active.get(key) ?? null;
  }

  /**
   * Starts a run under `key` (an endpoint), or returns `{busy}` with the run
   * that holds it. `finish(result)` records the outcome and frees the key.
   */
  begin(key, info) {
    const busy = this.#active.get(key);
    if (busy) return { busy };
    const run = { id: this.#next++, key, ...info, started_at: new Date().toISOString() };
    const started = Date.now();
    this.#active.set(key, run);
    const finish = (result) => {
      if (this.#active.get(key) === run) this.#active.delete(key);
      this.#recent.unshift({ ...run, ms: Date.now() - started, ...summarize(result) });
      this.#recent.length = Math.min(this.#recent.length, RECENT);
    };
    return { run, finish };
  }

  /** Records a run that needed no key (a skipped stage). */
  record(info, result) {
    this.#recent.unshift({ id: this.#next++, ...info, started_at: new Date().toISOString(), ms: 0, ...summarize(result) });
    this.#recent.length = Math.min(this.#recent.length, RECENT);
  }

  active() {
    return [...this.#active.values()];
  }

  recent() {
    return [...this.#recent];
  }
}

const FAILURES_KEPT = 20;

/**
 * The part of a run's result worth keeping: outcome, plan counts, applied
 * counts and the first failures with NetBox's own words (what an operator
 * needs to see why a stage ended partial).
 */
function summarize(result) {
  if (!result) return { ok: false };
  const { ok, outcome, skipped, reason, summary, applied, message } = result;
  return {
    ok: ok ?? true,
    ...(outcome ? { outcome } : {}),
    ...(skipped ? { skipped: true, reason } : {}),
    ...(summary
      ? { summary: { create: summary.create, update: summary.update, delete: summary.delete, skip: summary.skip, unchanged: summary.unchanged } }
      : {}),
    ...(applied?.counts ? { applied: applied.counts } : {}),
    ...(result.failures?.length ? { failures: result.failures.slice(0, FAILURES_KEPT) } : {}),
    ...(message ? { message } : {}),
  };
}
