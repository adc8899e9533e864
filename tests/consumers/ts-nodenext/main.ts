// TypeScript under nodenext: the generated types describe what the core returns.
import { readFileSync } from 'node:fs';
import init, { plan, resolveSyncModes, type ModeReport, type Plan, type Operation, type Reason, type WarningCode, type StageName } from 'proxbox-planner';

await init();
const input = JSON.parse(readFileSync(new URL('../node_modules/proxbox-planner-host/fixtures/sample/snapshot.json', import.meta.url), 'utf8'));
const result: Plan = plan(input);
const reasons: Reason[] = result.operations.map((op: Operation) => op.reason);
const codes: WarningCode[] = result.warnings.map((w) => w.code);
const stages: StageName[] = result.stages.map((s) => s.stage);
// Every argument of resolveSyncModes may be left out: the defaults, all stages.
const defaults: ModeReport = resolveSyncModes();
console.log(JSON.stringify({ operations: reasons.length, warnings: codes.length, stages: stages.length, defaultStages: defaults.stages.length }));
