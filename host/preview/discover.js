// The discover loop without I/O of its own, shared by Node (host/sync.js) and the browser:
// the planner says what to read (`discover`), the caller's readers fetch it, until `complete`.
//
// Reads are pipelined, not taken in lock-step rounds: the planner is asked again as soon as
// any read finishes, and what it asks for next starts at once. A guest's configuration does
// not wait for NetBox's largest collection, nor NetBox's change log for the guest agents.

/**
 * @param {object} o
 * @param {{discover: Function}} o.planner
 * @param {object} o.base          the input without data: settings, endpoint, sync_types, subset...
 * @param {(paths: string[]) => Promise<object>} o.readProxmox        path -> data | {error}
 * @param {(collections: string[], o: {queries: object, fields: object}) => Promise<object>} o.readNetbox
 *   collection -> rows | {error}; a collection in `queries` (discover's, NetBox's history) is read filtered,
 *   each query's rows together; `fields`: per collection, the fields the planner reads (`?fields=`)
 * @param {(round: {round: number, proxmox: number, netbox: number}) => void} [o.onRound]  each time reads start
 * @param {number} [o.maxRounds]  only catches a discovery that never converges: the longest chains
 *   (a node's task archive, page by page; NetBox's change log after the collections) interleave
 * @returns {Promise<{input: object, rounds: number}>}
 */
export async function collectInput({ planner, base, readProxmox, readNetbox, onRound = () => {}, maxRounds = 32 }) {
  const input = { ...base, proxmox: {}, netbox: {} };
  const reading = { proxmox: new Set(), netbox: new Set() }; // the paths and collections being read
  const reads = new Set(); // their promises, which never reject (a failure is kept in `failure`)
  let failure = null;
  let rounds = 0;

  const start = (side, names, promise) => {
    for (const name of names) reading[side].add(name);
    const read = promise
      .then((data) => { Object.assign(input[side], data); }, (error) => { failure ??= error; })
      .finally(() => {
        reads.delete(read);
        for (const name of names) reading[side].delete(name);
      });
    reads.add(read);
  };

  for (;;) {
    if (failure) throw failure;
    const next = planner.discover(input);
    if (next.complete && !reads.size) return { input, rounds };
    const repeated = [...next.proxmox.filter((p) => p in input.proxmox), ...next.netbox.filter((c) => c in input.netbox)];
    if (repeated.length) throw new Error(`discovery does not converge (round ${rounds + 1}, asked again for ${repeated.join(', ')})`);
    const proxmox = next.proxmox.filter((path) => !reading.proxmox.has(path));
    const netbox = next.netbox.filter((collection) => !reading.netbox.has(collection));
    if (proxmox.length || netbox.length) {
      rounds += 1;
      if (rounds > maxRounds) throw new Error(`discovery does not converge (round ${rounds})`);
      onRound({ round: rounds, proxmox: proxmox.length, netbox: netbox.length });
      const queries = Object.fromEntries(Object.entries(next.queries ?? {}).filter(([collection]) => netbox.includes(collection)));
      if (proxmox.length) start('proxmox', proxmox, readProxmox(proxmox));
      if (netbox.length) start('netbox', netbox, readNetbox(netbox, { queries, fields: next.fields ?? {} }));
    } else if (!reads.size) {
      throw new Error('discovery does not converge: the plan is not complete, and the planner asks for nothing more');
    }
    await Promise.race(reads);
  }
}
