import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { createTenantWithUser, createUser, type TestUser } from '../support/tenants.js';
import { pushed, storedRecord } from './support.js';

let cp: TestControlPlane;
let admin: string;
let adminId: string;
let a: TestUser;
let b: TestUser;
let guestOfA: TestUser;
let noLogsOfA: TestUser;
const ids: Record<string, string> = {};

/** Everything seeded happened in 2024; live events of this run (logins, ...) happen later, so this range holds only the seed. */
const SEEDED = 'filter[to]=2025-01-01T00:00:00Z';

const seed: [key: string, tenant: 'a' | 'b', headers: Record<string, unknown>, payload?: Record<string, unknown>][] = [
  ['a1', 'a', { name: 'audit.report.created', createdAt: '2024-01-01T10:00:00.000Z' }],
  ['a2', 'a', { name: 'audit.report.deleted', createdAt: '2024-01-02T10:00:00.000Z' }],
  ['a3', 'a', { name: 'flow.stopped', createdAt: '2024-01-03T10:00:00.000Z', serviceName: 'runner-x' }, { id: randomUUID() }],
  ['a4', 'a', { name: 'audit.login.seen', createdAt: '2024-01-04T10:00:00.000Z' }],
  ['a5', 'a', { name: 'audit.re_ort.odd', createdAt: '2024-01-05T10:00:00.000Z' }],
  ['b1', 'b', { name: 'audit.report.created', createdAt: '2024-01-01T12:00:00.000Z' }],
  ['b2', 'b', { name: 'flow.stopped', createdAt: '2024-01-06T10:00:00.000Z', serviceName: 'runner-x' }, { id: randomUUID() }],
];

beforeAll(async () => {
  cp = await startTestControlPlane();
  admin = await cp.login();
  adminId = (await cp.request('GET', '/api/v1/users/me', { token: admin })).body.data.id;
  a = await createTenantWithUser(cp, ['TENANT_ADMIN']);
  b = await createTenantWithUser(cp, ['TENANT_ADMIN']);
  guestOfA = await createUser(cp, { tenantId: a.tenantId, roles: ['TENANT_GUEST'] });
  noLogsOfA = await createUser(cp, { tenantId: a.tenantId, roles: ['USER'], permissions: ['flows.read'] });
  // audit.* pushed by the admin, who may name the tenant; Hookline's own flow.* published on the bus, as only
  // Hookline may. In shuffled order, so the sort is the query's, not the insertion's.
  for (const [key, tenant, headers, payload = {}] of [...seed].reverse()) {
    const body = pushed(headers, { ...payload, tenant: tenant === 'a' ? a.tenantId : b.tenantId });
    if (body.headers.name.startsWith('flow.')) {
      ids[key] = randomUUID();
      await cp.services.bus.publish({ headers: { ...body.headers, id: ids[key] }, payload: body.payload });
      await storedRecord(cp, ids[key]);
      continue;
    }
    const res = await cp.request('POST', '/logs', { token: admin, body });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    ids[key] = res.body.data.headers.id;
  }
});
afterAll(() => cp?.close());

const list = async (query: string, token = admin) => {
  const res = await cp.request('GET', `/logs?${query}`, { token });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return {
    keys: (res.body.data as any[]).map((r) => Object.keys(ids).find((k) => ids[k] === r.headers.id) ?? r.headers.id),
    body: res.body,
  };
};

describe('GET /logs shows a tenant only its own records', () => {
  it('gives tenant A its records, newest first, and none of B’s', async () => {
    const { keys, body } = await list('page[size]=100', a.token);
    expect(body.data.every((r: any) => r.tenant === a.tenantId)).toBe(true);
    expect(keys.filter((k) => k in ids)).toEqual(['a5', 'a4', 'a3', 'a2', 'a1']);
    expect(body.meta.total).toBe(body.data.length);
  });

  it('gives tenant B its records and none of A’s', async () => {
    const { keys, body } = await list(SEEDED, b.token);
    expect(keys).toEqual(['b2', 'b1']);
    expect(body.meta.total).toBe(2);
  });

  it('lets a guest of A (logs.read) read A’s records', async () => {
    expect((await list(SEEDED, guestOfA.token)).keys).toEqual(['a5', 'a4', 'a3', 'a2', 'a1']);
  });

  it('gives holders of `all` every tenant’s records', async () => {
    const { keys, body } = await list(SEEDED);
    expect(keys).toEqual(['b2', 'a5', 'a4', 'a3', 'a2', 'b1', 'a1']);
    expect(body.meta).toEqual({ total: 7, page: 1, perPage: 10, totalPages: 1 });
  });

  it('returns each record as { id, headers, payload, tenant, receivedAt }', async () => {
    const { body } = await list(`filter[name]=flow.stopped&${SEEDED}`, b.token);
    expect(body.data).toEqual([
      {
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        headers: { id: ids.b2, name: 'flow.stopped', createdAt: '2024-01-06T10:00:00.000Z', serviceName: 'runner-x' },
        payload: { id: expect.any(String), tenant: b.tenantId },
        tenant: b.tenantId,
        receivedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        origin: 'event',
        pushedBy: null,
      },
    ]);
    const [report] = (await list(`filter[name]=audit.report.created&${SEEDED}`, b.token)).body.data;
    expect(report).toMatchObject({ headers: { id: ids.b1 }, origin: 'pushed', pushedBy: adminId });
  });
});

describe('GET /logs filters, sorts and pages', () => {
  it('filter[origin] keeps Hookline’s own events or what callers pushed; filter[pushedBy] what one caller pushed', async () => {
    expect((await list(`filter[origin]=event&${SEEDED}`)).keys).toEqual(['b2', 'a3']);
    expect((await list(`filter[origin]=pushed&${SEEDED}`)).keys).toEqual(['a5', 'a4', 'a2', 'b1', 'a1']);
    expect((await list(`filter[pushedBy]=${adminId}&${SEEDED}`, a.token)).keys).toEqual(['a5', 'a4', 'a2', 'a1']);
    expect((await list(`filter[pushedBy]=${a.id}&${SEEDED}`)).keys).toEqual([]);
  });

  it('filter[service] keeps one service’s records', async () => {
    expect((await list('filter[service]=runner-x', a.token)).keys).toEqual(['a3']);
    expect((await list('filter[service]=runner-x')).keys).toEqual(['b2', 'a3']);
    expect((await list('filter[service]=nobody')).body.meta.total).toBe(0);
  });

  it('filter[name] matches a name exactly, or a prefix ending in *', async () => {
    expect((await list('filter[name]=audit.report.created')).keys).toEqual(['b1', 'a1']);
    expect((await list('filter[name]=audit.report')).keys).toEqual([]);
    expect((await list('filter[name]=audit.report.*', a.token)).keys).toEqual(['a2', 'a1']);
    expect((await list(`filter[name]=audit.*&${SEEDED}`)).keys).toEqual(['a5', 'a4', 'a2', 'b1', 'a1']);
    expect((await list(`filter[name]=flow.*&${SEEDED}`)).keys).toEqual(['b2', 'a3']);
  });

  it('treats _ in filter[name] as itself, not as a wildcard', async () => {
    expect((await list('filter[name]=audit.re_ort*')).keys).toEqual(['a5']);
  });

  it('filter[from] is inclusive and filter[to] exclusive, on the event’s createdAt, with any offset', async () => {
    expect((await list('filter[from]=2024-01-02T10:00:00Z&filter[to]=2024-01-04T10:00:00Z')).keys).toEqual(['a3', 'a2']);
    expect((await list('filter[from]=2024-01-02T11:00:00%2B01:00&filter[to]=2024-01-03T10:00:00.001Z')).keys).toEqual(['a3', 'a2']);
    expect((await list('filter[from]=2024-01-05T00:00:00Z&filter[to]=2024-12-31T00:00:00Z', b.token)).keys).toEqual(['b2']);
  });

  it('combines filters, and totals count only what they match', async () => {
    const { keys, body } = await list(
      'filter[name]=audit.*&filter[from]=2024-01-01T11:00:00Z&filter[to]=2024-01-05T00:00:00Z&page[size]=1',
    );
    expect(keys).toEqual(['a4']);
    expect(body.meta).toEqual({ total: 3, page: 1, perPage: 1, totalPages: 3 });
  });

  it('sort=createdAt gives the oldest first; -createdAt (the default) the newest', async () => {
    expect((await list(`sort=createdAt&${SEEDED}`)).keys).toEqual(['a1', 'b1', 'a2', 'a3', 'a4', 'a5', 'b2']);
    expect((await list(`sort=-createdAt&${SEEDED}`)).keys).toEqual(['b2', 'a5', 'a4', 'a3', 'a2', 'b1', 'a1']);
  });

  it('pages through the records with no gap and no repeat', async () => {
    const pages = await Promise.all([1, 2, 3].map((n) => list(`page[size]=3&page[number]=${n}&${SEEDED}`)));
    expect(pages.map((p) => p.keys)).toEqual([['b2', 'a5', 'a4'], ['a3', 'a2', 'b1'], ['a1']]);
    expect(pages.map((p) => p.body.meta)).toEqual([1, 2, 3].map((page) => ({ total: 7, page, perPage: 3, totalPages: 3 })));
    const beyond = await list(`page[size]=3&page[number]=4&${SEEDED}`);
    expect(beyond.body).toEqual({ data: [], meta: { total: 7, page: 4, perPage: 3, totalPages: 3 } });
  });
});

describe('GET /logs refuses bad queries with a 400 that says what is wrong', () => {
  const bad: [string, string][] = [
    ['filter[from]=yesterday', 'filter[from]: must be an ISO 8601 date-time with a zone'],
    ['filter[to]=2024-13-01T00:00:00Z', 'filter[to]: must be an ISO 8601 date-time with a zone'],
    ['filter[from]=2024-01-01T10:00:00', 'filter[from]: must be an ISO 8601 date-time with a zone'],
    ['filter[from]=2024-02-01T00:00:00Z&filter[to]=2024-01-01T00:00:00Z', 'filter[from] must not be later than filter[to]'],
    ['filter[name]=flow.%25', 'filter[name]: must be an event name, or a prefix ending in *'],
    ['filter[name]=*flow', 'filter[name]: must be an event name, or a prefix ending in *'],
    ['sort=receivedAt', 'sort must be one of createdAt'],
    ['page[size]=0', 'page[size]'],
    ['page[size]=101', 'page[size]'],
    ['page[number]=abc', 'page[number]'],
    ['filter[tenant]=x', 'filter[tenant]'],
  ];
  it.each(bad)('%s', async (query, message) => {
    const res = await cp.request('GET', `/logs?${query}`, { token: admin });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: any) => e.message)).toEqual([expect.stringContaining(message)]);
  });
});

describe('GET /logs needs a token with logs.read', () => {
  it('answers 401 without a valid token', async () => {
    expect((await cp.request('GET', '/logs')).status).toBe(401);
    expect((await cp.request('GET', '/logs', { token: 'not-a-token' })).status).toBe(401);
    expect((await cp.request('GET', '/logs', { headers: { authorization: 'Basic abc' } })).status).toBe(401);
  });

  it('answers 401 for a token that was logged out', async () => {
    const token = await cp.login(a.username, a.password);
    expect((await cp.request('POST', '/logout', { token })).status).toBeLessThan(300);
    expect((await cp.request('GET', '/logs', { token })).status).toBe(401);
  });

  it('answers 403 without logs.read', async () => {
    const res = await cp.request('GET', '/logs', { token: noLogsOfA.token });
    expect(res.status).toBe(403);
    expect(res.body.errors[0].message).toContain('logs.read');
  });
});
