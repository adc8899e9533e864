// How a run ended, in one vocabulary for the CLI's exit status, the `complete`
// event and the JS API (syncOnce's result, applyPlan's report):
//
//   ok                everything planned was applied (or there was nothing to do)   exit 0
//   ok-with-warnings  the same, and the plan has warnings (listed)                  exit 0
//   partial           some operations failed, were stale or were skipped for that   exit 1
//   failed            nothing could be planned or applied: a server unreadable or   exit 2
//                     refusing, an incomplete plan, a plan made elsewhere
//   (usage)           the command line or environment is wrong; nothing contacted   exit 64
//
// A run that could not do its job never ends as `ok`: an empty plan made from
// an incomplete input (`plan.complete === false`) is `failed`, not "nothing to do".

export const OUTCOMES = {
  ok: { exitCode: 0, ok: true },
  'ok-with-warnings': { exitCode: 0, ok: true },
  partial: { exitCode: 1, ok: false },
  failed: { exitCode: 2, ok: false },
};

export const USAGE_EXIT_CODE = 64;

/** Statuses of an apply report's operations that mean "not written as planned". */
const NOT_APPLIED = ['failed', 'stale', 'skipped-dependency'];

/** A run that could not do its job: one line that says what to fix. */
export class RunError extends Error {
  /**
   * @param {string} message
   * @param {{ outcome?: keyof typeof OUTCOMES, status?: number | null, code?: string, cause?: unknown }} [detail]
   *   the outcome it ends the run with, and the HTTP status or Node error code behind it
   */
  constructor(message, { outcome = 'failed', status, code, cause } = {}) {
    super(message, cause ? { cause } : undefined);
    this.name = 'RunError';
    this.outcome = outcome;
    if (status !== undefined && status !== null) this.status = status;
    if (code) this.code = code;
  }
}

/** The command line or the environment is wrong (exit 64); nothing was contacted. */
export class UsageError extends Error {
  constructor(message) {
    super(message);
    this.name = 'UsageError';
    this.outcome = 'usage';
  }
}

/** The exit status of an outcome name (or of 'usage'). */
export function exitCodeOf(outcome) {
  if (outcome === 'usage') return USAGE_EXIT_CODE;
  return (OUTCOMES[outcome] ?? OUTCOMES.failed).exitCode;
}

/** The outcome of an error thrown by a run: usage errors stay usage errors, anything else failed. */
export function outcomeOfError(error) {
  return error?.outcome === 'usage' ? 'usage' : 'failed';
}

/** `{code, message}` of each plan warning: what `ok-with-warnings` lists. */
export function warningsOf(plan) {
  return (plan?.warnings ?? []).map(({ code, message }) => ({ code, message }));
}

/**
 * The outcome of a plan that is not (or not yet) applied: failed when its
 * input was too incomplete to plan, else ok or ok-with-warnings.
 */
export function planOutcome(plan) {
  if (plan.complete === false) return 'failed';
  return plan.warnings?.length ? 'ok-with-warnings' : 'ok';
}

/**
 * The outcome of an apply: every change done → the plan's own outcome;
 * none of several done → failed; some → partial.
 */
export function applyOutcome(plan, counts) {
  const notApplied = NOT_APPLIED.reduce((n, status) => n + (counts[status] ?? 0), 0);
  if (!notApplied) return planOutcome(plan);
  return counts.done ? 'partial' : 'failed';
}

/** One line for an apply: how many of the plan's changes went through, and what became of the rest. */
export function applyMessage(counts) {
  if (!counts.changes) return 'Nothing to apply';
  const rest = NOT_APPLIED.filter((status) => counts[status]).map(
    (status) => `${counts[status]} ${status === 'skipped-dependency' ? 'skipped (dependency)' : status}`
  );
  return `Applied ${counts.done} of ${counts.changes} changes${rest.length ? `; not applied: ${rest.join(', ')}` : ''}`;
}

/**
 * The one-line reason an incomplete plan could not be trusted. The core does
 * not say which warning made it incomplete; the first one is named.
 */
export function incompleteReason(plan) {
  const [first, ...more] = plan.warnings ?? [];
  const why = first ? `${first.code}: ${first.message}${more.length ? ` (and ${more.length} more warnings)` : ''}` : 'the planner input is incomplete';
  return `the plan is incomplete, so it cannot be applied: ${why}`;
}
