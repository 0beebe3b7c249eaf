/**
 * Results travel with the messages between steps and the step that delivers nothing further
 * reports them (protocol/carried-results.ts): in real step workers (process driver), on the
 * embedded defaults and on RabbitMQ, every step's result still reaches the execution record.
 * A carried result lost on the way leaves its delivery open: the execution would never finish.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventEnvelope } from '../../protocol/envelope.js';
import type { StepResult } from '../../protocol/events.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { collectEvents } from '../support/events.js';
import { CONTROL_PLANE_SERVICES, deleteNamespace, rabbitAvailable, rabbitUrl, uniqueNamespace } from '../support/rabbitmq.js';
import { startTestRunner, type TestRunner } from '../support/runner.js';
import { execute, finished, outputsOf, registerFixtures, startFlow, stopFlow, type TestFlow } from './support.js';

const available = await rabbitAvailable();
const RESULTS_SERVICE = 'test-carried-results';

const modes = [
  { mode: 'the embedded defaults', rabbit: false },
  { mode: 'RabbitMQ', rabbit: true },
];

describe.each(modes)('carried results on $mode', ({ rabbit }) => {
  const namespace = uniqueNamespace('carry');
  let cp: TestControlPlane;
  let runner: TestRunner;
  let admin: string;
  let batches: EventEnvelope[];
  let chain: TestFlow;
  let branches: TestFlow;

  /** The results of an execution as they arrived, batch by batch. */
  const batchesOf = (flowExecId: string) =>
    batches
      .map((event) => (event.payload as { results: StepResult[] }).results.filter((r) => r.flowExecId === flowExecId))
      .filter((results) => results.length > 0);

  beforeAll(async () => {
    if (rabbit && !available) return;
    const env: Record<string, string> = { RUNNER_HEARTBEAT_SECONDS: '1' };
    if (rabbit) Object.assign(env, { AMQP_URL: rabbitUrl, BUS_NAMESPACE: namespace });
    cp = await startTestControlPlane({ env });
    admin = await cp.login();
    await registerFixtures(cp, admin);
    runner = await startTestRunner(cp, rabbit ? { amqpUrl: rabbitUrl, namespace } : {});
    batches = await collectEvents(cp, 'execution.step.results', RESULTS_SERVICE);
    chain = await startFlow(cp, admin, {
      graph: {
        nodes: [
          { id: 'receive', componentId: 'webhook', function: 'receive' },
          { id: 'map', componentId: 'jsonata', function: 'map', fields: { expression: '$merge([$, {"mapped": true}])' } },
          { id: 'keep', componentId: 'filter', function: 'filter', fields: { condition: 'keep' } },
          { id: 'last', componentId: 'fixtures', function: 'echo' },
        ],
        edges: [
          { source: 'receive', target: 'map' },
          { source: 'map', target: 'keep' },
          { source: 'keep', target: 'last' },
        ],
      },
    });
    branches = await startFlow(cp, admin, {
      graph: {
        nodes: [
          { id: 'receive', componentId: 'webhook', function: 'receive' },
          { id: 'boom', componentId: 'fixtures', function: 'explode' },
          { id: 'after', componentId: 'fixtures', function: 'echo' },
          { id: 'side', componentId: 'fixtures', function: 'echo' },
          { id: 'tail', componentId: 'fixtures', function: 'echo' },
        ],
        edges: [
          { source: 'receive', target: 'boom' },
          { source: 'boom', target: 'after' },
          { source: 'receive', target: 'side' },
          { source: 'side', target: 'tail' },
        ],
      },
    });
  }, 180_000);
  afterAll(async () => {
    if (chain) await stopFlow(cp, admin, chain.id);
    if (branches) await stopFlow(cp, admin, branches.id);
    await runner?.stop();
    await cp?.close();
    if (rabbit && available) await deleteNamespace(rabbitUrl, namespace, [...CONTROL_PLANE_SERVICES, RESULTS_SERVICE]);
  });

  it.skipIf(rabbit && !available)('a chain of four: every step is recorded, and results travelled to the last step', async () => {
    const flowExecId = await execute(cp, chain, { keep: true });
    const execution = await finished(cp, admin, flowExecId, 60_000);
    expect(execution.status, execution.reason).toBe('succeeded');
    expect(execution.steps).toMatchObject({
      receive: { in: 1, out: 1, errors: 0 },
      map: { in: 1, out: 1, errors: 0 },
      keep: { in: 1, out: 1, errors: 0 },
      last: { in: 1, out: 1, errors: 0 },
    });
    expect(outputsOf(execution)).toEqual(
      expect.arrayContaining([
        ['receive', { keep: true }],
        ['map', { keep: true, mapped: true }],
        ['keep', { keep: true, mapped: true }],
        ['last', { keep: true, mapped: true, attempt: 1 }],
      ]),
    );
    expect(execution.outputs).toHaveLength(4);
    // Some results arrived with the last step's rather than on their own (a hop whose call took over a second reports on its own).
    expect(batchesOf(flowExecId).some((results) => results.length > 1)).toBe(true);
  });

  it.skipIf(rabbit && !available)('a filter that drops the message reports the results that reached it', async () => {
    const execution = await finished(cp, admin, await execute(cp, chain, { keep: false }), 60_000);
    expect(execution.status, execution.reason).toBe('succeeded');
    expect(execution.steps).toMatchObject({ receive: { in: 1, out: 1 }, map: { in: 1, out: 1 }, keep: { in: 1, out: 0, errors: 0 } });
    expect(execution.steps.last).toBeUndefined();
    expect(outputsOf(execution).map(([step]: unknown[]) => step)).toEqual(expect.arrayContaining(['receive', 'map']));
  });

  it.skipIf(rabbit && !available)(
    'a fan-out with a failure mid-chain: both branches report what they carry, and the execution fails',
    async () => {
      const execution = await finished(cp, admin, await execute(cp, branches, { n: 5 }), 60_000);
      expect(execution.status).toBe('failed');
      expect(execution.reason).toContain('step boom failed: the component exploded');
      expect(execution.steps).toMatchObject({
        receive: { in: 1, out: 1, errors: 0 },
        boom: { in: 1, out: 0, errors: 1 },
        side: { in: 1, out: 1, errors: 0 },
        tail: { in: 1, out: 1, errors: 0 },
      });
      expect(execution.steps.after).toBeUndefined();
      expect(outputsOf(execution)).toEqual(
        expect.arrayContaining([
          ['receive', { n: 5 }],
          ['side', { n: 5, attempt: 1 }],
          ['tail', { n: 5, attempt: 1 }],
        ]),
      );
      expect(execution.errors).toEqual([expect.objectContaining({ stepId: 'boom', input: expect.objectContaining({ data: { n: 5 } }) })]);
    },
  );
});
