// The backend API keys (`X-Proxbox-API-Key`), with proxbox-api's lifecycle as
// netbox-proxbox 0.0.29.post6 uses it (services/backend_key_adoption.py):
//
//   GET  /auth/bootstrap-status  {needs_bootstrap, has_db_keys} (always opposite booleans)
//   POST /auth/register-key      {api_key, label} → 201 {detail}; only the first key, ever (409 after)
//   GET  /auth/keys              {keys: [{id, label, is_active, created_at}]}
//   POST /auth/keys              201 {id, label, is_active, created_at, raw_key}
//   DELETE /auth/keys/{id}, POST /auth/keys/{id}/deactivate|activate (the last active key stays)
//
// Keys are stored as scrypt hashes; a verified key is remembered (as its
// SHA-256) in memory so that each request does not pay for scrypt again.
import { createHash, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { HttpError } from './errors.js';

const MIN_KEY_LENGTH = 32;
const SCRYPT = { N: 16384, r: 8, p: 1 };

function hashKey(key, salt = randomBytes(16)) {
  const hash = scryptSync(key, salt, 32, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

function matches(key, stored) {
  const [scheme, N, r, p, salt, hash] = String(stored).split('$');
  if (scheme !== 'scrypt') return false;
  const expected = Buffer.from(hash, 'base64');
  const actual = scryptSync(key, Buffer.from(salt, 'base64'), expected.length, { N: Number(N), r: Number(r), p: Number(p) });
  return timingSafeEqual(actual, expected);
}

const fingerprint = (key) => createHash('sha256').update(key).digest('hex');
const publicKey = ({ id, label, is_active, created_at }) => ({ id, label, is_active, created_at });

export class KeyStore {
  /** verified key fingerprint → key id */
  #verified = new Map();

  /**
   * @param {import('./state.js').StateFile} state
   * @param {object} [o]
   * @param {string} [o.extraKey]  a key from --api-key-file / PROXBOX_API_KEY, accepted besides the stored ones (never stored)
   */
  constructor(state, { extraKey } = {}) {
    this.state = state;
    this.extraKey = extraKey || null;
  }

  get #keys() {
    return this.state.doc.keys;
  }

  /** Whether any key can authenticate (then every non-public route needs one). */
  get configured() {
    return Boolean(this.extraKey) || this.#keys.some((k) => k.is_active);
  }

  bootstrapStatus() {
    const claimed = Boolean(this.state.doc.bootstrap_claimed);
    return { needs_bootstrap: !claimed, has_db_keys: claimed };
  }

  /** The one-time, unauthenticated first key. */
  registerFirst(apiKey, label = '') {
    if (typeof apiKey !== 'string' || apiKey.trim().length < MIN_KEY_LENGTH) {
      throw new HttpError(400, `API key must be at least ${MIN_KEY_LENGTH} characters.`);
    }
    if (this.state.doc.bootstrap_claimed) throw new HttpError(409, 'An API key is already configured.');
    this.state.doc.bootstrap_claimed = true;
    this.#add(apiKey.trim(), typeof label === 'string' ? label.slice(0, 200) : '');
    return { detail: 'API key registered.' };
  }

  /** A new random key (the caller is already authenticated); the only time it is shown. */
  create(label = '') {
    const raw = randomBytes(48).toString('base64url');
    return { ...publicKey(this.#add(raw, label)), raw_key: raw };
  }

  #add(raw, label) {
    const record = { id: this.state.nextId('key'), label, is_active: true, created_at: Date.now() / 1000, hash: hashKey(raw) };
    this.#keys.push(record);
    this.#verified.clear();
    this.state.save();
    return record;
  }

  list() {
    return { keys: [...this.#keys].sort((a, b) => b.created_at - a.created_at).map(publicKey) };
  }

  /** The active key record `candidate` is, or null. */
  verify(candidate) {
    if (typeof candidate !== 'string' || !candidate) return null;
    if (this.extraKey && candidate.length === this.extraKey.length && timingSafeEqual(Buffer.from(candidate), Buffer.from(this.extraKey))) {
      return { id: 0, label: 'api-key-file', is_active: true };
    }
    const known = this.#verified.get(fingerprint(candidate));
    const cached = known !== undefined && this.#keys.find((k) => k.id === known && k.is_active);
    if (cached) return cached;
    const found = this.#keys.find((k) => k.is_active && matches(candidate, k.hash));
    if (found) this.#verified.set(fingerprint(candidate), found.id);
    return found ?? null;
  }

  remove(id) {
    const record = this.#lastActiveGuard(id);
    this.state.doc.keys = this.#keys.filter((k) => k !== record);
    this.#changed();
  }

  setActive(id, active) {
    const record = active ? this.#find(id) : this.#lastActiveGuard(id);
    record.is_active = active;
    this.#changed();
    return publicKey(record);
  }

  #find(id) {
    const record = this.#keys.find((k) => k.id === id);
    if (!record) throw new HttpError(404, 'API key not found.');
    return record;
  }

  #lastActiveGuard(id) {
    const record = this.#find(id);
    if (record.is_active && this.#keys.filter((k) => k.is_active).length <= 1 && !this.extraKey) {
      throw new HttpError(409, 'Create and verify another active API key before retiring this key.');
    }
    return record;
  }

  #changed() {
    this.#verified.clear();
    this.state.save();
  }
}
