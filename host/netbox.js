// NetBox REST client: token auth (v1 and v2), fully paginated reads, bulk
// writes in batches, retries with exponential back-off, a per-request
// timeout and an optional branch header. It makes no sync decision.
import {
  AdaptiveLimit, backoffDelay, createTransport, NOT_SENT_CODES, publicUrl, redact, redactValue, sleep, TRANSIENT_CODES, transportMessage,
} from './http.js';

const TRIM = 600;

/**
 * Requests in flight by default. Measured on NetBox 4.7 under gunicorn with
 * 5 workers on 2 cores (host/bench/sync-bench.js): README.md, "Against real servers".
 */
export const DEFAULT_CONCURRENCY = 4;

/**
 * @typedef {object} NetBoxErrorDetail
 * @property {number | null} [status]  the HTTP status; none when no answer came
 * @property {unknown} [body]  NetBox's answer, secrets redacted
 * @property {string} [method]
 * @property {string} [path]  as shown in messages (redacted, lean field lists elided)
 * @property {string} [code]  Node's error code of a transport failure
 * @property {boolean} [ambiguous]
 * @property {number} [attempts]
 */

/** An HTTP or transport failure talking to NetBox. Never carries the token. */
export class NetBoxError extends Error {
  /** @param {string} message @param {NetBoxErrorDetail} [detail] */
  constructor(message, { status = null, body = null, method, path, code, ambiguous = false, attempts = 1 } = {}) {
    super(message);
    this.name = 'NetBoxError';
    this.status = status;
    this.body = body;
    this.method = method;
    this.path = path;
    if (code) this.code = code;
    /** True when the request may have been applied although no answer came back. */
    this.ambiguous = ambiguous;
    this.attempts = attempts;
  }
  toJSON() {
    return { message: this.message, status: this.status, body: this.body, method: this.method, path: this.path, code: this.code, ambiguous: this.ambiguous };
  }
}

/** `Authorization` value: v2 tokens (`nbt_<key>.<secret>`) as Bearer, v1 as Token. */
export function authorization(token) {
  if (!token) throw new Error('a NetBox API token is required');
  return token.startsWith('nbt_') ? `Bearer ${token}` : `Token ${token}`;
}

/**
 * NetBox's answers when it does not accept the token at all (DRF's
 * AuthenticationFailed), as opposed to a permission the token's user lacks.
 */
const AUTH_REFUSED = /token|authorization header|credentials were not provided|user inactive|not permitted to authenticate/i;

/** Where to fix things, named in error messages (config.js passes the flag or variable actually used). */
export const DEFAULT_NETBOX_HINTS = {
  url: 'NETBOX_URL (--netbox-url)',
  token: 'NETBOX_TOKEN',
  tls: 'set NODE_EXTRA_CA_CERTS to the CA file that signed it',
};

/** The first line of a text, at most `max` characters. */
export function firstLine(text, max = 200) {
  const line = String(text).split(/\r?\n/).find((l) => l.trim()) ?? '';
  return line.length > max ? `${line.slice(0, max)}…` : line.trim();
}

/**
 * A short, readable summary of a NetBox error body: the first line of a JSON
 * `detail`, else the JSON (trimmed); of text, its first line. An HTML page
 * (a wrong URL, a proxy's error page) is never shown, only named.
 */
export function describeBody(body) {
  if (body == null || body === '') return '';
  if (typeof body === 'string') return /^\s*</.test(body) ? '(an HTML page)' : firstLine(body);
  if (typeof body.detail === 'string' && !body.errors) return firstLine(body.detail);
  const text = JSON.stringify(body);
  return text.length > TRIM ? `${text.slice(0, TRIM)}…` : text;
}

/**
 * True when NetBox refused the token itself (wrong, expired, disabled), not a
 * permission. NetBox says so in a JSON `detail`; a bare 401 comes from
 * something else (another server, an authenticating proxy).
 */
export function isAuthRefusal(error) {
  const detail = error?.body?.detail;
  return (error?.status === 401 || error?.status === 403) && typeof detail === 'string' && AUTH_REFUSED.test(detail);
}

/**
 * @typedef {object} RequestRecord  one attempt, as `onRequest` is told of it
 * @property {string} method
 * @property {string} path  redacted
 * @property {number | null} status
 * @property {string} [error]  Node's error code when no answer came
 * @property {number} ms
 * @property {number} attempt  0 for the first
 */
/**
 * @typedef {object} RequestOptions
 * @property {Record<string, unknown>} [query]  appended to the URL (a list value repeats the key)
 * @property {unknown} [body]  sent as JSON
 * @property {boolean} [idempotent]  whether a retry after no answer is safe (all but POST by default)
 * @property {number} [retries]
 * @property {number} [timeout]  ms
 */

export class NetBoxClient {
  #token;
  #authHeader;
  #transport;
  #ownsTransport;

  /**
   * @param {object} o
   * @param {string} o.url        base URL (`https://netbox.example.org`, a path prefix is kept)
   * @param {string} o.token      v1 (40 hex) or v2 (`nbt_<key>.<secret>`)
   * @param {string} [o.branch]   netbox-branching schema id, sent as `X-NetBox-Branch`
   * @param {number} [o.timeout]  per request, ms (default 30000)
   * @param {number} [o.retries]  retries after the first attempt (default 5)
   * @param {number} [o.backoff]  first back-off delay, ms (default 500; doubles, jittered, capped at maxBackoff)
   * @param {number} [o.maxBackoff] longest back-off delay, ms (default 8000)
   * @param {number} [o.pageSize] list page size (default 1000, NetBox's MAX_PAGE_SIZE)
   * @param {number} [o.batchSize] objects per bulk write (default 100)
   * @param {boolean} [o.cursor]  cursor pagination (`?start=`) instead of limit/offset
   * @param {string | Buffer} [o.ca]  a CA to trust besides the usual roots: PEM text, or a file path
   * @param {boolean} [o.insecure]  skip TLS verification
   * @param {import('./http.js').Transport} [o.transport]  instead of a node:http one (tests, fault injection)
   * @param {(ms: number) => Promise<unknown>} [o.sleep]  the back-off wait
   * @param {() => number} [o.random]  the back-off jitter
   * @param {(request: RequestRecord) => void} [o.onRequest]  told of every attempt (benchmarks count them)
   * @param {string} [o.userAgent]
   * @param {Partial<typeof DEFAULT_NETBOX_HINTS>} [o.hints]  the settings errors name (config.js: the flag or variable used)
   * @param {number} [o.concurrency] requests in flight at most (default 4; halved on every 429 or 503,
   *   grown back by one per that many successes)
   */
  constructor({
    url, token, branch, timeout = 30000, retries = 5, backoff = 500, maxBackoff = 8000, pageSize = 1000,
    batchSize = 100, cursor = false, ca, insecure = false, transport, sleep: sleeper = sleep, random = Math.random,
    onRequest, userAgent = 'proxbox-planner', hints = {}, concurrency = DEFAULT_CONCURRENCY,
  } = /** @type {{ url: string, token: string }} */ ({})) { // the `{}` only so that no argument gets the url check's message
    if (!url) throw new Error('a NetBox URL is required');
    this.base = new URL(url.endsWith('/') ? url.slice(0, -1) : url);
    /** Where the user fixes the URL, token or trust (named in errors). */
    this.hints = { ...DEFAULT_NETBOX_HINTS, ...hints };
    this.#token = token;
    this.#authHeader = authorization(token);
    this.branch = branch || null;
    this.timeout = timeout;
    this.retries = retries;
    this.backoff = backoff;
    this.maxBackoff = maxBackoff;
    this.pageSize = pageSize;
    this.batchSize = batchSize;
    this.cursor = cursor;
    this.sleep = sleeper;
    this.random = random;
    this.onRequest = onRequest;
    this.userAgent = userAgent;
    this.#ownsTransport = !transport;
    this.#transport = transport ?? createTransport({ ca, insecure, maxSockets: Math.max(16, concurrency) });
    this.concurrency = concurrency;
    /** Every request waits for a slot here: the bound on what NetBox is asked at once. */
    this.gate = new AdaptiveLimit(concurrency);
    this.stats = { requests: 0, retries: 0, byMethod: {} };
  }

  /** The public key of a v2 token (`nbt_<key>.<secret>`), which names it in NetBox; null for v1. */
  get tokenKey() {
    return this.#token?.startsWith('nbt_') ? this.#token.slice(4).split('.')[0] : null;
  }

  /** Secrets to scrub from anything this client reports. */
  get secrets() {
    return [this.#token];
  }

  close() {
    if (this.#ownsTransport) this.#transport.close();
  }

  /** Absolute URL for an API path (`/api/...`, with an optional query object) or a `next` link. */
  url(path, query) {
    let target;
    if (/^https?:\/\//.test(path)) {
      // `next` links: keep their path and query, but talk to our own base
      // (behind a proxy NetBox may name another scheme or host).
      const link = new URL(path);
      target = new URL(this.base.origin + link.pathname + link.search);
    } else {
      const prefix = this.base.pathname.replace(/\/$/, '');
      target = new URL(this.base.origin + prefix + path);
    }
    for (const [key, value] of Object.entries(query ?? {})) {
      for (const v of Array.isArray(value) ? value : [value]) {
        if (v !== undefined && v !== null) target.searchParams.append(key, String(v));
      }
    }
    return target.toString();
  }

  /**
   * One API call with retries. Idempotent calls (GET, PATCH, DELETE, PUT) are
   * retried on 429, 5xx, timeouts and connection failures. A POST is retried
   * only where it certainly was not applied (429, 503, a transaction NetBox
   * says PostgreSQL rolled back, connection refused); otherwise it fails with
   * `ambiguous: true` and the caller decides. 429, 503 and a rolled-back
   * transaction (writes side by side locking the same rows) lower the
   * concurrency.
   * @param {string} method
   * @param {string} path  an API path, or a `next` link
   * @param {RequestOptions} [options]
   * @returns {Promise<{status:number, data:any, headers:object}>}
   */
  async request(method, path, { query, body, idempotent = method !== 'POST', retries = this.retries, timeout = this.timeout } = {}) {
    const url = this.url(path, query);
    // The field list of a lean read is long and says nothing about what went wrong.
    const shown = redact(new URL(url).pathname + new URL(url).search, this.secrets).replace(/([?&]fields=)[^&]*/, '$1…');
    const headers = { Authorization: this.#authHeader, 'User-Agent': this.userAgent };
    if (this.branch) headers['X-NetBox-Branch'] = this.branch;
    // A retried write whose earlier attempt got no answer may have been applied already.
    let maybeApplied = false;
    const note = () => (maybeApplied ? ' (an earlier attempt got no answer and may have been applied)' : '');
    for (let attempt = 0; ; attempt++) {
      this.stats.requests += 1;
      this.stats.byMethod[method] = (this.stats.byMethod[method] ?? 0) + 1;
      const started = Date.now();
      let response;
      let failure;
      await this.gate.acquire();
      try {
        response = await this.#transport.request({ method, url, headers, body, timeout });
      } catch (error) {
        failure = error;
      } finally {
        this.gate.release();
      }
      const data = response ? parseBody(response.text) : undefined;
      // Certainly not applied, and NetBox asks for fewer requests at once.
      const busy = response?.status === 429 || response?.status === 503 || (response?.status === 500 && isRolledBack(data));
      if (busy) this.gate.throttled();
      else if (response && response.status < 500) this.gate.succeeded();
      this.onRequest?.({ method, path: shown, status: response?.status ?? null, error: failure ? failure.code : undefined, ms: Date.now() - started, attempt });
      if (failure) {
        const code = failure.code ?? 'ECONNRESET';
        const retryable = idempotent ? TRANSIENT_CODES.has(code) : NOT_SENT_CODES.has(code);
        if (retryable && attempt < retries) {
          if (!NOT_SENT_CODES.has(code) && method !== 'GET') maybeApplied = true;
          await this.#wait(attempt);
          continue;
        }
        throw new NetBoxError(redact(`${method} ${shown}: ${transportMessage('NetBox', publicUrl(this.base), failure, this.hints)}${note()}`, this.secrets), {
          method, path: shown, code, ambiguous: !NOT_SENT_CODES.has(code), attempts: attempt + 1,
        });
      }
      const { status } = response;
      if (status >= 200 && status < 300) return { status, data, headers: response.headers };
      const retryable = busy || (idempotent && status >= 500);
      if (retryable && attempt < retries) {
        if (status >= 500 && !busy && method !== 'GET') maybeApplied = true;
        await this.#wait(attempt, response.headers['retry-after']);
        continue;
      }
      const cleanBody = redactValue(data, this.secrets);
      const error = new NetBoxError('', {
        status, body: cleanBody, method, path: shown, ambiguous: !idempotent && status >= 500 && status !== 503 && !isNetBoxError(data), attempts: attempt + 1,
      });
      const summary = describeBody(cleanBody) || 'no detail';
      const hint = isAuthRefusal(error) ? `: check ${this.hints.token}` : '';
      error.message = redact(`${method} ${shown} → ${status}: ${summary}${hint}${note()}`, this.secrets);
      throw error;
    }
  }

  async #wait(attempt, retryAfter) {
    this.stats.retries += 1;
    let delay = backoffDelay(attempt, { base: this.backoff, max: this.maxBackoff, random: this.random });
    const seconds = Number(retryAfter);
    if (Number.isFinite(seconds) && seconds > 0) delay = Math.max(delay, Math.min(seconds * 1000, this.maxBackoff * 4));
    await this.sleep(delay);
  }

  /** GET one object; resolves to null on 404. */
  async get(collection, id, query) {
    try {
      return (await this.request('GET', `${collection}${id}/`, { query })).data;
    } catch (error) {
      if (error.status === 404) return null;
      throw error;
    }
  }

  /**
   * Every object of a collection. The first page (limit=pageSize) gives the
   * count; the other pages are then asked for at once, by offset (the gate
   * bounds them), and a `next` link on the last one is still followed
   * (objects added meanwhile). Cursor mode (`?start=<id>`, ordered by id)
   * reads page after page. Objects seen twice (a write between two pages
   * shifts offsets) are kept once.
   */
  async list(collection, { query = {}, cursor = this.cursor } = {}) {
    const first = cursor
      ? this.url(collection, { ...query, start: 0, limit: this.pageSize })
      : this.url(collection, { ...query, limit: this.pageSize });
    const page = await this.#page(collection, first);
    const pages = [page];
    if (!cursor && page.next && Number.isInteger(page.count) && page.results.length) {
      // NetBox may answer fewer than asked for (its MAX_PAGE_SIZE): that is the page size.
      const size = page.results.length;
      const offsets = [];
      for (let offset = size; offset < page.count; offset += size) offsets.push(offset);
      pages.push(...(await Promise.all(offsets.map((offset) => this.#page(collection, this.url(collection, { ...query, limit: size, offset }))))));
    }
    for (let next = pages.at(-1).next, count = 0; next; count++) {
      if (count > 100000) throw new Error(`GET ${collection}: pagination does not end`);
      const more = await this.#page(collection, next);
      pages.push(more);
      next = more.next;
    }
    const results = [];
    const seen = new Set();
    for (const object of pages.flatMap((p) => p.results)) {
      const key = object?.id ?? `#${results.length}`;
      if (seen.has(key)) continue;
      seen.add(key);
      results.push(object);
    }
    return results;
  }

  /** One page of a list: `{count, next, results}`. */
  async #page(collection, url) {
    const { data } = await this.request('GET', url);
    if (!data || !Array.isArray(data.results)) {
      throw new NetBoxError(`GET ${collection}: not a paginated list`, { status: 200, body: null, method: 'GET', path: collection });
    }
    return { count: data.count, next: data.next || null, results: data.results };
  }

  /**
   * Objects by id (`?id=1&id=2...`), in chunks; only the fields asked for when given.
   * @param {string} collection @param {number[]} ids @param {{ fields?: string[], chunk?: number }} [options]
   */
  async getMany(collection, ids, { fields, chunk = 100 } = {}) {
    const out = [];
    for (let at = 0; at < ids.length; at += chunk) {
      /** @type {Record<string, unknown>} */
      const query = { id: ids.slice(at, at + chunk) };
      if (fields) query.fields = fields.join(',');
      out.push(...(await this.list(collection, { query, cursor: false })));
    }
    return out;
  }

  /** One bulk POST (a JSON list); all-or-nothing on NetBox's side. */
  async createBatch(collection, items, options) {
    return (await this.request('POST', collection, { body: items, ...options })).data;
  }

  /** One bulk PATCH (`[{id, ...fields}]`). */
  async updateBatch(collection, items, options) {
    return (await this.request('PATCH', collection, { body: items, ...options })).data;
  }

  /** One bulk DELETE (`[{id}]`): of ids, or of `{id, ...}` items (`changelog_message`). */
  async deleteBatch(collection, items, options) {
    await this.request('DELETE', collection, { body: items.map((item) => (typeof item === 'object' ? item : { id: item })), ...options });
  }

  /** Bulk POST in batches of batchSize; returns the created objects in order. */
  async create(collection, items) {
    const out = [];
    for (const batch of chunks(items, this.batchSize)) out.push(...(await this.createBatch(collection, batch)));
    return out;
  }

  /** Bulk PATCH in batches. */
  async update(collection, items) {
    const out = [];
    for (const batch of chunks(items, this.batchSize)) out.push(...(await this.updateBatch(collection, batch)));
    return out;
  }

  /** Bulk DELETE in batches. */
  async delete(collection, ids) {
    for (const batch of chunks(ids, this.batchSize)) await this.deleteBatch(collection, batch);
  }
}

export function chunks(items, size) {
  const out = [];
  for (let at = 0; at < items.length; at += size) out.push(items.slice(at, at + size));
  return out;
}

/** NetBox's own 500 page (`{"error", "exception", "netbox_version"}`): the request ran and was rolled back. */
function isNetBoxError(data) {
  return Boolean(data && typeof data === 'object' && 'exception' in data && 'netbox_version' in data);
}

/**
 * NetBox's 500 for a PostgreSQL deadlock (40P01) or serialization failure
 * (40001): PostgreSQL aborted the request's transaction, and NetBox writes in
 * one (a bulk create or update is one atomic block), so nothing of it was
 * applied and it may be sent again. Two batches side by side that lock the
 * same rows in another order meet it (a VM's disk total and its interface
 * count are updated by each disk and interface written).
 */
function isRolledBack(data) {
  return isNetBoxError(data) && data.exception === 'OperationalError' && /^(deadlock detected|could not serialize access)/.test(String(data.error));
}

/** JSON, or (an HTML page, a proxy's text) a marker string that never carries the page itself. */
function parseBody(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return describeBody(text);
  }
}
