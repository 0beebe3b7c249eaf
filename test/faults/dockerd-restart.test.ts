import { afterAll, beforeAll, describe, it } from 'vitest';
import { STEP_WORKER_IMAGE } from '../../protocol/builtins.js';
import { dockerAvailable } from '../support/docker.js';
import { privateDockerdAvailable, startPrivateDockerd, type PrivateDockerd } from '../support/dockerd.js';
import { postgresAvailable } from '../support/postgres.js';
import { rabbitAvailable } from '../support/rabbitmq.js';
import type { Stack } from '../support/stack.js';
import { startWebhookFlow } from '../support/webhook-calls.js';
import { expectEveryCallOnceAcross, FAULT_TEST_MS, startFaultStack } from './scenario.js';

// The engine DOCKER_HOST names lends the step worker's image (npm run images) to a private one, which is restarted.
const available =
  (await postgresAvailable()) && (await rabbitAvailable()) && (await dockerAvailable()) && (await privateDockerdAvailable());

describe.skipIf(!available)('fault: dockerd restarts under a docker runner', () => {
  let engine: PrivateDockerd;
  let stack: Stack;
  let dispose = async () => {};

  beforeAll(async () => {
    engine = await startPrivateDockerd([STEP_WORKER_IMAGE]);
    ({ stack, dispose } = await startFaultStack({ driver: 'docker', dockerHost: engine.host }));
  }, FAULT_TEST_MS);
  afterAll(async () => {
    await dispose();
    await engine?.dispose();
  }, FAULT_TEST_MS);

  it(
    'the runner starts its containers again; every accepted call runs once',
    async () => {
      const flowId = await startWebhookFlow(stack);
      await expectEveryCallOnceAcross(stack, flowId, async () => {
        await engine.stop();
        await engine.start();
      });
    },
    FAULT_TEST_MS,
  );
});
