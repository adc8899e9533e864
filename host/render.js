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

/** A `terraform plan`-like listing of a plan, grouped by stage. */
export function renderPlan(plan, { color = false } = {}) {
  const { endpoint, summary } = plan;
  const lines = [`Plan for endpoint ${endpoint.name ?? '?'} (id ${endpoint.id ?? '?'}), cluster ${endpoint.cluster ?? '?'}`, ''];
  let stage = null;
  for (const op of plan.operations) {
    if (op.stage !== stage) {
      stage = op.stage;
      lines.push(paint(color, '1', `${stage}:`));
    }
    const [symbol, code] = SYMBOLS[op.action];
    const head = `  ${paint(color, code, `${symbol} ${op.action.padEnd(6)}`)} ${op.model.padEnd(30)} ${op.key}`;
    lines.push(`${head}  ${paint(color, '2', `(${op.reason})`)}`);
    for (const [field, change] of Object.entries(op.changes ?? {})) {
      lines.push(`        ${field}: ${show(change.before)} → ${show(change.after)}`);
    }
    if (op.detail) lines.push(`        ${paint(color, '2', op.detail)}`);
  }
  if (plan.warnings.length) {
    lines.push('', 'Warnings:');
    for (const warning of plan.warnings) lines.push(`  ! ${warning.code}: ${warning.message}`);
  }
  const skipped = plan.stages.filter((s) => !s.run).map((s) => `${s.stage} (${s.reason})`);
  if (skipped.length) lines.push('', `Skipped stages: ${skipped.join('; ')}`);
  lines.push(
    '',
    `Plan: ${summary.create} to create, ${summary.update} to update, ${summary.delete} to delete, ` +
      `${summary.skip} skipped, ${summary.unchanged} unchanged.`,
  );
  return `${lines.join('\n')}\n`;
}
