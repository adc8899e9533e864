// The state `serve` owns as the Proxbox backend: one JSON document with the
// API keys (scrypt hashes only) and the NetBox and Proxmox endpoints the
// plugin pushed (without their secrets: those stay in memory, and the plugin
// pushes them again at the start of every sync job).
//
// On disk: <dir>/serve-state.json, mode 0600, in a directory made 0700, written
// atomically (temporary file + rename). Without a directory the state lives in
// memory only (tests, `createSyncServer()` without `stateDir`).
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const STATE_FILE = 'serve-state.json';
const FORMAT = 1;

/** `--state-dir`, else PROXBOX_PLANNER_STATE_DIR, else $XDG_STATE_HOME/proxbox-planner, else ~/.local/state/proxbox-planner. */
export function defaultStateDir(env = process.env) {
  if (env.PROXBOX_PLANNER_STATE_DIR) return env.PROXBOX_PLANNER_STATE_DIR;
  return join(env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'proxbox-planner');
}

function emptyDocument() {
  return { format: FORMAT, bootstrap_claimed: false, next_id: {}, keys: [], netbox_endpoints: [], proxmox_endpoints: [] };
}

export class StateFile {
  /** @param {string|null} dir  null: memory only */
  constructor(dir = null) {
    this.dir = dir;
    this.path = dir ? join(dir, STATE_FILE) : null;
    this.doc = emptyDocument();
    if (this.path) this.#load();
  }

  #load() {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    let text;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (error) {
      if (error.code === 'ENOENT') return;
      throw new Error(`cannot read the serve state ${this.path}: ${error.message}`);
    }
    if ((statSync(this.path).mode & 0o077) !== 0) {
      throw new Error(`${this.path} is readable by others (mode ${(statSync(this.path).mode & 0o777).toString(8)}): chmod 600 it`);
    }
    let doc;
    try {
      doc = JSON.parse(text);
    } catch (error) {
      throw new Error(`the serve state ${this.path} is not JSON (${error.message}): move it away to start afresh`);
    }
    if (doc?.format !== FORMAT) throw new Error(`the serve state ${this.path} has format ${doc?.format}, this serve reads format ${FORMAT}`);
    this.doc = { ...emptyDocument(), ...doc };
  }

  /** The next id of a collection (ids are never reused, as in a database). */
  nextId(collection) {
    const id = this.doc.next_id[collection] ?? 1;
    this.doc.next_id[collection] = id + 1;
    return id;
  }

  save() {
    if (!this.path) return;
    const tmp = `${this.path}.tmp-${process.pid}`;
    writeFileSync(tmp, `${JSON.stringify(this.doc, null, 1)}\n`, { mode: 0o600 });
    // writeFileSync's mode only applies to a new file; a leftover tmp keeps its own.
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.path);
  }
}
