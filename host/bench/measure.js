// One measurement in a fresh process (so the first call is a fresh module's,
// and peak memory is this input's alone): `node measure.js FILE RUNS` prints
// one JSON line of times in ms.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import * as planner from 'proxbox-planner';

const [file, runsText = '5'] = process.argv.slice(2);
const runs = Number(runsText);
const text = readFileSync(file, 'utf8');

function timed(fn) {
  const samples = [];
  let result;
  for (let i = 0; i < runs; i += 1) {
    const start = performance.now();
    result = fn();
    samples.push(performance.now() - start);
  }
  const first = samples[0];
  samples.sort((a, b) => a - b);
  return { first, median: samples[Math.floor(samples.length / 2)], result };
}

const parse = timed(() => JSON.parse(text));
// planJson first: its first sample is the first call into a fresh module.
const planJson = timed(() => planner.planJson(text));
const plan = timed(() => planner.plan(parse.result));
process.stdout.write(`${JSON.stringify({
  input_bytes: Buffer.byteLength(text),
  parse_ms: parse.median,
  plan_ms: plan.median,
  plan_json_ms: planJson.median,
  plan_json_first_ms: planJson.first,
  plan_bytes: Buffer.byteLength(planJson.result),
  operations: plan.result.operations.length,
  wasm_memory_mb: planner.memoryBytes() / 2 ** 20,
  peak_rss_mb: process.resourceUsage().maxRSS / 1024,
})}\n`);
