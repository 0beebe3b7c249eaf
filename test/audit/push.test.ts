import { randomUUID } from 'node:crypto';
import { count } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRecords } from '../../control-plane/audit/schema.js';
import { SERVICE_NAME as AUDIT, SYSTEM_NAMESPACES, SYSTEM_SERVICES } from '../../control-plane/audit/service.js';
import { SERVICE_NAME as COMPONENTS } from '../../control-plane/components/service.js';
import { SERVICE_NAME as EDGE_BRIDGE } from '../../control-plane/edge/service.js';
import { SERVICE_NAME as EXECUTIONS } from '../../control-plane/executions/records.js';
import { SERVICE_NAME as FLOW_REPOSITORY } from '../../control-plane/flows/service.js';
import { SERVICE_NAME as IAM } from '../../control-plane/iam/service.js';
import { SERVICE_NAME as METADATA } from '../../control-plane/metadata/domains.service.js';
import { SERVICE_NAME as FLEET } from '../../control-plane/runners/deployments.js';
import { SERVICE_NAME as SECRETS } from '../../control-plane/secrets/service.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { waitFor } from '../support/events.js';
import { createTenantWithUser, createUser, type TestUser } from '../support/tenants.js';
import { pushed, recordsOf, recordsOfService } from './support.js';

let cp: TestControlPlane;
let admin: string;
let a: TestUser;
let b: TestUser;
let guestOfA: TestUser;

beforeAll(async () => {
  cp = await startTestControlPlane();
  admin = await cp.login();
  a = await createTenantWithUser(cp, ['TENANT_ADMIN']);
  b = await createTenantWithUser(cp, ['TENANT_ADMIN']);
  guestOfA = await createUser(cp, { tenantId: a.tenantId, roles: ['TENANT_GUEST'] });
});
afterAll(() => cp?.close());

const push = (body: unknown, token = a.token) => cp.request('POST', '/logs', { token, body });
const seenBy = async (token: string, eventId: string) =>
  ((await cp.request('GET', '/logs?filter[service]=reports&page[size]=100', { token })).body.data as any[]).some(
    (r) => r.headers.id === eventId,
  );

describe('POST /logs stores one envelope', () => {
  it('stores it in the caller’s tenant, with a generated headers.id, and answers 201 with the record', async () => {
    const body = pushed({}, { action: 'exported', rows: [1, 2, { nested: true }] });
    const res = await push(body);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.data).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      headers: { ...body.headers, id: expect.stringMatching(/^[0-9a-f-]{36}$/) },
      payload: body.payload,
      tenant: a.tenantId,
      receivedAt: expect.any(String),
      origin: 'pushed',
      pushedBy: a.id,
    });
    const [row] = await recordsOf(cp, res.body.data.headers.id);
    expect(row).toMatchObject({
      id: res.body.data.id,
      tenantId: a.tenantId,
      name: 'audit.report.exported',
      serviceName: 'reports',
      origin: 'pushed',
      pushedBy: a.id,
    });
    expect(await seenBy(a.token, res.body.data.headers.id)).toBe(true);
    expect(await seenBy(b.token, res.body.data.headers.id)).toBe(false);
  });

  it('keeps a given headers.id and answers 409 for a second record with it, storing it once', async () => {
    const id = randomUUID();
    const first = await push(pushed({ id }));
    expect(first.status).toBe(201);
    expect(first.body.data.headers.id).toBe(id);
    const again = await push(pushed({ id }, { action: 'changed' }));
    expect(again.status).toBe(409);
    expect(again.body.errors[0]).toEqual({ message: `An audit record with headers.id ${id} exists already`, code: 'conflict' });
    const fromOtherTenant = await push(pushed({ id }), b.token);
    expect(fromOtherTenant.status).toBe(409);
    const rows = await recordsOf(cp, id);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.payload).toEqual({ action: 'exported' });
  });
});

describe('POST /logs cannot pose as one of Hookline’s own records', () => {
  it('refuses the names of Hookline’s events and the serviceNames of its services, whoever pushes, and stores nothing', async () => {
    const id = randomUUID();
    const loginFailed = { id: a.id, tenant: a.tenantId, attempts: 5, locked: true };
    const cases: [Record<string, unknown>, Record<string, unknown>, string][] = [
      [{ id, name: 'iam.user.loginFailed', serviceName: 'iam' }, loginFailed, "headers.name: iam.* names are Hookline's own events"],
      [{ id, name: 'iam.user.loginFailed', serviceName: 'reports' }, loginFailed, "headers.name: iam.* names are Hookline's own events"],
      [{ id, name: 'iam.user.passwordReset', serviceName: 'reports' }, {}, "headers.name: iam.* names are Hookline's own events"],
      [
        { id, name: 'flow.failed', serviceName: 'runner' },
        { id: randomUUID(), tenant: a.tenantId, reason: 'out of memory' },
        "headers.name: flow.* names are Hookline's own events",
      ],
      [{ id, name: 'audit.user.loginFailed', serviceName: 'iam' }, {}, 'headers.serviceName: iam is a Hookline service'],
      [{ id, name: 'audit.secret.read', serviceName: 'secrets' }, {}, 'headers.serviceName: secrets is a Hookline service'],
    ];
    for (const [headers, payload, message] of cases) {
      for (const token of [a.token, admin]) {
        const res = await push(pushed(headers, payload), token);
        expect(res.status, JSON.stringify(headers)).toBe(400);
        expect(res.body.errors[0].message).toContain(message);
      }
    }
    for (const namespace of ['flow', 'flowrepo', 'iam', 'secrets', 'metadata', 'components', 'execution'])
      expect(SYSTEM_NAMESPACES).toContain(namespace);
    for (const service of [AUDIT, COMPONENTS, EDGE_BRIDGE, EXECUTIONS, FLEET, FLOW_REPOSITORY, IAM, METADATA, SECRETS]) {
      expect(SYSTEM_SERVICES).toContain(service);
      expect((await push(pushed({ id, serviceName: service }))).status).toBe(400);
    }
    expect(await recordsOf(cp, id)).toEqual([]);
  });

  it('marks what it stores as pushed, by whom, in reads and filters, apart from Hookline’s own records', async () => {
    const mine = await push(pushed({ name: 'audit.user.loginFailed', serviceName: 'sso-gateway' }));
    expect(mine.body.data).toMatchObject({ origin: 'pushed', pushedBy: a.id });
    await cp.request('POST', '/login', { body: { username: a.username, password: 'wrong password' } });
    const records = async (query: string) =>
      (await cp.request('GET', `/logs?${query}&page[size]=100`, { token: a.token })).body.data as any[];
    const real = await waitFor(
      () => records('filter[name]=iam.user.loginFailed&filter[origin]=event'),
      (found) => found.length === 1,
    );
    expect(real[0]).toMatchObject({ origin: 'event', pushedBy: null, headers: { serviceName: 'iam' }, payload: { id: a.id } });
    const pushedOnes = await records('filter[origin]=pushed');
    expect(pushedOnes.length).toBeGreaterThan(0);
    expect(pushedOnes.every((r) => r.origin === 'pushed' && r.pushedBy === a.id)).toBe(true);
    expect(pushedOnes.map((r) => r.headers.id)).toContain(mine.body.data.headers.id);
    expect((await records('filter[origin]=event')).some((r) => r.origin !== 'event')).toBe(false);
    expect((await records(`filter[pushedBy]=${a.id}`)).map((r) => r.headers.id)).toEqual(pushedOnes.map((r) => r.headers.id));
    expect((await cp.request('GET', '/logs?filter[origin]=system', { token: a.token })).status).toBe(400);
  });
});

describe('POST /logs keeps a tenant’s user inside their tenant', () => {
  it('accepts payload.tenant naming the caller’s own tenant', async () => {
    const res = await push(pushed({}, { tenant: a.tenantId }));
    expect(res.status).toBe(201);
    expect(res.body.data.tenant).toBe(a.tenantId);
  });

  it('refuses payload.tenant naming another tenant (403) and stores nothing', async () => {
    const id = randomUUID();
    for (const tenant of [b.tenantId, randomUUID(), null]) {
      const res = await push(pushed({ id }, { tenant }));
      expect(res.status, String(tenant)).toBe(403);
      expect(res.body.errors[0].message).toBe(
        `payload.tenant: you may push records only into your own tenant (${a.tenantId}); leave it out or set it to your tenant`,
      );
    }
    expect(await recordsOf(cp, id)).toEqual([]);
    expect(await seenBy(b.token, id)).toBe(false);
  });

  it('lets holders of `all` push into any tenant, or into none', async () => {
    const intoB = await push(pushed({}, { tenant: b.tenantId }), admin);
    expect(intoB.status).toBe(201);
    expect(intoB.body.data.tenant).toBe(b.tenantId);
    expect(await seenBy(b.token, intoB.body.data.headers.id)).toBe(true);
    expect(await seenBy(a.token, intoB.body.data.headers.id)).toBe(false);

    const intoNone = await push(pushed({}, { tenant: null }), admin);
    expect(intoNone.body.data.tenant).toBeNull();
    expect(await seenBy(a.token, intoNone.body.data.headers.id)).toBe(false);
    expect(await seenBy(admin, intoNone.body.data.headers.id)).toBe(true);
  });
});

describe('POST /logs refuses what is not a valid envelope with a 400 and stores nothing', () => {
  const headers = pushed().headers;
  const valid = { ...headers, serviceName: 'push-rejected' };
  const bad: [string, unknown, string][] = [
    ['malformed JSON', '{"headers":', 'Malformed JSON'],
    ['an array', [valid], 'expected object'],
    ['no headers', { payload: {} }, 'headers'],
    ['no payload', { headers: valid }, 'payload'],
    ['headers.name missing', { headers: { ...valid, name: undefined }, payload: {} }, 'headers.name'],
    ['headers.name not a string', { headers: { ...valid, name: 5 }, payload: {} }, 'headers.name'],
    [
      'headers.name not a dotted name',
      { headers: { ...valid, name: 'Report Exported' }, payload: {} },
      'headers.name must be a dotted event name',
    ],
    [
      'headers.createdAt not a date-time',
      { headers: { ...valid, createdAt: 'yesterday' }, payload: {} },
      'headers.createdAt must be an ISO 8601 date-time',
    ],
    [
      'headers.createdAt without a zone',
      { headers: { ...valid, createdAt: '2024-03-01T10:00:00' }, payload: {} },
      'headers.createdAt must be an ISO 8601 date-time',
    ],
    ['headers.createdAt a number', { headers: { ...valid, createdAt: 1709287200000 }, payload: {} }, 'headers.createdAt'],
    ['headers.serviceName missing', { headers: { ...valid, serviceName: undefined }, payload: {} }, 'headers.serviceName'],
    ['headers.serviceName empty', { headers: { ...valid, serviceName: '' }, payload: {} }, 'headers.serviceName is required'],
    ['headers.id empty', { headers: { ...valid, id: '' }, payload: {} }, 'headers.id'],
    ['headers.id a number', { headers: { ...valid, id: 7 }, payload: {} }, 'headers.id'],
    ['a payload that is a list', { headers: valid, payload: [1, 2] }, 'payload'],
    ['a payload that is text', { headers: valid, payload: 'exported' }, 'payload'],
    ['an unknown field', { headers: valid, payload: {}, extra: true }, 'extra'],
    ['an unknown header', { headers: { ...valid, priority: 'high' }, payload: {} }, 'priority'],
    [
      'a known event with a payload that breaks its schema',
      { headers: { ...valid, name: 'flow.stopped' }, payload: { id: 'x' } },
      'flow.stopped: payload.tenant',
    ],
    [
      'iam.user.loginFailed with attempts as text',
      { headers: { ...valid, name: 'iam.user.loginFailed' }, payload: { id: 'u', tenant: null, attempts: 'three', locked: false } },
      'payload.attempts',
    ],
    [
      'a tenant that is not a tenant id',
      { headers: valid, payload: { tenant: 'acme' } },
      'payload.tenant: must be a tenant id (a UUID) or null',
    ],
  ];
  it.each(bad)('%s', async (_case, body, message) => {
    for (const token of [a.token, admin]) {
      const res = await push(body, token);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.errors.map((e: any) => e.message).join(' | ')).toContain(message);
    }
  });

  it('stored none of them', async () => {
    expect(await recordsOfService(cp, 'push-rejected')).toEqual([]);
  });

  it('answers 415 for a body that is not JSON, and stores nothing', async () => {
    const [before] = await cp.services.db.select({ n: count() }).from(auditRecords);
    const res = await cp.request('POST', '/logs', {
      token: a.token,
      body: JSON.stringify(pushed()),
      headers: { 'content-type': 'text/plain' },
    });
    expect(res.status).toBe(415);
    const [after] = await cp.services.db.select({ n: count() }).from(auditRecords);
    expect(after!.n).toBe(before!.n);
  });
});

describe('POST /logs needs a token with logs.push', () => {
  it('answers 401 without a valid token and stores nothing', async () => {
    const body = pushed({ serviceName: 'push-unauthenticated' });
    expect((await cp.request('POST', '/logs', { body })).status).toBe(401);
    expect((await cp.request('POST', '/logs', { body, token: `${a.token}x` })).status).toBe(401);
    expect(await recordsOfService(cp, 'push-unauthenticated')).toEqual([]);
  });

  it('answers 403 to a user who may read the log but not push to it', async () => {
    const res = await push(pushed({ serviceName: 'push-forbidden' }), guestOfA.token);
    expect(res.status).toBe(403);
    expect(res.body.errors[0].message).toContain('logs.push');
    expect(await recordsOfService(cp, 'push-forbidden')).toEqual([]);
  });
});
