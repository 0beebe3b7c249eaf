import { afterAll, beforeAll, describe, it } from 'vitest';
import { createTestDatabase, postgresAvailable } from '../support/postgres.js';
import { CONTROL_PLANE_SERVICES, deleteNamespace, rabbitAvailable, rabbitUrl, uniqueNamespace } from '../support/rabbitmq.js';
import { startStack, startWebhookFlow, type Stack } from '../support/stack.js';
import { expectEveryCallOnceAcross, FAULT_TEST_MS } from './scenario.js';

const available = (await postgresAvailable()) && (await rabbitAvailable());

describe.skipIf(!available)('fault: the control plane is SIGKILLed and started again', () => {
  const namespace = uniqueNamespace('fault');
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let stack: Stack;

  beforeAll(async () => {
    database = await createTestDatabase();
    stack = await startStack({ databaseUrl: database.url, amqpUrl: rabbitUrl, namespace, env: { RUNNER_HEARTBEAT_SECONDS: '1' } });
  }, FAULT_TEST_MS);
  afterAll(async () => {
    await stack?.close();
    await database?.drop();
    if (available) await deleteNamespace(rabbitUrl, namespace, CONTROL_PLANE_SERVICES);
  }, FAULT_TEST_MS);

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
