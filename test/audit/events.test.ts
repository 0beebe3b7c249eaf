import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelope } from '../../protocol/envelope.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { createTenantWithUser, type TestUser } from '../support/tenants.js';
import { createFlow } from '../flows/support.js';
import { waitFor } from '../support/events.js';
import { deadLettered, publish, recordsOf, storedRecord } from './support.js';

let cp: TestControlPlane;
let user: TestUser;

beforeAll(async () => {
  cp = await startTestControlPlane();
  user = await createTenantWithUser(cp, ['TENANT_ADMIN']);
});
afterAll(() => cp?.close());

/** The tenant's records of `name`, through GET /logs. */
const logsNamed = async (name: string, token = user.token) => {
  const res = await cp.request('GET', `/logs?filter[name]=${name}&page[size]=100`, { token });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.data as any[];
};

describe('the audit log records the lifecycle of a flow', () => {
  it('records flowrepo.flow.created and flow.starting with the flow’s tenant and the user who started it', async () => {
    const flow = await createFlow(cp, user.token, { name: 'audited' });
    const start = await cp.request('POST', `/flows/${flow.id}/start`, { token: user.token });
    expect(start.status, JSON.stringify(start.body)).toBe(200);

    const [starting] = await waitFor(
      async () => (await logsNamed('flow.starting')).filter((r) => r.payload.id === flow.id),
      (found) => found.length === 1,
    );
    expect(Object.keys(starting).sort()).toEqual(['headers', 'id', 'origin', 'payload', 'pushedBy', 'receivedAt', 'tenant']);
    expect(starting).toMatchObject({
      tenant: user.tenantId,
      origin: 'event',
      pushedBy: null,
      headers: { name: 'flow.starting', serviceName: 'flow-repository', id: expect.any(String), createdAt: expect.any(String) },
      payload: { id: flow.id, name: 'audited', status: 'starting', tenant: user.tenantId, startedBy: user.id },
    });
    expect(new Date(starting.receivedAt).getTime()).not.toBeNaN();
    const row = await storedRecord(cp, starting.headers.id);
    expect(row.userId).toBe(user.id);

    const created = await waitFor(
      async () => (await logsNamed('flowrepo.flow.created')).filter((r) => r.payload.flowId === flow.id),
      (found) => found.length === 1,
    );
    expect(created[0]).toMatchObject({ tenant: user.tenantId, payload: { user: user.id } });
  });

  it('records flow.started, flow.stopping, flow.stopped and flow.failed', async () => {
    const flowId = randomUUID();
    const events = [
      await publish(cp, 'flow.started', { id: flowId, tenant: user.tenantId }, 'runner'),
      await publish(cp, 'flow.stopped', { id: flowId, tenant: user.tenantId }, 'runner'),
      await publish(cp, 'flow.failed', { id: flowId, tenant: user.tenantId, reason: 'image not found' }, 'runner'),
    ];
    for (const event of events) {
      const row = await storedRecord(cp, event.headers.id);
      expect(row).toMatchObject({ name: event.headers.name, serviceName: 'runner', tenantId: user.tenantId, payload: event.payload });
    }
    const flow = await createFlow(cp, user.token, { name: 'stopped' });
    await cp.request('POST', `/flows/${flow.id}/start`, { token: user.token });
    expect((await cp.request('POST', `/flows/${flow.id}/stop`, { token: user.token })).status).toBe(200);
    await waitFor(
      async () => (await logsNamed('flow.stopping')).filter((r) => r.payload.id === flow.id),
      (found) => found.length === 1,
    );
  });

  it('does not record flow.executed (one per webhook call would flood the log)', async () => {
    const executed = await publish(cp, 'flow.executed', {
      flowId: randomUUID(),
      flowExecId: randomUUID(),
      tenant: user.tenantId,
      trigger: 'webhook',
      message: { id: randomUUID(), data: {} },
      receivedAt: new Date().toISOString(),
    });
    const marker = await publish(cp, 'audit.marker.set', { tenant: user.tenantId });
    await storedRecord(cp, marker.headers.id);
    expect(await recordsOf(cp, executed.headers.id)).toEqual([]);
  });
});

describe('the audit log records IAM, secrets and audit.* events', () => {
  it('records a failed login as iam.user.loginFailed in the user’s tenant', async () => {
    const failed = await cp.request('POST', '/login', { body: { username: user.username, password: 'not-the-password' } });
    expect(failed.status).toBe(401);
    const [record] = await waitFor(
      async () => (await logsNamed('iam.user.loginFailed')).filter((r) => r.payload.id === user.id),
      (found) => found.length >= 1,
    );
    expect(record).toMatchObject({
      tenant: user.tenantId,
      headers: { name: 'iam.user.loginFailed' },
      payload: { id: user.id, tenant: user.tenantId },
    });
  });

  it('records audit.* events under the tenant their payload names, and events about no tenant without one', async () => {
    const scoped = await publish(cp, 'audit.report.exported', { tenant: user.tenantId, user: 'someone', rows: 42 }, 'reports');
    const unscoped = await publish(cp, 'audit.system.maintenance', { window: '02:00-03:00' }, 'ops');
    const row = await storedRecord(cp, scoped.headers.id);
    expect(row).toMatchObject({
      tenantId: user.tenantId,
      userId: 'someone',
      serviceName: 'reports',
      headers: scoped.headers,
      payload: scoped.payload,
    });
    expect(row.createdAt.toISOString()).toBe(scoped.headers.createdAt);
    expect((await storedRecord(cp, unscoped.headers.id)).tenantId).toBeNull();
    expect((await logsNamed('audit.report.exported')).map((r) => r.headers.id)).toContain(scoped.headers.id);
    expect((await logsNamed('audit.system.*')).map((r) => r.headers.id)).not.toContain(unscoped.headers.id);
  });

  it('records secrets.* (the names the secret service publishes) and iam events it has no schema for', async () => {
    const secret = await publish(cp, 'secrets.secret.created', { id: randomUUID(), tenant: user.tenantId }, 'secret-service');
    const permission = await publish(cp, 'iam.permission.created', { name: 'custom.read' }, 'iam');
    expect((await storedRecord(cp, secret.headers.id)).tenantId).toBe(user.tenantId);
    expect((await storedRecord(cp, permission.headers.id)).payload).toEqual({ name: 'custom.read' });
  });
});

describe('the audit log stores each event once, and refuses invalid ones', () => {
  it('stores a redelivered event once', async () => {
    const event = createEnvelope('audit.retry.sent', { tenant: user.tenantId }, 'retrying');
    await Promise.all([cp.services.bus.publish(event), cp.services.bus.publish(event), cp.services.bus.publish(event)]);
    await storedRecord(cp, event.headers.id);
    const marker = await publish(cp, 'audit.marker.set', {});
    await storedRecord(cp, marker.headers.id);
    await cp.services.bus.publish(event);
    const second = await publish(cp, 'audit.marker.set', {});
    await storedRecord(cp, second.headers.id);
    expect(await recordsOf(cp, event.headers.id)).toHaveLength(1);
  });

  const invalid: [string, (id: string) => Record<string, any>, string][] = [
    [
      'a createdAt that is not a date-time',
      (id) => ({ headers: { id, name: 'audit.bad.date', createdAt: 'yesterday', serviceName: 'x' }, payload: {} }),
      'headers.createdAt must be an ISO 8601 date-time',
    ],
    [
      'no serviceName',
      (id) => ({ headers: { id, name: 'audit.no.service', createdAt: new Date().toISOString() }, payload: {} }),
      'headers.serviceName',
    ],
    [
      'a payload that is not an object',
      (id) => ({ headers: { id, name: 'audit.bad.payload', createdAt: new Date().toISOString(), serviceName: 'x' }, payload: 'text' }),
      'payload',
    ],
    [
      'a known event whose payload breaks its schema',
      (id) => ({
        headers: { id, name: 'flow.stopped', createdAt: new Date().toISOString(), serviceName: 'runner' },
        payload: { id: randomUUID() },
      }),
      'flow.stopped: payload.tenant',
    ],
    [
      'a tenant that is not a tenant id',
      (id) => ({
        headers: { id, name: 'audit.bad.tenant', createdAt: new Date().toISOString(), serviceName: 'x' },
        payload: { tenant: 'acme' },
      }),
      'payload.tenant: must be a tenant id',
    ],
  ];
  it.each(invalid)('dead-letters an event with %s and stores nothing', async (_case, build, reason) => {
    const id = randomUUID();
    await cp.services.bus.publish(build(id) as any);
    const error = await deadLettered(cp, id);
    expect(error).toContain('audit record refused');
    expect(error).toContain(reason);
    expect(await recordsOf(cp, id)).toEqual([]);
  });
});
