// An in-process stand-in for NetBox's REST semantics, as a *transport* for
// NetBoxClient (no socket, no server): paginated lists with `next` links and
// simple filters, all-or-nothing bulk POST/PATCH/DELETE with NetBox's error
// shapes, `last_updated` bumped on every write, uniqueness per collection.
// Unit tests of the client and executor use it; the end-to-end tests use a
// real NetBox. Faults are injected per request with `fault(req) → action`.
// `/api/status/` answers `status` (the Proxbox plugin is listed once one of
// its collections exists); OPTIONS on a collection lists POST and PUT unless
// `writable` is false (a read-only token). `delayedTransport` makes its
// answers late, so that concurrent requests overlap (`inFlight` in the log).

const BASE = 'http://netbox.test';

export class FakeNetBox {
  constructor({ unique = {}, pageSize = 1000 } = {}) {
    this.collections = new Map();
    this.nextId = new Map();
    this.clock = 0;
    /** collection -> field names whose value must be unique (NetBox's 400 otherwise). */
    this.unique = unique;
    this.maxPage = pageSize;
    this.log = [];
    /** (req) => undefined | 'drop-before' | 'drop-after' | {status, body} */
    this.fault = null;
    this.transport = { request: (req) => this.request(req), close() {} };
    this.version = '4.7.3';
    this.writable = true;
    /** The token's user (`/api/authentication-check/`). */
    this.user = { id: 1, username: 'admin' };
    /** Every `changelog_message` written, in order (NetBox keeps it in its change log, not on the object). */
    this.changelogMessages = [];
  }

  /** NetBox's `/api/status/` (the parts the host reads). */
  get status() {
    const plugin = [...this.collections.keys()].some((c) => c.startsWith('/api/plugins/proxbox/'));
    return { 'netbox-version': this.version, plugins: plugin ? { netbox_proxbox: '0.0.29.post6' } : {} };
  }

  objects(collection) {
    if (!this.collections.has(collection)) this.collections.set(collection, []);
    return this.collections.get(collection);
  }

  tick() {
    this.clock += 1;
    const s = String(this.clock).padStart(6, '0');
    return `2026-11-23T10:00:00.${s}Z`;
  }

  seed(collection, object) {
    const id = object.id ?? this.#id(collection);
    const full = { tags: [], custom_fields: {}, ...object, id, last_updated: object.last_updated ?? this.tick() };
    this.objects(collection).push(full);
    return full;
  }

  #id(collection) {
    const next = this.nextId.get(collection) ?? Math.max(0, ...this.objects(collection).map((o) => o.id)) + 1;
    this.nextId.set(collection, next + 1);
    return next;
  }

  find(collection, id) {
    return this.objects(collection).find((o) => o.id === id);
  }

  /**
   * The transport's `request` (see http.js), answered from the fake's collections.
   * @param {import('../http.js').TransportRequest & { inFlight?: number, alongside?: string[] }} request
   *   `inFlight`, `alongside`: what delayedTransport saw at the same time, for the log
   * @returns {Promise<import('../http.js').TransportResponse>}
   */
  async request({ method, url, headers = {}, body, inFlight = 1, alongside = [] }) {
    const target = new URL(url);
    const collection = target.pathname.replace(/\d+\/$/, '');
    const entry = {
      method, path: target.pathname, query: target.search, body, auth: headers.Authorization, branch: headers['X-NetBox-Branch'], inFlight,
      alongside,
    };
    this.log.push(entry);
    const fault = this.fault?.(entry);
    if (fault === 'drop-before') throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    if (fault && typeof fault === 'object') return respond(fault.status, fault.body);
    const response = this.#handle(method, target, collection, body);
    if (fault === 'drop-after') throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    return response;
  }

  #handle(method, target, collection, body) {
    const idMatch = /\/(\d+)\/$/.exec(target.pathname);
    if (target.pathname === '/api/status/' && method === 'GET') return respond(200, this.status);
    if (target.pathname === '/api/authentication-check/' && method === 'GET') return respond(200, this.user);
    if (Array.isArray(body)) body = body.map((item) => this.#message(item));
    else if (body && typeof body === 'object') body = this.#message(body);
    if (!this.collections.has(collection)) return respond(404, { detail: 'Not found.' });
    if (method === 'OPTIONS') return respond(200, { name: collection, ...(this.writable ? { actions: { POST: {}, PUT: {} } } : {}) });
    if (method === 'GET' && idMatch) {
      const object = this.find(collection, Number(idMatch[1]));
      return object ? respond(200, object) : respond(404, { detail: 'No object matches the given query.' });
    }
    if (method === 'GET') return this.#list(target, collection);
    if (method === 'POST') return this.#create(collection, body);
    if (method === 'PATCH') return this.#update(collection, body);
    if (method === 'DELETE') return this.#delete(collection, body);
    return respond(405, { detail: `Method "${method}" not allowed.` });
  }

  /** `changelog_message` is write-only: recorded, never stored on the object. */
  #message(item) {
    if (!item || typeof item !== 'object' || !('changelog_message' in item)) return item;
    const { changelog_message: message, ...rest } = item;
    this.changelogMessages.push(message);
    return rest;
  }

  #list(target, collection) {
    const params = target.searchParams;
    const limit = Math.min(Number(params.get('limit') ?? 50) || this.maxPage, this.maxPage);
    const offset = Number(params.get('offset') ?? 0);
    let rows = [...this.objects(collection)].sort((a, b) => a.id - b.id);
    if (params.has('start')) {
      // Cursor mode: ordered by id from `start`, `count: null`, next = ?start=<next id>.
      const page = rows.filter((o) => o.id >= Number(params.get('start'))).slice(0, limit + 1);
      const u = new URL(target.toString().replace(target.origin, 'http://internal-host:8000'));
      let next = null;
      if (page.length > limit) {
        u.searchParams.set('start', String(page[limit].id));
        next = u.toString();
      }
      return respond(200, { count: null, next, previous: null, results: page.slice(0, limit) });
    }
    for (const key of new Set(params.keys())) {
      if (['limit', 'offset', 'fields', 'brief', 'ordering'].includes(key)) continue;
      const values = params.getAll(key);
      rows = rows.filter((row) => values.some((v) => filterMatch(row, key, v)));
    }
    const page = rows.slice(offset, offset + limit);
    const fields = params.get('fields')?.split(',');
    const shaped = fields ? page.map((o) => Object.fromEntries(fields.map((f) => [f, o[f]]))) : page;
    let next = null;
    if (offset + limit < rows.length) {
      const u = new URL(target.toString().replace(target.origin, 'http://internal-host:8000'));
      u.searchParams.set('offset', String(offset + limit));
      u.searchParams.set('limit', String(limit));
      next = u.toString();
    }
    return respond(200, { count: rows.length, next, previous: null, results: shaped });
  }

  #validate(collection, item, pending) {
    const errors = {};
    for (const field of this.unique[collection] ?? []) {
      const clash = [...this.objects(collection), ...pending].some((o) => o !== item && o[field] !== undefined && o[field] === item[field] && o.id !== item.id);
      if (clash) errors.__all__ = [`${collection} with this ${field} already exists.`];
    }
    if (item.invalid) errors.invalid = ['This field is invalid.'];
    return Object.keys(errors).length ? errors : null;
  }

  #create(collection, body) {
    const items = Array.isArray(body) ? body : [body];
    const errors = [];
    items.forEach((item, index) => {
      const problem = this.#validate(collection, item, items.slice(0, index));
      if (problem) errors.push({ index, errors: problem });
    });
    if (errors.length) return respond(400, { detail: `${errors.length} of ${items.length} objects could not be created.`, errors });
    const created = items.map((item) => this.seed(collection, { ...structuredClone(item), tags: item.tags ?? [] }));
    return respond(201, Array.isArray(body) ? created : created[0]);
  }

  /** NetBox's 400 for a bulk PATCH or DELETE naming ids it does not hold, or null. */
  #missing(collection, items) {
    const missing = items.filter((item) => !this.find(collection, item.id));
    if (!missing.length) return null;
    return respond(400, {
      detail: `${missing.length} of ${items.length} objects could not be found.`,
      errors: missing.map((item) => ({ id: item.id, errors: { id: [`Object with ID ${item.id} does not exist`] } })),
    });
  }

  #update(collection, body) {
    const items = Array.isArray(body) ? body : [body];
    const missing = this.#missing(collection, items);
    if (missing) return missing;
    const errors = [];
    items.forEach((item, index) => {
      if (item.invalid) errors.push({ index, errors: { invalid: ['This field is invalid.'] } });
    });
    if (errors.length) return respond(400, { detail: `${errors.length} of ${items.length} objects failed validation.`, errors });
    const out = items.map((item) => {
      const object = this.find(collection, item.id);
      for (const [k, v] of Object.entries(item)) {
        if (k === 'custom_fields') object.custom_fields = { ...object.custom_fields, ...v };
        else if (k !== 'id') object[k] = structuredClone(v);
      }
      object.last_updated = this.tick();
      return object;
    });
    return respond(200, out);
  }

  #delete(collection, body) {
    const items = Array.isArray(body) ? body : [body];
    const missing = this.#missing(collection, items);
    if (missing) return missing;
    const ids = new Set(items.map((i) => i.id));
    this.collections.set(collection, this.objects(collection).filter((o) => !ids.has(o.id)));
    return { status: 204, headers: {}, text: '' };
  }

  /** Counts of every collection (for "no duplicates" checks). */
  counts() {
    return Object.fromEntries([...this.collections].map(([c, rows]) => [c, rows.length]));
  }
}

function filterMatch(row, key, value) {
  if (key === 'id') return row.id === Number(value);
  const fk = /^(.*)_id$/.exec(key);
  if (fk && fk[1] in row) return row[fk[1]] === Number(value) || row[fk[1]]?.id === Number(value);
  if (!(key in row)) return true; // unknown filters are ignored, as NetBox does
  const v = row[key];
  return String(v?.value ?? v).toLowerCase() === String(value).toLowerCase();
}

function respond(status, body) {
  return { status, headers: { 'content-type': 'application/json' }, text: body === undefined ? '' : JSON.stringify(body) };
}

export const FAKE_URL = BASE;

/**
 * The fake's transport with every answer `ms` late (a timer, so requests
 * overlap as they do on a socket). `max` is the most requests there were
 * at once; each log entry has `inFlight` (how many, itself included) and
 * `alongside` ("METHOD /path/" of the others).
 */
export function delayedTransport(fake, ms = 2) {
  const active = new Set();
  const transport = {
    max: 0,
    async request(req) {
      const others = [...active].map((r) => `${r.method} ${new URL(r.url).pathname}`);
      active.add(req);
      transport.max = Math.max(transport.max, active.size);
      try {
        await new Promise((resolve) => setTimeout(resolve, ms));
        return await fake.request({ ...req, inFlight: others.length + 1, alongside: others });
      } finally {
        active.delete(req);
      }
    },
    close() {},
  };
  return transport;
}
