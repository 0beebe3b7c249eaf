import { expect } from 'vitest';
import { waitFor } from '../support/events.js';
import { callContinuously, settle, type Stack } from '../support/stack.js';

/** How long a fault test waits for any one condition: generous, for a busy machine; nothing is timed. */
export const PATIENCE_MS = 90_000;
/** A fault test's own limit: its stack's start, the fault, the recovery and the drain. */
export const FAULT_TEST_MS = 5 * PATIENCE_MS;

/**
 * Calls the flow's webhook without pause while `fault` takes a part down and brings it back, and
 * then until more calls were accepted: every accepted call must become exactly one succeeded
 * execution (none missing, none duplicated), including those accepted after the part was back.
 */
export async function expectEveryCallOnceAcross(stack: Stack, flowId: string, fault: () => Promise<void>): Promise<void> {
  const calls = callContinuously(stack, flowId);
  try {
    await waitFor(
      async () => calls.accepted.length,
      (n) => n >= 5,
      PATIENCE_MS,
    );
    await fault();
    const before = calls.accepted.length;
    await waitFor(
      async () => calls.accepted.length,
      (n) => n >= before + 5,
      PATIENCE_MS,
    );
  } finally {
    await calls.stop();
  }
  const outcome = await settle(stack, flowId, calls.accepted, PATIENCE_MS);
  expect(outcome).toEqual({ missing: [], unexpected: [], duplicated: [], distinct: true });
}
