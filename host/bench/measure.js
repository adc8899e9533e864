// One measurement in a fresh process (so peak memory is this input's alone):
// `node measure.js FILE RUNS` prints one JSON line of medians in ms.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import * as planner from 'proxbox-planner';

const [file, runsText = '5'] = process.argv.slice(2);
const runs = Number(runsText);
const text = readFileSync(file, 'utf8');

function median(fn) {
  const samples = [];
  let result;
  for (let i = 0; i < runs; i += 1) {
    const start = performance.now();
    result = fn();
    samples.push(performance.now() - start);
  }
  samples.sort((a, b) => a - b);
  return [samples[Math.floor(samples.length / 2)], result];
}

const [parseMs, input] = median(() => JSON.parse(text));
const [planMs, plan] = median(() => planner.plan(input));
const [planJsonMs, output] = median(() => planner.planJson(text));
process.stdout.write(`${JSON.stringify({
  input_bytes: Buffer.byteLength(text),
  parse_ms: parseMs,
  plan_ms: planMs,
  plan_json_ms: planJsonMs,
  plan_bytes: Buffer.byteLength(output),
  operations: plan.operations.length,
  peak_rss_mb: process.resourceUsage().maxRSS / 1024,
})}\n`);
