// The endpoints the plugin pushes before every sync job (netbox_proxbox
// views/backend_sync.py): where NetBox is and with which token serve writes
// to it, and the Proxmox endpoints with their API tokens.
//
//   GET/POST /netbox/endpoint,     GET/PUT/DELETE /netbox/endpoint/{id}      (a singleton in practice)
//   GET/POST /proxmox/endpoints,   GET/PUT/DELETE /proxmox/endpoints/{id}
//
// The plugin names each Proxmox row "<name> (nb:<pk>)" and finds it again by
// that suffix; serve uses the same suffix to know which plugin endpoint a run
// is for. Secrets (tokens, passwords) are kept in memory only and never appear
// in an answer: the rows on disk and on the wire are the public fields.
import { HttpError } from './errors.js';

/** Per kind: the public fields (stored and returned, with defaults), the secret ones (memory only). */
const KINDS = {
  netbox: {
    collection: 'netbox_endpoints',
    label: 'NetBox endpoint',
    public: { name: 'NetBox Endpoint', ip_address: '', domain: '', port: 443, token_version: 'v1', verify_ssl: true, enabled: true },
    // token_key is the public half of a v2 token; it travels with the secret and is kept with it.
    secret: ['token', 'token_key'],
    redact: ['token'],
  },
  proxmox: {
    collection: 'proxmox_endpoints',
    label: 'Proxmox endpoint',
    public: {
      name: '', node_device_name_template: '', ip_address: '', domain: null, port: 8006, username: 'root@pam', verify_ssl: true,
      enabled: true, allow_writes: false, allow_packer_template_builds: false, access_methods: 'api',
      site_id: null, site_slug: null, site_name: null, tenant_id: null, tenant_slug: null, tenant_name: null,
      timeout: null, max_retries: null, retry_backoff: null,
    },
    secret: ['password', 'token_name', 'token_value'],
    redact: ['password', 'token_value'],
  },
};

const PLUGIN_PK = /\(nb:(\d+)\)\s*$/;

/** The plugin ProxmoxEndpoint pk a backend row belongs to, from its "(nb:<pk>)" name suffix. */
export function pluginEndpointId(row) {
  const match = PLUGIN_PK.exec(String(row?.name ?? ''));
  return match ? Number(match[1]) : null;
}

const hostOf = (row) => String(row.domain || String(row.ip_address || '').split('/')[0] || '').trim();
const bracketed = (host) => (host.includes(':') ? `[${host}]` : host);

export class EndpointRegistry {
  /** kind → id → {field: secret} */
  #secrets = { netbox: new Map(), proxmox: new Map() };

  /** @param {import('./state.js').StateFile} state */
  constructor(state) {
    this.state = state;
  }

  #rows(kind) {
    const { collection } = KINDS[kind];
    this.state.doc[collection] ??= [];
    return this.state.doc[collection];
  }

  list(kind) {
    return this.#rows(kind).map((row) => ({ ...row }));
  }

  get(kind, id) {
    const row = this.#rows(kind).find((r) => r.id === id);
    if (!row) throw new HttpError(404, `${KINDS[kind].label} ${id} not found.`);
    return { ...row };
  }

  create(kind, body) {
    const spec = KINDS[kind];
    const row = { id: this.state.nextId(kind), ...spec.public, ...pick(body, Object.keys(spec.public)) };
    validate(kind, row);
    this.#rows(kind).push(row);
    this.#storeSecrets(kind, row.id, body, { replace: true });
    this.state.save();
    return { ...row };
  }

  /** A partial update: fields not given keep their value (the plugin's revoke PUT sends only `enabled`). */
  update(kind, id, body) {
    const rows = this.#rows(kind);
    const at = rows.findIndex((r) => r.id === id);
    if (at < 0) throw new HttpError(404, `${KINDS[kind].label} ${id} not found.`);
    const row = { ...rows[at], ...pick(body, Object.keys(KINDS[kind].public)), id };
    validate(kind, row);
    rows[at] = row;
    this.#storeSecrets(kind, id, body, { replace: false });
    this.state.save();
    return { ...row };
  }

  remove(kind, id) {
    this.get(kind, id);
    this.state.doc[KINDS[kind].collection] = this.#rows(kind).filter((r) => r.id !== id);
    this.#secrets[kind].delete(id);
    this.state.save();
    return { detail: `${KINDS[kind].label} ${id} deleted.` };
  }

  #storeSecrets(kind, id, body, { replace }) {
    const given = Object.fromEntries(KINDS[kind].secret.filter((f) => f in (body ?? {})).map((f) => [f, body[f] ?? null]));
    this.#secrets[kind].set(id, { ...(replace ? {} : this.#secrets[kind].get(id)), ...given });
  }

  /** Every secret held, for redaction (token names and v2 token keys are identifiers, not secrets). */
  secrets() {
    const all = [];
    for (const [kind, byId] of Object.entries(this.#secrets)) {
      for (const values of byId.values()) all.push(...KINDS[kind].redact.map((f) => values[f]).filter((v) => typeof v === 'string' && v.length >= 4));
    }
    return all;
  }

  /**
   * How serve reaches NetBox: the enabled NetBox endpoint the plugin pushed
   * (proxbox-api's rule: https when the port is 443 or verify_ssl is on), or null.
   */
  netboxConnection() {
    const row = this.#rows('netbox').find((r) => r.enabled);
    if (!row) return null;
    const { token, token_key: key } = this.#secrets.netbox.get(row.id) ?? {};
    if (!token) throw new HttpError(503, `the ${KINDS.netbox.label} "${row.name}" has no token yet: the plugin pushes it at the start of every sync job`);
    const https = row.port === 443 || row.verify_ssl;
    return {
      id: row.id,
      name: row.name,
      url: `${https ? 'https' : 'http'}://${bracketed(hostOf(row))}:${row.port}`,
      token: row.token_version === 'v2' ? `nbt_${key}.${token}` : token,
      insecure: https && !row.verify_ssl,
    };
  }

  /** The Proxmox endpoints a request names (backend ids), or all enabled ones. */
  proxmoxScope(ids) {
    const rows = this.#rows('proxmox').filter((r) => r.enabled);
    if (!ids?.length) return rows.map((r) => ({ ...r }));
    return ids.map((id) => {
      const row = rows.find((r) => r.id === id);
      if (!row) throw new HttpError(
        404, `no enabled ${KINDS.proxmox.label} with backend id ${id} (known: ${rows.map((r) => `${r.id} ${r.name}`).join(', ') || 'none'})`
      );
      return { ...row };
    });
  }

  /** URL, API token and TLS policy of one pushed Proxmox endpoint. */
  proxmoxConnection(row) {
    const { token_name: tokenName, token_value: tokenValue } = this.#secrets.proxmox.get(row.id) ?? {};
    if (!tokenName || !tokenValue) {
      throw new HttpError(
        503,
        `the ${KINDS.proxmox.label} "${row.name}" has no API token here (serve reads Proxmox with API tokens only; the plugin pushes it at the start of ` +
          `every sync job)`
      );
    }
    const id = tokenName.includes('!') ? tokenName : `${row.username || 'root@pam'}!${tokenName}`;
    return {
      id: row.id,
      name: row.name,
      pluginEndpointId: pluginEndpointId(row),
      url: `https://${bracketed(hostOf(row))}:${row.port}`,
      token: `${id}=${tokenValue}`,
      insecure: !row.verify_ssl,
    };
  }

  /** A status view: what serve knows, without secrets. */
  summary() {
    const has = (kind, id) => Object.values(this.#secrets[kind].get(id) ?? {}).some(Boolean);
    return {
      netbox: this.#rows('netbox').map((r) => ({ id: r.id, name: r.name, enabled: r.enabled, has_token: has('netbox', r.id) })),
      proxmox: this.#rows('proxmox').map((r) => ({
        id: r.id, name: r.name, plugin_endpoint_id: pluginEndpointId(r), host: hostOf(r), port: r.port, enabled: r.enabled, has_token: has('proxmox', r.id),
      })),
    };
  }
}

function pick(body, fields) {
  return Object.fromEntries(fields.filter((f) => body && f in body).map((f) => [f, body[f]]));
}

function validate(kind, row) {
  const problems = [];
  if (typeof row.name !== 'string' || !row.name.trim()) problems.push('name is required');
  if (!Number.isInteger(row.port) || row.port < 1 || row.port > 65535) problems.push(`port must be 1..65535 (got ${JSON.stringify(row.port)})`);
  if (!hostOf(row)) problems.push('a domain or an ip_address is required');
  if (kind === 'netbox' && !['v1', 'v2'].includes(row.token_version)) problems.push("token_version must be 'v1' or 'v2'");
  if (problems.length) throw new HttpError(422, `invalid ${KINDS[kind].label}: ${problems.join('; ')}`);
}
