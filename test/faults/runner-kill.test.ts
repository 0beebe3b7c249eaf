import { afterAll, beforeAll, describe, it } from 'vitest';
import { waitFor } from '../support/events.js';
import { postgresAvailable } from '../support/postgres.js';
import { rabbitAvailable } from '../support/rabbitmq.js';
import type { Stack } from '../support/stack.js';
import { startWebhookFlow } from '../support/webhook-calls.js';
import { expectEveryCallOnceAcross, FAULT_TEST_MS, PATIENCE_MS, startFaultStack } from './scenario.js';

const available = (await postgresAvailable()) && (await rabbitAvailable());

describe.skipIf(!available)('fault: a runner is SIGKILLed while another is alive', () => {
  let stack: Stack;
  let dispose = async () => {};

  beforeAll(async () => {
    ({ stack, dispose } = await startFaultStack({ runners: 2 }));
  }, FAULT_TEST_MS);
  afterAll(() => dispose(), FAULT_TEST_MS);

  it(
    'moves its flow to the other runner, which runs every accepted call once',
    async () => {
      const flowId = await startWebhookFlow(stack);
      await expectEveryCallOnceAcross(stack, flowId, async () => {
        const placed = await stack.runnerOf(flowId);
        await stack.runners.find((runner) => runner.name === placed)!.kill();
        // Nothing comes back: the flow moves to the other runner, which takes its queues and their messages.
        await waitFor(
          () => stack.runnerOf(flowId),
          (name) => name !== null && name !== placed,
          PATIENCE_MS,
        );
      });
    },
    FAULT_TEST_MS,
  );
});
