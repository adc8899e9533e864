// Connection settings from flags and the environment, and the clients made
// from them. Tokens come from the environment (or flags/files) and stay in
// the clients: nothing here prints or stores them.
import { readFileSync } from 'node:fs';
import { NetBoxClient } from './netbox.js';
import { ProxmoxClient } from './proxmox.js';

/** Environment variables the host reads (flags win over them). */
export const ENV_VARS = {
  NETBOX_URL: 'NetBox base URL',
  NETBOX_TOKEN: 'NetBox API token: v1 (40 hex) or v2 (nbt_<key>.<secret>)',
  NETBOX_TOKEN_FILE: 'a file holding the NetBox token (instead of NETBOX_TOKEN)',
  NETBOX_BRANCH: 'netbox-branching schema id, sent as X-NetBox-Branch',
  PVE_URL: 'Proxmox API URL (https://host:8006); default: the plugin endpoint\'s domain/IP and port',
  PVE_TOKEN: 'Proxmox API token: user@realm!tokenid=secret',
  PVE_TOKEN_FILE: 'a file holding the Proxmox token (instead of PVE_TOKEN)',
  PVE_CA_FILE: 'CA bundle (PEM) to verify the Proxmox certificate',
  PVE_INSECURE: '1 to skip Proxmox certificate verification (explicit opt-in)',
  PROXBOX_ENDPOINT: 'the plugin endpoint to sync: id or name',
};

const truthy = (v) => /^(1|true|yes|on)$/i.test(String(v ?? ''));

function readSecretFile(file) {
  return readFileSync(file, 'utf8').trim();
}

/** Parses `key=value` overrides; values are JSON when they parse (`true`, `3`, `null`, `"x"`), else strings. */
export function parseAssignments(list = []) {
  const out = {};
  for (const item of list) {
    const at = item.indexOf('=');
    if (at <= 0) throw new Error(`expected key=value, got ${JSON.stringify(item)}`);
    const key = item.slice(0, at).trim();
    const raw = item.slice(at + 1);
    try {
      out[key] = JSON.parse(raw);
    } catch {
      out[key] = raw;
    }
  }
  return out;
}

/** The resolved connection and sync options (no clients yet). */
export function resolveOptions(flags = {}, env = process.env) {
  const netboxToken = flags['netbox-token'] ?? env.NETBOX_TOKEN ?? (flags['netbox-token-file'] ?? env.NETBOX_TOKEN_FILE ? readSecretFile(flags['netbox-token-file'] ?? env.NETBOX_TOKEN_FILE) : undefined);
  const pveToken = flags['pve-token'] ?? env.PVE_TOKEN ?? (flags['pve-token-file'] ?? env.PVE_TOKEN_FILE ? readSecretFile(flags['pve-token-file'] ?? env.PVE_TOKEN_FILE) : undefined);
  const syncTypes = (flags['sync-types'] ?? 'all').split(',').map((s) => s.trim()).filter(Boolean);
  return {
    netboxUrl: flags['netbox-url'] ?? env.NETBOX_URL,
    netboxToken,
    netboxBranch: flags['netbox-branch'] ?? env.NETBOX_BRANCH,
    pveUrl: flags['pve-url'] ?? flags['proxmox-url'] ?? env.PVE_URL,
    pveToken,
    pveCaFile: flags['pve-ca-file'] ?? env.PVE_CA_FILE,
    pveInsecure: Boolean(flags['pve-insecure']) || truthy(env.PVE_INSECURE),
    endpoint: flags.endpoint ?? env.PROXBOX_ENDPOINT,
    settings: parseAssignments(flags.set),
    endpointOverrides: parseAssignments(flags['endpoint-set']),
    syncTypes,
    timeout: flags.timeout ? Number(flags.timeout) : undefined,
    batchSize: flags['batch-size'] ? Number(flags['batch-size']) : undefined,
    retries: flags.retries !== undefined ? Number(flags.retries) : undefined,
    verifyCreates: flags['verify-creates'] ?? 'always',
  };
}

export function netboxClient(options, extra = {}) {
  if (!options.netboxUrl) throw new Error('no NetBox URL: set NETBOX_URL or --netbox-url');
  if (!options.netboxToken) throw new Error('no NetBox token: set NETBOX_TOKEN (or NETBOX_TOKEN_FILE)');
  return new NetBoxClient({
    url: options.netboxUrl,
    token: options.netboxToken,
    branch: options.netboxBranch,
    ...(options.timeout ? { timeout: options.timeout } : {}),
    ...(options.batchSize ? { batchSize: options.batchSize } : {}),
    ...(options.retries !== undefined ? { retries: options.retries } : {}),
    ...extra,
  });
}

/** The Proxmox client; its URL defaults to the plugin endpoint's when known. */
export function proxmoxClient(options, fallbackUrl, extra = {}) {
  const url = options.pveUrl ?? fallbackUrl;
  if (!url) throw new Error('no Proxmox URL: set PVE_URL or --pve-url (or give the plugin endpoint a domain/IP)');
  if (!options.pveToken) throw new Error('no Proxmox token: set PVE_TOKEN (user@realm!tokenid=secret)');
  return new ProxmoxClient({
    url,
    token: options.pveToken,
    ca: options.pveCaFile,
    insecure: options.pveInsecure,
    ...(options.timeout ? { timeout: options.timeout } : {}),
    ...extra,
  });
}

/** Every secret the options hold, for redaction. */
export function secretsOf(options) {
  return [options.netboxToken, options.pveToken].filter(Boolean);
}
