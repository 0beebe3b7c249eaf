import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, type ChannelModel } from 'amqplib';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokens } from '../../control-plane/iam/schema.js';
import { flowTopology } from '../../protocol/fleet.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { waitFor } from '../support/events.js';
import { CONTROL_PLANE_SERVICES, deleteNamespace, rabbitAvailable, rabbitUrl, uniqueNamespace } from '../support/rabbitmq.js';
import { startTestRunner, type TestRunner } from '../support/runner.js';
import { execute, finished, outputsOf, registerFixtures, startFlow, stopFlow } from './support.js';

const available = await rabbitAvailable();

describe.skipIf(!available)('flows on RabbitMQ, process driver', () => {
  const namespace = uniqueNamespace('fleet');
  let cp: TestControlPlane;
  let runner: TestRunner;
  let admin: string;
  let amqp: ChannelModel;

  /** Whether the queue exists on the broker (a passive declare on a channel of its own). */
  const queueExists = async (queue: string) => {
    const channel = await amqp.createChannel();
    channel.on('error', () => {});
    try {
      await channel.checkQueue(queue);
      await channel.close();
      return true;
    } catch {
      return false;
    }
  };

  beforeAll(async () => {
    cp = await startTestControlPlane({ env: { AMQP_URL: rabbitUrl, BUS_NAMESPACE: namespace, RUNNER_HEARTBEAT_SECONDS: '1' } });
    admin = await cp.login();
    await registerFixtures(cp, admin);
    runner = await startTestRunner(cp, { amqpUrl: rabbitUrl, namespace });
    amqp = await connect(rabbitUrl);
  });
  afterAll(async () => {
    await amqp?.close();
    await runner?.stop();
    await cp?.close();
    if (available) await deleteNamespace(rabbitUrl, namespace, CONTROL_PLANE_SERVICES);
  });

  it('runs three steps with a fan-out; start creates the queues and workers, stop removes queues, workers and tokens', async () => {
    const flow = await startFlow(cp, admin, {
      graph: {
        nodes: [
          { id: 'receive', componentId: 'webhook', function: 'receive' },
          { id: 'total', componentId: 'jsonata', function: 'map', fields: { expression: '{ "total": $sum(items.price) }' } },
          { id: 'echo', componentId: 'fixtures', function: 'echo' },
        ],
        edges: [
          { source: 'receive', target: 'total' },
          { source: 'receive', target: 'echo' },
        ],
      },
    });
    const names = flowTopology(namespace, flow.id);
    for (const step of ['receive', 'total', 'echo']) expect(await queueExists(names.stepQueue(step))).toBe(true);
    const pidFiles = join(runner.dataDir, 'workers');
    const deployed = (await cp.request('GET', `/runners/${runner.id}`, { token: admin })).body.data;
    expect(deployed.deployments).toEqual([
      expect.objectContaining({
        flowId: flow.id,
        state: 'ready',
        steps: expect.arrayContaining([expect.objectContaining({ stepId: 'echo', state: 'ready' })]),
      }),
    ]);
    expect(deployed.workers).toBe(3);

    const flowExecId = await execute(cp, flow, { items: [{ price: 2 }, { price: 3 }] });
    const execution = await finished(cp, admin, flowExecId);
    expect(execution.status).toBe('succeeded');
    expect(outputsOf(execution)).toEqual(
      expect.arrayContaining([
        ['receive', { items: [{ price: 2 }, { price: 3 }] }],
        ['total', { total: 5 }],
        ['echo', { items: [{ price: 2 }, { price: 3 }], attempt: 1 }],
      ]),
    );
    expect(execution.steps).toMatchObject({ receive: { in: 1, out: 1, errors: 0 }, total: { in: 1, out: 1 }, echo: { in: 1, out: 1 } });

    await stopFlow(cp, admin, flow.id);
    for (const step of ['receive', 'total', 'echo']) expect(await queueExists(names.stepQueue(step))).toBe(false);
    expect(existsSync(pidFiles) ? await readdir(pidFiles) : []).toEqual([]);
    const live = await cp.services.db
      .select()
      .from(tokens)
      .where(and(eq(tokens.kind, 'step'), eq(tokens.flowId, flow.id)));
    expect(live.length).toBe(3);
    expect(live.every((t) => t.revokedAt !== null)).toBe(true);
    expect((await cp.request('GET', `/runners/${runner.id}`, { token: admin })).body.data.workers).toBe(0);
  });

  it('retries a rebounded input with backoff, then records it as failed; a later try can succeed', async () => {
    const flow = await startFlow(cp, admin, {
      flowSettings: { retry: { baseDelayMs: 100 } },
      graph: {
        nodes: [
          { id: 'start', componentId: 'webhook', function: 'receive' },
          { id: 'never', componentId: 'fixtures', function: 'flaky', nodeSettings: { retry: { maxAttempts: 3 } } },
          {
            id: 'third',
            componentId: 'fixtures',
            function: 'flaky',
            fields: { succeedOn: 3 },
            nodeSettings: { retry: { maxAttempts: 4 } },
          },
        ],
        edges: [
          { source: 'start', target: 'never' },
          { source: 'start', target: 'third' },
        ],
      },
    });
    const started = Date.now();
    const execution = await finished(cp, admin, await execute(cp, flow, { n: 1 }));
    expect(execution.status).toBe('failed');
    expect(execution.errors).toEqual([
      expect.objectContaining({
        stepId: 'never',
        attempts: 3,
        error: expect.objectContaining({ message: 'gave up after 3 tries: not yet (try 3)' }),
        input: expect.objectContaining({ data: { n: 1 } }),
      }),
    ]);
    expect(outputsOf(execution)).toContainEqual(['third', { n: 1, attempt: 3 }]);
    // Two retries of 100 ms then 200 ms at least.
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(execution.reason).toContain('never');
    await stopFlow(cp, admin, flow.id);
  });

  it('records a throwing step and garbage as errors, and the worker goes on with the next input', async () => {
    const flow = await startFlow(cp, admin, {
      graph: {
        nodes: [
          { id: 'start', componentId: 'webhook', function: 'receive' },
          { id: 'boom', componentId: 'fixtures', function: 'explode' },
          { id: 'junk', componentId: 'fixtures', function: 'garbage' },
          { id: 'stray', componentId: 'fixtures', function: 'stray' },
        ],
        edges: [
          { source: 'start', target: 'boom' },
          { source: 'start', target: 'junk' },
          { source: 'start', target: 'stray' },
        ],
      },
    });
    for (const n of [1, 2]) {
      const execution = await finished(cp, admin, await execute(cp, flow, { n }));
      expect(execution.status).toBe('failed');
      const errors = Object.fromEntries(
        execution.errors.map((e: { stepId: string; error: { message: string } }) => [e.stepId, e.error.message]),
      );
      expect(errors).toEqual({ boom: 'the component exploded', junk: expect.stringMatching(/^the output is not JSON: .*circular/i) });
      expect(outputsOf(execution)).toContainEqual(['stray', { n }]);
    }
    const report = (await cp.request('GET', `/runners/${runner.id}`, { token: admin })).body.data.deployments.find(
      (d: { flowId: string }) => d.flowId === flow.id,
    );
    expect(report.steps.every((s: { restarts: number }) => s.restarts === 0)).toBe(true);
    await stopFlow(cp, admin, flow.id);
  });

  it('restarts a worker that crashed holding an input, and the input is processed once', async () => {
    const marker = join(runner.dataDir, `crash-${Date.now()}`);
    const flow = await startFlow(cp, admin, {
      graph: {
        nodes: [
          { id: 'start', componentId: 'webhook', function: 'receive' },
          { id: 'crash', componentId: 'fixtures', function: 'crashOnce', fields: { marker } },
          { id: 'after', componentId: 'fixtures', function: 'echo' },
        ],
        edges: [
          { source: 'start', target: 'crash' },
          { source: 'crash', target: 'after' },
        ],
      },
    });
    const execution = await finished(cp, admin, await execute(cp, flow, { n: 7 }), 40_000);
    expect(existsSync(marker)).toBe(true);
    expect(execution.status).toBe('succeeded');
    expect(execution.steps).toMatchObject({ crash: { in: 1, out: 1, errors: 0 }, after: { in: 1, out: 1, errors: 0 } });
    expect(outputsOf(execution).filter(([step]: unknown[]) => step === 'after')).toEqual([['after', { n: 7, attempt: 1 }]]);
    const report = await waitFor(
      () => cp.request('GET', `/runners/${runner.id}`, { token: admin }),
      (r) =>
        r.body.data.deployments.some(
          (d: { flowId: string; steps: { stepId: string; restarts: number; state: string }[] }) =>
            d.flowId === flow.id && d.steps.some((s) => s.stepId === 'crash' && s.restarts === 1 && s.state === 'ready'),
        ),
    );
    expect(report.status).toBe(200);
    await stopFlow(cp, admin, flow.id);
  });
});
