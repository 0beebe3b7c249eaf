import { afterAll, beforeAll, describe, it } from 'vitest';
import { startPostgresCluster, type PostgresCluster } from '../support/pg-cluster.js';
import { postgresAvailable } from '../support/postgres.js';
import { rabbitAvailable } from '../support/rabbitmq.js';
import type { Stack } from '../support/stack.js';
import { startWebhookFlow } from '../support/webhook-calls.js';
import { expectEveryCallOnceAcross, FAULT_TEST_MS, startFaultStack } from './scenario.js';

const available = (await postgresAvailable()) && (await rabbitAvailable());

describe.skipIf(!available)('fault: PostgreSQL restarts', () => {
  let cluster: PostgresCluster;
  let stack: Stack;
  let dispose = async () => {};

  beforeAll(async () => {
    cluster = await startPostgresCluster();
    ({ stack, dispose } = await startFaultStack({ databaseUrl: cluster.url }));
  }, FAULT_TEST_MS);
  afterAll(async () => {
    await dispose();
    await cluster?.stop();
  }, FAULT_TEST_MS);

  it(
    'keeps the control plane up; events wait for the database instead of failing, and every accepted call runs once',
    async () => {
      const flowId = await startWebhookFlow(stack);
      await expectEveryCallOnceAcross(stack, flowId, () => cluster.restart());
    },
    FAULT_TEST_MS,
  );
});
