// The resolve hook of check-plans.js: `proxbox-planner` is the checking
// wrapper everywhere except inside the wrapper itself.
const WRAPPER = new URL('./checked-planner.js', import.meta.url).href;

export async function resolve(specifier, context, next) {
  if (specifier === 'proxbox-planner' && context.parentURL !== WRAPPER) {
    return { url: WRAPPER, shortCircuit: true };
  }
  return next(specifier, context);
}
