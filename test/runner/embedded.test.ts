import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelope } from '../../protocol/envelope.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { waitFor } from '../support/events.js';
import { startTestRunner, type TestRunner } from '../support/runner.js';

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
    const created = await cp.request('POST', '/flows', {
      token: admin,
      body: {
        name: 'fan-out',
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
      },
    });
    expect(created.status).toBe(201);
    const flow = created.body.data;
    expect((await cp.request('POST', `/flows/${flow.id}/start`, { token: admin })).status).toBe(200);
    await waitFor(() => cp.request('GET', `/flows/${flow.id}`, { token: admin }), (r) => r.body.data.status === 'active', 30_000);

    const flowExecId = randomUUID();
    await cp.services.bus.publish(
      createEnvelope('flow.executed', {
        flowId: flow.id,
        flowExecId,
        tenant: flow.tenant,
        trigger: 'webhook',
        message: { id: randomUUID(), data: { items: [{ price: 2 }, { price: 3 }] }, attachments: {}, headers: {}, metadata: {}, passthrough: {} },
        receivedAt: new Date().toISOString(),
      }, 'test'),
    );
    const execution = await waitFor(() => cp.request('GET', `/executions/${flowExecId}`, { token: admin }), (r) => r.status === 200 && r.body.data.status !== 'running', 20_000);
    expect(execution.body.data.status).toBe('succeeded');
    const outputs = execution.body.data.outputs.map((o: { stepId: string; message: { data: unknown } }) => [o.stepId, o.message.data]);
    expect(outputs).toEqual(expect.arrayContaining([['total', { total: 5 }], ['log', { items: [{ price: 2 }, { price: 3 }] }]]));

    expect((await cp.request('POST', `/flows/${flow.id}/stop`, { token: admin })).status).toBe(200);
    await waitFor(() => cp.request('GET', `/flows/${flow.id}`, { token: admin }), (r) => r.body.data.status === 'inactive', 30_000);
  });
});
