// Node's entry has the browser entry's API; its `init()` resolves at once.
export * from './web/proxbox_planner.js';
export { default } from './web/proxbox_planner.js';
