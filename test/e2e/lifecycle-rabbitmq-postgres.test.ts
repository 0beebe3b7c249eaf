import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { RabbitBus } from '../../control-plane/bus/rabbitmq.js';
import { createEnvelope, type EventEnvelope } from '../../protocol/envelope.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { postgresAvailable } from '../support/postgres.js';
import { deleteNamespace, privateBrokerAvailable, rabbitAvailable, rabbitUrl, startPrivateBroker, uniqueNamespace, type PrivateBroker } from '../support/rabbitmq.js';
import { createTenantWithUser, type TestUser } from '../support/tenants.js';
import { createFlow } from '../flows/support.js';
import { waitFor } from '../support/events.js';

const available = (await rabbitAvailable()) && (await postgresAvailable());
const brokerControllable = available && (await privateBrokerAvailable());
const logger = pino({ level: 'silent' });
const SERVICES = ['flow-repository', 'audit-log', 'secrets', 'edge-bridge', 'executions', 'fleet'];

/** A stand-in for the runner fleet: its own bus connection, its own queue, answering flow.starting and flow.stopping. */
async function standInFleet(url: string, namespace: string) {
  const bus = await RabbitBus.connect(url, logger, { namespace, retry: { maxAttempts: 5, baseDelayMs: 100 } });
  const seen: EventEnvelope[] = [];
  const answer = (name: 'flow.started' | 'flow.stopped') => async (event: EventEnvelope) => {
    seen.push(event);
    await bus.publish(createEnvelope(name, { id: event.payload.id, tenant: event.payload.tenant }, 'fleet'));
  };
  await bus.subscribe('fleet', { 'flow.starting': answer('flow.started'), 'flow.stopping': answer('flow.stopped') });
  return { bus, seen };
}

describe.skipIf(!available)('end to end over RabbitMQ and PostgreSQL', () => {
  describe('a flow’s lifecycle', () => {
    const namespace = uniqueNamespace('e2e');
    let cp: TestControlPlane;
    let user: TestUser;
    let fleet: Awaited<ReturnType<typeof standInFleet>>;

    beforeAll(async () => {
      cp = await startTestControlPlane({ database: 'pg', env: { AMQP_URL: rabbitUrl, BUS_NAMESPACE: namespace } });
      user = await createTenantWithUser(cp, ['TENANT_INTEGRATOR']);
      fleet = await standInFleet(rabbitUrl, namespace);
    });
    afterAll(async () => {
      await fleet?.bus.close();
      await cp?.close();
      await deleteNamespace(rabbitUrl, namespace, SERVICES);
    });

    it('goes inactive → active → inactive through the fleet’s events, and the audit log records each step', async () => {
      const flow = await createFlow(cp, user.token);
      const status = async () => (await cp.request('GET', `/flows/${flow.id}`, { token: user.token })).body.data.status;

      expect((await cp.request('POST', `/flows/${flow.id}/start`, { token: user.token })).status).toBe(200);
      await waitFor(status, (s) => s === 'active', 15_000);
      expect((await cp.request('POST', `/flows/${flow.id}/stop`, { token: user.token })).status).toBe(200);
      await waitFor(status, (s) => s === 'inactive', 15_000);

      expect(fleet.seen.map((e) => [e.headers.name, e.payload.id])).toEqual([
        ['flow.starting', flow.id],
        ['flow.stopping', flow.id],
      ]);
      expect(fleet.seen[0]!.payload).toMatchObject({ graph: flow.graph, tenant: user.tenantId });

      const names = async () =>
        (await cp.request('GET', '/logs?filter[name]=flow*&sort=createdAt&page[size]=100', { token: user.token })).body.data.map((r: EventEnvelope) => r.headers.name);
      expect(await waitFor(names, (n) => n.length >= 5, 15_000)).toEqual(['flowrepo.flow.created', 'flow.starting', 'flow.started', 'flow.stopping', 'flow.stopped']);
    });
  });

  describe.skipIf(!brokerControllable)('a broker that is down', () => {
    const namespace = uniqueNamespace('e2e');
    let broker: PrivateBroker;
    let cp: TestControlPlane;
    let user: TestUser;

    beforeAll(async () => {
      broker = await startPrivateBroker();
      cp = await startTestControlPlane({ database: 'pg', env: { AMQP_URL: broker.url, BUS_NAMESPACE: namespace } });
      user = await createTenantWithUser(cp, ['TENANT_INTEGRATOR']);
    });
    afterAll(async () => {
      await cp?.close();
      await broker?.dispose();
    });

    it('loses no event: flows started while it is down reach the fleet once it is back, each once', async () => {
      // The fleet's queue exists before the outage, as it does in production.
      const early = await standInFleet(broker.url, namespace);
      await early.bus.close();
      const flows = await Promise.all(Array.from({ length: 5 }, () => createFlow(cp, user.token)));

      await broker.stop();
      await waitFor(async () => (await cp.request('GET', '/healthcheck')).status, (s) => s === 503, 10_000);
      for (const flow of flows) expect((await cp.request('POST', `/flows/${flow.id}/start`, { token: user.token })).status).toBe(200);
      const health = await cp.request('GET', '/healthcheck');
      expect(health.body.outbox.pending).toBeGreaterThanOrEqual(5);

      await broker.start();
      const fleet = await standInFleet(broker.url, namespace);
      try {
        const statuses = async () => Promise.all(flows.map(async (f) => (await cp.request('GET', `/flows/${f.id}`, { token: user.token })).body.data.status));
        await waitFor(statuses, (all) => all.every((s) => s === 'active'), 30_000);
        const started = fleet.seen.filter((e) => e.headers.name === 'flow.starting').map((e) => e.payload.id as string);
        expect([...started].sort()).toEqual(flows.map((f) => f.id).sort());
      } finally {
        await fleet.bus.close();
      }
    }, 90_000);
  });
});
