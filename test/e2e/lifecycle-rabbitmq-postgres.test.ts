import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployments } from '../../control-plane/runners/schema.js';
import type { EventEnvelope } from '../../protocol/envelope.js';
import { createFlow } from '../flows/support.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { waitFor } from '../support/events.js';
import { postgresAvailable } from '../support/postgres.js';
import {
  CONTROL_PLANE_SERVICES,
  deleteNamespace,
  PRIVATE_BROKER_TIMEOUT_MS,
  privateBrokerAvailable,
  rabbitAvailable,
  rabbitUrl,
  startPrivateBroker,
  uniqueNamespace,
  type PrivateBroker,
} from '../support/rabbitmq.js';
import { runnerAccount, startTestRunner, type TestRunner } from '../support/runner.js';
import { createTenantWithUser, type TestUser } from '../support/tenants.js';

const available = (await rabbitAvailable()) && (await postgresAvailable());
const brokerControllable = available && (await privateBrokerAvailable());

describe.skipIf(!available)('end to end over RabbitMQ and PostgreSQL, with a runner', () => {
  describe('a flow’s lifecycle', () => {
    const namespace = uniqueNamespace('e2e');
    let cp: TestControlPlane;
    let user: TestUser;
    let runner: TestRunner;

    beforeAll(async () => {
      cp = await startTestControlPlane({
        database: 'pg',
        env: { AMQP_URL: rabbitUrl, BUS_NAMESPACE: namespace, RUNNER_HEARTBEAT_SECONDS: '1' },
      });
      user = await createTenantWithUser(cp, ['TENANT_INTEGRATOR']);
      runner = await startTestRunner(cp, { token: (await runnerAccount(cp, user.tenantId)).token, amqpUrl: rabbitUrl, namespace });
    });
    afterAll(async () => {
      await runner?.stop();
      await cp?.close();
      await deleteNamespace(rabbitUrl, namespace, CONTROL_PLANE_SERVICES);
    });

    it('goes inactive → active → inactive as the tenant’s runner deploys and removes it, and the audit log records each step', async () => {
      const flow = await createFlow(cp, user.token);
      const status = async () => (await cp.request('GET', `/flows/${flow.id}`, { token: user.token })).body.data.status;

      expect((await cp.request('POST', `/flows/${flow.id}/start`, { token: user.token })).status).toBe(200);
      await waitFor(status, (s) => s === 'active', 30_000);
      const [deployment] = await cp.services.db.select().from(deployments).where(eq(deployments.flowId, flow.id));
      expect(deployment).toMatchObject({ runnerId: runner.id, phase: 'running', generation: 1 });
      expect((await cp.request('POST', `/flows/${flow.id}/stop`, { token: user.token })).status).toBe(200);
      await waitFor(status, (s) => s === 'inactive', 30_000);
      expect(await cp.services.db.select().from(deployments).where(eq(deployments.flowId, flow.id))).toEqual([]);

      const records = async () =>
        (await cp.request('GET', '/logs?filter[name]=flow*&sort=createdAt&page[size]=100', { token: user.token })).body
          .data as EventEnvelope[];
      const found = await waitFor(records, (r) => r.length >= 5, 15_000);
      expect(found.map((r) => [r.headers.name, r.headers.serviceName])).toEqual([
        ['flowrepo.flow.created', 'flow-repository'],
        ['flow.starting', 'flow-repository'],
        ['flow.started', 'fleet'],
        ['flow.stopping', 'flow-repository'],
        ['flow.stopped', 'fleet'],
      ]);
    });
  });

  describe.skipIf(!brokerControllable)('a broker that is down', () => {
    const namespace = uniqueNamespace('e2e');
    let broker: PrivateBroker;
    let cp: TestControlPlane;
    let user: TestUser;
    let runner: TestRunner;

    beforeAll(async () => {
      broker = await startPrivateBroker();
      cp = await startTestControlPlane({
        database: 'pg',
        env: { AMQP_URL: broker.url, BUS_NAMESPACE: namespace, RUNNER_HEARTBEAT_SECONDS: '1' },
      });
      user = await createTenantWithUser(cp, ['TENANT_INTEGRATOR']);
      runner = await startTestRunner(cp, { amqpUrl: broker.url, namespace });
    }, PRIVATE_BROKER_TIMEOUT_MS);
    afterAll(async () => {
      await runner?.stop();
      await cp?.close();
      await broker?.dispose();
    });

    it(
      'loses no event: flows started while it is down are placed once it is back, each once, and run',
      async () => {
        const flows = await Promise.all(Array.from({ length: 3 }, () => createFlow(cp, user.token)));

        await broker.stop();
        await waitFor(
          async () => (await cp.request('GET', '/healthcheck')).status,
          (s) => s === 503,
          10_000,
        );
        for (const flow of flows) expect((await cp.request('POST', `/flows/${flow.id}/start`, { token: user.token })).status).toBe(200);
        const health = await cp.request('GET', '/healthcheck');
        expect(health.body.outbox.pending).toBeGreaterThanOrEqual(3);

        await broker.start();
        const statuses = async () =>
          Promise.all(flows.map(async (f) => (await cp.request('GET', `/flows/${f.id}`, { token: user.token })).body.data.status));
        await waitFor(statuses, (all) => all.every((s) => s === 'active'), 60_000);
        const placed = await cp.services.db.select().from(deployments);
        expect(placed.filter((d) => flows.some((f) => f.id === d.flowId)).map((d) => [d.generation, d.runnerId])).toEqual(
          flows.map(() => [1, runner.id]),
        );
      },
      PRIVATE_BROKER_TIMEOUT_MS + 60_000,
    );
  });
});
