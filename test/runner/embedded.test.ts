import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { startTestRunner, type TestRunner } from '../support/runner.js';
import { execute, finished, outputsOf, startFlow, stopFlow } from './support.js';

describe('a flow on the embedded defaults (in-process bus, process driver)', () => {
  let cp: TestControlPlane;
  let runner: TestRunner;
  let admin: string;

  beforeAll(async () => {
    cp = await startTestControlPlane({ env: { RUNNER_HEARTBEAT_SECONDS: '1' } });
    admin = await cp.login();
    runner = await startTestRunner(cp);
  });
  afterAll(async () => {
    await runner?.stop();
    await cp?.close();
  });

  it('runs three steps with a fan-out from flow.executed to a finished execution', async () => {
    const flow = await startFlow(cp, admin, {
      graph: {
        nodes: [
          { id: 'receive', componentId: 'webhook', function: 'receive' },
          { id: 'total', componentId: 'jsonata', function: 'map', fields: { expression: '{ "total": $sum(items.price) }' } },
          { id: 'log', componentId: 'debug', function: 'record' },
        ],
        edges: [
          { source: 'receive', target: 'total' },
          { source: 'receive', target: 'log' },
        ],
      },
    });
    const execution = await finished(cp, admin, await execute(cp, flow, { items: [{ price: 2 }, { price: 3 }] }), 20_000);
    expect(execution.status).toBe('succeeded');
    expect(outputsOf(execution)).toEqual(
      expect.arrayContaining([
        ['total', { total: 5 }],
        ['log', { items: [{ price: 2 }, { price: 3 }] }],
      ]),
    );
    await stopFlow(cp, admin, flow.id);
  });
});
