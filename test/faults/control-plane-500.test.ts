import { afterAll, beforeAll, describe, it } from 'vitest';
import { waitFor } from '../support/events.js';
import { postgresAvailable } from '../support/postgres.js';
import { rabbitAvailable } from '../support/rabbitmq.js';
import type { Stack } from '../support/stack.js';
import { startWebhookFlow } from '../support/webhook-calls.js';
import { expectEveryCallOnceAcross, FAULT_TEST_MS, PATIENCE_MS, startFaultStack } from './scenario.js';

const available = (await postgresAvailable()) && (await rabbitAvailable());

describe.skipIf(!available)('fault: the control plane answers 500 for a while (behind a proxy)', () => {
  let stack: Stack;
  let dispose = async () => {};

  beforeAll(async () => {
    ({ stack, dispose } = await startFaultStack());
  }, FAULT_TEST_MS);
  afterAll(() => dispose(), FAULT_TEST_MS);

  it(
    'keeps what the edge accepted meanwhile and delivers each call once when it answers again',
    async () => {
      const flowId = await startWebhookFlow(stack);
      await expectEveryCallOnceAcross(stack, flowId, async () => {
        stack.proxy.failing = true;
        // Failing until the edge has met it a few times, so calls accepted meanwhile wait in its outbox and it backs off.
        const from = stack.proxy.failed;
        await waitFor(
          async () => stack.proxy.failed,
          (n) => n >= from + 3,
          PATIENCE_MS,
        );
        stack.proxy.failing = false;
      });
    },
    FAULT_TEST_MS,
  );
});
