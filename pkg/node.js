// The Node entry: the same module as the browser's (./web/), instantiated
// synchronously from the one shipped .wasm, so `import` needs no `await init()`.
// `init()` is still exported and resolves at once: every consumer has one API.
import { readFileSync } from 'node:fs';
import { initSync } from './web/proxbox_planner.js';

initSync({ module: readFileSync(new URL('./web/proxbox_planner_bg.wasm', import.meta.url)) });

export * from './web/proxbox_planner.js';
export { default } from './web/proxbox_planner.js';
