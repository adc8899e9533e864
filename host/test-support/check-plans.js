// Preloaded into every Node process of the test suite (scripts/test.sh sets
// NODE_OPTIONS=--import=<this file>): `proxbox-planner` then resolves to a
// wrapper that checks each plan the core returns against the published
// pkg/schema/plan.schema.json, so a plan the schema does not describe fails
// whichever test (or CLI, or serve) made it.
import { register } from 'node:module';

register(new URL('./check-plans-hooks.js', import.meta.url));
