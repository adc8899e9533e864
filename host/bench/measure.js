// One measurement in a fresh process (so the first call is a fresh module's,
// and peak memory is this input's alone): `node measure.js FILE RUNS` prints
// one JSON line of times in ms.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

// BENCH_PKG=DIR measures another wasm-bindgen web build (bench.js's size variants).
const planner = process.env.BENCH_PKG ? await loadBuild(process.env.BENCH_PKG) : await import('proxbox-planner');

async function loadBuild(dir) {
  const glue = await import(pathToFileURL(`${dir}/proxbox_planner.js`).href);
  glue.initSync({ module: readFileSync(`${dir}/proxbox_planner_bg.wasm`) });
  return glue;
}

const [file, runsText = '5'] = process.argv.slice(2);
const runs = Number(runsText);
const text = readFileSync(file, 'utf8');

// Untimed calls before the timed ones: V8 runs wasm in its baseline compiler
// until a function has been called enough, so early samples measure the
// engine warming up (the first call is reported on its own).
const warmups = Number(process.env.BENCH_WARMUPS ?? 2);

function timed(fn) {
  const samples = [];
  let result;
  for (let i = 0; i < warmups; i += 1) fn();
  for (let i = 0; i < runs; i += 1) {
    const start = performance.now();
    result = fn();
    samples.push(performance.now() - start);
  }
  samples.sort((a, b) => a - b);
  return { median: samples[Math.floor(samples.length / 2)], result };
}

const parse = timed(() => JSON.parse(text));
// The first call into this fresh module, before any other.
const firstStart = performance.now();
planner.planJson(text);
const planJsonFirst = performance.now() - firstStart;
const planJson = timed(() => planner.planJson(text));
const plan = timed(() => planner.plan(parse.result));
// The discover round that asks for NetBox's history (change log, journal):
// it plans once without it to learn which objects the plan would update.
const HISTORY = ['/api/core/object-changes/', '/api/extras/journal-entries/'];
const withoutHistory = { ...parse.result, netbox: Object.fromEntries(Object.entries(parse.result.netbox).filter(([c]) => !HISTORY.includes(c))) };
// BENCH_SKIP_DISCOVER=1: planJson and plan only (bench.js's extra rounds and builds).
const history = process.env.BENCH_SKIP_DISCOVER ? { median: NaN, result: {} } : timed(() => planner.discover(withoutHistory));
const queries = Object.values(history.result.queries ?? {}).flat();
process.stdout.write(`${JSON.stringify({
  input_bytes: Buffer.byteLength(text),
  parse_ms: parse.median,
  plan_ms: plan.median,
  plan_json_ms: planJson.median,
  plan_json_first_ms: planJsonFirst,
  plan_bytes: Buffer.byteLength(planJson.result),
  operations: plan.result.operations.length,
  history_discover_ms: history.median,
  history_queries: queries.length,
  history_objects: queries.reduce((n, q) => n + (q.changed_object_id?.length ?? 0), 0),
  wasm_memory_mb: planner.memoryBytes() / 2 ** 20,
  peak_rss_mb: process.resourceUsage().maxRSS / 1024,
})}\n`);
