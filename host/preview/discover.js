// The discover loop without I/O of its own, for the browser: the planner says what to read
// (`discover`), the caller's readers fetch it, round by round, until `complete`.
// (host/sync.js runs the same loop in Node with its own clients and events.)

/**
 * @param {object} o
 * @param {{discover: Function}} o.planner
 * @param {object} o.base          the input without data: settings, endpoint, sync_types, subset...
 * @param {(paths: string[]) => Promise<object>} o.readProxmox        path -> data | {error}
 * @param {(collections: string[], queries: object) => Promise<object>} o.readNetbox  collection -> rows | {error};
 *   a collection in `queries` (discover's, NetBox's history) is read filtered, each query's rows together
 * @param {(round: {round: number, proxmox: number, netbox: number}) => void} [o.onRound]
 * @param {number} [o.maxRounds]  only catches a discovery that never converges
 * @returns {Promise<{input: object, rounds: number}>}
 */
export async function collectInput({ planner, base, readProxmox, readNetbox, onRound = () => {}, maxRounds = 12 }) {
  const input = { ...base, proxmox: {}, netbox: {} };
  for (let round = 1; ; round += 1) {
    const next = planner.discover(input);
    if (next.complete) return { input, rounds: round - 1 };
    const repeated = [...next.proxmox.filter((p) => p in input.proxmox), ...next.netbox.filter((c) => c in input.netbox)];
    if (round > maxRounds || repeated.length) {
      throw new Error(`discovery does not converge (round ${round}${repeated.length ? `, asked again for ${repeated.join(', ')}` : ''})`);
    }
    onRound({ round, proxmox: next.proxmox.length, netbox: next.netbox.length });
    const [fromProxmox, fromNetbox] = await Promise.all([
      next.proxmox.length ? readProxmox(next.proxmox) : {},
      next.netbox.length ? readNetbox(next.netbox, next.queries ?? {}) : {},
    ]);
    Object.assign(input.proxmox, fromProxmox);
    Object.assign(input.netbox, fromNetbox);
  }
}
