import { expect } from 'vitest';
import { waitFor } from '../support/events.js';
import { createTestDatabase } from '../support/postgres.js';
import { CONTROL_PLANE_SERVICES, deleteNamespace, rabbitUrl, uniqueNamespace } from '../support/rabbitmq.js';
import { startStack, type Stack, type StackOptions } from '../support/stack.js';
import { callContinuously, settle } from '../support/webhook-calls.js';

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

/**
 * A stack on the shared PostgreSQL server (a database of its own) and RabbitMQ (a namespace of its
 * own), unless `options` name a private server or broker; `dispose` removes what it made.
 */
export async function startFaultStack(options: Partial<StackOptions> = {}): Promise<{ stack: Stack; dispose(): Promise<void> }> {
  const database = options.databaseUrl ? undefined : await createTestDatabase();
  const namespace = options.namespace ?? uniqueNamespace('fault');
  const amqpUrl = options.amqpUrl ?? rabbitUrl;
  const stack = await startStack({
    databaseUrl: options.databaseUrl ?? database!.url,
    amqpUrl,
    namespace,
    runners: options.runners,
    driver: options.driver,
    dockerHost: options.dockerHost,
    env: { RUNNER_HEARTBEAT_SECONDS: '1', ...options.env },
  }).catch(async (error) => {
    await database?.drop();
    throw error;
  });
  return {
    stack,
    async dispose() {
      await stack.close();
      await database?.drop();
      await deleteNamespace(amqpUrl, namespace, CONTROL_PLANE_SERVICES).catch(() => {});
    },
  };
}
