// What changed between two plans of the same endpoint: after an override, a re-plan from
// live data, or a sync. Operations are matched by id (the planner keeps ids stable:
// `stage:model:identity`), then compared part by part.

/** The parts of an operation that say what it would do (its id and grouping excepted). */
const PARTS = ['action', 'reason', 'detail', 'target', 'changes', 'fields', 'depends_on'];

/** JSON with object keys in order, so equal values give equal text. */
export function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/** The parts of `a` and `b` that differ; `changes`/`fields` by field (`changes.memory`). */
export function changedParts(a, b) {
  const parts = [];
  for (const part of PARTS) {
    if (canonical(a[part]) === canonical(b[part])) continue;
    const byField = (part === 'changes' || part === 'fields') && a[part] && b[part];
    if (!byField) {
      parts.push(part);
      continue;
    }
    for (const field of new Set([...Object.keys(a[part]), ...Object.keys(b[part])])) {
      if (canonical(a[part][field]) !== canonical(b[part][field])) parts.push(`${part}.${field}`);
    }
  }
  return parts;
}

/**
 * @returns {{appeared: object[], vanished: object[], changed: {before: object, after: object, parts: string[]}[],
 *            same: number, empty: boolean}}
 */
export function diffPlans(before, after) {
  const old = new Map((before?.operations ?? []).map((op) => [op.id, op]));
  const appeared = [];
  const changed = [];
  let same = 0;
  for (const op of after?.operations ?? []) {
    const was = old.get(op.id);
    old.delete(op.id);
    if (!was) appeared.push(op);
    else {
      const parts = changedParts(was, op);
      if (parts.length) changed.push({ before: was, after: op, parts });
      else same += 1;
    }
  }
  const vanished = [...old.values()];
  return { appeared, vanished, changed, same, empty: !appeared.length && !vanished.length && !changed.length };
}
