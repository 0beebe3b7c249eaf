import { CARRY_LIMITS, withoutFirstOutput } from '../../protocol/carried-results.js';
import type { StepResult } from '../../protocol/events.js';

/** What becomes of the results at hand when an input is settled: what travels with its first delivery, and what the step reports. */
export interface CarryPlan {
  /** STEP_HEADERS.results of the first delivery, or null when nothing travels. */
  header: string | null;
  report: StepResult[];
}

const utf8Bytes = (json: string) => (json.length * 3 <= CARRY_LIMITS.bytes ? json.length : Buffer.byteLength(json));

/**
 * `carried` (what reached the step and is not reported yet) and `own` (the step's result): with
 * no delivery to travel with, all are reported; else all travel within CARRY_LIMITS, or the
 * carried are reported and the step's own result travels alone, or, when even that is too
 * large (a wide fan-out's delivery ids, large outputs), all are reported as before.
 */
export function planCarry(carried: StepResult[], own: StepResult, delivers: boolean): CarryPlan {
  if (!delivers) return { header: null, report: [...carried, own] };
  const travelling = withoutFirstOutput(own);
  if (carried.length + 1 <= CARRY_LIMITS.results) {
    const all = JSON.stringify([...carried, travelling]);
    if (utf8Bytes(all) <= CARRY_LIMITS.bytes) return { header: all, report: [] };
  }
  const alone = JSON.stringify([travelling]);
  if (utf8Bytes(alone) <= CARRY_LIMITS.bytes) return { header: alone, report: carried };
  return { header: null, report: [...carried, own] };
}
