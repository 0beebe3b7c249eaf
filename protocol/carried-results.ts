import type { StepResult } from './events.js';
import { capSerialized } from './step-message.js';

/**
 * Step results travel with the messages between steps (STEP_HEADERS.results) instead of being
 * reported at every hop: a step carries on what reached it and its own result with its first
 * delivery, and a step that delivers nothing further reports them (docs/runner-fleet.md). So a
 * hop is one confirmed publish. What travels is bounded: beyond these, a step reports what it
 * carries itself and carries on only its own result, or nothing.
 */
export const CARRY_LIMITS = {
  results: 20,
  /** Of the header's JSON in UTF-8: an AMQP content header must fit in one frame (128 KiB). */
  bytes: 32 * 1024,
  /** A step whose call on an input takes longer reports what it carries then, so a slow step does not hide the ones before it. */
  slowMs: 1000,
} as const;

/**
 * A result as it travels: when `outputIsMessage`, its first recorded output is the message it
 * travels with, left out of `outputs` (the payload does not travel twice).
 */
export type CarriedResult = StepResult & { outputIsMessage?: true };

/** A result as it travels with the delivery of its first output. */
export function withoutFirstOutput(result: StepResult): CarriedResult {
  return result.outputs.length === 0 ? result : { ...result, outputs: result.outputs.slice(1), outputIsMessage: true };
}

export interface CarriedRead {
  results: StepResult[];
  /** How many carried results were dropped: not results of this execution, tenant and flow, or the header was not a JSON array. */
  dropped: number;
}

/**
 * The results a message carries, as they are reported: each of the execution it is of (others
 * are dropped: a message names its execution, and its results may not name another), its first
 * output given back from the message (`message` parsed, `body` its JSON) where it was left out.
 */
export function readCarried(
  header: unknown,
  execution: Pick<StepResult, 'flowExecId' | 'flowId' | 'tenant'>,
  message: unknown,
  body: string,
): CarriedRead {
  if (header === undefined || header === null) return { results: [], dropped: 0 };
  let parsed: unknown;
  try {
    parsed = typeof header === 'string' ? JSON.parse(header) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed)) return { results: [], dropped: 1 };
  const results: StepResult[] = [];
  for (const item of parsed as unknown[]) {
    const r = item as Partial<CarriedResult> | null;
    if (
      typeof r !== 'object' ||
      r === null ||
      r.flowExecId !== execution.flowExecId ||
      r.flowId !== execution.flowId ||
      r.tenant !== execution.tenant ||
      !Array.isArray(r.outputs)
    )
      continue;
    const { outputIsMessage, ...result } = r as CarriedResult;
    // A body that is not JSON is recorded as its text.
    const first = () => (message === undefined ? capSerialized(body, JSON.stringify(body)) : capSerialized(message, body));
    results.push(outputIsMessage ? { ...result, outputs: [first(), ...result.outputs] } : result);
  }
  return { results, dropped: parsed.length - results.length };
}
