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
