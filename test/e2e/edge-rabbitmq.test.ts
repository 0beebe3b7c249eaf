import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventEnvelope } from '../../protocol/envelope.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { EDGE_CONTROL_SECRET, startTestEdge, type TestEdge } from '../support/edge.js';
import { collectEvents, waitFor } from '../support/events.js';
import { createFlow, handledByRepository, publishAsRunner } from '../flows/support.js';
import { freePort } from '../support/ports.js';
import { postgresAvailable } from '../support/postgres.js';
import { deleteNamespace, rabbitAvailable, rabbitUrl, uniqueNamespace } from '../support/rabbitmq.js';
import { createTenantWithUser, type TestUser } from '../support/tenants.js';

const available = (await rabbitAvailable()) && (await postgresAvailable());
const SERVICES = ['flow-repository', 'audit-log', 'secrets', 'edge-bridge', 'executions', 'test-collector'];

/** The edge in workerd, the control plane on PostgreSQL and RabbitMQ; a test stands in for the runner fleet. */
describe.skipIf(!available)('webhooks and schedules end to end over RabbitMQ', () => {
  const namespace = uniqueNamespace('edge');
  let edge: TestEdge;
  let cp: TestControlPlane;
  let user: TestUser;
  let executed: EventEnvelope[];

  beforeAll(async () => {
    const port = await freePort();
    edge = await startTestEdge({ CONTROL_PLANE_URL: `http://127.0.0.1:${port}` });
    cp = await startTestControlPlane({
      database: 'pg',
      env: { PORT: String(port), AMQP_URL: rabbitUrl, BUS_NAMESPACE: namespace, EDGE_CONTROL_SECRET, EDGE_URL: (await edge.mf.ready).toString() },
    });
    user = await createTenantWithUser(cp, ['TENANT_INTEGRATOR']);
    executed = await collectEvents(cp, 'flow.executed', 'test-collector');
  });
  afterAll(async () => {
    await cp?.close();
    await edge?.close();
    if (available) await deleteNamespace(rabbitUrl, namespace, SERVICES);
  });

  async function start(flow: { id: string }) {
    await cp.request('POST', `/flows/${flow.id}/start`, { token: user.token });
    const started = await publishAsRunner(cp, 'flow.started', { id: flow.id, tenant: user.tenantId });
    await handledByRepository(cp, started.headers.id);
    await waitFor(() => edge.fetch(`/hook/${flow.id}`, { method: 'HEAD' }).then((r) => r.status), (status) => status === 200, 15_000);
  }
  const about = (flowId: string) => executed.filter((e) => e.payload.flowId === flowId);

  it('a webhook call is exactly one flow.executed on the bus, with the request’s data', async () => {
    const flow = await createFlow(cp, user.token);
    await start(flow);
    const res = await edge.fetch(`/hook/${flow.id}?source=shop`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"order":7}' });
    expect(res.status).toBe(202);
    const [event] = await waitFor(async () => about(flow.id), (found) => found.length === 1, 15_000);
    expect(event!.headers.serviceName).toBe('edge-bridge');
    expect(event!.payload).toMatchObject({ flowId: flow.id, tenant: user.tenantId, trigger: 'webhook', message: { data: { order: 7 }, query: { source: 'shop' } } });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(about(flow.id)).toHaveLength(1);
  });

  it('a cron flow fires on its schedule, each slot once; stopping it ends the schedule and the webhook', async () => {
    const flow = await createFlow(cp, user.token, { cron: '* * * * * *', timezone: 'Europe/Berlin' });
    await start(flow);
    const fired = await waitFor(async () => about(flow.id), (found) => found.length >= 2, 15_000);
    expect(fired.every((e) => e.payload.trigger === 'schedule')).toBe(true);
    const slots = fired.map((e) => (e.payload.message as { data: { scheduledAt: string } }).data.scheduledAt);
    expect(new Set(slots).size).toBe(slots.length);

    await cp.request('POST', `/flows/${flow.id}/stop`, { token: user.token });
    await waitFor(() => edge.fetch(`/hook/${flow.id}`, { method: 'HEAD' }).then((r) => r.status), (status) => status === 404, 15_000);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const settled = about(flow.id).length;
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(about(flow.id)).toHaveLength(settled);
  }, 60_000);
});
