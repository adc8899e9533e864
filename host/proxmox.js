// Proxmox VE API client (read-only): GET https://host:8006/api2/json<path>
// with an API token, a CA file or an explicit insecure flag, bounded
// concurrency and a per-request timeout. A failed path is recorded as
// `{"error": {"status": N, "message": "..."}}` (the planner's convention for
// an incomplete snapshot) instead of aborting the whole fetch.
import { backoffDelay, createTransport, mapLimit, publicUrl, redact, sleep, TLS_VERIFY_CODES, transportMessage } from './http.js';

/** `PVEAPIToken=user@realm!tokenid=secret` from its parts or a full token string. */
export function pveAuthorization(token) {
  if (!token) throw new Error('a Proxmox API token is required (user@realm!tokenid=secret)');
  const value = token.startsWith('PVEAPIToken=') ? token.slice('PVEAPIToken='.length) : token;
  if (!/^[^!=\s]+![^=\s]+=\S+$/.test(value)) {
    throw new Error('the Proxmox token must look like user@realm!tokenid=secret');
  }
  return `PVEAPIToken=${value}`;
}

/** Where to fix things, named in error messages (config.js passes the flag or variable actually used). */
export const DEFAULT_PVE_HINTS = {
  url: 'PVE_URL (--pve-url)',
  token: 'PVE_TOKEN',
  tls: 'set PVE_CA_FILE (--pve-ca-file) to the cluster\'s CA (/etc/pve/pve-root-ca.pem), or PVE_INSECURE=1 (--pve-insecure) to skip verification',
};

export class ProxmoxError extends Error {
  /**
   * @param {string} message
   * @param {{ status?: number | null, path?: string, code?: string }} [detail]  no status when no answer came (then Node's `code`)
   */
  constructor(message, { status = null, path, code } = {}) {
    super(message);
    this.name = 'ProxmoxError';
    this.status = status;
    this.path = path;
    if (code) this.code = code;
  }
}

export class ProxmoxClient {
  #token;
  #authHeader;
  #transport;
  #ownsTransport;

  /**
   * @param {object} o
   * @param {string} o.url  `https://pve1.example.org:8006` (`/api2/json` is added when missing)
   * @param {string} o.token `user@realm!tokenid=secret`
   * @param {string|Buffer} [o.ca]  CA bundle (PEM text or file path) to verify the server with
   * @param {boolean} [o.insecure]  skip certificate verification (explicit opt-in)
   * @param {number} [o.concurrency=8]
   * @param {number} [o.timeout=15000] per request, ms
   * @param {number} [o.retries=2]     retries on 5xx (not 500: PVE answers 500 for real errors), timeouts, resets
   * @param {number} [o.backoff=300]   first back-off delay, ms
   * @param {import('./http.js').Transport} [o.transport]  instead of a node:http one (tests, fault injection)
   * @param {(ms: number) => Promise<unknown>} [o.sleep]  the back-off wait
   * @param {(request: import('./netbox.js').RequestRecord) => void} [o.onRequest]  told of every attempt
   * @param {Partial<typeof DEFAULT_PVE_HINTS>} [o.hints]  the settings errors name (config.js: the flag or variable used)
   */
  constructor({
    url, token, ca, insecure = false, concurrency = 8, timeout = 15000, retries = 2, backoff = 300, transport, sleep: sleeper = sleep,
    onRequest, hints = {},
  } = /** @type {{ url: string, token: string }} */ ({})) { // the `{}` only so that no argument gets the url check's message
    if (!url) throw new Error('a Proxmox URL is required');
    const base = url.replace(/\/+$/, '');
    this.base = /\/api2\/json$/.test(base) ? base : `${base}/api2/json`;
    /** The server as users name it (no /api2/json, no credentials), for messages. */
    this.where = publicUrl(this.base.replace(/\/api2\/json$/, ''));
    this.hints = { ...DEFAULT_PVE_HINTS, ...hints };
    this.#token = token;
    this.#authHeader = pveAuthorization(token);
    this.concurrency = concurrency;
    this.timeout = timeout;
    this.retries = retries;
    this.backoff = backoff;
    this.sleep = sleeper;
    this.onRequest = onRequest;
    this.#ownsTransport = !transport;
    this.#transport = transport ?? createTransport({ ca, insecure, maxSockets: concurrency });
    this.stats = { requests: 0, retries: 0, failed: 0 };
  }

  get secrets() {
    const value = this.#token?.replace(/^PVEAPIToken=/, '');
    return [value, value?.split('=').slice(1).join('=')].filter(Boolean);
  }

  close() {
    if (this.#ownsTransport) this.#transport.close();
  }

  /** The `data` of one GET; throws ProxmoxError. */
  async get(path) {
    const url = `${this.base}${path}`;
    for (let attempt = 0; ; attempt++) {
      this.stats.requests += 1;
      const started = Date.now();
      let response;
      let failure;
      try {
        response = await this.#transport.request({ method: 'GET', url, headers: { Authorization: this.#authHeader }, timeout: this.timeout });
      } catch (error) {
        failure = error;
      }
      this.onRequest?.({ method: 'GET', path, status: response?.status ?? null, error: failure?.code, ms: Date.now() - started, attempt });
      // A certificate that is not trusted stays untrusted: no retry.
      const transient = failure ? !TLS_VERIFY_CODES.has(failure.code) : [502, 503, 504, 429].includes(response.status);
      if (transient && attempt < this.retries) {
        this.stats.retries += 1;
        await this.sleep(backoffDelay(attempt, { base: this.backoff, max: 4000 }));
        continue;
      }
      if (failure) {
        throw new ProxmoxError(
          redact(`GET ${path}: ${transportMessage('Proxmox', this.where, failure, this.hints)}`, this.secrets), { path, code: failure.code }
        );
      }
      let body = null;
      try {
        body = response.text ? JSON.parse(response.text) : null;
      } catch {
        body = null;
      }
      if (response.status >= 200 && response.status < 300) return body?.data ?? null;
      // PVE's own JSON `message`; never a proxy's HTML page.
      const message = String(body?.message ?? '').trim().split('\n')[0] || `HTTP ${response.status}`;
      throw new ProxmoxError(redact(message, this.secrets), { status: response.status, path });
    }
  }

  /**
   * Fetches many paths (at most `concurrency` at once). Returns
   * `{path: data}`; a failed path maps to `{error: {status, message}}`.
   * @param {string[]} paths
   * @param {{ onResult?: (path: string, data: unknown) => void }} [options]  told of each path as it is read
   */
  async fetchAll(paths, { onResult } = {}) {
    const out = {};
    await mapLimit(paths, this.concurrency, async (path) => {
      try {
        out[path] = await this.get(path);
      } catch (error) {
        this.stats.failed += 1;
        out[path] = { error: { status: error.status ?? 0, message: error.message } };
      }
      onResult?.(path, out[path]);
    });
    // Stable key order (the order asked for), whatever finished first.
    return Object.fromEntries(paths.map((p) => [p, out[p]]));
  }
}
