import { afterAll, beforeAll, describe, it } from 'vitest';
import { postgresAvailable } from '../support/postgres.js';
import { privateBrokerAvailable, startPrivateBroker, type PrivateBroker } from '../support/rabbitmq.js';
import type { Stack } from '../support/stack.js';
import { startWebhookFlow } from '../support/webhook-calls.js';
import { expectEveryCallOnceAcross, FAULT_TEST_MS, startFaultStack } from './scenario.js';

const available = (await postgresAvailable()) && (await privateBrokerAvailable());

describe.skipIf(!available)('fault: RabbitMQ restarts', () => {
  let broker: PrivateBroker;
  let stack: Stack;
  let dispose = async () => {};

  beforeAll(async () => {
    broker = await startPrivateBroker();
    ({ stack, dispose } = await startFaultStack({ amqpUrl: broker.url }));
  }, FAULT_TEST_MS);
  afterAll(async () => {
    await dispose();
    await broker?.dispose();
  }, FAULT_TEST_MS);

  it(
    'the bus, the relay and the step workers reconnect; every accepted call runs once',
    async () => {
      const flowId = await startWebhookFlow(stack);
      await expectEveryCallOnceAcross(stack, flowId, async () => {
        await broker.stop();
        await broker.start();
      });
    },
    FAULT_TEST_MS,
  );
});
