// Progress events, compatible with the Proxbox backend's server-sent events
// (proxbox-api's `/full-update/stream`, read by netbox-proxbox's job panel):
//
//   step           {step, phase?, status: started|completed|failed, message}
//   discovery      {phase: "discovery", round, count, proxmox, netbox, message}
//   item_progress  {phase, step, status: "progress", outcome: created|updated|deleted|skipped|
//                   failed|stale|skipped-dependency, operation, action, model, key, netbox_id?,
//                   message, progress: {current, total, percent}}
//   phase_summary  {phase, status: completed|completed_with_errors, result: {created, updated,
//                   deleted, skipped, failed, stale, skipped_dependency}, message}
//   error_detail   {phase, category, operation?, message, status?, detail?}   (not fatal)
//   error          {message, detail?}                                         (fatal)
//   complete       {ok, outcome, message, result} | {ok: false, outcome, message, errors}  (always last)
//                  outcome: ok | ok-with-warnings | partial | failed (| usage): see outcome.js
//
// As an async iterator of {event, data} for scripts, as SSE text
// (`event: X\ndata: {json}\n\n`, `: keepalive` comments when idle) for HTTP,
// and as NDJSON lines for `--stream`.
import { redactValue } from './http.js';
import { OUTCOMES, outcomeOfError } from './outcome.js';

export const EVENT_NAMES = ['step', 'discovery', 'item_progress', 'phase_summary', 'error_detail', 'error', 'complete'];

/** How producers report progress: one of EVENT_NAMES and its payload (above). @typedef {(event: string, data?: any) => void} Emit */

/** One SSE frame. `data` is one line of JSON (JSON.stringify never emits a raw newline). */
export function sseFrame(event, data) {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export const SSE_KEEPALIVE = ': keepalive\n\n';

/** Parses SSE text back into [{event, data}] (comments dropped); for tests and clients. */
export function parseSSE(text) {
  const events = [];
  for (const block of text.split(/\n\n/)) {
    let event = 'message';
    const data = [];
    let any = false;
    for (const line of block.split('\n')) {
      if (!line || line.startsWith(':')) continue;
      any = true;
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (any) events.push({ event, data: data.length ? JSON.parse(data.join('\n')) : null });
  }
  return events;
}

/**
 * A single-consumer event queue: `emit(event, data)` from the producer,
 * `for await (const {event, data} of stream)` on the other side. Every
 * payload is scrubbed of the given secrets before it is queued.
 */
export class EventStream {
  #queue = [];
  #ended = false;
  #wake = null;
  #wakePromise = null;

  /** @param {{ secrets?: string[] }} [options] */
  constructor({ secrets = [] } = {}) {
    this.secrets = secrets;
    this.emit = this.emit.bind(this);
  }

  /** @type {Emit} */
  emit(event, data = {}) {
    if (this.#ended) return;
    this.#queue.push({ event, data: redactValue(data, this.secrets) });
    this.#notify();
  }

  end() {
    this.#ended = true;
    this.#notify();
  }

  get ended() {
    return this.#ended;
  }

  #signal() {
    this.#wakePromise ??= new Promise((resolve) => {
      this.#wake = resolve;
    });
    return this.#wakePromise;
  }

  #notify() {
    const wake = this.#wake;
    this.#wake = null;
    this.#wakePromise = null;
    wake?.();
  }

  /**
   * The next item (`{value, done}`), or null after `ms` of silence (for keepalives).
   * @param {number} [ms]
   */
  async next(ms) {
    for (;;) {
      if (this.#queue.length) return { value: this.#queue.shift(), done: false };
      if (this.#ended) return { value: undefined, done: true };
      const signal = this.#signal();
      if (ms === undefined) await signal;
      else if ((await raceTimeout(signal.then(() => true), ms)) === null) return null;
    }
  }

  [Symbol.asyncIterator]() {
    return { next: () => this.next() };
  }

  /** SSE text chunks, with a `: keepalive` comment after `keepaliveMs` of silence. */
  async *sse({ keepaliveMs = 15000 } = {}) {
    for (;;) {
      const result = await this.next(keepaliveMs);
      if (result === null) {
        yield SSE_KEEPALIVE;
        continue;
      }
      if (result.done) return;
      yield sseFrame(result.value.event, result.value.data);
    }
  }

  /** NDJSON lines: `{"event": "...", "data": {...}}`. */
  async *ndjson() {
    for await (const { event, data } of this) yield `${JSON.stringify({ event, data })}\n`;
  }
}

function raceTimeout(promise, ms) {
  let timer;
  return Promise.race([promise, new Promise((resolve) => (timer = setTimeout(() => resolve(null), ms)))]).finally(() => clearTimeout(timer));
}

/**
 * The `complete` payload of a run that resolved with `result` (its `outcome`,
 * else `ok` → ok / not ok → partial) or threw `error` (failed, or usage).
 * `ok` is true for ok and ok-with-warnings only.
 * @param {{ result?: any, error?: any, label?: string }} run
 */
export function completePayload({ result, error, label = 'Sync' }) {
  if (error) {
    return {
      ok: false,
      outcome: outcomeOfError(error),
      message: `${label} failed: ${error.message}`,
      errors: [{ message: error.message, ...(error.status ? { status: error.status } : {}) }],
    };
  }
  const outcome = result?.outcome ?? (result?.ok === false ? 'partial' : 'ok');
  const { ok } = OUTCOMES[outcome] ?? OUTCOMES.failed;
  return { ok, outcome, message: result?.message ?? `${label} ${ok ? 'completed' : 'finished with errors'}`, result };
}

/**
 * Runs `task(emit)` and turns it into an event stream that always ends with
 * one `complete` (see completePayload); a throw is preceded by an `error`.
 * `stream.done` resolves to the task's result (null when it threw).
 * @template T
 * @param {(emit: Emit) => Promise<T>} task
 * @param {{ secrets?: string[], message?: string }} [options]
 * @returns {EventStream & { done: Promise<T | null> }}
 */
export function runWithEvents(task, { secrets = [], message = 'Sync' } = {}) {
  const stream = /** @type {EventStream & { done: Promise<T | null> }} */ (new EventStream({ secrets }));
  stream.done = (async () => {
    try {
      const result = await task(stream.emit);
      stream.emit('complete', completePayload({ result, label: message }));
      return result;
    } catch (error) {
      const detail = error.body ?? error.path ?? undefined;
      stream.emit('error', { message: error.message, ...(detail !== undefined ? { detail } : {}), ...(error.code ? { code: error.code } : {}) });
      stream.emit('complete', completePayload({ error, label: message }));
      return null;
    } finally {
      stream.end();
    }
  })();
  return stream;
}
