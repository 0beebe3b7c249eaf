import { afterAll, beforeAll, describe, it } from 'vitest';
import { postgresAvailable } from '../support/postgres.js';
import { rabbitAvailable } from '../support/rabbitmq.js';
import type { Stack } from '../support/stack.js';
import { startWebhookFlow } from '../support/webhook-calls.js';
import { expectEveryCallOnceAcross, FAULT_TEST_MS, startFaultStack } from './scenario.js';

const available = (await postgresAvailable()) && (await rabbitAvailable());

describe.skipIf(!available)('fault: the control plane is SIGKILLed and started again', () => {
  let stack: Stack;
  let dispose = async () => {};

  beforeAll(async () => {
    ({ stack, dispose } = await startFaultStack());
  }, FAULT_TEST_MS);
  afterAll(() => dispose(), FAULT_TEST_MS);

  it(
    'loses no accepted call and runs each once; work resumes once it is back',
    async () => {
      const flowId = await startWebhookFlow(stack);
      await expectEveryCallOnceAcross(stack, flowId, async () => {
        await stack.controlPlane.kill();
        await stack.controlPlane.start();
      });
    },
    FAULT_TEST_MS,
  );
});
