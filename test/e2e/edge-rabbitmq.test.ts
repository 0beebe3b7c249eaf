import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { EDGE_CONTROL_SECRET, startTestEdge, type TestEdge } from '../support/edge.js';
import { collectEntries, settled, waitFor, type Entered } from '../support/events.js';
import { createFlow } from '../flows/support.js';
import { freePort } from '../support/ports.js';
import { postgresAvailable } from '../support/postgres.js';
import { CONTROL_PLANE_SERVICES, deleteNamespace, rabbitAvailable, rabbitUrl, uniqueNamespace } from '../support/rabbitmq.js';
import { startTestRunner, type TestRunner } from '../support/runner.js';
import { createTenantWithUser, type TestUser } from '../support/tenants.js';

const available = (await rabbitAvailable()) && (await postgresAvailable());

/** The edge in workerd, the control plane on PostgreSQL and RabbitMQ, and a runner: the whole system. */
describe.skipIf(!available)('webhooks and schedules end to end over RabbitMQ', () => {
  const namespace = uniqueNamespace('edge');
  let edge: TestEdge;
  let cp: TestControlPlane;
  let user: TestUser;
  /** What entered each flow started here, as its first step's queue received it. */
  const entries = new Map<string, Entered[]>();
  let runner: TestRunner;

  beforeAll(async () => {
    const port = await freePort();
    edge = await startTestEdge({ CONTROL_PLANE_URL: `http://127.0.0.1:${port}` });
    cp = await startTestControlPlane({
      database: 'pg',
      env: {
        PORT: String(port),
        AMQP_URL: rabbitUrl,
        BUS_NAMESPACE: namespace,
        EDGE_CONTROL_SECRET,
        EDGE_URL: (await edge.mf.ready).toString(),
        RUNNER_HEARTBEAT_SECONDS: '1',
      },
    });
    user = await createTenantWithUser(cp, ['TENANT_INTEGRATOR']);
    runner = await startTestRunner(cp, { amqpUrl: rabbitUrl, namespace });
  });
  afterAll(async () => {
    await runner?.stop();
    await cp?.close();
    await edge?.close();
    if (available) await deleteNamespace(rabbitUrl, namespace, CONTROL_PLANE_SERVICES);
  });

  /** The flow's trigger as the edge holds it (null once removed). */
  const edgeTrigger = async (flowId: string) =>
    ((await (await edge.control('GET', `/control/flows/${flowId}`)).json()) as { data: { trigger: { status: string } | null } }).data
      .trigger;

  /** Starts the flow: the runner deploys it, the edge goes live on flow.started. */
  async function start(flow: { id: string }) {
    entries.set(flow.id, await collectEntries(cp, flow.id));
    await cp.request('POST', `/flows/${flow.id}/start`, { token: user.token });
    await waitFor(
      () => edgeTrigger(flow.id),
      (trigger) => trigger?.status === 'live',
      30_000,
    );
    expect((await cp.request('GET', `/flows/${flow.id}`, { token: user.token })).body.data.status).toBe('active');
  }
  const about = (flowId: string) => entries.get(flowId)!;
  /** Once the edge holds nothing undelivered for the flow and all it delivered has reached the collector. */
  async function delivered(flowId: string) {
    await waitFor(
      async () => ((await (await edge.control('GET', `/control/flows/${flowId}`)).json()) as { data: { pending: number } }).data.pending,
      (pending) => pending === 0,
    );
    await settled(about(flowId));
  }

  it('a webhook call enters the flow exactly once, with the request’s data, and runs through the flow’s steps', async () => {
    const flow = await createFlow(cp, user.token, {
      graph: {
        nodes: [
          { id: 'receive', componentId: 'webhook', function: 'receive' },
          { id: 'map', componentId: 'jsonata', function: 'map', fields: { expression: '{ "order": order, "doubled": order * 2 }' } },
        ],
        edges: [{ source: 'receive', target: 'map' }],
      },
    });
    await start(flow);
    const res = await edge.fetch(`/hook/${flow.id}?source=shop`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"order":7}',
    });
    expect(res.status).toBe(202);
    const { flowExecId } = ((await res.json()) as { data: { flowExecId: string } }).data;
    const [entry] = await waitFor(
      async () => about(flow.id),
      (found) => found.length === 1,
      15_000,
    );
    expect(entry).toMatchObject({ flowExecId, tenant: user.tenantId, message: { data: { order: 7 }, query: { source: 'shop' } } });
    const execution = await waitFor(
      () => cp.request('GET', `/executions/${flowExecId}`, { token: user.token }),
      (r) => r.status === 200 && r.body.data.status !== 'running',
      20_000,
    );
    expect(execution.body.data).toMatchObject({
      status: 'succeeded',
      trigger: 'webhook',
      steps: { receive: { in: 1, out: 1 }, map: { in: 1, out: 1 } },
    });
    expect(execution.body.data.outputs.map((o: { stepId: string; message: { data: unknown } }) => [o.stepId, o.message.data])).toEqual([
      ['receive', { order: 7 }],
      ['map', { order: 7, doubled: 14 }],
    ]);
    await delivered(flow.id);
    expect(about(flow.id)).toHaveLength(1);
  });

  it('a cron flow fires on its schedule, each slot once, and has no webhook; stopping it ends the schedule', async () => {
    const flow = await createFlow(cp, user.token, { cron: '* * * * * *', timezone: 'Europe/Berlin' });
    await start(flow);
    expect(
      (await edge.fetch(`/hook/${flow.id}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status,
    ).toBe(404);
    const fired = await waitFor(
      async () => about(flow.id),
      (found) => found.length >= 2,
      15_000,
    );
    const slots = fired.map((e) => (e.message.data as { scheduledAt: string }).scheduledAt);
    expect(new Set(slots).size).toBe(slots.length);
    const ran = await waitFor(
      () => cp.request('GET', `/executions?filter[flowId]=${flow.id}&filter[status]=succeeded`, { token: user.token }),
      (r) => r.body.data.length >= 2,
      20_000,
    );
    expect(ran.body.data.every((e: { trigger: string }) => e.trigger === 'schedule')).toBe(true);

    await cp.request('POST', `/flows/${flow.id}/stop`, { token: user.token });
    await waitFor(
      () => edgeTrigger(flow.id),
      (trigger) => trigger === null,
      15_000,
    );
    await delivered(flow.id);
    const atStop = about(flow.id).length;
    // An alarm that comes after the stop (one set before it) fires nothing.
    await (await edge.trigger(flow.id)).runAlarm();
    await delivered(flow.id);
    expect(about(flow.id)).toHaveLength(atStop);
  });
});
