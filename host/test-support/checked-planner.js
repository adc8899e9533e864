// The core with every plan checked against pkg/schema/plan.schema.json (see
// check-plans.js). Everything else is the core's own export.
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js'; // the named export: TypeScript (nodenext) reads the default one as the whole CommonJS module
import * as core from 'proxbox-planner';

export * from 'proxbox-planner';
export { default } from 'proxbox-planner';

const schema = JSON.parse(readFileSync(new URL('../../pkg/schema/plan.schema.json', import.meta.url), 'utf8'));
const validate = new Ajv2020({ allErrors: true, strict: false, validateFormats: false }).compile(schema);

function checked(plan) {
  if (!validate(plan)) {
    const where = validate.errors.slice(0, 10).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
    throw new Error(`the core returned a plan that does not match plan.schema.json: ${where}`);
  }
  return plan;
}

export function plan(input) {
  return checked(core.plan(input));
}

export function planJson(input) {
  const text = core.planJson(input);
  checked(JSON.parse(text));
  return text;
}
