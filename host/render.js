// Plain-text rendering of what the core returns, for terminals.

const paint = (color, code, text) => (color ? `\x1b[${code}m${text}\x1b[0m` : text);

export function renderModes(report, { color = false } = {}) {
  const lines = ['Sync modes (effective, after the cascade):'];
  for (const [resource, mode] of Object.entries(report.effective)) {
    const cascade = report.cascade[resource].length ? ` (cascade from ${report.cascade[resource].join(' + ')})` : '';
    const code = mode === 'disabled' ? '2' : mode === 'bootstrap_only' ? '33' : '32';
    lines.push(`  ${resource.padEnd(14)} ${paint(color, code, mode.padEnd(15))} from ${report.sources[resource]}${cascade}`);
  }
  lines.push('', 'Stages:');
  for (const stage of report.stages) {
    const state = stage.run ? paint(color, '32', 'run ') : paint(color, '2', 'skip');
    lines.push(`  ${state} ${stage.stage}${stage.reason ? `: ${stage.reason}` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

const SYMBOLS = { create: ['+', '32'], update: ['~', '33'], delete: ['-', '31'], skip: ['·', '2'] };

const show = (value) => (typeof value === 'string' ? JSON.stringify(value) : JSON.stringify(value ?? null));

/** What each resolution of a field conflict means, for the listing. */
const RESOLUTION = {
  keep: 'NetBox\'s value is kept (on_operator_edit = keep)',
  overwrite: 'Proxmox\'s value is written (on_operator_edit = overwrite)',
  ask: 'waits for a choice (on_operator_edit = ask)',
};

/** A field conflict's three values, who and when: two lines under its operation. */
function conflictLines(conflict, op, color) {
  const who = [conflict.changed_by, conflict.changed_at].filter(Boolean).join(', ') || 'unknown';
  const accepted = op.action === 'update' && conflict.resolution !== 'overwrite';
  const chosen =
    op.action === 'create' ? 'kept for good (a journal entry on the object)' : accepted ? 'Proxmox\'s value, as chosen' : RESOLUTION[conflict.resolution];
  return [
    `        ${conflict.field}: NetBox ${show(conflict.netbox)} (${who}) · Proxmox ${show(conflict.proxmox)} · last synced ${show(conflict.base)}`,
    `        ${paint(color, '2', chosen)}`,
  ];
}

/** A `terraform plan`-like listing of a plan, grouped by stage. */
export function renderPlan(plan, { color = false, fields = false } = {}) {
  const { endpoint, summary } = plan;
  const lines = [`Plan for endpoint ${endpoint.name ?? '?'} (id ${endpoint.id ?? '?'}), cluster ${endpoint.cluster ?? '?'}`, ''];
  const conflicts = new Map((plan.conflicts ?? []).filter((c) => c.kind === 'operator-edited').map((c) => [c.id, c]));
  let stage = null;
  for (const op of plan.operations) {
    if (op.stage !== stage) {
      stage = op.stage;
      lines.push(paint(color, '1', `${stage}:`));
    }
    const [symbol, code] = SYMBOLS[op.action];
    const head = `  ${paint(color, code, `${symbol} ${op.action.padEnd(6)}`)} ${op.model.padEnd(30)} ${op.key}`;
    lines.push(`${head}  ${paint(color, '2', `(${op.reason})`)}`);
    const conflict = conflicts.get(op.id);
    if (conflict) {
      lines.push(...conflictLines(conflict, op, color));
      continue;
    }
    for (const [field, change] of Object.entries(op.changes ?? {})) {
      lines.push(`        ${field}: ${show(change.before)} → ${show(change.after)}`);
    }
    if (fields && op.action === 'create') {
      for (const [field, value] of Object.entries(op.fields ?? {})) {
        lines.push(paint(color, '32', `        + ${field}: ${show(value)}`));
      }
    }
    if (op.detail) lines.push(`        ${paint(color, '2', op.detail)}`);
  }
  if (plan.warnings.length) {
    lines.push('', 'Warnings:');
    for (const warning of plan.warnings) lines.push(`  ! ${warning.code}: ${warning.message}`);
  }
  if (conflicts.size) {
    lines.push('', 'Edited in NetBox and changed in Proxmox (apply --accept-proxmox ID or --keep-netbox ID):');
    for (const [id, conflict] of conflicts) lines.push(`  ${id}  (${conflict.resolution})`);
  }
  const skipped = plan.stages.filter((s) => !s.run).map((s) => `${s.stage} (${s.reason})`);
  if (skipped.length) lines.push('', `Skipped stages: ${skipped.join('; ')}`);
  const owned = summary.operator_owned ? `, ${summary.operator_owned} field${summary.operator_owned === 1 ? '' : 's'} left to operators` : '';
  lines.push(
    '',
    `Plan: ${summary.create} to create, ${summary.update} to update, ${summary.delete} to delete, ` +
      `${summary.skip} skipped, ${summary.unchanged} unchanged${owned}.`,
  );
  if (plan.complete === false) lines.push(
    paint(color, '31', 'Incomplete: the input could not be read whole, so this plan cannot be applied (see the warnings).')
  );
  return `${lines.join('\n')}\n`;
}

const OUTCOME_COLOR = { created: '32', updated: '33', deleted: '31', skipped: '2', failed: '31', stale: '35', 'skipped-dependency': '31' };

/** One progress line (`[ 12/89  13%] created virtualization.vminterface qemu/101/net0`). */
export function renderProgress(data, { color = false, width = 100 } = {}) {
  const { current, total, percent } = data.progress ?? {};
  const digits = String(total ?? 0).length;
  const head = `[${String(current ?? 0).padStart(digits)}/${total ?? 0} ${String(Math.round(percent ?? 0)).padStart(3)}%]`;
  const text = `${head} ${data.outcome} ${data.model ?? ''} ${data.key ?? ''}`;
  const cut = text.length > width - 1 ? `${text.slice(0, width - 2)}…` : text;
  return color ? cut.replace(` ${data.outcome} `, ` ${paint(true, OUTCOME_COLOR[data.outcome] ?? '0', data.outcome)} `) : cut;
}

/** The apply report: counts, then every operation that did not go through. */
export function renderApplyReport(report, { color = false } = {}) {
  const c = report.counts;
  const lines = [];
  const problems = report.operations.filter((o) => !['done', 'skipped'].includes(o.status));
  if (problems.length) {
    lines.push('Not applied:');
    for (const op of problems) {
      const code = OUTCOME_COLOR[op.status] ?? '31';
      lines.push(`  ${paint(color, code, op.status.padEnd(18))} ${op.id}`);
      if (op.error?.message) lines.push(`        ${op.error.message}`);
    }
    lines.push('');
  }
  const existing = report.operations.filter((o) => o.status === 'done' && o.existing).length;
  // Changes (create/update/delete) are counted as the prompt and the progress line count them; planned skips apart.
  lines.push(
    `Apply: ${paint(color, '32', `${c.done} of ${c.changes} changes done`)}${existing ? ` (${existing} already in NetBox)` : ''}, ` +
      `${paint(color, c.failed ? '31' : '2', `${c.failed} failed`)}, ${paint(color, c.stale ? '35' : '2', `${c.stale} stale`)}, ` +
      `${c['skipped-dependency']} skipped (dependency); ${c.skipped} planned skip${c.skipped === 1 ? '' : 's'}; ` +
      `${report.requests.total} NetBox requests in ${(report.duration_ms / 1000).toFixed(1)} s.`,
  );
  if (c.stale) lines.push('Stale operations were refused: someone changed those objects after planning. Re-plan and apply again.');
  else if (!report.ok) lines.push('The plan is the unit of retry: re-plan against NetBox as it is now and apply the new plan.');
  return `${lines.join('\n')}\n`;
}
