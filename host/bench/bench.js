#!/usr/bin/env node
// The benchmark (figures printed, never asserted): for each size, a
// deterministic synthetic endpoint (10% drifted from a synced NetBox) is
// planned natively and in wasm under Node, side by side in one run.
//   node host/bench/bench.js [GUESTS ...]      (default: 1000 10000 50000)
// BENCH_VARIANTS=NAME,... also times other builds of the wasm, made by
// host/bench/wasm-variants.sh in .cache/bench/wasm/NAME/, side by side with
// pkg/web: size and planJson speed in one table, measured in the same run.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cache = `${root}.cache/bench`;
const sizes = process.argv.slice(2).map(Number).filter(Boolean);
const guests = sizes.length ? sizes : [1000, 10000, 50000];
const state = process.env.BENCH_STATE ?? 'drift';

mkdirSync(cache, { recursive: true });
execFileSync('cargo', ['build', '--quiet', '--release', '--examples'], { cwd: root, stdio: 'inherit' });
const bin = (name) => `${root}target/release/examples/${name}`;
const runsFor = (n) => (n >= 50000 ? 3 : 5);

const builds = [
  { name: 'pkg/web', dir: `${root}pkg/web` },
  ...(process.env.BENCH_VARIANTS ?? '').split(',').filter(Boolean).map((name) => ({ name, dir: `${cache}/wasm/${name}` })),
];
for (const build of builds) {
  const wasm = readFileSync(`${build.dir}/proxbox_planner_bg.wasm`);
  build.kib = wasm.length / 1024;
  build.gzipKib = gzipSync(wasm, { level: 9 }).length / 1024;
}
const [shipped] = builds;
console.log(`wasm: ${shipped.kib.toFixed(0)} KiB raw, ${shipped.gzipKib.toFixed(0)} KiB gzip`);
console.log(`input: synthetic endpoint, NetBox state "${state}"; medians of ${runsFor(1000)} runs (3 at 50,000) after 2 untimed ones\n`);
// With variants, each build is measured once per round, the rounds in
// alternating order (so a slow spell of this shared machine does not fall
// on one build only); a build's figure is its best round.
const rounds = builds.length > 1 ? Number(process.env.BENCH_ROUNDS ?? 3) : 1;

function measure(build, file, runs, { full }) {
  const args = ['--max-old-space-size=8192', `${root}host/bench/measure.js`, file, String(runs)];
  const env = { ...process.env, BENCH_PKG: build.dir, ...(full ? {} : { BENCH_SKIP_DISCOVER: '1' }) };
  return JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8', cwd: root, env }));
}

// The shipped build's first measurement is the full one (discover too); the
// table compares every build's best planJson round.
function measureAll(file, runs) {
  const best = new Map();
  let full;
  for (let round = 0; round < rounds; round += 1) {
    const order = round % 2 ? [...builds].reverse() : builds;
    for (const build of order) {
      const js = measure(build, file, runs, { full: !full && build === shipped });
      full ??= js;
      const before = best.get(build);
      if (!before || js.plan_json_ms < before.plan_json_ms) best.set(build, js);
    }
  }
  return { best, full };
}

function printVariants(best) {
  const base = best.get(shipped).plan_json_ms;
  console.log(`  builds (best of ${rounds} rounds):`);
  console.log('    build                raw KiB  gzip KiB  planJson ms  vs pkg/web  plan(object) ms  1st planJson ms');
  for (const build of builds) {
    const js = best.get(build);
    const cells = [
      build.name.padEnd(20),
      build.kib.toFixed(0).padStart(7),
      build.gzipKib.toFixed(0).padStart(8),
      js.plan_json_ms.toFixed(1).padStart(11),
      `${(js.plan_json_ms / base).toFixed(3).padStart(9)}x`,
      js.plan_ms.toFixed(1).padStart(15),
      js.plan_json_first_ms.toFixed(1).padStart(15),
    ];
    console.log(`    ${cells.join('  ')}`);
  }
}

const rows = [];
for (const n of guests) {
  const file = `${cache}/g${n}-${state}.json`;
  // Regenerate when the generator was rebuilt since (its output may have changed).
  const stale = !existsSync(file) || statSync(file).mtimeMs < statSync(bin('synth')).mtimeMs;
  if (stale) {
    // Written whole, then renamed: an interrupted run leaves no truncated input behind.
    writeFileSync(`${file}.tmp`, execFileSync(bin('synth'), [String(n), state], { maxBuffer: 2 ** 31 }));
    renameSync(`${file}.tmp`, file);
  }
  const native = JSON.parse(execFileSync(bin('bench_native'), [file, String(runsFor(n))], { encoding: 'utf8' }));
  const { best, full: js } = measureAll(file, runsFor(n));
  rows.push({ n, native, js });
  console.log(`${n} guests: input ${(js.input_bytes / 2 ** 20).toFixed(1)} MiB, ${js.operations} operations, plan ${(js.plan_bytes / 2 ** 20).toFixed(2)} MiB`);
  console.log(`  JSON.parse (the floor)   ${js.parse_ms.toFixed(1)} ms`);
  console.log(`  wasm plan(object)        ${js.plan_ms.toFixed(1)} ms   (${(js.plan_ms / js.parse_ms).toFixed(2)}x JSON.parse)`);
  console.log(`  wasm planJson(text)      ${js.plan_json_ms.toFixed(1)} ms   (${(js.plan_json_ms / js.parse_ms).toFixed(2)}x JSON.parse)`);
  console.log(`  wasm planJson, 1st call  ${js.plan_json_first_ms.toFixed(1)} ms   (fresh module: code not yet optimised, memory not yet grown)`);
  console.log(`  native plan_json(text)   ${native.plan_json_ms.toFixed(1)} ms   (wasm/native ${(js.plan_json_ms / native.plan_json_ms).toFixed(2)}x)`);
  console.log(`  native plan(Value)       ${native.plan_ms.toFixed(1)} ms   (+ ${native.parse_ms.toFixed(1)} ms serde_json parse)`);
  console.log(
    `  wasm discover, history   ${js.history_discover_ms.toFixed(1)} ms   (the round that asks for the change log: ${js.history_objects} objects, ` +
      `${js.history_queries} queries)`
  );
  console.log(`  wasm linear memory       ${js.wasm_memory_mb.toFixed(0)} MiB (${(js.wasm_memory_mb * 2 ** 20 / js.input_bytes).toFixed(1)}x the input)`);
  console.log(`  peak RSS (Node process)  ${js.peak_rss_mb.toFixed(0)} MiB`);
  if (builds.length > 1) printVariants(best);
}
if (rows.length > 1) {
  console.log('\nLinearity: wasm planJson time per 1,000 guests');
  for (const { n, js } of rows) console.log(`  ${String(n).padStart(6)} guests: ${((js.plan_json_ms / n) * 1000).toFixed(1)} ms`);
}
