// The one HTTP primitive the host uses (NetBox and Proxmox): node:http/https
// with keep-alive, a per-request timeout, an optional CA or an explicit
// insecure flag, and errors that never carry a secret.
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';

/** Network failures worth a retry (the request may or may not have reached the server). */
export const TRANSIENT_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND',
  'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'UND_ERR_SOCKET', 'ERR_STREAM_PREMATURE_CLOSE', 'EREQTIMEOUT',
]);

/** Failures where the server certainly did not process the request. */
export const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN']);

/** What a network failure means, by Node's error code, for one-line messages. */
const TRANSPORT_PROBLEMS = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENETDOWN: 'network down',
  ETIMEDOUT: 'connection timed out',
  EREQTIMEOUT: 'no answer in time',
  EPROTO: 'protocol error (http:// against an https:// port, or the reverse?)',
};

/** TLS verification failures: the server's certificate is not trusted as given. */
export const TLS_VERIFY_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_UNTRUSTED', 'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID', 'CERT_SIGNATURE_FAILURE', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * One line for a request that got no HTTP answer: which server, where, what
 * happened, and the setting to fix (`hints.url`, `hints.tls`).
 * @param {string} service  "NetBox" or "Proxmox"
 * @param {string} where    the server's URL, without credentials
 */
export function transportMessage(service, where, error, hints = {}) {
  const code = error?.code;
  if (TLS_VERIFY_CODES.has(code)) {
    return `cannot verify the TLS certificate of ${service} at ${where} (${error.message}): ${hints.tls ?? 'trust its CA'}`;
  }
  const what = TRANSPORT_PROBLEMS[code] ?? error?.message ?? 'no answer';
  return `cannot reach ${service} at ${where} (${what}${code && TRANSPORT_PROBLEMS[code] ? `, ${code}` : ''}): check ${hints.url ?? 'its URL'}`;
}

/** `scheme://host[:port][/prefix]` of a URL: no credentials, query or fragment. */
export function publicUrl(url) {
  const u = new URL(url);
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

/**
 * Replaces every occurrence of each secret (and of its parts, for
 * `id=secret` / `nbt_key.secret` shapes) with `***`.
 */
export function redact(text, secrets = []) {
  if (typeof text !== 'string' || !text) return text;
  let out = text;
  for (const secret of expandSecrets(secrets)) out = out.split(secret).join('***');
  return out;
}

function expandSecrets(secrets) {
  const all = new Set();
  for (const s of secrets) {
    if (typeof s !== 'string' || s.length < 4) continue;
    all.add(s);
    // The secret half of composite tokens, so a partial echo is redacted too.
    for (const sep of ['=', '.', ':']) {
      const at = s.lastIndexOf(sep);
      if (at > 0 && s.length - at - 1 >= 8) all.add(s.slice(at + 1));
    }
  }
  // Longest first, so a part never breaks the replacement of the whole.
  return [...all].sort((a, b) => b.length - a.length);
}

/** Redacts secrets everywhere in a JSON-like value (strings only). */
export function redactValue(value, secrets) {
  if (typeof value === 'string') return redact(value, secrets);
  if (Array.isArray(value)) return value.map((v) => redactValue(v, secrets));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactValue(v, secrets)]));
  }
  return value;
}

/** A network-level failure (no HTTP status). */
export class TransportError extends Error {
  /**
   * @param {string} message
   * @param {{ code?: string, method?: string, url?: string }} [detail]  Node's error code, and the request
   */
  constructor(message, { code, method, url } = {}) {
    super(message);
    this.name = 'TransportError';
    this.code = code;
    this.method = method;
    this.url = url;
  }
}

/** Reads a CA bundle option: PEM text, a Buffer, or a file path. */
export function loadCa(ca) {
  if (!ca) return undefined;
  if (Buffer.isBuffer(ca)) return ca;
  if (typeof ca === 'string' && ca.includes('-----BEGIN')) return ca;
  return readFileSync(ca);
}

/**
 * @typedef {object} TransportRequest
 * @property {string} [method]  GET unless given
 * @property {string} url
 * @property {Record<string, string | number>} [headers]
 * @property {unknown} [body]  a string as it is, anything else as JSON
 * @property {number} [timeout]  milliseconds
 */
/** @typedef {{ status: number, headers: import('node:http').IncomingHttpHeaders, text: string }} TransportResponse */
/**
 * @typedef {object} Transport
 * @property {(request: TransportRequest) => Promise<TransportResponse>} request
 * @property {() => void} close
 */

/**
 * Makes a transport: `request({method, url, headers, body, timeout})` →
 * `{status, headers, text}`. Keeps connections alive (bounded sockets) unless
 * `keepAlive` is false.
 * @param {{ ca?: string | Buffer, insecure?: boolean, maxSockets?: number, keepAlive?: boolean }} [options]
 * @returns {Transport}
 */
export function createTransport({ ca, insecure = false, maxSockets = 16, keepAlive = true } = {}) {
  const caData = loadCa(ca);
  const agents = {
    'http:': new http.Agent({ keepAlive, maxSockets }),
    'https:': new https.Agent({
      keepAlive,
      maxSockets,
      // Like NODE_EXTRA_CA_CERTS: the given CA in addition to the usual roots.
      ...(caData ? { ca: [...tls.rootCertificates, caData] } : {}),
      ...(insecure ? { rejectUnauthorized: false } : {}),
    }),
  };
  /** @param {TransportRequest} request */
  function request({ method = 'GET', url, headers = {}, body, timeout = 30000 }) {
    const target = new URL(url);
    const lib = target.protocol === 'https:' ? https : http;
    const agent = agents[target.protocol];
    if (!agent) return Promise.reject(new TransportError(`unsupported protocol ${target.protocol}`, { code: 'EPROTO', method, url }));
    const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const code = error.code ?? 'ECONNRESET';
        reject(new TransportError(error.message, { code, method, url: target.pathname + target.search }));
      };
      const req = lib.request(
        target,
        {
          method,
          agent,
          headers: {
            Accept: 'application/json',
            ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}),
            ...headers,
          },
        },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('error', fail);
          res.on('aborted', () => fail(Object.assign(new Error('response aborted'), { code: 'ECONNRESET' })));
          res.on('end', () => {
            if (settled) return;
            if (!res.complete) {
              fail(Object.assign(new Error('response ended early'), { code: 'ECONNRESET' }));
              return;
            }
            settled = true;
            clearTimeout(timer);
            resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') });
          });
        },
      );
      const timer = setTimeout(() => {
        const error = Object.assign(new Error(`timed out after ${timeout} ms`), { code: 'EREQTIMEOUT' });
        fail(error);
        req.destroy(error);
      }, timeout);
      req.on('error', fail);
      if (payload) req.write(payload);
      req.end();
    });
  }
  function close() {
    for (const agent of Object.values(agents)) agent.destroy();
  }
  return { request, close };
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Exponential back-off with full jitter: attempt 0 → ~base, 1 → ~2·base, ... capped. */
export function backoffDelay(attempt, { base = 250, max = 8000, random = Math.random } = {}) {
  const ceiling = Math.min(max, base * 2 ** attempt);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Runs `fn(item)` over items with at most `limit` in flight; results in order. */
export async function mapLimit(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const at = next++;
      results[at] = await fn(items[at], at);
    }
  });
  await Promise.all(workers);
  return results;
}

/**
 * At most `limit` holders at once, FIFO, with the limit adapting to the
 * server: `throttled()` (a 429 or 503) halves it, and every GROW_AFTER
 * successes in a row add one back, up to `max` (additive increase,
 * multiplicative decrease). A server that says "too many" gets fewer
 * requests in flight, not only the same number later.
 */
// Slow to grow back: a server at its limit answers one 503 per GROW_AFTER requests, each a retry.
const GROW_AFTER = 10;

export class AdaptiveLimit {
  #waiting = [];
  #successes = 0;

  constructor(max) {
    if (!Number.isInteger(max) || max < 1) throw new Error(`concurrency must be a positive integer (got ${max})`);
    this.max = max;
    this.limit = max;
    this.active = 0;
    /** How often the limit was lowered, and the lowest it went. */
    this.stats = { throttled: 0, lowest: max };
  }

  /** Resolves once a slot is free; the caller must `release()` it. */
  acquire() {
    if (this.active < this.limit) {
      this.active += 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  release() {
    this.active -= 1;
    this.#admit();
  }

  /** Runs `fn` in a slot. */
  async run(fn) {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  throttled() {
    this.limit = Math.max(1, Math.floor(this.limit / 2));
    this.#successes = 0;
    this.stats.throttled += 1;
    this.stats.lowest = Math.min(this.stats.lowest, this.limit);
  }

  succeeded() {
    if (this.limit >= this.max) return;
    this.#successes += 1;
    if (this.#successes < GROW_AFTER) return;
    this.#successes = 0;
    this.limit += 1;
    this.#admit();
  }

  #admit() {
    while (this.active < this.limit && this.#waiting.length) {
      this.active += 1;
      this.#waiting.shift()();
    }
  }
}
