// Connection settings from flags and the environment, checked, and the
// clients made from them. Every option remembers where it came from (a flag
// or a variable), so an error names the one to fix. Tokens come from the
// environment (or flags/files) and stay in the clients: nothing here prints
// or stores them.
import { readFileSync } from 'node:fs';
import * as planner from 'proxbox-planner';
import { NetBoxClient } from './netbox.js';
import { ProxmoxClient } from './proxmox.js';
import { UsageError } from './outcome.js';

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
  PVE_INSECURE: 'set to 1 to skip Proxmox certificate verification (explicit opt-in)',
  PROXBOX_ENDPOINT: 'the plugin endpoint to sync: id or name',
  NO_COLOR: 'set (to anything) for output without colours',
};

const truthy = (v) => /^(1|true|yes|on)$/i.test(String(v ?? ''));
const given = (v) => v !== undefined && v !== null && v !== '';

/**
 * The first source that is set, as `{value, source}`; `source` is the flag
 * (`--netbox-url`) or variable (`NETBOX_URL`) it came from.
 * @param {Array<[string, string|undefined]>} candidates  [source, value] in precedence order
 */
function first(candidates) {
  for (const [source, value] of candidates) if (given(value)) return { value, source };
  return { value: undefined, source: undefined };
}

/** A secret or CA file's contents; a usage error naming the flag or variable when it cannot be read. */
function readNamedFile(file, source, what) {
  try {
    return readFileSync(file);
  } catch (error) {
    const why = { ENOENT: 'no such file', EACCES: 'permission denied', EISDIR: 'a directory' }[error.code] ?? error.message;
    throw new UsageError(`${source} ${file}: cannot read the ${what} (${why})`);
  }
}

/** A token: from a flag or variable, else from the file a flag or variable names. */
function token(flags, env, name) {
  const upper = name.toUpperCase();
  const inline = first([[`--${name}-token`, flags[`${name}-token`]], [`${upper}_TOKEN`, env[`${upper}_TOKEN`]]]);
  const file = first([[`--${name}-token-file`, flags[`${name}-token-file`]], [`${upper}_TOKEN_FILE`, env[`${upper}_TOKEN_FILE`]]]);
  // A flag beats a variable, whichever form each has.
  const fromFlag = [inline, file].find((o) => o.source?.startsWith('--'));
  const chosen = fromFlag ?? (inline.source ? inline : file);
  if (chosen === file && file.source) {
    return { value: readNamedFile(file.value, file.source, 'token').toString('utf8').trim(), source: file.source };
  }
  return chosen;
}

/** Hides user:password@ in a URL that is shown because it does not parse. */
const shownUrl = (text) => String(text).replace(/\/\/[^/@\s]*@/, '//***@').slice(0, 120);

/** A URL option: http(s), parseable; a usage error naming where it came from otherwise. */
export function checkUrl(value, source) {
  let url;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${source} is not a valid URL: "${shownUrl(value)}" (expected http(s)://host[:port][/path])`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`${source} must be an http:// or https:// URL, got "${shownUrl(value)}"`);
  }
  return value;
}

/** Whole numbers within bounds, for flags: `--timeout abc`, `--batch-size 0`, `--port 99999`. */
export function checkInteger(value, source, { min = 0, max = Number.MAX_SAFE_INTEGER, unit = '' } = {}) {
  const text = String(value).trim();
  const number = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(number) || number < min || number > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `${min} to ${max}`;
    throw new UsageError(`${source} must be a whole number${unit ? ` of ${unit}` : ''}, ${range}; got "${value}"`);
  }
  return number;
}

/** One of a fixed set of words. */
export function checkChoice(value, source, choices) {
  if (!choices.includes(value)) throw new UsageError(`${source} must be one of ${choices.join(', ')}; got "${value}"`);
  return value;
}

/** A TCP port (0 lets the system pick one). */
export const checkPort = (value, source) => checkInteger(value, source, { min: 0, max: 65535 });

export const VERIFY_CREATES = ['always', 'retry', 'never'];

/** Parses `key=value` overrides; values are JSON when they parse (`true`, `3`, `null`, `"x"`), else strings. */
export function parseAssignments(list = [], source = '--set') {
  const out = {};
  for (const item of list) {
    const at = item.indexOf('=');
    if (at <= 0) throw new UsageError(`${source} expects key=value, got ${JSON.stringify(item)}`);
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

/** Sync types, checked by the core (it owns the list of stages). */
function syncTypesOf(text) {
  const types = String(text).split(',').map((s) => s.trim()).filter(Boolean);
  try {
    planner.resolveSyncModes({}, {}, types);
  } catch (error) {
    throw new UsageError(`--sync-types: ${error.detail ?? error.message}`);
  }
  return types;
}

/** A number flag, or undefined when not given. */
const numberFlag = (flags, name, bounds) => (given(flags[name]) ? checkInteger(flags[name], `--${name}`, bounds) : undefined);

/**
 * The resolved and checked connection and sync options (no clients yet).
 * Throws a UsageError (exit 64) naming the flag or variable that is wrong.
 */
export function resolveOptions(flags = {}, env = process.env) {
  const netboxUrl = first([['--netbox-url', flags['netbox-url']], ['NETBOX_URL', env.NETBOX_URL]]);
  const pveUrl = first([['--pve-url', flags['pve-url']], ['--proxmox-url', flags['proxmox-url']], ['PVE_URL', env.PVE_URL]]);
  const pveCaFile = first([['--pve-ca-file', flags['pve-ca-file']], ['PVE_CA_FILE', env.PVE_CA_FILE]]);
  if (netboxUrl.value) checkUrl(netboxUrl.value, netboxUrl.source);
  if (pveUrl.value) checkUrl(pveUrl.value, pveUrl.source);
  let pveCa;
  if (pveCaFile.value) {
    pveCa = readNamedFile(pveCaFile.value, pveCaFile.source, 'CA file');
    if (!pveCa.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(
      `${pveCaFile.source} ${pveCaFile.value}: not a PEM certificate (no BEGIN CERTIFICATE line)`
    );
  }
  const netboxToken = token(flags, env, 'netbox');
  const pveToken = token(flags, env, 'pve');
  return {
    netboxUrl: netboxUrl.value,
    netboxToken: netboxToken.value,
    netboxBranch: flags['netbox-branch'] ?? env.NETBOX_BRANCH,
    pveUrl: pveUrl.value,
    pveToken: pveToken.value,
    pveCaFile: pveCaFile.value,
    pveCa,
    pveInsecure: Boolean(flags['pve-insecure']) || truthy(env.PVE_INSECURE),
    endpoint: flags.endpoint ?? env.PROXBOX_ENDPOINT,
    settings: parseAssignments(flags.set, '--set'),
    endpointOverrides: parseAssignments(flags['endpoint-set'], '--endpoint-set'),
    syncTypes: syncTypesOf(flags['sync-types'] ?? 'all'),
    timeout: numberFlag(flags, 'timeout', { min: 1, unit: 'milliseconds' }),
    batchSize: numberFlag(flags, 'batch-size', { min: 1 }),
    concurrency: numberFlag(flags, 'concurrency', { min: 1 }),
    retries: numberFlag(flags, 'retries', { min: 0 }),
    verifyCreates: checkChoice(flags['verify-creates'] ?? 'always', '--verify-creates', VERIFY_CREATES),
    /** Where each setting came from, for messages that name what to fix. */
    sources: {
      netboxUrl: netboxUrl.source ?? 'NETBOX_URL (--netbox-url)',
      netboxToken: netboxToken.source ?? 'NETBOX_TOKEN',
      pveUrl: pveUrl.source,
      pveToken: pveToken.source ?? 'PVE_TOKEN',
      pveCaFile: pveCaFile.source,
    },
  };
}

export function netboxClient(options, extra = {}) {
  if (!options.netboxUrl) throw new UsageError('no NetBox URL: set NETBOX_URL or --netbox-url');
  if (!options.netboxToken) throw new UsageError('no NetBox token: set NETBOX_TOKEN (or NETBOX_TOKEN_FILE, --netbox-token-file)');
  const sources = options.sources ?? {};
  return new NetBoxClient({
    url: options.netboxUrl,
    token: options.netboxToken,
    branch: options.netboxBranch,
    hints: { ...(sources.netboxUrl ? { url: sources.netboxUrl } : {}), ...(sources.netboxToken ? { token: sources.netboxToken } : {}) },
    ...(options.timeout ? { timeout: options.timeout } : {}),
    ...(options.batchSize ? { batchSize: options.batchSize } : {}),
    ...(options.concurrency ? { concurrency: options.concurrency } : {}),
    ...(options.retries !== undefined ? { retries: options.retries } : {}),
    ...extra,
  });
}

/** What to fix when the Proxmox certificate is not trusted, given what was set. */
function tlsHint(options) {
  const ca = options.sources?.pveCaFile;
  if (ca) return `${ca} ${options.pveCaFile} does not verify it: give the CA that signed it (/etc/pve/pve-root-ca.pem), or PVE_INSECURE=1 (--pve-insecure) ` +
    `to skip verification`;
  return undefined; // the client's default: set PVE_CA_FILE, or PVE_INSECURE=1
}

/** The Proxmox client; its URL defaults to the plugin endpoint's when known. */
export function proxmoxClient(options, fallbackUrl, extra = {}) {
  const url = options.pveUrl ?? fallbackUrl;
  const urlSource = options.sources?.pveUrl ?? 'the plugin endpoint\'s domain and port (or set PVE_URL)';
  if (!url) throw new UsageError('no Proxmox URL: set PVE_URL or --pve-url (or give the plugin endpoint a domain/IP)');
  checkUrl(url, urlSource);
  if (!options.pveToken) throw new UsageError('no Proxmox token: set PVE_TOKEN (user@realm!tokenid=secret) or PVE_TOKEN_FILE');
  const tls = tlsHint(options);
  const tokenSource = options.sources?.pveToken ?? 'PVE_TOKEN';
  try {
    return new ProxmoxClient({
      url,
      token: options.pveToken,
      ca: options.pveCa ?? options.pveCaFile,
      insecure: options.pveInsecure,
      hints: { url: urlSource, token: tokenSource, ...(tls ? { tls } : {}) },
      ...(options.timeout ? { timeout: options.timeout } : {}),
      ...extra,
    });
  } catch (error) {
    // The only way the constructor fails on checked options: a token of the wrong shape.
    throw new UsageError(`${tokenSource}: ${error.message}`);
  }
}

/** Every secret the options hold, for redaction. */
export function secretsOf(options) {
  return [options.netboxToken, options.pveToken].filter(Boolean);
}
